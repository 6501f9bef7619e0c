//! How an attached XDP program hands frames to the TC program beside it:
//! marked in the frame's metadata, or unmarked where the kernel refuses
//! XDP metadata (the TC program then decides again every frame XDP
//! passed; see `handoff_meta` in forward.h). The loader sets it before
//! load, so the program's own read-only data is the answer, whatever
//! process loaded it.

use std::mem::{offset_of, size_of};

use libbpf_rs::query::{ProgInfoIter, ProgInfoQueryOptions};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::bpf::types::rodata;

/// The name the kernel knows the skeleton's `.rodata` map by (the object's
/// name, `accel.bpf.o`, cut to 8 characters by libbpf, then the section).
const RODATA_MAP: &str = "accel_bp.rodata";

/// How frames cross from XDP to TC on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Handoff {
    /// Marked in the frame's metadata: TC takes XDP's word.
    Marked,
    /// This kernel refuses XDP metadata: TC decides again.
    Unmarked,
}

impl std::fmt::Display for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Handoff::Marked => "frames to TC marked",
            Handoff::Unmarked => "frames to TC unmarked",
        })
    }
}

/// The handoff of the XDP program with id `prog_id`; `None` when it is
/// gone or is not accel's.
pub fn of_program(prog_id: u32) -> Option<Handoff> {
    let opts = ProgInfoQueryOptions::default().include_map_ids(true);
    let prog = ProgInfoIter::with_query_opts(opts).find(|p| p.id == prog_id)?;
    prog.map_ids.iter().find_map(|&id| {
        let map = MapHandle::from_map_id(id).ok()?;
        if map.name().to_str() != Some(RODATA_MAP) {
            return None;
        }
        let bytes = map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??;
        parse(&bytes)
    })
}

/// `handoff_meta` out of the `.rodata` map's value, laid out as the
/// skeleton's `rodata` type says.
fn parse(bytes: &[u8]) -> Option<Handoff> {
    if bytes.len() < size_of::<rodata>() {
        return None;
    }
    let at = offset_of!(rodata, handoff_meta);
    let word = u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    Some(if word != 0 {
        Handoff::Marked
    } else {
        Handoff::Unmarked
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_flag_where_the_skeleton_puts_it() {
        let mut value = vec![0u8; size_of::<rodata>()];
        assert_eq!(parse(&value), Some(Handoff::Unmarked));
        let at = offset_of!(rodata, handoff_meta);
        value[at..at + 4].copy_from_slice(&1u32.to_ne_bytes());
        assert_eq!(parse(&value), Some(Handoff::Marked));
        // A map of another layout is not read as ours.
        assert_eq!(parse(&value[..size_of::<rodata>() - 1]), None);
    }
}
