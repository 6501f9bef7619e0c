//! The TC program's attachment: a tcx link on an interface's TC ingress
//! (Linux 6.6+). Like the XDP links, it lives as long as accel holds its
//! descriptor, and other programs on the same hook are left alone: accel's
//! is appended after them, so that whatever they decide (drop, mark,
//! redirect) still comes first, as it would before the kernel's
//! forwarding path.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::attach::{Attachment, Hook};
use super::DatapathError;

/// The TC program's name, as the kernel lists it.
pub(super) const PROGRAM_NAME: &str = "accel_tc";

/// The most programs one query lists (tcx has no fixed limit; 64 is far
/// more than any interface carries).
const MAX_LISTED: usize = 64;

pub fn attach(prog: BorrowedFd<'_>, ifindex: u32, name: &str) -> Result<Attachment, DatapathError> {
    let fail = |msg: String| DatapathError::Attach {
        iface: name.to_string(),
        msg,
    };
    if let Some(id) = programs(ifindex).into_iter().find(|id| is_accels(*id)) {
        return Err(fail(format!(
            "already has accel's TC program (id {id}); is another accel running on it? \
             (`accel stats` shows a running instance; `bpftool net` lists programs)"
        )));
    }
    if std::env::var_os(FILTER_ENV).is_some() {
        return attach_filter(prog, ifindex, name, "ACCEL_TC_FILTER is set".into());
    }
    let opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    // SAFETY: valid program fd and a fully initialised options struct.
    // libbpf-rs 0.27 has no tcx attach of its own.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            prog.as_raw_fd(),
            ifindex as i32,
            libbpf_sys::BPF_TCX_INGRESS,
            &opts,
        )
    };
    if fd < 0 {
        let err = std::io::Error::from_raw_os_error(-fd);
        if -fd == libc::EINVAL {
            // Kernels before 6.6 know no BPF_TCX_INGRESS.
            return attach_filter(prog, ifindex, name, format!("no tcx link ({err})"));
        }
        return Err(fail(format!("attaching to TC ingress failed: {err}")));
    }
    // SAFETY: bpf_link_create returned a new descriptor that we now own.
    let link = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Attachment::new(ifindex, name, Hook::Tc, link))
}

/// Set (to anything) to attach the TC program as a cls_bpf filter even
/// where tcx links exist: how the tests reach that path on new kernels.
const FILTER_ENV: &str = "ACCEL_TC_FILTER";

/// The cls_bpf filter instead of a tcx link (see cls_bpf.rs); `why` says
/// why, if that fails too.
fn attach_filter(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    name: &str,
    why: String,
) -> Result<Attachment, DatapathError> {
    let filter =
        super::cls_bpf::Filter::add(prog, ifindex).map_err(|msg| DatapathError::Attach {
            iface: name.to_string(),
            msg: format!("attaching to TC ingress failed: {why}; {msg}"),
        })?;
    log::info!("{name}: TC program as a cls_bpf filter ({why})");
    Ok(Attachment::filter(ifindex, name, filter))
}

/// Ids of the programs on `ifindex`'s TC ingress (tcx), in order; empty
/// when none (or the interface is gone).
pub fn programs(ifindex: u32) -> Vec<u32> {
    programs_at(ifindex, libbpf_sys::BPF_TCX_INGRESS).unwrap_or_default()
}

/// The programs on `ifindex`'s tcx ingress (or egress) other than accel's
/// (`ours`, or another instance's where its name can be read), in words
/// (see [`crate::netlink::tc`]): none on a kernel without tcx (EINVAL) or
/// a device gone; more than a query lists count as foreign.
pub fn foreign(ifindex: u32, egress: bool, ours: u32) -> std::io::Result<Vec<String>> {
    let at = if egress {
        libbpf_sys::BPF_TCX_EGRESS
    } else {
        libbpf_sys::BPF_TCX_INGRESS
    };
    let hook = if egress { "egress" } else { "ingress" };
    let ids = match programs_at(ifindex, at) {
        Ok(ids) => ids,
        Err(e) => match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENODEV) => Vec::new(),
            Some(libc::ENOSPC) => {
                return Ok(vec![format!("over {MAX_LISTED} tcx {hook} programs")])
            }
            _ => return Err(e),
        },
    };
    Ok(ids
        .into_iter()
        .filter(|id| *id != ours && !is_accels_or_gone(*id))
        .map(|id| format!("tcx {hook} program {id}"))
        .collect())
}

/// Whether program `id` is accel's TC program, or gone since it was
/// listed (a handover swaps the program of a link: the old one is freed).
/// Without CAP_SYS_ADMIN no program's name can be read: foreign.
fn is_accels_or_gone(id: u32) -> bool {
    match libbpf_rs::ProgramHandle::from_prog_id(id) {
        Ok(p) => p.name() == PROGRAM_NAME,
        Err(e) => e.kind() == libbpf_rs::ErrorKind::NotFound,
    }
}

fn programs_at(ifindex: u32, at: libbpf_sys::bpf_attach_type) -> std::io::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_LISTED];
    let mut opts = libbpf_sys::bpf_prog_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_query_opts>() as _,
        prog_ids: ids.as_mut_ptr(),
        ..Default::default()
    };
    opts.__bindgen_anon_1.count = MAX_LISTED as u32;
    // SAFETY: prog_ids points at MAX_LISTED writable u32s, as count says;
    // the options struct is fully initialised.
    let rc = unsafe { libbpf_sys::bpf_prog_query_opts(ifindex as i32, at, &mut opts) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc.wrapping_abs()));
    }
    // SAFETY: the kernel wrote the count of ids it returned.
    let n = unsafe { opts.__bindgen_anon_1.count } as usize;
    Ok(ids[..n.min(MAX_LISTED)].to_vec())
}

/// Whether program `id` is an accel TC program (of any instance).
fn is_accels(id: u32) -> bool {
    libbpf_rs::ProgramHandle::from_prog_id(id).is_ok_and(|p| p.name() == PROGRAM_NAME)
}

/// Whether an accel TC program runs on `ifindex` (for `accel stats`).
pub fn has_accels(ifindex: u32) -> bool {
    programs(ifindex).into_iter().any(is_accels)
}
