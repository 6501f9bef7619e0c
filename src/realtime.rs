//! Real-time priority for the two threads that carry a route change from
//! the kernel to the datapath: the netlink reader and the event loop.
//!
//! Until a change is applied the datapath forwards by the route the kernel
//! no longer has. Beside a routing daemon installing or withdrawing a full
//! table on a small router, ordinary scheduling lets those threads wait
//! behind the daemon for tens to hundreds of milliseconds
//! (`scripts/bench/bgp.sh`, BENCHMARKS.md).
//!
//! The reader runs at SCHED_FIFO: it takes each batch of notifications as
//! it comes. The event loop takes the priority only while it has changes
//! to apply: it wakes at normal priority, so that a burst's batches gather
//! while the routing daemon runs and the loop takes them together instead
//! of preempting the daemon for each one; from its first change until it
//! has caught up it runs at SCHED_FIFO ([`loop_working`], [`loop_caught_up`]),
//! so that the daemon does not preempt it halfway. Should a batch wait
//! for it too long (the loop not scheduled at all), the reader raises it
//! from its own thread ([`raise_loop`]). Always at SCHED_FIFO, the loop
//! preempted the routing daemon at every batch; at normal priority
//! throughout, it took less CPU per event but its lag's tail came back.
//! Taken only while it works, its lag stayed as low as always at FIFO
//! (BENCHMARKS.md, "The event loop at real-time priority only while it
//! works"). Lease renewals (every 100 ms for a 500 ms lease) now wait
//! their turn at normal priority when no change is in hand: ordinary
//! processes holding every CPU leave it its turn (hostile.sh B8), but on
//! CPUs held for longer than that by real-time threads, the mirror's lease
//! lapses and bpf_fib_lookup decides until the loop runs again, which is
//! safe.
//!
//! Not every turn of the event loop is that short: installing and
//! comparing a resync's or a check's dump takes seconds at full table
//! (at start, after lost events, every `--check-every`). Meanwhile the loop
//! stays at normal priority ([`set_busy`]), so that such a job never holds
//! a CPU from the rest of the router (BFD, the routing daemon, sshd); route
//! changes during a job wait their turn as they would without the priority.
//!
//! SCHED_RESET_ON_FORK keeps the priority to these threads: whatever they
//! start later (dump and check threads, the blocking pool, a successor
//! process) runs at normal priority. Where the priority is refused (no
//! CAP_SYS_NICE and no RLIMIT_RTPRIO for it, systemd's
//! `RestrictRealtime=`), accel says so once and runs at normal priority.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use log::{debug, info, warn};

/// The SCHED_FIFO priority `accel run` asks for (0: normal scheduling).
static PRIORITY: AtomicU8 = AtomicU8::new(0);
/// One line in the log for each outcome, not one per thread.
static SAID_TAKEN: AtomicBool = AtomicBool::new(false);
static SAID_REFUSED: AtomicBool = AtomicBool::new(false);
/// Times the reader raised the loop ([`raise_loop`]).
static RAISES: AtomicU64 = AtomicU64::new(0);

/// The event loop's priority, shared by the loop and the reader. A raise
/// is made under the lock; the loop's lowering call is not (see [`lower`]),
/// and `lowering` marks that window, in which a raise by the reader may
/// land before the lowering call and be undone by it.
struct LoopPriority {
    /// The loop's thread; 0 until it took the priority once ([`enter_loop`]).
    tid: libc::pid_t,
    /// At SCHED_FIFO now (or again once `lowering` ends).
    raised: bool,
    /// The loop is lowering itself, outside the lock.
    lowering: bool,
    /// In a job: stays at normal priority.
    busy: bool,
}

static LOOP: Mutex<LoopPriority> = Mutex::new(LoopPriority {
    tid: 0,
    raised: false,
    lowering: false,
    busy: false,
});

fn the_loop() -> MutexGuard<'static, LoopPriority> {
    LOOP.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sets the priority the route-change threads take (0: none); called once
/// by `accel run` before they start.
pub fn configure(priority: u8) {
    PRIORITY.store(priority, Ordering::Relaxed);
}

fn priority() -> u8 {
    PRIORITY.load(Ordering::Relaxed)
}

