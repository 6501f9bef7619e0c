//! accel-bench: micro-benchmarks of accel's datapath pieces.
//!
//! `accel-bench lookup` measures, through BPF_PROG_TEST_RUN, what one route
//! lookup costs in XDP: accel's IPv4 and IPv6 tries (the datapath's
//! own route4_lookup() and route6_lookup()), the kernel's bpf_fib_lookup, and a
//! BPF_MAP_TYPE_LPM_TRIE, all over the same prefixes and the same random
//! destinations drawn from inside them. bpf_fib_lookup searches the caller's
//! network namespace: run it where the kernel FIB holds the same prefixes
//! (scripts/bench/lookup.sh sets that up).

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, ProgramInput};

use accel::datapath::leaves::route_leaf;
use accel::datapath::mmap::MmapLeaves;
use accel::datapath::trie::{self, Trie};
use accel::model::Family;
use accel_tools::table_growth::{self, mask4, mask6, special4};
use accel_tools::trafgen::{parse_prefixes, random_in, Prefix};

accel::skeleton!("bench.skel.rs");
use skel::*;

const DESTS: usize = types::bench_limits::BENCH_DESTS.0 as usize;
/// Next hops (leaf ids, LPM values) are spread over this many values, as
/// the kernel's routes are spread over as many gateways.
const NEXT_HOPS: u32 = 4;

