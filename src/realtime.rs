//! Real-time priority for the two threads that carry a route change from
//! the kernel to the datapath: the netlink reader and the event loop.
//!
//! Until a change is applied the datapath forwards by the route the kernel
//! no longer has. Beside a routing daemon installing or withdrawing a full
//! table on a small router, ordinary scheduling lets those threads wait
//! behind the daemon for tens to hundreds of milliseconds
//! (`scripts/bench/bgp.sh`, BENCHMARKS.md); at SCHED_FIFO they run as soon
//! as a change arrives. Applying a change takes a few microseconds, so they
//! take the CPU sooner, not more of it.
//!
//! Not every turn of the event loop is that short: installing and
//! comparing a resync's or a check's dump takes seconds at full table
//! (at start, after lost events, every `--check-every`). Meanwhile the loop
//! runs at normal priority ([`set_busy`]), so that such a job never holds a
//! CPU from the rest of the router (BFD, the routing daemon, sshd) at
//! real-time priority; route changes during a job wait their turn as they
//! would without the priority.
//!
//! SCHED_RESET_ON_FORK keeps the priority to these threads: whatever they
//! start later (dump and check threads, the blocking pool, a successor
//! process) runs at normal priority. Where the priority is refused (no
//! CAP_SYS_NICE and no RLIMIT_RTPRIO for it, systemd's
//! `RestrictRealtime=`), accel says so once and runs at normal priority.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use log::{info, warn};

/// The SCHED_FIFO priority `accel run` asks for (0: normal scheduling).
static PRIORITY: AtomicU8 = AtomicU8::new(0);
/// One line in the log for each outcome, not one per thread.
static SAID_TAKEN: AtomicBool = AtomicBool::new(false);
static SAID_REFUSED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread took the priority ([`enter`]).
    static ENTERED: Cell<bool> = const { Cell::new(false) };
    /// ... and has set it aside for a job ([`set_busy`]).
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Sets the priority the route-change threads take (0: none); called once
/// by `accel run` before they start.
pub fn configure(priority: u8) {
    PRIORITY.store(priority, Ordering::Relaxed);
}

/// Puts the calling thread at the configured priority, if any, and says
/// how that went (once per outcome in the process).
pub fn enter() {
    let priority = PRIORITY.load(Ordering::Relaxed);
    if priority == 0 {
        return;
    }
    match take(priority) {
        Ok(()) => {
            if !SAID_TAKEN.swap(true, Ordering::Relaxed) {
                info!("route changes are read and applied at real-time priority {priority} (SCHED_FIFO)");
            }
        }
        Err(e) => {
            if !SAID_REFUSED.swap(true, Ordering::Relaxed) {
                warn!(
                    "real-time priority {priority} refused ({e}): route changes are read and \
                     applied at normal priority and can wait behind the routing daemon \
                     (docs/deployment.md, \"Sizing: CPU for route churn\")"
                );
            }
        }
    }
}

/// As [`enter`], without a word: for the netlink reader, which starts while
/// a start can still be refused (one line then), and whose outcome the
/// event loop's own [`enter`] reports (same process, same privileges).
pub fn enter_quietly() {
    let priority = PRIORITY.load(Ordering::Relaxed);
    if priority != 0 {
        let _ = take(priority);
    }
}

fn take(priority: u8) -> std::io::Result<()> {
    set_fifo(priority)?;
    ENTERED.with(|e| e.set(true));
    Ok(())
}

/// While `busy` (a long job in the event loop), the calling thread runs at
/// normal priority; after it, at the priority it took again. Nothing for a
/// thread that took none.
pub fn set_busy(busy: bool) {
    if !ENTERED.with(Cell::get) || LOWERED.with(Cell::get) == busy {
        return;
    }
    let result = if busy {
        set_policy(libc::SCHED_OTHER, 0)
    } else {
        set_fifo(PRIORITY.load(Ordering::Relaxed))
    };
    match result {
        Ok(()) => LOWERED.with(|l| l.set(busy)),
        // Lowering is always allowed, and raising again what was allowed
        // before; should it fail, the thread stays as it is.
        Err(e) => warn!("changing the event loop's priority: {e}"),
    }
}

fn set_fifo(priority: u8) -> std::io::Result<()> {
    set_policy(libc::SCHED_FIFO, i32::from(priority))
}

fn set_policy(policy: i32, priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler(2) on the calling thread (pid 0) with a
    // valid sched_param; neither rustix nor nix offers it.
    let rc = unsafe { libc::sched_setscheduler(0, policy | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: sched_getscheduler(2) on the calling thread.
        let raw = unsafe { libc::sched_getscheduler(0) };
        raw & !libc::SCHED_RESET_ON_FORK
    }

    /// Without privilege the priority is refused and the thread keeps its
    /// scheduling. With it: threads started later are at normal priority,
    /// and a job sets the priority aside until it ends.
    #[test]
    fn fifo_for_the_thread_alone_and_set_aside_for_jobs() {
        configure(1);
        std::thread::spawn(|| {
            enter();
            if !ENTERED.with(Cell::get) {
                assert_eq!(set_fifo(1).unwrap_err().raw_os_error(), Some(libc::EPERM));
                assert_eq!(policy(), libc::SCHED_OTHER);
                set_busy(true);
                assert_eq!(policy(), libc::SCHED_OTHER);
                eprintln!("skipped: no privilege for SCHED_FIFO here (refusal checked)");
                return;
            }
            assert_eq!(policy(), libc::SCHED_FIFO);
            assert_eq!(
                std::thread::spawn(policy).join().unwrap(),
                libc::SCHED_OTHER
            );
            set_busy(true);
            assert_eq!(policy(), libc::SCHED_OTHER);
            set_busy(false);
            assert_eq!(policy(), libc::SCHED_FIFO);
        })
        .join()
        .unwrap();
    }
}