/// For the event loop's thread: takes the configured priority once to learn
/// whether it may, says how that went (once per outcome in the process),
/// and goes back to normal priority until it has changes to apply.
pub fn enter_loop() {
    let priority = priority();
    if priority == 0 {
        return;
    }
    if let Err(e) = set_fifo(priority) {
        if !SAID_REFUSED.swap(true, Ordering::Relaxed) {
            warn!(
                "real-time priority {priority} refused ({e}): route changes are read and \
                 applied at normal priority and can wait behind the routing daemon \
                 (docs/deployment.md, \"Sizing: CPU for route churn\")"
            );
        }
        return;
    }
    if !SAID_TAKEN.swap(true, Ordering::Relaxed) {
        info!("route changes are read and applied at real-time priority {priority} (SCHED_FIFO)");
    }
    let mut l = the_loop();
    l.tid = rustix::thread::gettid().as_raw_nonzero().get();
    // Lowering is always allowed; should it fail, the loop counts as
    // raised, and its first catching up lowers it.
    if let Err(e) = set_policy(0, libc::SCHED_OTHER, 0) {
        warn!("lowering the event loop's priority: {e}");
        l.raised = true;
    }
}

/// For the netlink reader: the configured priority, without a word (it
/// starts while a start can still be refused, one line then, and the event
/// loop's [`enter_loop`] reports the outcome: same process, same
/// privileges).
pub fn enter_reader() {
    let priority = priority();
    if priority != 0 {
        let _ = set_fifo(priority);
    }
}

/// The event loop starts on changes: at the configured priority until it
/// has caught up, unless in a job.
pub fn loop_working() {
    let mut l = the_loop();
    if l.tid != 0 && !l.raised && !l.busy {
        raise(&mut l, 0);
    }
}

/// The reader (another thread) raises the event loop, for which a batch
/// has waited too long; true when it was raised now. It never waits for
/// the lock: the loop, at normal priority, may have been preempted in the
/// few instructions it holds it for, and the reader would wait with it
/// (the lock does not lend its waiter's priority). The reader tries again
/// at its next look. (The loop held the lock across its lowering call,
/// whose return is where it is preempted: batches waited 20-30 ms.)
pub fn raise_loop() -> bool {
    let mut l = match LOOP.try_lock() {
        Ok(l) => l,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return false,
    };
    let tid = l.tid;
    // While the loop lowers itself, a raise may be undone by its lowering
    // call: raising again is harmless, and the loop looks after its call.
    let raised = tid != 0 && !l.busy && (!l.raised || l.lowering) && raise(&mut l, tid);
    if raised {
        RAISES.fetch_add(1, Ordering::Relaxed);
    }
    raised
}

/// Times the reader raised the event loop because a batch waited for it
/// (the loop not scheduled, or preempted while it worked at normal
/// priority): a sign that the CPUs are contended. A raise while the loop
/// lowers itself counts again. Stays 0 without the priority, and during
/// a resync or check (the loop is not raised then).
pub fn loop_raises() -> u64 {
    RAISES.load(Ordering::Relaxed)
}

/// Raises the thread `tid` (0: the calling one), with the lock taken;
/// whether this call raised it.
fn raise(l: &mut LoopPriority, tid: libc::pid_t) -> bool {
    match set_policy(tid, libc::SCHED_FIFO, i32::from(priority())) {
        Ok(()) => {
            l.raised = true;
            true
        }
        // Raising again what was allowed at the start: should it fail, the
        // loop stays at normal priority (or where an earlier raise left it).
        Err(e) => {
            debug!("raising the event loop: {e}");
            false
        }
    }
}

/// The event loop has applied every change it was handed: back to normal
/// priority.
pub fn loop_caught_up() {
    lower(the_loop());
}

/// While `busy` (a long job in the event loop) the loop stays at normal
/// priority.
pub fn set_busy(busy: bool) {
    let mut l = the_loop();
    l.busy = busy;
    if busy {
        lower(l);
    }
}

