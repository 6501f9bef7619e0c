//! Real-time priority for the two threads that carry a route change from
//! the kernel to the datapath: the netlink reader and the event loop.
//!
//! Until a change is applied the datapath forwards by the route the kernel
//! no longer has. Beside a routing daemon installing or withdrawing a full
//! table on a small router, ordinary scheduling lets those threads wait
//! behind the daemon for tens to hundreds of milliseconds
//! (`scripts/bench/bgp.sh`, BENCHMARKS.md); at SCHED_FIFO they run as soon
//! as a change arrives. Their work is bounded by the changes themselves
//! (about 2 us each), so they take the CPU sooner, not more of it.
//!
//! SCHED_RESET_ON_FORK keeps the priority to these threads: whatever they
//! start later (dump and check threads, the blocking pool, a successor
//! process) runs at normal priority. Where the priority is refused (no
//! CAP_SYS_NICE and no RLIMIT_RTPRIO for it, systemd's
//! `RestrictRealtime=`), accel says so once and runs at normal priority.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use log::{info, warn};

/// The SCHED_FIFO priority `accel run` asks for (0: normal scheduling).
static PRIORITY: AtomicU8 = AtomicU8::new(0);
/// One line in the log for all threads, not one per thread.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Sets the priority the route-change threads take (0: none); called once
/// by `accel run` before they start.
pub fn configure(priority: u8) {
    PRIORITY.store(priority, Ordering::Relaxed);
}

/// Puts the calling thread at the configured priority, if any.
pub fn enter() {
    let priority = PRIORITY.load(Ordering::Relaxed);
    if priority == 0 {
        return;
    }
    let result = set_fifo(priority);
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    match result {
        Ok(()) => info!(
            "route changes are read and applied at real-time priority {priority} (SCHED_FIFO)"
        ),
        Err(e) => warn!(
            "real-time priority {priority} refused ({e}): route changes are read and applied at \
             normal priority and can wait behind the routing daemon (docs/deployment.md, \
             \"Sizing: CPU for route churn\")"
        ),
    }
}

fn set_fifo(priority: u8) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: sched_setscheduler(2) on the calling thread (pid 0) with a
    // valid sched_param; neither rustix nor nix offers it.
    let rc = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without privilege the request is refused, and the thread keeps its
    /// scheduling; with it, the thread's children start at normal priority.
    #[test]
    fn fifo_is_not_inherited_by_threads_started_later() {
        // SAFETY: sched_getscheduler(2) on the calling thread.
        let policy = || unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
        std::thread::spawn(move || match set_fifo(1) {
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
                assert_eq!(policy(), libc::SCHED_OTHER);
                eprintln!("skipped: no privilege for SCHED_FIFO here (refusal checked)");
            }
            Ok(()) => {
                assert_eq!(policy(), libc::SCHED_FIFO);
                let child = std::thread::spawn(policy).join().unwrap();
                assert_eq!(child, libc::SCHED_OTHER);
            }
        })
        .join()
        .unwrap();
    }
}
