//! The TC program on kernels without tcx links (before Linux 6.6; Debian 12
//! runs 6.1): a cls_bpf filter (direct action) on the interface's clsact
//! qdisc, at accel's own handle and priority.
//!
//! Unlike a link, a filter outlives the process that added it. accel
//! removes its own filter when it stops (only while the filter still runs
//! its program), never removes the qdisc (other filters may hang on it,
//! and an empty clsact costs nothing), and replaces a filter a killed
//! instance left at its handle. Such a leftover passes every packet to the
//! kernel once its instance's deadlines lapse (`alive_until_ns`). There is
//! no link to pin, so a handover (SIGUSR2) is refused on such interfaces:
//! upgrade by restarting.

use std::os::fd::BorrowedFd;

use libbpf_rs::{TcHook, TC_INGRESS};

/// accel's filter on clsact ingress: handle and priority (the kernel's
/// priority is 16 bits).
const HANDLE: u32 = 0xacce1;
const PRIORITY: u32 = 0xacce;

/// Whether a filter a dump lists is accel's (of any instance): its
/// container (handle 0) or the filter at accel's handle, at accel's
/// priority.
pub fn is_accels(f: &crate::netlink::tc::TcObject) -> bool {
    f.kind == "bpf" && f.priority() == PRIORITY && (f.handle == 0 || f.handle == HANDLE)
}

/// accel's filter on one interface; dropping it removes the filter if it
/// still runs the program it was added with.
#[derive(Debug)]
pub struct Filter {
    hook: TcHook,
    ifindex: u32,
    prog_id: u32,
}

impl Filter {
    /// Adds (or replaces, at accel's handle) the filter running `prog`.
    pub fn add(prog: BorrowedFd<'_>, ifindex: u32) -> Result<Filter, String> {
        let prog_id = libbpf_rs::Program::id_from_fd(prog).map_err(|e| e.to_string())?;
        let mut hook = TcHook::new(prog);
        hook.ifindex(ifindex as i32)
            .attach_point(TC_INGRESS)
            .handle(HANDLE)
            .priority(PRIORITY)
            .replace(true);
        // An existing clsact qdisc is kept as it is.
        hook.create()
            .map_err(|e| format!("adding a clsact qdisc failed: {e}"))?;
        hook.attach()
            .map_err(|e| format!("adding the cls_bpf filter failed: {e}"))?;
        Ok(Filter {
            hook,
            ifindex,
            prog_id,
        })
    }

    /// Whether the filter still runs `ours` (its program id).
    pub fn runs(&self, ours: u32) -> bool {
        filter_prog(self.ifindex) == Some(ours)
    }

    /// Puts `prog` back into the filter (atomic: a replace at the same
    /// handle).
    pub fn reclaim(&mut self, prog: BorrowedFd<'_>) -> std::io::Result<()> {
        let mut hook = TcHook::new(prog);
        hook.ifindex(self.ifindex as i32)
            .attach_point(TC_INGRESS)
            .handle(HANDLE)
            .priority(PRIORITY)
            .replace(true);
        hook.attach().map_err(std::io::Error::other)?;
        self.prog_id = libbpf_rs::Program::id_from_fd(prog).map_err(std::io::Error::other)?;
        self.hook = hook;
        Ok(())
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        if self.runs(self.prog_id) {
            let _ = self.hook.detach();
        }
    }
}

/// The program id of accel's filter on `ifindex`, if there is one.
pub fn filter_prog(ifindex: u32) -> Option<u32> {
    let hook = libbpf_sys::bpf_tc_hook {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_hook>() as _,
        ifindex: ifindex as i32,
        attach_point: TC_INGRESS,
        ..Default::default()
    };
    let mut opts = libbpf_sys::bpf_tc_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_tc_opts>() as _,
        handle: HANDLE,
        priority: PRIORITY,
        ..Default::default()
    };
    // Without a clsact qdisc the kernel refuses the query: that means no
    // filter, not a fault worth a warning.
    let rc = super::libbpf_log::expecting_failure(|| {
        // SAFETY: both structs are fully initialised with their sizes; a
        // query needs no program descriptor (libbpf-rs's TcHook::query
        // wants one).
        unsafe { libbpf_sys::bpf_tc_query(&hook, &mut opts) }
    });
    (rc == 0 && opts.prog_id != 0).then_some(opts.prog_id)
}

/// Whether accel's filter on `ifindex` runs an accel TC program (of any
/// instance).
pub fn has_accels(ifindex: u32) -> bool {
    filter_prog(ifindex)
        .and_then(|id| libbpf_rs::ProgramHandle::from_prog_id(id).ok())
        .is_some_and(|p| p.name() == super::tcx::PROGRAM_NAME)
}
