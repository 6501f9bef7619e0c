//! The `accel` command line.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use accel::control::{self, Reply, Request};
use accel::daemon::{self, RunOptions};
use accel::datapath::attach::XdpMode;
use accel::datapath::maps::Maps;
use accel::datapath::pin::{PinDir, DEFAULT_PIN_DIR};
use accel::runtime::{self, RunDir, DEFAULT_RUN_DIR};
use accel::{lookup, metrics, stats};

#[derive(Parser)]
#[command(
    name = "accel",
    version,
    about = "XDP route accelerator: forwards as the kernel would, from a live mirror of its FIB"
)]
struct Cli {
    /// bpffs directory where the running instance pins its maps.
    #[arg(long, global = true, env = "ACCEL_PIN_DIR", default_value = DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
    /// Directory for the instance lock and the control socket.
    #[arg(long, global = true, env = "ACCEL_RUN_DIR", default_value = DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StatsFormat {
    Text,
    Json,
    /// OpenMetrics 1.0 text.
    Openmetrics,
    /// The Prometheus text format (node_exporter's textfile collector).
    Prometheus,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Mirror the FIB in BPF maps; bpf_fib_lookup only on a mirror miss.
    Mirror,
    /// Use bpf_fib_lookup for every packet.
    Fib,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attach to interfaces and forward until stopped (SIGINT/SIGTERM detach;
    /// SIGUSR2 upgrades in place: starts the binary at the same path with
    /// the same arguments, which takes over without a detach and without a
    /// moment of kernel-only forwarding; see docs/deployment.md).
    Run {
        /// Interface to accelerate (repeat for each).
        #[arg(long = "iface", short = 'i', required = true)]
        ifaces: Vec<String>,
        #[arg(long, value_enum, default_value_t = XdpMode::Native)]
        xdp_mode: XdpMode,
        #[arg(long, value_enum, default_value_t = Mode::Mirror)]
        mode: Mode,
        /// Start although netfilter has prerouting/forward/postrouting rules
        /// (or legacy iptables tables) that XDP-forwarded packets skip.
        #[arg(long)]
        allow_netfilter_bypass: bool,
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
    /// What the datapath does for a destination, beside the kernel's answer.
    Lookup { addr: IpAddr },
}

fn main() {
    // Die quietly on a closed pipe (`accel stats | head`), as CLI tools do.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    runtime::restrict_umask();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = real_main() {
        eprintln!("accel: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            ifaces,
            xdp_mode,
            mode,
            allow_netfilter_bypass,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(daemon::run(RunOptions {
                ifaces,
                mode: xdp_mode,
                fib_only: mode == Mode::Fib,
                pin_dir: cli.pin_dir,
                run_dir: cli.run_dir,
                allow_netfilter_bypass,
            }))
            .context("accel run")
        }
        Cmd::Sync { check: false } => sync(&cli.run_dir),
        Cmd::Sync { check: true } => {
            if !check(&cli.run_dir)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Stats {
            openmetrics,
            format,
            ..
        } if openmetrics
            || matches!(
                format,
                Some(StatsFormat::Openmetrics | StatsFormat::Prometheus)
            ) =>
        {
            let as_format = if format == Some(StatsFormat::Prometheus) {
                metrics::Format::Prometheus
            } else {
                metrics::Format::OpenMetrics
            };
            let maps = open_live(&cli.pin_dir).context("accel stats")?;
            let sample = metrics::Sample {
                lease: stats::lease_state(&maps.config(), runtime::monotonic_coarse_ns()),
                ifaces: iface_stats(&maps)?,
                capacity: maps.read_capacity(),
                blackholes: stats::blackholes(&maps.blackhole_drops()),
            };
            print!(
                "{}",
                metrics::encode_as(&sample, metrics::DEFAULT_TOP_BLACKHOLES, as_format)
            );
            Ok(())
        }
        Cmd::Stats {
            json,
            format,
            capacity: true,
            ..
        } => {
            let maps = open_live(&cli.pin_dir).context("accel stats")?;
            let json = json || format == Some(StatsFormat::Json);
            print!("{}", stats::capacity_report(&maps.read_capacity(), json));
            Ok(())
        }
        Cmd::Stats {
            json,
            format,
            blackholes: true,
            ..
        } => {
            let json = json || format == Some(StatsFormat::Json);
            let maps = open_live(&cli.pin_dir).context("accel stats")?;
            let drops = stats::blackholes(&maps.blackhole_drops());
            if json {
                println!("{}", serde_json::to_string_pretty(&drops)?);
            } else {
                print!("{}", stats::render_blackholes(&drops));
            }
            Ok(())
        }
        Cmd::Stats { json, format, .. } => {
            let json = json || format == Some(StatsFormat::Json);
            let maps = open_live(&cli.pin_dir).context("accel stats")?;
            let all = iface_stats(&maps)?;
            let lease = stats::lease_state(&maps.config(), runtime::monotonic_coarse_ns());
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", stats::render(lease, &all));
                print!("{}", stats::capacity_warnings(&maps.read_capacity()));
            }
            Ok(())
        }
        Cmd::Lookup { addr } => {
            let maps = open_live(&cli.pin_dir).context("accel lookup")?;
            println!("{addr}");
            println!("  accel:");
            for line in lookup::explain(&maps, addr) {
                println!("    {line}");
            }
            println!("  kernel (its FIB lookup, as `ip route get fibmatch`):");
            for line in lookup::kernel_answer(addr).lines() {
                println!("    {line}");
            }
            Ok(())
        }
    }
}

/// The counters of every interface the datapath runs on, in slot order.
fn iface_stats(maps: &Maps) -> Result<Vec<stats::IfaceStats>> {
    let mut ifaces = maps.ifaces();
    ifaces.sort_by_key(|(_, i)| i.slot);
    let mut all = Vec::new();
    for (ifindex, i) in ifaces {
        let name = runtime::ifname(ifindex).unwrap_or_else(|| format!("ifindex {ifindex}"));
        all.push(stats::summarise(name, ifindex, &maps.stats(i.slot)?));
    }
    Ok(all)
}

/// The pinned maps of a live instance: pins a killed instance left behind
/// hold stale counters and routes, which must not pass for current ones.
fn open_live(pin_dir: &std::path::Path) -> Result<Maps> {
    runtime::require_caps(runtime::READ_CAPS)?;
    let pins = PinDir::open_live(pin_dir)?;
    Ok(Maps::open_pinned(&pins)?)
}

/// Sends one request to the running instance and returns its reply.
fn ask(run_dir: &std::path::Path, request: Request) -> Result<Reply> {
    let run = RunDir::open(run_dir).context("the run directory of `accel run`")?;
    let (socket, shown) = run.socket();
    // A full-table resync takes seconds; far less than this.
    let reply = control::ask(&socket, &shown, request, Duration::from_secs(120))?;
    if let Reply::Failed { error } = reply {
        bail!("{} failed: {error}", request.word());
    }
    Ok(reply)
}

fn sync(run_dir: &std::path::Path) -> Result<()> {
    match ask(run_dir, Request::Sync)? {
        Reply::Synced {
            changes, mirror, ..
        } => {
            println!("synced: {} changes ({changes})", changes.total());
            println!("mirror: {mirror}");
            Ok(())
        }
        other => bail!("unexpected reply {other:?}"),
    }
}

/// Returns true when the mirror matches the kernel.
fn check(run_dir: &std::path::Path) -> Result<bool> {
    let Reply::Checked {
        changes,
        examples,
        mirror,
    } = ask(run_dir, Request::Check)?
    else {
        bail!("unexpected reply to check");
    };
    if changes.total() == 0 {
        println!("in sync: mirror of {mirror} matches the kernel");
        return Ok(true);
    }
    println!(
        "out of sync: a resync would make {} changes ({changes})",
        changes.total()
    );
    for e in examples {
        println!("  {e}");
    }
    Ok(false)
}
