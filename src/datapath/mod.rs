//! The loaded datapath: its maps, how accel writes them, and how the XDP
//! program is attached to interfaces.

pub mod attach;
pub mod clock;
pub mod cls_bpf;
pub mod handoff;
pub mod keys;
pub mod leaves;
pub mod libbpf_log;
pub mod maps;
pub mod mmap;
pub mod nh_versions;
pub mod pin;
mod prefix_bits;
pub mod tcx;
pub mod trie;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("loading the XDP program failed (does this process have CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON, on a kernel with BPF support?)")]
    Load(#[source] libbpf_rs::Error),
    #[error("map {map}: {op} failed")]
    Map {
        map: &'static str,
        op: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("no pinned accel maps at {dir}; is `accel run` running?")]
    NotPinned {
        dir: PathBuf,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("pinning {dir}")]
    Pin {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("memory-mapping {map}")]
    Mmap {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("bpffs: {0}")]
    Bpffs(String),
    #[error("interface {iface}: {msg}")]
    Attach { iface: String, msg: String },
    #[error(transparent)]
    Path(#[from] crate::trusted_path::PathError),
    #[error("reading the datapath's clock (BPF_PROG_TEST_RUN)")]
    Clock {
        #[source]
        source: libbpf_rs::Error,
    },
    #[error(
        "another `accel run` holds the pin directory {0}; stop it first (or give this \
         instance a --pin-dir of its own)"
    )]
    PinDirBusy(PathBuf),
    #[error(
        "no live `accel run` holds {dir}{}",
        if *leftover { "; the maps pinned there are left over from a stopped instance" } else { "" }
    )]
    NotRunning { dir: PathBuf, leftover: bool },
}

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::bpf::{AccelSkel, AccelSkelBuilder, OpenAccelMaps};
use crate::capacity::Limits;
use maps::Maps;

/// A loaded (not yet attached) datapath.
pub struct Loaded {
    pub skel: AccelSkel<'static>,
    pub maps: Maps,
    /// Whether the XDP program marks the frames it hands to the TC program
    /// beside it (see `handoff_meta` in forward.h).
    pub handoff_meta: bool,
}

/// Loads the XDP program and creates its maps, sized by `limits`.
pub fn load(limits: &Limits) -> Result<Loaded, DatapathError> {
    let meta = xdp_metadata_allowed();
    match load_with(limits, meta) {
        // The probe answers "supported" for a probe it could not run
        // (libbpf_probe_bpf_helper): the load is the real test.
        Err(e) if meta => {
            log::debug!("loading with XDP metadata failed ({e}); loading without");
            load_with(limits, false)
        }
        r => r,
    }
}

/// [`load`], with the XDP program marking the frames it hands to TC in
/// their metadata (`meta`) or not.
fn load_with(limits: &Limits, meta: bool) -> Result<Loaded, DatapathError> {
    // The skeleton borrows its object for as long as it lives, which for
    // accel is the life of the process.
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = AccelSkelBuilder::default()
        .open(object)
        .map_err(DatapathError::Load)?;
    size_maps(&mut open.maps, limits).map_err(DatapathError::Load)?;
    let handoff_meta = match open.maps.rodata_data.as_deref_mut() {
        Some(rodata) => {
            rodata.handoff_meta = meta.into();
            meta
        }
        None => false,
    };
    let skel = open.load().map_err(DatapathError::Load)?;
    let maps = Maps::from_skel(&skel, limits)?;
    Ok(Loaded {
        skel,
        maps,
        handoff_meta,
    })
}

/// Whether this kernel lets XDP programs call bpf_xdp_adjust_meta. Some
/// refuse it ("program of this type cannot use helper"): the datapath then
/// hands frames from XDP to TC unmarked. A probe that fails outright counts
/// as a refusal.
fn xdp_metadata_allowed() -> bool {
    libbpf_rs::ProgramType::Xdp
        .is_helper_supported(libbpf_sys::BPF_FUNC_xdp_adjust_meta)
        .unwrap_or(false)
}

/// Sets the size of every bounded map before load.
fn size_maps(m: &mut OpenAccelMaps<'_>, l: &Limits) -> Result<(), libbpf_rs::Error> {
    // One entry per 64-byte line of the node arrays.
    m.fib4_nodes.set_max_entries(l.ipv4_trie)?;
    m.fib6_nodes.set_max_entries(l.ipv6_trie)?;
    m.nh_index.set_max_entries(l.nexthops)?;
    m.nexthops
        .set_max_entries(nh_versions::slots_for(l.nexthops))?;
    m.nh_stats.set_max_entries(l.nexthops)?;
    m.nh_groups.set_max_entries(l.nh_groups)?;
    m.neigh4.set_max_entries(l.neighbours)?;
    m.neigh6.set_max_entries(l.neighbours)?;
    m.local4.set_max_entries(l.local_addrs)?;
    m.blackhole_drops.set_max_entries(l.blackholes)?;
    m.src_blackhole_drops.set_max_entries(l.blackholes)?;
    m.blackhole_prefixes.set_max_entries(l.blackholes)?;
    m.src_rules4.set_max_entries(l.src_rules)?;
    m.src_rules6.set_max_entries(l.src_rules)
}
