//! The ceiling forwarder's skeleton (`src/bpf/ceiling.bpf.c`) and its
//! set-up, shared by `accel-ceiling`, `accel-bench stages` and the tests.

use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags};

accel::skeleton!("ceiling.skel.rs");
pub use skel::*;

/// Tags the generator writes (ceiling.bpf.c's CEILING_ADJ).
pub const TAGS: u32 = 8;

/// Bytes of a line of `ceiling_read_fwd`'s array.
const LINE: u64 = 64;

/// Dependent reads per frame at most (ceiling.bpf.c's CEILING_MAX_READS).
pub const MAX_READS: u32 = 8;

/// Opens and loads the forwarder; its maps start empty.
pub fn load() -> Result<CeilingSkel<'static>> {
    load_with_lines(1, 1, 1)
}

/// Opens and loads the forwarder with `ceiling_read_fwd` reading `reads`
/// lines per frame from an array of `mib` MiB of 64-byte lines (its pages
/// all allocated, zero, as an array map's are), every `stride`-th line
/// only (1: any line).
pub fn load_reading(mib: f64, reads: u32, stride: u32) -> Result<CeilingSkel<'static>> {
    let lines = (mib * (1u64 << 20) as f64 / LINE as f64) as u64;
    let lines = u32::try_from(lines)
        .ok()
        .filter(|&n| n > 0)
        .with_context(|| format!("--read-mib {mib}: from one line to 4 G lines"))?;
    if !(1..=MAX_READS).contains(&reads) {
        anyhow::bail!("--reads {reads}: from 1 to {MAX_READS}");
    }
    if stride == 0 || stride > lines {
        anyhow::bail!("--stride {stride}: from 1 to the {lines} lines of --read-mib {mib}");
    }
    load_with_lines(lines, reads, stride)
}

fn load_with_lines(lines: u32, reads: u32, stride: u32) -> Result<CeilingSkel<'static>> {
    // The skeleton borrows its object for as long as it lives: the
    // program's life.
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = CeilingSkelBuilder::default()
        .open(object)
        .context("opening the ceiling BPF object")?;
    open.maps
        .lines
        .set_max_entries(lines)
        .context("sizing the read forwarder's lines")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("the ceiling object has no .rodata")?;
    rodata.read_count = reads;
    rodata.line_stride = stride;
    rodata.slot_count = lines / stride;
    open.load().context("loading the ceiling BPF object")
}

/// Frames tagged `tag` leave with destination `dmac` and source `smac`
/// through the egress port (see [`set_egress`]).
pub fn set_adjacency(skel: &CeilingSkel<'_>, tag: u32, dmac: [u8; 6], smac: [u8; 6]) -> Result<()> {
    // struct ceiling_adj: dmac, smac, port 0 (the one egress).
    let mut v = [0u8; std::mem::size_of::<types::ceiling_adj>()];
    v[..6].copy_from_slice(&dmac);
    v[6..12].copy_from_slice(&smac);
    skel.maps
        .adj
        .update(&tag.to_ne_bytes(), &v, MapFlags::ANY)
        .context("writing an adjacency")
}

/// The egress port (devmap slot 0) is `ifindex`.
pub fn set_egress(skel: &CeilingSkel<'_>, ifindex: u32) -> Result<()> {
    skel.maps
        .tx
        .update(&0u32.to_ne_bytes(), &ifindex.to_ne_bytes(), MapFlags::ANY)
        .context("writing the devmap")
}
