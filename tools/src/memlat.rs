//! `accel-bench memlat`: what one dependent read of a BPF array map costs
//! at a given working set, on this machine (src/bpf/memlat.bpf.c). A route
//! lookup is a chain of such reads, so this is the price of every byte the
//! FIB adds to what a frame may touch: where the working set leaves the
//! L2 cache, where it leaves what the L3 keeps for this machine, and what
//! the TLB adds on the 4 KiB pages of the datapath's (vmalloc'd) arrays
//! against the huge pages of small (kmalloc'd) ones.

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};

use anyhow::{bail, Context, Result};
use libbpf_rs::libbpf_sys::bpf_map_create_opts;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType, ProgramInput};

accel::skeleton!("memlat.skel.rs");
use skel::*;

const LINES: usize = types::memlat_sizes::MEMLAT_LINES.0 as usize;
const INNER: usize = types::memlat_sizes::MEMLAT_INNER.0 as usize;
const OUTER: usize = types::memlat_sizes::MEMLAT_OUTER.0 as usize;
const CHAIN: f64 = types::memlat_sizes::MEMLAT_CHAIN.0 as f64;
const LINE: usize = std::mem::size_of::<types::memlat_line>();
/// Lines per 4 KiB page.
const PAGE_LINES: usize = 4096 / LINE;

/// Where a working set's lines lie.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// The first lines of the large array: as few pages as the lines need.
    Dense,
    /// Spread evenly over the whole large array (32 MiB, 8,192 pages): the
    /// same lines in cache, many more pages for the TLB. Each line at
    /// another offset of its page, so that they do not all fall into the
    /// same cache sets.
    Spread,
    /// In the small arrays (kmalloc'd: huge pages), one filled after the
    /// other.
    Small,
}

pub const LAYOUTS: [Layout; 3] = [Layout::Dense, Layout::Spread, Layout::Small];

/// ns per dependent read: median and fastest of the runs.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub layout: Layout,
    pub lines: usize,
    pub ns: f64,
    pub min: f64,
}

/// The most lines a working set may have (what the small arrays hold).
pub const MAX_LINES: usize = INNER * OUTER;

/// The index of slot `k` of a working set of `n` lines.
fn index(layout: Layout, n: usize, k: usize) -> usize {
    match layout {
        Layout::Dense => k,
        // memlat.bpf.c's index: line i / OUTER of small array i % OUTER.
        Layout::Small => (k % INNER) * OUTER + k / INNER,
        Layout::Spread => {
            let stride = LINES / n;
            k * stride + (k * 7) % stride.min(PAGE_LINES)
        }
    }
}

struct Probe {
    skel: MemlatSkel<'static>,
    /// The small arrays, alive while the outer map refers to them.
    inner: Vec<MapHandle>,
}

fn load() -> Result<Probe> {
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let skel = MemlatSkelBuilder::default()
        .open(object)
        .context("opening the memlat object")?
        .load()
        .context("loading the memlat object (root, BPF support?)")?;
    let opts = bpf_map_create_opts {
        sz: std::mem::size_of::<bpf_map_create_opts>() as _,
        ..Default::default()
    };
    let mut inner = Vec::with_capacity(OUTER);
    for o in 0..OUTER as u32 {
        let m = MapHandle::create(
            MapType::Array,
            None::<&str>,
            4,
            LINE as u32,
            INNER as u32,
            &opts,
        )
        .context("creating a small array")?;
        let fd = m.as_fd().as_raw_fd();
        skel.maps
            .small
            .update(&o.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .context("linking a small array")?;
        inner.push(m);
    }
    Ok(Probe { skel, inner })
}

impl Probe {
    fn write(&self, layout: Layout, at: usize, next: usize) -> Result<()> {
        let mut line = [0u8; LINE];
        line[..4].copy_from_slice(&(next as u32).to_ne_bytes());
        let result = match layout {
            Layout::Small => self.inner[at % OUTER].update(
                &((at / OUTER) as u32).to_ne_bytes(),
                &line,
                MapFlags::ANY,
            ),
            _ => self
                .skel
                .maps
                .big
                .update(&(at as u32).to_ne_bytes(), &line, MapFlags::ANY),
        };
        result.context("writing a line")
    }

    /// Links `n` lines of `layout` into one random cycle and points the
    /// chain at it.
    fn cycle(&mut self, layout: Layout, n: usize, rng: &mut fastrand::Rng) -> Result<()> {
        let mut order: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut order);
        for (j, &k) in order.iter().enumerate() {
            let next = order[(j + 1) % n];
            self.write(layout, index(layout, n, k), index(layout, n, next))?;
        }
        let bss = self.skel.maps.bss_data.as_deref_mut().context("no .bss")?;
        bss.start = index(layout, n, order[0]) as u32;
        Ok(())
    }

    fn measure(&self, layout: Layout, runs: usize, repeat: u32) -> Result<(f64, f64)> {
        let prog = match layout {
            Layout::Small => &self.skel.progs.memlat_small,
            _ => &self.skel.progs.memlat_big,
        };
        let frame = [0u8; 64];
        let mut ns = Vec::with_capacity(runs);
        // The first run brings the lines in.
        for r in 0..=runs {
            let out = prog
                .test_run(ProgramInput {
                    data_in: Some(&frame),
                    repeat,
                    ..Default::default()
                })
                .context("BPF_PROG_TEST_RUN")?;
            if out.return_value != 1 {
                bail!("the chain broke (action {})", out.return_value);
            }
            if r > 0 {
                ns.push(out.duration.as_nanos() as f64 / CHAIN);
            }
        }
        ns.sort_by(f64::total_cmp);
        Ok((ns[ns.len() / 2], ns[0]))
    }
}

/// Every layout at every working set of `sizes` lines.
pub fn run(sizes: &[usize], runs: usize, repeat: u32) -> Result<Vec<Sample>> {
    if let Some(&n) = sizes.iter().find(|&&n| n == 0 || n > MAX_LINES) {
        bail!("a working set of {n} lines: 1 to {MAX_LINES}");
    }
    let mut probe = load()?;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::new();
    for &lines in sizes {
        for layout in LAYOUTS {
            probe.cycle(layout, lines, &mut rng)?;
            let (ns, min) = probe.measure(layout, runs.max(1), repeat)?;
            out.push(Sample {
                layout,
                lines,
                ns,
                min,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spread lines fall on distinct lines of the large array, one per page
    /// while there are fewer than pages, each at another offset.
    #[test]
    fn spread_lines_are_distinct_and_inside() {
        for n in [1, 100, 8192, 10_000, LINES] {
            let mut seen: Vec<usize> = (0..n).map(|k| index(Layout::Spread, n, k)).collect();
            assert!(seen.iter().all(|&i| i < LINES));
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n, "{n} lines");
        }
        let mut small: Vec<usize> = (0..MAX_LINES)
            .map(|k| index(Layout::Small, MAX_LINES, k))
            .collect();
        assert!(small.iter().all(|&i| i / OUTER < INNER));
        small.sort_unstable();
        small.dedup();
        assert_eq!(small.len(), MAX_LINES);
        let pages: Vec<usize> = (0..4096)
            .map(|k| index(Layout::Spread, 4096, k) / PAGE_LINES)
            .collect();
        assert!(pages.windows(2).all(|w| w[0] < w[1]), "one line a page");
    }
}
