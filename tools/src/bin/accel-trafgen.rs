//! `accel-trafgen`: benchmark traffic without pktgen.
//!
//! `send` builds frames in an XDP program run through BPF_PROG_RUN with
//! BPF_F_TEST_XDP_LIVE_FRAMES (real frames, sent out of --iface) from a
//! dedicated thread, continuously, for --seconds. `sink` attaches an XDP
//! program to --iface that counts and drops the test UDP traffic (and
//! passes ARP, ND and everything else) and prints packets/s each second.
//! `loop`, for kernels that refuse live frames, is a sink that sends each
//! test frame, rewritten into the next one, back into the router, and
//! prints what `sink` prints.
//! `send` and `sink` work in the current network namespace (`loop` in the
//! generator's, entering --sink-netns for its sink): run them with
//! `ip netns exec NS` or `nsenter --net=/run/netns/NS`.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use libbpf_rs::skel::OpenSkel;
use libbpf_rs::{MapCore, MapFlags};

use accel::datapath::attach::{attach_xdp, XdpMode};
use accel_tools::net::{iface_mac, parse_mac};
use accel_tools::trafgen::{self, types, FrameSpec, TrafgenSkel};

#[derive(Parser)]
#[command(
    name = "accel-trafgen",
    version,
    about = "Benchmark traffic from XDP live frames (BPF_PROG_RUN) or a closed loop, and a counting XDP sink"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Pick {
    /// Walk the destination array in order (per CPU).
    Seq,
    /// bpf_get_prandom_u32() % count for every frame.
    Random,
}

/// What the generated frames look like and where they go.
#[derive(Args)]
struct Frames {
    /// Interface to send from (the frames leave it as if transmitted).
    #[arg(long)]
    iface: String,
    /// Source MAC [default: the interface's].
    #[arg(long)]
    src_mac: Option<String>,
    /// Destination MAC: the next router's interface.
    #[arg(long)]
    dst_mac: String,
    /// Source address; its family is the traffic's.
    #[arg(long)]
    src: IpAddr,
    /// Destinations, one address per line.
    #[arg(long, conflicts_with = "prefixes_file")]
    dst_file: Option<PathBuf>,
    /// Prefixes (one per line, CRLF and '#' comments tolerated): draw
    /// --count destinations from inside them, each from a prefix chosen
    /// uniformly, host bits random.
    #[arg(long)]
    prefixes_file: Option<PathBuf>,
    #[arg(long, default_value_t = 1 << 20)]
    count: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Only for checking: the family must match --src (4 or 6).
    #[arg(long)]
    family: Option<u8>,
    /// Frame size on the wire, FCS included (IPv6+UDP needs at least 66).
    #[arg(long, default_value_t = 64)]
    size: usize,
    #[arg(long, default_value_t = 9)]
    dport: u16,
    #[arg(long, default_value_t = 40000)]
    sport: u16,
    #[arg(long, value_enum, default_value_t = Pick::Seq)]
    pick: Pick,
    /// Tag each frame with the gateway of the prefix its destination
    /// was drawn from, when the router spreads the table's routes over
    /// N gateways in file order (IPv4 ID / IPv6 flow label: the
    /// ceiling forwarder's egress, handed to it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=65536))]
    tag_gateways: u32,
}

/// The sink's measurement: a warm-up, then per-second rates.
#[derive(Args)]
struct Window {
    /// Length of the measured window, after the warm-up.
    #[arg(long, default_value_t = 5)]
    seconds: u32,
    /// Seconds ignored after the first test packet arrives.
    #[arg(long, default_value_t = 2)]
    warmup: u32,
    /// Give up if no test packet arrives within this many seconds.
    #[arg(long, default_value_t = 60)]
    wait: u32,
}