/// On the loop's thread, with the lock taken in `l`, which it releases.
fn lower(mut l: MutexGuard<'static, LoopPriority>) {
    if !l.raised {
        return;
    }
    l.raised = false;
    l.lowering = true;
    drop(l);
    // Not under the lock: the return from this call is where the loop, at
    // normal priority again, gives the CPU to whatever waited for it, and
    // the reader must not find the lock taken meanwhile.
    if let Err(e) = set_policy(0, libc::SCHED_OTHER, 0) {
        warn!("lowering the event loop's priority: {e}");
    }
    // The reader may have raised the loop in between, its call landing
    // before this one: raised again, as the state says.
    let mut l = the_loop();
    l.lowering = false;
    if l.raised {
        l.raised = false;
        raise(&mut l, 0);
    }
}

fn set_fifo(priority: u8) -> std::io::Result<()> {
    set_policy(0, libc::SCHED_FIFO, i32::from(priority))
}

/// sched_setscheduler(2) for a thread of this process (0: the calling one).
fn set_policy(tid: libc::pid_t, policy: i32, priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sched_setscheduler(2) on a thread of this process with a
    // valid sched_param; neither rustix nor nix offers it.
    let rc = unsafe { libc::sched_setscheduler(tid, policy | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_of(tid: libc::pid_t) -> i32 {
        // SAFETY: sched_getscheduler(2) on a thread of this process.
        let raw = unsafe { libc::sched_getscheduler(tid) };
        raw & !libc::SCHED_RESET_ON_FORK
    }

    /// The reader takes the priority for good, and nothing it starts
    /// inherits it; without privilege it is refused and the thread keeps
    /// normal scheduling.
    #[test]
    fn the_reader_at_fifo_alone() {
        configure(1);
        std::thread::spawn(|| {
            enter_reader();
            if policy_of(0) != libc::SCHED_FIFO {
                assert_eq!(set_fifo(1).unwrap_err().raw_os_error(), Some(libc::EPERM));
                eprintln!("skipped: no privilege for SCHED_FIFO here (refusal checked)");
                return;
            }
            assert_eq!(
                std::thread::spawn(|| policy_of(0)).join().unwrap(),
                libc::SCHED_OTHER
            );
        })
        .join()
        .unwrap();
    }

    /// The event loop runs at normal priority; at SCHED_FIFO from its first
    /// change until it has caught up, or when the reader raises it from its
    /// own thread; never during a job.
    #[test]
    fn the_loop_at_fifo_only_while_it_has_changes() {
        configure(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let (go, steps) = std::sync::mpsc::channel::<&str>();
        let the_thread = std::thread::spawn(move || {
            enter_loop();
            tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                .unwrap();
            while let Ok(step) = steps.recv() {
                match step {
                    "working" => loop_working(),
                    "caught up" => loop_caught_up(),
                    "busy" => set_busy(true),
                    "idle" => set_busy(false),
                    _ => break,
                }
                tx.send(0).unwrap();
            }
        });
        let tid = rx.recv().unwrap();
        let step = |s| {
            go.send(s).unwrap();
            rx.recv().unwrap();
        };
        assert_eq!(policy_of(tid), libc::SCHED_OTHER);
        if the_loop().tid != tid {
            step("working");
            assert!(!raise_loop());
            assert_eq!(policy_of(tid), libc::SCHED_OTHER);
            eprintln!(
                "skipped: no privilege for SCHED_FIFO here (the loop stays at normal priority)"
            );
        } else {
            step("working");
            assert_eq!(policy_of(tid), libc::SCHED_FIFO);
            assert!(!raise_loop(), "already raised");
            step("caught up");
            assert_eq!(policy_of(tid), libc::SCHED_OTHER);
            let raises = loop_raises();
            assert!(raise_loop());
            assert_eq!(loop_raises(), raises + 1, "a raise is counted");
            assert_eq!(policy_of(tid), libc::SCHED_FIFO);
            step("busy");
            assert_eq!(policy_of(tid), libc::SCHED_OTHER, "a job lowers it");
            assert!(!raise_loop(), "not raised during a job");
            assert_eq!(loop_raises(), raises + 1, "nor counted");
            step("working");
            assert_eq!(policy_of(tid), libc::SCHED_OTHER, "nor by itself");
            step("idle");
            step("working");
            assert_eq!(policy_of(tid), libc::SCHED_FIFO);
            step("caught up");
            assert_eq!(policy_of(tid), libc::SCHED_OTHER);
        }
        go.send("end").unwrap();
        the_thread.join().unwrap();
        the_loop().tid = 0;
    }
}
