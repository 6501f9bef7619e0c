//! The `accel` command line.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use accel::cli::{Cli, Cmd, Mode, StatsFormat};
use accel::control::{self, Reply, Request};
use accel::daemon::{self, RunOptions};
use accel::datapath::maps::Maps;
use accel::datapath::pin::PinDir;
use accel::runtime::{self, RunDir};
use accel::{lookup, metrics, stats};

fn main() {
    // Die quietly on a closed pipe (`accel stats | head`), as CLI tools do.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    runtime::restrict_umask();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    accel::datapath::libbpf_log::install();
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
            hook,
            xdp_mode,
            mode,
            allow_netfilter_bypass,
            metrics,
            alerts,
            check_every,
            grow_after,
            top_blackholes,
            realtime_priority,
        } => {
            accel::handover::name_after_binary();
            accel::realtime::configure(realtime_priority);
            let thresholds =
                accel::alerts::Thresholds::from_settings(alerts.iter().map(String::as_str))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(daemon::run(RunOptions {
                ifaces,
                hook,
                xdp_mode,
                fib_only: mode == Mode::Fib,
                pin_dir: cli.pin_dir,
                run_dir: cli.run_dir,
                allow_netfilter_bypass,
                metrics,
                thresholds,
                check_every: (check_every > 0).then(|| Duration::from_secs(check_every)),
                grow_after: (grow_after > 0).then(|| Duration::from_secs(grow_after)),
                top_blackholes: top_blackholes.into(),
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
            openmetrics,
            format,
            blackholes,
            capacity,
        } => {
            let view = if openmetrics
                || matches!(
                    format,
                    Some(StatsFormat::Openmetrics | StatsFormat::Prometheus)
                ) {
                StatsView::Metrics(if format == Some(StatsFormat::Prometheus) {
                    metrics::Format::Prometheus
                } else {
                    metrics::Format::OpenMetrics
                })
            } else if capacity {
                StatsView::Capacity
            } else if blackholes {
                StatsView::Blackholes
            } else {
                StatsView::Counters
            };
            stats_cmd(&cli, view, json || format == Some(StatsFormat::Json))
        }
        Cmd::Health { json } => health(&cli.run_dir, json),
        Cmd::Upgrade { timeout } => upgrade(&cli.run_dir, Duration::from_secs(timeout)),
        Cmd::Top { once, interval } => top(&cli, once, Duration::from_secs_f64(interval)),
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

/// What `accel stats` prints.
enum StatsView {
    /// Every figure in a metrics text format.
    Metrics(metrics::Format),
    Capacity,
    Blackholes,
    /// The counters per interface.
    Counters,
}

fn stats_cmd(cli: &Cli, view: StatsView, json: bool) -> Result<()> {
    let maps = open_live(&cli.pin_dir).context("accel stats")?;
    match view {
        StatsView::Metrics(format) => {
            // The daemon's own families, when it answers.
            let status = match ask(&cli.run_dir, Request::Status) {
                Ok(Reply::Status { status }) => Some(status),
                _ => None,
            };
            let ids = status.as_ref().map_or(&[][..], |s| &s.nexthop_ids[..]);
            let sample = metrics::Sample::read(&maps, ids)?;
            let top = metrics::DEFAULT_TOP_BLACKHOLES;
            print!(
                "{}",
                metrics::encode_as(&sample, status.as_deref(), top, format)
            );
        }
        StatsView::Capacity => {
            print!("{}", stats::capacity_report(&maps.read_capacity(), json));
        }
        StatsView::Blackholes => {
            let drops = stats::blackholes(&maps.blackhole_drops());
            let sources = stats::blackholes(&maps.source_blackhole_drops());
            if json {
                let both = serde_json::json!({"destination": drops, "source": sources});
                println!("{}", serde_json::to_string_pretty(&both)?);
            } else {
                print!("{}", stats::render_blackholes(&drops));
                if !sources.is_empty() {
                    println!("source RTBH (rp_filter on, the source's route is the blackhole):");
                    print!("{}", stats::render_blackholes(&sources));
                }
            }
        }
        StatsView::Counters => {
            let all = stats::read_all(&maps)?;
            let lease = stats::lease_state(&maps.config(), runtime::monotonic_coarse_ns());
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", stats::render(lease, &all));
                print!("{}", stats::capacity_warnings(&maps.read_capacity()));
            }
        }
    }
    Ok(())
}

/// The daemon's status, when it answers.
fn status(run_dir: &std::path::Path) -> Option<Box<accel::status::Status>> {
    match ask_with(run_dir, Request::Status, Duration::from_secs(2)) {
        Ok(Reply::Status { status }) => Some(status),
        _ => None,
    }
}

/// `accel top`: frames of rates between two samples, `interval` apart.
fn top(cli: &Cli, once: bool, interval: Duration) -> Result<()> {
    use accel::top::{term, Frame};
    let maps = open_live(&cli.pin_dir).context("accel top")?;
    let read = |st: &Option<Box<accel::status::Status>>| {
        let ids = st.as_ref().map_or(&[][..], |s| &s.nexthop_ids[..]);
        metrics::Sample::read(&maps, ids)
    };
    let mut st = status(&cli.run_dir);
    let mut before = (read(&st)?, std::time::Instant::now());
    let raw = if once { None } else { term::Raw::enter() };
    if !once && raw.is_none() {
        bail!("accel top needs a terminal (or --once)");
    }
    loop {
        let quit = if once {
            std::thread::sleep(interval);
            false
        } else {
            term::quit_requested(interval)
        };
        if quit {
            return Ok(());
        }
        st = status(&cli.run_dir);
        let after = (read(&st)?, std::time::Instant::now());
        let frame = Frame {
            before: &before.0,
            after: &after.0,
            over: after.1 - before.1,
            status: st.as_deref(),
        };
        if once {
            for l in frame.render(usize::MAX, usize::MAX) {
                println!("{l}");
            }
            return Ok(());
        }
        let (w, h) = term::size();
        term::draw(&frame.render(w, h.saturating_sub(1)));
        before = after;
    }
}

/// `accel health`: never an error exit of its own, only the plugin codes.
fn health(run_dir: &std::path::Path, json: bool) -> Result<()> {
    use accel::alerts::health;
    let report = match ask_with(run_dir, Request::Status, Duration::from_secs(5)) {
        Ok(Reply::Status { status }) => health::report(&status, accel::status::now_unix_ms()),
        Ok(other) => health::unreachable(&format!("unexpected reply {other:?}")),
        Err(e) => health::unreachable(&format!("{e:#}")),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report}");
    }
    std::process::exit(report.state.exit_code());
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
    // A full-table resync takes seconds; far less than this.
    ask_with(run_dir, request, Duration::from_secs(120))
}

fn ask_with(run_dir: &std::path::Path, request: Request, timeout: Duration) -> Result<Reply> {
    let run = RunDir::open(run_dir).context("the run directory of `accel run`")?;
    let (socket, shown) = run.socket();
    let reply = control::ask(&socket, &shown, request, timeout)?;
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

/// `accel upgrade`: asks for the upgrade, then follows it to its end,
/// all within `timeout`. Exits 1 when the instance carries on with its old
/// binary (refused, or its successor failed), 2 when the handover started
/// but what runs now is not known, or nothing does.
fn upgrade(run_dir: &std::path::Path, timeout: Duration) -> Result<()> {
    use accel::control::ControlError;
    let deadline = std::time::Instant::now() + timeout;
    let run = RunDir::open(run_dir).context("the run directory of `accel run`")?;
    let (socket, shown) = run.socket();
    let (pid, successor) = match control::ask(&socket, &shown, Request::Upgrade, timeout) {
        Ok(Reply::Upgrading { pid, successor }) => (pid, successor),
        Ok(Reply::Failed { error }) => bail!("upgrade failed: {error}"),
        Ok(other) => bail!("unexpected reply to upgrade: {other:?}"),
        // Nothing was asked of anyone.
        Err(e @ (ControlError::Connect(..) | ControlError::ForeignServer { .. })) => {
            return Err(e.into())
        }
        // Asked, perhaps: whether it started is not known.
        Err(e) => {
            eprintln!("accel: upgrade: {e}: whether an upgrade started is not known");
            std::process::exit(2);
        }
    };
    println!("accel (pid {pid}) is handing over to its successor (pid {successor})");
    match accel::upgrade::follow(run_dir, pid, successor, deadline) {
        Ok(status) => {
            println!(
                "upgraded in place: pid {successor} forwards now (accel {}); pid {pid} exited",
                status.version
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("accel: upgrade: {e}");
            std::process::exit(e.exit_code());
        }
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