impl From<Pick> for types::trafgen_pick {
    fn from(p: Pick) -> Self {
        match p {
            Pick::Seq => types::trafgen_pick::TRAFGEN_PICK_SEQ,
            Pick::Random => types::trafgen_pick::TRAFGEN_PICK_RANDOM,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Send UDP frames out of an interface for a while.
    Send {
        #[command(flatten)]
        frames: Frames,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Frames per BPF_PROG_RUN call (each call has ~24 ms fixed cost).
        #[arg(long, default_value_t = 1 << 20)]
        repeat: u32,
        #[arg(long, default_value_t = 64)]
        batch_size: u32,
        /// Sending threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Print the send rate every second.
        #[arg(long)]
        verbose: bool,
    },
    /// Count and drop the test UDP traffic arriving on an interface.
    Sink {
        #[arg(long)]
        iface: String,
        #[command(flatten)]
        window: Window,
        #[arg(long, default_value_t = 9)]
        dport: u16,
        #[arg(long, value_enum, default_value_t = XdpMode::Native)]
        xdp_mode: XdpMode,
    },
    /// A closed loop, for kernels that refuse live frames: the sink
    /// (--sink-iface, in --sink-netns) counts each test frame, rewrites it
    /// into the next one and sends it out of --iface (this namespace's)
    /// back into the router. Primed with --inflight frames from a packet
    /// socket, topped up every 10 ms from a thread on --cpu, where the
    /// whole loop then runs (the veths' NAPI follows the sender's CPU).
    /// Prints what `sink` prints.
    Loop {
        #[command(flatten)]
        frames: Frames,
        #[arg(long)]
        sink_iface: String,
        /// The sink's network namespace (a path such as /run/netns/NAME).
        #[arg(long)]
        sink_netns: PathBuf,
        #[command(flatten)]
        window: Window,
        #[arg(long, default_value_t = 512)]
        inflight: u32,
        #[arg(long, default_value_t = 0)]
        cpu: usize,
    },
    /// Exits 0 if this kernel sends live frames from BPF_PROG_RUN (one
    /// frame, out of --iface), 1 if not.
    ProbeLive {
        #[arg(long)]
        iface: String,
    },
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("accel-trafgen: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Send {
            frames,
            seconds,
            repeat,
            batch_size,
            threads,
            verbose,
        } => {
            let (spec, dests, ifindex) = prepare(&frames)?;
            send(
                &spec,
                &dests,
                SendOpts {
                    ifindex,
                    seconds,
                    pick: frames.pick,
                    repeat,
                    batch_size,
                    threads,
                    verbose,
                },
            )
        }
        Cmd::Sink {
            iface,
            window,
            dport,
            xdp_mode,
        } => sink(&iface, &window, dport, xdp_mode),
        Cmd::Loop {
            frames,
            sink_iface,
            sink_netns,
            window,
            inflight,
            cpu,
        } => {
            let (spec, dests, ifindex) = prepare(&frames)?;
            let o = LoopOpts {
                ifindex,
                sink_iface,
                sink_netns,
                inflight,
                cpu,
            };
            closed_loop(&spec, &dests, frames.pick, &o, &window)
        }
        Cmd::ProbeLive { iface } => probe_live(&iface),
    }
}

/// What `prepare` reads from the command line: the frame spec, the
/// destinations and the sending interface's index.
type Prepared = (FrameSpec, Vec<(IpAddr, u32)>, u32);

fn prepare(f: &Frames) -> Result<Prepared> {
    let fam = if f.src.is_ipv4() { 4 } else { 6 };
    if let Some(x) = f.family {
        if x != fam {
            bail!("--family {x} but --src {} is IPv{fam}", f.src);
        }
    }
    let dests = destinations(
        f.dst_file.clone(),
        f.prefixes_file.clone(),
        (f.count, f.seed, f.tag_gateways),
        fam,
    )?;
    let ifindex = accel::runtime::ifindex(&f.iface)?;
    let src_mac = match &f.src_mac {
        Some(m) => parse_mac(m)?,
        None => iface_mac(&f.iface)?,
    };
    let spec = FrameSpec {
        src_mac,
        dst_mac: parse_mac(&f.dst_mac)?,
        src: f.src,
        sport: f.sport,
        dport: f.dport,
        wire_size: f.size,
        ttl: 64,
    };
    Ok((spec, dests, ifindex))
}

/// The destinations, each with its gateway tag (0 from --dst-file).
fn destinations(
    dst_file: Option<PathBuf>,
    prefixes_file: Option<PathBuf>,
    (count, seed, gateways): (u32, u64, u32),
    fam: u8,
) -> Result<Vec<(IpAddr, u32)>> {
    let dests = match (dst_file, prefixes_file) {
        (Some(p), None) => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let mut v = Vec::new();
            for (n, l) in text.lines().enumerate() {
                let l = l.trim();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                let a: IpAddr = l
                    .parse()
                    .with_context(|| format!("{} line {}", p.display(), n + 1))?;
                if a.is_ipv4() == (fam == 4) {
                    v.push((a, 0));
                }
            }
            v
        }
        (None, Some(p)) => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            let prefixes = trafgen::parse_prefixes(&text, fam)
                .map_err(anyhow::Error::msg)
                .with_context(|| p.display().to_string())?;
            if prefixes.is_empty() {
                bail!("{}: no IPv{fam} prefixes", p.display());
            }
            eprintln!(
                "accel-trafgen: {} destinations drawn from {} IPv{fam} prefixes (seed {seed})",
                count,
                prefixes.len()
            );
            trafgen::draw(&prefixes, count as usize, seed)
                .into_iter()
                .map(|(a, i)| (a, (i % gateways as usize) as u32))
                .collect()
        }
        _ => bail!("give exactly one of --dst-file and --prefixes-file"),
    };
    if dests.is_empty() {
        bail!("no IPv{fam} destinations");
    }
    Ok(dests)
}

