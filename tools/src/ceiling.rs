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

/// Opens and loads the forwarder; its maps start empty.
pub fn load() -> Result<CeilingSkel<'static>> {
    // The skeleton borrows its object for as long as it lives: the
    // program's life.
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    CeilingSkelBuilder::default()
        .open(object)
        .context("opening the ceiling BPF object")?
        .load()
        .context("loading the ceiling BPF object")
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
