//! The `accel` command line's definition: parsed by `accel`, and read by
//! `accel-gen-docs` (tools/) for the man pages and shell completions.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::datapath::attach::{HookChoice, IfaceArg, XdpMode};
use crate::datapath::pin::DEFAULT_PIN_DIR;
use crate::metrics;
use crate::runtime::DEFAULT_RUN_DIR;

#[derive(Parser)]
#[command(
    name = "accel",
    version = crate::VERSION,
    about = "XDP route accelerator: forwards as the kernel would, from a live mirror of its FIB"
)]
pub struct Cli {
    /// bpffs directory where the running instance pins its maps.
    #[arg(long, global = true, env = "ACCEL_PIN_DIR", default_value = DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
    /// Directory for the instance lock and the control socket.
    #[arg(long, global = true, env = "ACCEL_RUN_DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    Text,
    Json,
    /// OpenMetrics 1.0 text.
    Openmetrics,
    /// The Prometheus text format (node_exporter's textfile collector).
    Prometheus,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Mirror the FIB in BPF maps; bpf_fib_lookup only on a mirror miss.
    Mirror,
    /// Use bpf_fib_lookup for every packet.
    Fib,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Attach to interfaces and forward until stopped (SIGINT/SIGTERM detach;
    /// SIGUSR2 upgrades in place: starts the binary at the same path with
    /// the same arguments, which takes over without a detach and without a
    /// moment of kernel-only forwarding; see docs/deployment.md).
    Run {
        /// Interface to accelerate (repeat for each); IFACE:xdp or IFACE:tc
        /// picks its hook, overriding --hook.
        #[arg(
            long = "iface",
            short = 'i',
            required = true,
            value_name = "IFACE[:HOOK]"
        )]
        ifaces: Vec<IfaceArg>,
        /// Where the datapath runs: auto (native XDP where the driver
        /// supports it, TC ingress where it does not: bridges, tunnels,
        /// macvlan, drivers without XDP), xdp or tc.
        #[arg(long, value_enum, default_value_t = HookChoice::Auto)]
        hook: HookChoice,
        /// The XDP mode wherever XDP runs; generic is never chosen by
        /// --hook auto, and asking for it makes auto mean xdp.
        #[arg(long, value_enum, default_value_t = XdpMode::Native)]
        xdp_mode: XdpMode,
        #[arg(long, value_enum, default_value_t = Mode::Mirror)]
        mode: Mode,
        /// Start although netfilter has prerouting/forward/postrouting rules
        /// (or legacy iptables tables) that XDP-forwarded packets skip.
        #[arg(long)]
        allow_netfilter_bypass: bool,
        /// Serve Prometheus metrics on GET http://ADDR:PORT/metrics (off
        /// unless given; e.g. 127.0.0.1:9469).
        #[arg(long, value_name = "ADDR:PORT", env = "ACCEL_METRICS")]
        metrics: Option<std::net::SocketAddr>,
        /// Set an alert threshold (repeatable): not-accelerated-share,
        /// min-transit-pps, resyncs-per-minute, capacity-share,
        /// no-neigh-pps, blackhole-pps, lease-grace-seconds. See
        /// docs/deployment.md, "Monitoring and alerts".
        #[arg(long = "alert", value_name = "NAME=VALUE", value_parser = parse_threshold)]
        alerts: Vec<String>,
        /// Compare the mirror with the kernel every SECS seconds and resync
        /// if they differ (0: never).
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        check_every: u64,
        /// When a structure of the datapath has had no room for some
        /// routes or entries for SECS seconds (they go through
        /// bpf_fib_lookup meanwhile), upgrade in place to maps with that
        /// structure doubled (or sized to what the routes need), if the
        /// memory is there (0: never; see `accel stats --capacity`).
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        grow_after: u64,
        /// Blackhole prefixes with a metric series of their own (the rest
        /// are summed as prefix="other").
        #[arg(long, default_value_t = metrics::DEFAULT_TOP_BLACKHOLES as u16,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        top_blackholes: u16,
        /// SCHED_FIFO priority of the thread that reads route changes, and
        /// of the event loop while it applies them, so that a change does
        /// not wait behind the routing daemon for a CPU (the loop wakes at
        /// normal priority, and never takes it while a resync or check is
        /// compared; 0: normal scheduling; refused without CAP_SYS_NICE or
        /// a LimitRTPRIO that allows it, and then said once).
        #[arg(long, value_name = "PRIO", default_value_t = 1,
              value_parser = clap::value_parser!(u8).range(0..=99))]
        realtime_priority: u8,
    },
    /// Reconcile the running instance's maps with the kernel now.
    Sync {
        /// Only compare the mirror with a fresh kernel dump, changing
        /// nothing: exit 0 when they agree, 1 with the differences.
        #[arg(long)]
        check: bool,
    },
    /// Counters per interface: forwarded, and why packets went to the kernel.
    Stats {
        #[arg(long, conflicts_with = "openmetrics")]
        json: bool,
        /// Every figure as OpenMetrics text instead, the families
        /// `accel run --metrics` serves (for node_exporter's textfile
        /// collector). `--format openmetrics` says the same.
        #[arg(long, conflicts_with_all = ["blackholes", "capacity"])]
        openmetrics: bool,
        /// text (default), json, openmetrics or prometheus (the text
        /// format node_exporter's textfile collector reads).
        #[arg(long, value_enum)]
        format: Option<StatsFormat>,
        /// Drops per blackhole prefix instead (prefixes that dropped
        /// anything; "other" counts prefixes beyond the datapath's slots).
        #[arg(long)]
        blackholes: bool,
        /// How full each bounded structure is instead: capacity, used, and
        /// routes or entries left to bpf_fib_lookup for lack of room.
        #[arg(long, conflicts_with = "blackholes")]
        capacity: bool,
    },
    /// Upgrade the running instance in place to the binary now at its path
    /// (what SIGUSR2 does), and wait until its successor forwards: exit 0
    /// once it does; 1 when the instance carries on with its old binary
    /// (refused, or the successor failed) or none answers; 2 when the
    /// outcome is not known in time, or neither runs.
    Upgrade {
        /// Give up after SECS seconds in all (a full table takes a few).
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// What the datapath does for a destination, beside the kernel's answer.
    Lookup { addr: IpAddr },
    /// A live view: per interface the packets and bits a second forwarded,
    /// passed and dropped with the top reasons, the busiest next hops and
    /// blackhole prefixes, and the health line. `q` or Ctrl-C quits.
    Top {
        /// Print one view (rates over one interval) and exit.
        #[arg(long)]
        once: bool,
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 1.0, value_parser = parse_interval)]
        interval: f64,
    },
    /// One line on the running instance's health; exit 0 OK, 1 WARNING,
    /// 2 CRITICAL (Nagios / monit plugin conventions).
    Health {
        /// The report as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.2..=60.0).contains(&v) => Ok(v),
        _ => Err("expected seconds from 0.2 to 60".into()),
    }
}

/// Checks one `--alert` setting at parse time.
fn parse_threshold(s: &str) -> Result<String, String> {
    crate::alerts::Thresholds::default()
        .set(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}