struct SendOpts {
    ifindex: u32,
    seconds: f64,
    pick: Pick,
    repeat: u32,
    batch_size: u32,
    threads: usize,
    verbose: bool,
}

fn sum_stats(skel: &TrafgenSkel<'_>) -> Result<types::trafgen_stats> {
    let key = 0u32.to_ne_bytes();
    let per_cpu = skel
        .maps
        .tg_stats
        .lookup_percpu(&key, MapFlags::ANY)
        .context("reading counters")?
        .unwrap_or_default();
    let mut t = types::trafgen_stats::default();
    for v in per_cpu {
        let f = |i: usize| u64::from_ne_bytes(v[i * 8..i * 8 + 8].try_into().unwrap());
        t.sent += f(0);
        t.sink_pkts += f(1);
        t.sink_bytes += f(2);
        t.sink_passed += f(3);
    }
    Ok(t)
}

/// One sender thread: BPF_PROG_RUN with live frames until `stop` or
/// `deadline`; returns the number of calls. libbpf-rs's test_run has no
/// batch_size, hence libbpf's own call.
fn live_frames(
    prog_fd: i32,
    data: &[u8],
    ifindex: u32,
    repeat: u32,
    batch: u32,
    stop: &AtomicBool,
    deadline: Instant,
) -> Result<u64> {
    let mut calls = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        live_frames_once(prog_fd, data, ifindex, repeat, batch)?;
        calls += 1;
    }
    Ok(calls)
}

/// One BPF_PROG_RUN call with live frames: `repeat` frames out of
/// `ifindex`.
fn live_frames_once(
    prog_fd: i32,
    data: &[u8],
    ifindex: u32,
    repeat: u32,
    batch: u32,
) -> Result<()> {
    let ctx = libbpf_sys::xdp_md {
        data: 0,
        data_end: data.len() as u32,
        data_meta: 0,
        ingress_ifindex: ifindex,
        rx_queue_index: 0,
        egress_ifindex: 0,
    };
    let mut opts = libbpf_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
        data_in: data.as_ptr().cast(),
        data_size_in: data.len() as u32,
        ctx_in: (&ctx as *const libbpf_sys::xdp_md).cast(),
        ctx_size_in: std::mem::size_of::<libbpf_sys::xdp_md>() as u32,
        repeat: repeat as i32,
        flags: libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size: batch,
        ..Default::default()
    };
    // SAFETY: valid program fd (the skeleton outlives the sender threads:
    // they are joined before it is dropped); buffers live across the call.
    let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog_fd, &mut opts) };
    if rc != 0 {
        let e = std::io::Error::from_raw_os_error(-rc);
        bail!("BPF_PROG_RUN (live frames) failed: {e}");
    }
    Ok(())
}

