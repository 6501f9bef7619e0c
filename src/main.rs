//! The `accel` command line.

use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use accel::daemon::{self, RunOptions};
use accel::datapath::attach::XdpMode;
use accel::datapath::maps::Maps;
use accel::datapath::pin::DEFAULT_PIN_DIR;
use accel::runtime::{self, DEFAULT_RUN_DIR};
use accel::{lookup, stats};

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
        #[arg(long)]
        json: bool,
        /// Drops per blackhole prefix instead (prefixes that dropped
        /// anything; "other" counts prefixes beyond the datapath's slots).
        #[arg(long)]
        blackholes: bool,
    },
    /// What the datapath does for a destination, beside the kernel's answer.
    Lookup { addr: IpAddr },
}

fn main() {
    // Die quietly on a closed pipe (`accel stats | head`), as CLI tools do.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
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
            json,
            blackholes: true,
        } => {
            runtime::require_root()?;
            let maps = open_live(&cli.pin_dir)?;
            let drops = stats::blackholes(&maps.blackhole_drops());
            if json {
                println!("{}", serde_json::to_string_pretty(&drops)?);
            } else {
                print!("{}", stats::render_blackholes(&drops));
            }
            Ok(())
        }
        Cmd::Stats { json, .. } => {
            runtime::require_root()?;
            let maps = open_live(&cli.pin_dir)?;
            let mut all = Vec::new();
            let mut ifaces = maps.ifaces();
            ifaces.sort_by_key(|(_, i)| i.slot);
            for (ifindex, i) in ifaces {
                let name = runtime::ifname(ifindex).unwrap_or_else(|| format!("ifindex {ifindex}"));
                all.push(stats::summarise(name, ifindex, &maps.stats(i.slot)?));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", stats::render(&all));
            }
            Ok(())
        }
        Cmd::Lookup { addr } => {
            runtime::require_root()?;
            let maps = open_live(&cli.pin_dir)?;
            println!("{addr}");
            println!("  accel:");
            for line in lookup::explain(&maps, addr) {
                println!("    {line}");
            }
            println!("  kernel (ip route get):");
            for line in lookup::kernel_answer(addr).lines() {
                println!("    {line}");
            }
            Ok(())
        }
    }
}

/// The pinned maps of a live instance: pins a killed instance left behind
/// hold stale counters and routes, which must not pass for current ones.
fn open_live(pin_dir: &std::path::Path) -> Result<Maps> {
    let maps = Maps::open_pinned(pin_dir)?;
    if maps.config().lease_until_ns <= runtime::monotonic_coarse_ns() {
        bail!(
            "no live `accel run`: the maps pinned at {} are left over from a stopped instance",
            pin_dir.display()
        );
    }
    Ok(maps)
}

/// Sends one request to the running instance and returns its reply.
fn control(run_dir: &std::path::Path, request: &str) -> Result<serde_json::Value> {
    runtime::require_root()?;
    let path = run_dir.join("accel.sock");
    let mut s = UnixStream::connect(&path)
        .with_context(|| format!("no running `accel run` answers on {}", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    s.write_all(format!("{request}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .context("reading the daemon's reply")?;
    let v: serde_json::Value = serde_json::from_str(&line).context("malformed reply")?;
    if v["ok"] != true {
        bail!("{request} failed: {}", v["error"]);
    }
    Ok(v)
}

fn changes_line(v: &serde_json::Value) -> String {
    let c = &v["changes"];
    format!(
        "{} changes (routes +{} -{}, next hops +{}, groups +{}, neighbours +{} -{}, interfaces {}, local addresses {}, config {})",
        v["total_changes"], c["routes_put"], c["routes_deleted"], c["nexthops_put"], c["groups_put"],
        c["neighbours_put"], c["neighbours_deleted"], c["ifaces_put"], c["local_addrs_changed"], c["config_changed"]
    )
}

fn sync(run_dir: &std::path::Path) -> Result<()> {
    let v = control(run_dir, "sync")?;
    println!("synced: {}", changes_line(&v));
    println!(
        "mirror: {} routes, {} next hops, {} groups, {} neighbours",
        v["routes"], v["nexthops"], v["groups"], v["neighbours"]
    );
    Ok(())
}

/// Returns true when the mirror matches the kernel.
fn check(run_dir: &std::path::Path) -> Result<bool> {
    let v = control(run_dir, "check")?;
    if v["total_changes"] == 0 {
        println!(
            "in sync: mirror of {} routes, {} next hops, {} groups, {} neighbours matches the kernel",
            v["routes"], v["nexthops"], v["groups"], v["neighbours"]
        );
        return Ok(true);
    }
    println!("out of sync: a resync would make {}", changes_line(&v));
    for e in v["examples"].as_array().into_iter().flatten() {
        println!("  {}", e.as_str().unwrap_or_default());
    }
    Ok(false)
}