#[derive(Parser)]
#[command(about = "accel micro-benchmarks (run as root)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// ns per lookup: accel's IPv4 / IPv6 trie vs bpf_fib_lookup vs LPM trie
    /// (BPF_PROG_TEST_RUN).
    Lookup(LookupArgs),
    /// ns per route event in the control plane alone (mirror and route
    /// tables, no kernel): a whole table announced, then withdrawn, each
    /// in random order (or in its own). Needs no root.
    Events {
        /// Prefixes, one CIDR per line, both families.
        #[arg(long)]
        prefixes: PathBuf,
        /// Rounds (each on a fresh mirror); every round is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Seed of the orders.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Routes as BIRD installs them (gateway only) instead of as FRR
        /// does (through nexthop objects).
        #[arg(long)]
        no_objects: bool,
        /// Events looked up together before they are applied, as `accel
        /// run` does in a burst (1: each on its own).
        #[arg(long, default_value_t = accel::fast_hash::WARM_AHEAD)]
        warm: usize,
        /// Both phases in the table's own (address) order instead of
        /// random ones: consecutive events meet the same trie nodes.
        #[arg(long)]
        in_order: bool,
        /// Before every N events (a multiple of --warm), write --evict-mib
        /// MiB of other memory (off the clock), as the routing daemon's
        /// processes do between the event loop's bursts live: the cost of
        /// an event with cold caches (0: warm, as back-to-back events leave
        /// them).
        #[arg(long, default_value_t = 0)]
        evict_every: usize,
        /// MiB written by each eviction (see --evict-every): 8 empties this
        /// VM's L2 and its share of the host's L3.
        #[arg(long, default_value_t = 8, requires = "evict_every")]
        evict_mib: usize,
    },
    /// ns per frame of accel_xdp's path, stage by stage, and of the
    /// ceiling forwarder (BPF_PROG_TEST_RUN, warm caches; issue 12). Runs
    /// in a network namespace of its own.
    Stages {
        /// Measured runs per stage; the median and the fastest are shown.
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// Repetitions per run (runs of forwarded frames repeat at most
        /// 250 times: the TTL must last).
        #[arg(long, default_value_t = 10_000)]
        repeat: u32,
    },
    /// ns per dependent read of a BPF array map at working sets of several
    /// sizes: the caches and the TLB under a route lookup on this machine
    /// (BPF_PROG_TEST_RUN; issue 12).
    Memlat {
        /// Working sets, in KiB of 64-byte lines.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "256,1024,2048,4096,6144,8192,12288,16384,24576"
        )]
        kib: Vec<usize>,
        /// Measured runs per case; the median and the fastest are shown.
        #[arg(long, default_value_t = 7)]
        runs: usize,
        /// Chains of reads per run.
        #[arg(long, default_value_t = 200_000)]
        repeat: u32,
    },
    /// Prints a synthetic table (CIDR per line, IPv4 then IPv6) with the
    /// prefix-length mix of the real full table in ../shared/data, for
    /// clones where that file is absent.
    GenTable {
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Prints a larger table made from a real one (CIDR per line, IPv4
    /// then IPv6): the table, then translated copies of it, which keep its
    /// prefix-length mix and its clustering (headroom runs).
    GrowTable {
        /// The real table, one CIDR per line, both families.
        #[arg(long)]
        from: PathBuf,
        /// IPv4 prefixes wanted.
        #[arg(long)]
        v4: usize,
        /// IPv6 prefixes wanted.
        #[arg(long)]
        v6: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// (prefix length, count) of bgp-full-table.txt.gz: 901,899 IPv4 prefixes.
const MIX4: &[(u8, usize)] = &[
    (8, 16),
    (9, 13),
    (10, 38),
    (11, 103),
    (12, 299),
    (13, 581),
    (14, 1203),
    (15, 2100),
    (16, 13490),
    (17, 8235),
    (18, 13798),
    (19, 24870),
    (20, 42611),
    (21, 50750),
    (22, 108623),
    (23, 96510),
    (24, 537698),
    (25, 20),
    (26, 3),
    (27, 11),
    (28, 18),
    (29, 17),
    (30, 3),
    (31, 3),
    (32, 886),
];

/// The same for its 160,147 IPv6 prefixes.
const MIX6: &[(u8, usize)] = &[
    (16, 1),
    (19, 1),
    (20, 16),
    (21, 3),
    (22, 7),
    (23, 8),
    (24, 30),
    (25, 8),
    (26, 15),
    (27, 20),
    (28, 193),
    (29, 4371),
    (30, 650),
    (31, 284),
    (32, 22548),
    (33, 2926),
    (34, 2603),
    (35, 1043),
    (36, 5996),
    (37, 880),
    (38, 1617),
    (39, 1377),
    (40, 13418),
    (41, 903),
    (42, 2301),
    (43, 1001),
    (44, 14365),
    (45, 1553),
    (46, 3039),
    (47, 3153),
    (48, 75488),
    (49, 11),
    (50, 3),
    (52, 1),
    (55, 1),
    (56, 24),
    (58, 20),
    (60, 2),
    (64, 184),
    (112, 2),
    (122, 1),
    (124, 4),
    (125, 9),
    (126, 19),
    (127, 42),
    (128, 6),
];

/// Distinct random prefixes with the real table's length mix, for fresh
/// clones without ../shared/data (every benchmark's fallback): IPv4 in
/// public unicast space (see [`NOT_IN_TABLE4`]), IPv6 in 2000::/3.
/// Seeded: the same table every time.
fn gen_table(seed: u64) {
    use std::collections::HashSet;
    use std::io::Write;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut seen4 = HashSet::new();
    for &(len, count) in MIX4 {
        let mut n = 0;
        while n < count {
            let a = mask4(rng.u32(..), len);
            if special4(a, len) {
                continue;
            }
            if seen4.insert((a, len)) {
                writeln!(out, "{}/{len}", Ipv4Addr::from(a)).unwrap();
                n += 1;
            }
        }
    }
    let mut seen6 = HashSet::new();
    for &(len, count) in MIX6 {
        let mut n = 0;
        while n < count {
            let r = rng.u128(..);
            let a = mask6((0x2u128 << 124) | (r >> 3), len);
            if seen6.insert((a, len)) {
                writeln!(out, "{}/{len}", Ipv6Addr::from(a)).unwrap();
                n += 1;
            }
        }
    }
}

/// `accel-bench grow-table`: see [`table_growth`].
fn grow_table(from: &PathBuf, v4: usize, v6: usize, seed: u64) -> Result<()> {
    use std::io::Write;
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut base4, mut base6) = (Vec::new(), Vec::new());
    for p in read_prefixes(from, 4)?
        .into_iter()
        .chain(read_prefixes(from, 6)?)
    {
        match p.addr {
            IpAddr::V4(a) => base4.push((mask4(a.into(), p.len), p.len)),
            IpAddr::V6(a) => base6.push((mask6(a.into(), p.len), p.len)),
        }
    }
    let t4 = table_growth::grow4(&base4, v4, &mut rng);
    let t6 = table_growth::grow6(&base6, v6, &mut rng);
    if t4.len() < v4 || t6.len() < v6 {
        bail!(
            "only {} IPv4 and {} IPv6 prefixes could be made from {}",
            t4.len(),
            t6.len(),
            from.display()
        );
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (a, len) in t4 {
        writeln!(out, "{}/{len}", Ipv4Addr::from(a))?;
    }
    for (a, len) in t6 {
        writeln!(out, "{}/{len}", Ipv6Addr::from(a))?;
    }
    out.flush()?;
    Ok(())
}

#[derive(clap::Args)]
struct LookupArgs {
    /// Address family to measure: 4 (base, trie4, fib, lpm) or 6 (base,
    /// trie6, fib, lpm).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=6))]
    family: u8,
    /// Prefixes, one CIDR per line; lines of the other family are skipped.
    /// The kernel FIB of this namespace must hold the same ones.
    #[arg(long)]
    prefixes: PathBuf,
    /// Interface in this namespace: bpf_fib_lookup's ifindex and the test
    /// run's ingress_ifindex. Forwarding must be enabled on it.
    #[arg(long)]
    ifname: String,
    /// Lookups per test run (BPF_PROG_TEST_RUN repeat).
    #[arg(long, default_value_t = 1_000_000)]
    repeat: u32,
    /// Measured test runs per program, interleaved across programs; the
    /// median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seed of the random destinations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn events(path: &std::path::Path, runs: usize, opts: accel_tools::events::Options) -> Result<()> {
    if runs == 0 || opts.warm == 0 {
        bail!("--runs and --warm must be at least 1");
    }
    if let Some(c) = opts.cold {
        if c.every % opts.warm != 0 {
            bail!("--evict-every must be a multiple of --warm ({})", opts.warm);
        }
        if !(1..=4096).contains(&c.mib) {
            bail!("--evict-mib must be 1 to 4096");
        }
    }
    let in_order = opts.seed.is_none();
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow!("reading {}: {e}", path.display()))?;
    let prefixes =
        accel_tools::events::parse_table(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let order = if in_order { "address" } else { "random" };
    let caches = match opts.cold {
        Some(c) => format!(
            "caches made cold ({} MiB written) every {} events",
            c.mib, c.every
        ),
        None => "warm caches".to_string(),
    };
    println!(
        "{} prefixes, {order} order, {caches}; ns per event (add / del):",
        prefixes.len()
    );
    for r in 0..runs {
        let opts = accel_tools::events::Options {
            seed: opts.seed.map(|s| s.wrapping_add(r as u64)),
            ..opts
        };
        let (add, del) = accel_tools::events::run(&prefixes, opts);
        println!(
            "run {}: {:.0} / {:.0}",
            r + 1,
            add.ns_per_event(),
            del.ns_per_event()
        );
        for (phase, p) in [("add", &add), ("del", &del)] {
            if p.short_flushes > 0 {
                println!(
                    "   warning: in {phase}, {} flushes left routes to bpf_fib_lookup (no lines or nodes): not what accel run does",
                    p.short_flushes
                );
            }
        }
    }
    Ok(())
}

fn stages(runs: usize, repeat: u32) -> Result<()> {
    if runs == 0 || repeat == 0 {
        bail!("--runs and --repeat must be at least 1");
    }
    let stages = accel_tools::stages::run(runs, repeat)?;
    println!("| stage | median ns | min ns |");
    println!("|---|---:|---:|");
    for s in stages {
        println!("| {} | {:.0} | {:.0} |", s.name, s.median_ns, s.min_ns);
    }
    Ok(())
}

fn memlat(kib: &[usize], runs: usize, repeat: u32) -> Result<()> {
    use accel_tools::memlat::{Layout, LAYOUTS};
    if runs == 0 || repeat == 0 {
        bail!("--runs and --repeat must be at least 1");
    }
    let most = accel_tools::memlat::MAX_LINES * 64 / 1024;
    if let Some(k) = kib.iter().find(|&&k| k == 0 || k > most) {
        bail!("--kib {k}: a working set of 1 to {most} KiB");
    }
    let lines: Vec<usize> = kib.iter().map(|k| k * 1024 / 64).collect();
    let samples = accel_tools::memlat::run(&lines, runs, repeat)?;
    println!("ns per dependent read, median (fastest) of {runs} runs");
    println!("| working set | one array, dense | one array, spread over 32 MiB | small arrays (huge pages) |");
    println!("|---:|---:|---:|---:|");
    for (k, &n) in kib.iter().zip(&lines) {
        let cell = |l: Layout| {
            samples
                .iter()
                .find(|s| s.lines == n && s.layout == l)
                .map_or("-".into(), |s| format!("{:.1} ({:.1})", s.ns, s.min))
        };
        let cells: Vec<String> = LAYOUTS.into_iter().map(cell).collect();
        println!("| {k} KiB | {} |", cells.join(" | "));
    }
    Ok(())
}

fn main() -> Result<()> {
    env_logger::init();
    match Cli::parse().cmd {
        Cmd::Lookup(a) => lookup(a),
        Cmd::Events {
            prefixes,
            runs,
            seed,
            no_objects,
            warm,
            in_order,
            evict_every,
            evict_mib,
        } => {
            let opts = accel_tools::events::Options {
                seed: (!in_order).then_some(seed),
                objects: !no_objects,
                warm,
                cold: (evict_every > 0).then_some(accel_tools::events::Cold {
                    every: evict_every,
                    mib: evict_mib,
                }),
            };
            events(&prefixes, runs, opts)
        }
        Cmd::Stages { runs, repeat } => stages(runs, repeat),
        Cmd::Memlat { kib, runs, repeat } => memlat(&kib, runs, repeat),
        Cmd::GenTable { seed } => {
            gen_table(seed);
            Ok(())
        }
        Cmd::GrowTable { from, v4, v6, seed } => grow_table(&from, v4, v6, seed),
    }
}

fn read_prefixes(path: &PathBuf, family: u8) -> Result<Vec<Prefix>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let out = parse_prefixes(&text, family).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if out.is_empty() {
        bail!("{}: no IPv{family} prefixes", path.display());
    }
    Ok(out)
}

fn handle<M>(m: &M) -> Result<MapHandle>
where
    for<'a> MapHandle: TryFrom<&'a M, Error = libbpf_rs::Error>,
{
    Ok(MapHandle::try_from(m)?)
}

/// Writes every value of an array map in one batch syscall per chunk.
fn fill_array(map: &MapHandle, values: &[u8], value_size: usize) -> Result<()> {
    let count = values.len() / value_size;
    const CHUNK: usize = 65536;
    for start in (0..count).step_by(CHUNK) {
        let n = CHUNK.min(count - start);
        let keys: Vec<u8> = (start as u32..(start + n) as u32)
            .flat_map(u32::to_ne_bytes)
            .collect();
        map.update_batch(
            &keys,
            &values[start * value_size..(start + n) * value_size],
            n as u32,
            MapFlags::ANY,
            MapFlags::ANY,
        )
        .context("filling the destinations")?;
    }
    Ok(())
}

struct Measure {
    name: &'static str,
    /// Median over the runs.
    ns: f64,
    min: f64,
    hit_rate: f64,
    fib_rc: Vec<(usize, u64)>,
}

fn lookup(a: LookupArgs) -> Result<()> {
    let prefixes = read_prefixes(&a.prefixes, a.family)?;
    let ifx = accel::runtime::ifindex(&a.ifname)?;

    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let open = BenchSkelBuilder::default()
        .open(object)
        .context("opening the bench object")?;
    let mut skel = open
        .load()
        .context("loading the bench object (root, BPF support?)")?;

    let mut rng = fastrand::Rng::with_seed(a.seed);
    // The tables stay alive (and mapped) while the programs run.
    let (_tables, first): (Box<dyn std::any::Any>, IpAddr) = if a.family == 4 {
        let (dir, first) = fill_v4(&skel, &prefixes, &mut rng)?;
        (Box::new(dir), first)
    } else {
        let (trie, first) = fill_v6(&skel, &prefixes, &mut rng)?;
        (Box::new(trie), first)
    };
    // One destination that a reader can check by hand (`ip route get`).
    eprintln!("first destination: {first}");

    let bss = skel
        .maps
        .bss_data
        .as_deref_mut()
        .map(|b| b as *mut types::bss)
        .context("the bench object has no mmapped .bss")?;
    // SAFETY: the .bss mapping lives as long as the (leaked) skeleton; the
    // programs only run inside test_run, never concurrently with us.
    let bss = unsafe { &mut *bss };
    // SAFETY: into the live .bss mapping; volatile, as the program reads it.
    unsafe { std::ptr::write_volatile(&mut bss.fib_ifindex, ifx) };

    let p = &skel.progs;
    let progs: Vec<(&'static str, &libbpf_rs::ProgramMut<'_>)> = if a.family == 4 {
        vec![
            ("base", &p.bench_base4),
            ("trie4", &p.bench_trie4),
            ("fib", &p.bench_fib4),
            ("lpm", &p.bench_lpm4),
        ]
    } else {
        vec![
            ("base", &p.bench_base6),
            ("trie6", &p.bench_trie6),
            ("fib", &p.bench_fib6),
            ("lpm", &p.bench_lpm6),
        ]
    };
    let results = measure(&a, ifx, &progs, bss)?;
    report(&a, prefixes.len(), &results);
    Ok(())
}

/// Maps the bench program's trie of `family` (the default size).
fn bench_trie(root: &MapHandle, nodes: &MapHandle, family: Family) -> Result<Trie<MmapLeaves>> {
    let n = match family {
        Family::V4 => trie::LINES4,
        Family::V6 => trie::LINES6,
    };
    let root = MmapLeaves::map(root, trie::ROOT_LEAVES).context("mmap the trie's root")?;
    let leaves = MmapLeaves::map(nodes, n * trie::LINE_WORDS).context("mmap the trie's nodes")?;
    Ok(Trie::new(family, root, leaves, n))
}

/// Fills accel's IPv4 trie and the LPM trie with `prefixes` and `dests4`
/// with random destinations inside them; returns the table and the first
/// destination.
fn fill_v4(
    skel: &BenchSkel<'_>,
    prefixes: &[Prefix],
    rng: &mut fastrand::Rng,
) -> Result<(Trie<MmapLeaves>, IpAddr)> {
    let t = Instant::now();
    let (root, nodes) = (
        handle(&skel.maps.fib4_root)?,
        handle(&skel.maps.fib4_nodes)?,
    );
    let mut dir = bench_trie(&root, &nodes, Family::V4)?;
    let lpm = handle(&skel.maps.lpm4)?;
    for (i, Prefix { addr, len }) in prefixes.iter().enumerate() {
        let IpAddr::V4(v4) = addr else { unreachable!() };
        let nh = 1 + i as u32 % NEXT_HOPS;
        let host = mask4(u32::from(*v4), *len);
        dir.insert(trie::v4(host), *len, route_leaf(0, nh));
        let key = types::bench_lpm4_key {
            prefixlen: *len as u32,
            addr: host.to_be(),
        };
        lpm.update(bytes_of(&key), &nh.to_ne_bytes(), MapFlags::ANY)
            .with_context(|| format!("LPM trie insert {v4}/{len}"))?;
    }
    dir.flush();
    let dests: Vec<u32> = (0..DESTS)
        .map(|_| match random_in(rng.choice(prefixes).unwrap(), rng) {
            IpAddr::V4(d) => u32::from(d),
            IpAddr::V6(_) => unreachable!("IPv4 prefixes"),
        })
        .collect();
    let missing = dests
        .iter()
        .filter(|d| dir.lookup(trie::v4(**d)) == 0)
        .count();
    if missing > 0 {
        bail!("{missing} destinations have no route in the IPv4 trie");
    }
    // Degraded ranges would measure a bpf_fib_lookup marker, not the table.
    if dir.is_degraded() {
        bail!("the IPv4 trie ran out of room");
    }
    let bytes: Vec<u8> = dests.iter().flat_map(|d| d.to_be_bytes()).collect();
    fill_array(&handle(&skel.maps.dests4)?, &bytes, 4)?;
    eprintln!(
        "IPv4: {} prefixes, {} trie nodes in {} lines, tables and {} destinations filled in {:.1?}",
        prefixes.len(),
        dir.nodes_in_use(),
        dir.lines_in_use(),
        DESTS,
        t.elapsed()
    );
    Ok((dir, IpAddr::V4(Ipv4Addr::from(dests[0]))))
}

/// [`fill_v4`] for IPv6: accel's trie and the LPM trie, `dests6`.
fn fill_v6(
    skel: &BenchSkel<'_>,
    prefixes: &[Prefix],
    rng: &mut fastrand::Rng,
) -> Result<(Trie<MmapLeaves>, IpAddr)> {
    let t = Instant::now();
    let (root, nodes) = (
        handle(&skel.maps.fib6_root)?,
        handle(&skel.maps.fib6_nodes)?,
    );
    let mut trie = bench_trie(&root, &nodes, Family::V6)?;
    let lpm = handle(&skel.maps.lpm6)?;
    for (i, Prefix { addr, len }) in prefixes.iter().enumerate() {
        let IpAddr::V6(v6) = addr else { unreachable!() };
        let nh = 1 + i as u32 % NEXT_HOPS;
        trie.insert(u128::from(*v6), *len, route_leaf(0, nh));
        let key = types::bench_lpm6_key {
            prefixlen: *len as u32,
            addr: mask6(u128::from(*v6), *len).to_be_bytes(),
        };
        lpm.update(bytes_of(&key), &nh.to_ne_bytes(), MapFlags::ANY)
            .with_context(|| format!("LPM trie insert {v6}/{len}"))?;
    }
    trie.flush();
    let dests: Vec<u128> = (0..DESTS)
        .map(|_| match random_in(rng.choice(prefixes).unwrap(), rng) {
            IpAddr::V6(d) => u128::from(d),
            IpAddr::V4(_) => unreachable!("IPv6 prefixes"),
        })
        .collect();
    let missing = dests.iter().filter(|d| trie.lookup(**d) == 0).count();
    if missing > 0 {
        bail!("{missing} destinations have no route in the IPv6 trie");
    }
    if trie.is_degraded() {
        bail!("the IPv6 trie ran out of room");
    }
    let bytes: Vec<u8> = dests.iter().flat_map(|d| d.to_be_bytes()).collect();
    fill_array(&handle(&skel.maps.dests6)?, &bytes, 16)?;
    eprintln!(
        "IPv6: {} prefixes, {} trie nodes in {} lines, tables and {} destinations filled in {:.1?}",
        prefixes.len(),
        trie.nodes_in_use(),
        trie.lines_in_use(),
        DESTS,
        t.elapsed()
    );
    Ok((trie, IpAddr::V6(Ipv6Addr::from(dests[0]))))
}

/// Runs every program `a.runs` times, in rounds of one run each, so that
/// load from elsewhere on the machine drifts over all programs alike
/// rather than over one; prints each program's figures.
fn measure(
    a: &LookupArgs,
    ifx: u32,
    progs: &[(&'static str, &libbpf_rs::ProgramMut<'_>)],
    bss: &mut types::bss,
) -> Result<Vec<Measure>> {
    let frame = [0u8; 64];
    let run = |prog: &libbpf_rs::ProgramMut<'_>, repeat: u32| -> Result<Duration> {
        let md: [u32; 6] = [0, frame.len() as u32, 0, ifx, 0, 0];
        let mut ctx: Vec<u8> = md.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let input = ProgramInput {
            context_in: Some(&mut ctx),
            data_in: Some(&frame),
            repeat,
            ..Default::default()
        };
        let out = prog.test_run(input).context("BPF_PROG_TEST_RUN")?;
        if out.return_value != 1 {
            bail!("program returned {} instead of XDP_DROP", out.return_value);
        }
        Ok(out.duration)
    };
    for (_, prog) in progs {
        // Warm up: page in the tables, settle the caches.
        run(prog, a.repeat.min(200_000))?;
    }
    let rounds = a.runs.max(1);
    let mut ns = vec![Vec::new(); progs.len()];
    let mut hits = vec![0u64; progs.len()];
    let mut rcs = vec![[0u64; 16]; progs.len()];
    for _ in 0..rounds {
        for (i, (_, prog)) in progs.iter().enumerate() {
            // The programs write these behind the compiler's back: plain
            // accesses through `&mut` may be folded (they were: every hit
            // rate read 0), so they are volatile.
            // SAFETY: both point into the live .bss mapping.
            unsafe {
                std::ptr::write_volatile(&mut bss.hits, 0);
                std::ptr::write_volatile(&mut bss.fib_rc, [0; 16]);
            }
            ns[i].push(run(prog, a.repeat)?.as_nanos() as f64);
            // SAFETY: as above.
            let (h, rc) = unsafe {
                (
                    std::ptr::read_volatile(&bss.hits),
                    std::ptr::read_volatile(&bss.fib_rc),
                )
            };
            hits[i] += h;
            for (t, n) in rcs[i].iter_mut().zip(rc) {
                *t += n;
            }
        }
    }
    let total = a.repeat as f64 * rounds as f64;
    let mut results = Vec::new();
    for (i, (name, _)) in progs.iter().enumerate() {
        let mut sorted = ns[i].clone();
        sorted.sort_by(f64::total_cmp);
        let m = Measure {
            name,
            ns: sorted[sorted.len() / 2],
            min: sorted[0],
            hit_rate: hits[i] as f64 / total,
            fib_rc: rcs[i]
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(rc, n)| (rc, *n))
                .collect(),
        };
        let found = if *name == "base" {
            String::new()
        } else {
            format!("  found a route: {:5.1}%", 100.0 * m.hit_rate)
        };
        let codes = if *name == "fib" {
            format!("  return codes: {:?}", m.fib_rc)
        } else {
            String::new()
        };
        println!(
            "  {:<6} {:>7.0} ns/packet (min {:.0}; runs in order: {:?}){found}{codes}",
            m.name, m.ns, m.min, ns[i]
        );
        results.push(m);
    }
    Ok(results)
}