fn send(spec: &FrameSpec, dests: &[(IpAddr, u32)], o: SendOpts) -> Result<()> {
    let (skel, t) = trafgen::load(spec, dests, o.pick.into())?;

    let prog_fd = skel.progs.trafgen_tx.as_fd().as_raw_fd();
    // data_in: the frame for the first destination (the program rewrites
    // every frame anyway).
    let data = trafgen::frame_for(&t, dests[0].0);
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    eprintln!(
        "accel-trafgen: sending {}-byte frames ({} on the wire) from ifindex {} for {:.1} s, {} destinations, {} thread(s)",
        data.len(),
        data.len() + trafgen::FCS_LEN,
        o.ifindex,
        o.seconds,
        dests.len(),
        o.threads
    );
    let started = Instant::now();
    let workers: Vec<_> = (0..o.threads)
        .map(|_| {
            let stop = stop.clone();
            let data = data.clone();
            let (ifindex, repeat, batch) = (o.ifindex, o.repeat, o.batch_size);
            std::thread::spawn(move || {
                live_frames(prog_fd, &data, ifindex, repeat, batch, &stop, deadline)
            })
        })
        .collect();

    let mut last = sum_stats(&skel)?.sent;
    let mut last_t = Instant::now();
    while Instant::now() < deadline && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if o.verbose && last_t.elapsed() >= Duration::from_secs(1) {
            let s = sum_stats(&skel)?.sent;
            let dt = last_t.elapsed().as_secs_f64();
            eprintln!(
                "accel-trafgen: {:6.1} s  {:.3} Mpps offered",
                started.elapsed().as_secs_f64(),
                (s - last) as f64 / dt / 1e6
            );
            last = s;
            last_t = Instant::now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for w in workers {
        calls += w.join().expect("sender thread panicked")?;
    }
    let total = sum_stats(&skel)?.sent;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sent {total} frames in {secs:.2} s ({:.3} Mpps offered, {calls} BPF_PROG_RUN calls)",
        total as f64 / secs / 1e6
    );
    Ok(())
}

fn sink(iface: &str, window: &Window, dport: u16, mode: XdpMode) -> Result<()> {
    let ifindex = accel::runtime::ifindex(iface)?;
    let mut open = trafgen::open()?;
    open.maps
        .bss_data
        .as_deref_mut()
        .context("no .bss")?
        .sink_cfg
        .udp_dport = dport;
    // The destination array is the generator's: keep it tiny here.
    open.maps.dests.set_max_entries(1)?;
    let skel = open.load().context("loading the trafgen BPF object")?;
    let _link = attach_xdp(skel.progs.trafgen_sink.as_fd(), ifindex, iface, mode)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("accel-trafgen sink: on {iface} (ifindex {ifindex}), counting UDP to port {dport}");
    measure(&skel, iface, window)
}

