//! The loaded datapath: its maps, how accel writes them, and how the XDP
//! program is attached to interfaces.

pub mod attach;
pub mod dir24;
pub mod keys;
pub mod maps;
pub mod mmap;
pub mod pin;
pub mod trie6;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("loading the XDP program failed (is this root, with BPF support?): {0}")]
    Load(#[source] libbpf_rs::Error),
    #[error("map {map}: {op} failed: {source}")]
    Map {
        map: &'static str,
        op: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("no pinned accel maps at {dir} ({source}); is `accel run` running?")]
    NotPinned {
        dir: PathBuf,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("pinning maps under {dir}: {source}")]
    Pin {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("IPv4 route table: {0}; the route stays with the kernel")]
    Dir24(#[from] dir24::GroupsExhausted),
    #[error("IPv6 route table: {0}")]
    Trie6(#[from] trie6::NodesExhausted),
    #[error("memory-mapping {map}: {source}")]
    Mmap {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("bpffs: {0}")]
    Bpffs(String),
    #[error("interface {iface}: {msg}")]
    Attach { iface: String, msg: String },
}

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};

use crate::bpf::{AccelSkel, AccelSkelBuilder};
use maps::Maps;

/// A loaded (not yet attached) datapath.
pub struct Loaded {
    pub skel: AccelSkel<'static>,
    pub maps: Maps,
}

/// Loads the XDP program and creates its maps.
pub fn load() -> Result<Loaded, DatapathError> {
    // The skeleton borrows its object for as long as it lives, which for
    // accel is the life of the process.
    let object = Box::leak(Box::new(MaybeUninit::uninit()));
    let open = AccelSkelBuilder::default()
        .open(object)
        .map_err(DatapathError::Load)?;
    let skel = open.load().map_err(DatapathError::Load)?;
    let maps = Maps::from_skel(&skel)?;
    Ok(Loaded { skel, maps })
}