/// The ratios, the RESULT line scripts/bench/lookup.sh reads, and a warning
/// for lookups that missed.
fn report(a: &LookupArgs, prefixes: usize, results: &[Measure]) {
    let get = |n: &str| results.iter().find(|m| m.name == n).map(|m| m.ns);
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
        _ => "-".to_string(),
    };
    if a.family == 4 {
        println!(
            "  trie4/fib = {}  trie4/lpm = {}  (base not subtracted; net of base: trie4/fib = {})",
            ratio(get("trie4"), get("fib")),
            ratio(get("trie4"), get("lpm")),
            ratio(
                get("trie4").zip(get("base")).map(|(x, b)| x - b),
                get("fib").zip(get("base")).map(|(x, b)| x - b)
            ),
        );
    } else {
        println!(
            "  trie6/fib = {}  trie6/lpm = {}  fib/lpm = {}  (base not subtracted)",
            ratio(get("trie6"), get("fib")),
            ratio(get("trie6"), get("lpm")),
            ratio(get("fib"), get("lpm"))
        );
    }
    let min = |n: &str| results.iter().find(|m| m.name == n).map(|m| m.min);
    println!(
        "RESULT family={} prefixes={} base={} trie4={} trie6={} fib={} lpm={} \
         min_base={} min_trie4={} min_trie6={} min_fib={} min_lpm={}",
        a.family,
        prefixes,
        fmt(get("base")),
        fmt(get("trie4")),
        fmt(get("trie6")),
        fmt(get("fib")),
        fmt(get("lpm")),
        fmt(min("base")),
        fmt(min("trie4")),
        fmt(min("trie6")),
        fmt(min("fib")),
        fmt(min("lpm")),
    );
    for m in results {
        if m.name != "base" && m.hit_rate < 0.999 {
            eprintln!(
                "WARNING: {} found a route for only {:.1}% of destinations: \
                 is the namespace's FIB loaded with the same prefixes, forwarding enabled?",
                m.name,
                100.0 * m.hit_rate
            );
        }
    }
}

fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: used only for the skeleton's padding-free repr(C) key types.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}