/// Waits for the test traffic, lets it warm up, then prints the rate of
/// each second of the window and the RESULT line forwarding.sh reads.
fn measure(skel: &TrafgenSkel<'_>, iface: &str, w: &Window) -> Result<()> {
    let (seconds, warmup, wait) = (w.seconds, w.warmup, w.wait);
    let t0 = Instant::now();
    while sum_stats(skel)?.sink_pkts == 0 {
        if t0.elapsed() > Duration::from_secs(wait as u64) {
            bail!("no test traffic arrived on {iface} within {wait} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "accel-trafgen sink: traffic after {:.1} s; warm-up {warmup} s, then {seconds} s measured",
        t0.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(warmup as u64));

    let mut rates = Vec::new();
    let mut prev = sum_stats(skel)?;
    let mut prev_t = Instant::now();
    let first = (prev.sink_pkts, prev_t);
    for i in 0..seconds {
        // Sleep to the next whole second of the window, not a fixed 1 s,
        // so reading the counters does not stretch it.
        let target = first.1 + Duration::from_secs(i as u64 + 1);
        std::thread::sleep(target.saturating_duration_since(Instant::now()));
        let now = sum_stats(skel)?;
        let t = Instant::now();
        let pps = (now.sink_pkts - prev.sink_pkts) as f64 / (t - prev_t).as_secs_f64();
        println!(
            "{:3} s  {:.3} Mpps  ({} passed to the kernel)",
            i + 1,
            pps / 1e6,
            now.sink_passed - prev.sink_passed
        );
        rates.push(pps);
        prev = now;
        prev_t = t;
    }
    let mean = (prev.sink_pkts - first.0) as f64 / (prev_t - first.1).as_secs_f64();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = if rates.is_empty() {
        0.0
    } else if rates.len() % 2 == 1 {
        rates[rates.len() / 2]
    } else {
        (rates[rates.len() / 2 - 1] + rates[rates.len() / 2]) / 2.0
    };
    println!(
        "RESULT median_mpps={:.4} mean_mpps={:.4} min_mpps={:.4} max_mpps={:.4} seconds={seconds}",
        median / 1e6,
        mean / 1e6,
        rates.first().copied().unwrap_or(0.0) / 1e6,
        rates.last().copied().unwrap_or(0.0) / 1e6
    );
    Ok(())
}

struct LoopOpts {
    ifindex: u32,
    sink_iface: String,
    sink_netns: PathBuf,
    inflight: u32,
    cpu: usize,
}

/// `accel-trafgen loop`: see [`Cmd::Loop`].
fn closed_loop(
    spec: &FrameSpec,
    dests: &[(IpAddr, u32)],
    pick: Pick,
    o: &LoopOpts,
    window: &Window,
) -> Result<()> {
    let (skel, t) = trafgen::load(spec, dests, pick.into())?;
    // The way back, looked up in this (the generator's) namespace.
    skel.maps
        .loop_tx
        .update(&0u32.to_ne_bytes(), &o.ifindex.to_ne_bytes(), MapFlags::ANY)
        .context("putting the sending interface in the loop's devmap")?;
    let socket = accel_tools::net::PacketSocket::bind(o.ifindex)?;
    let netns = std::fs::File::open(&o.sink_netns)
        .with_context(|| format!("opening {}", o.sink_netns.display()))?;
    accel_tools::net::enter_netns(&netns)
        .with_context(|| format!("entering {}", o.sink_netns.display()))?;
    let sink_ifindex = accel::runtime::ifindex(&o.sink_iface)?;
    let _link = attach_xdp(
        skel.progs.trafgen_loop.as_fd(),
        sink_ifindex,
        &o.sink_iface,
        XdpMode::Native,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "accel-trafgen loop: sink on {} (ifindex {sink_ifindex}), back through ifindex {}; \
         {} frames primed, topped up from CPU {}",
        o.sink_iface, o.ifindex, o.inflight, o.cpu
    );
    let frames: Vec<Vec<u8>> = dests
        .iter()
        .take(o.inflight.max(1) as usize)
        .map(|(d, _)| trafgen::frame_for(&t, *d))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (stop, cpu) = (stop.clone(), o.cpu);
        std::thread::spawn(move || feed(&socket, &frames, cpu, &stop))
    };
    let measured = measure(&skel, &o.sink_iface, window);
    stop.store(true, Ordering::Relaxed);
    feeder.join().expect("feeder thread panicked")?;
    measured
}

/// Sends all of `frames` once, then 32 of them every 10 ms until `stop`,
/// from `cpu`. What the loop loses (a ring that overflows, the kernel's
/// drops) is made up; what is too much overflows a ring and is dropped.
fn feed(
    socket: &accel_tools::net::PacketSocket,
    frames: &[Vec<u8>],
    cpu: usize,
    stop: &AtomicBool,
) -> Result<()> {
    accel_tools::net::pin_to_cpu(cpu)?;
    // A ring may fill while priming (ENOBUFS): the loop is full then.
    let primed = frames.iter().filter(|f| socket.send(f).is_ok()).count();
    if primed == 0 {
        bail!("could not send a single frame to prime the loop");
    }
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
        for _ in 0..32.min(frames.len()) {
            // A full queue is what the loop does when saturated: not an error.
            let _ = socket.send(&frames[next % frames.len()]);
            next += 1;
        }
    }
    Ok(())
}

/// `accel-trafgen probe-live`.
fn probe_live(iface: &str) -> Result<()> {
    let ifindex = accel::runtime::ifindex(iface)?;
    let spec = FrameSpec {
        src_mac: iface_mac(iface)?,
        dst_mac: [0xff; 6],
        src: IpAddr::from([192, 0, 2, 1]),
        sport: 40000,
        dport: 9,
        wire_size: 64,
        ttl: 1,
    };
    let dests = [(IpAddr::from([192, 0, 2, 2]), 0)];
    let (skel, t) = trafgen::load(&spec, &dests, Pick::Seq.into())?;
    let data = trafgen::frame_for(&t, dests[0].0);
    let fd = skel.progs.trafgen_tx.as_fd().as_raw_fd();
    match live_frames_once(fd, &data, ifindex, 1, 1) {
        Ok(_) => {
            println!("live frames: yes");
            Ok(())
        }
        Err(e) => {
            println!("live frames: no ({e})");
            std::process::exit(1)
        }
    }
}
