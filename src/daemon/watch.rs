//! Kernel state read on a thread beside the event loop, again after every
//! notification and every [`POLL`], and handed to the loop only when it
//! differs from the last reading (IPsec policies, tc configuration).
//!
//! Asking the kernel can wait for one of its locks (the XFRM config mutex,
//! RTNL), which the daemon installing routes or SAs holds: the thread
//! waits for it, not the loop.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use log::warn;
use rustix::event::{PollFd, PollFlags, Timespec};
use tokio::sync::mpsc;

/// How often the kernel is asked without a notification.
pub const POLL: Timespec = Timespec {
    tv_sec: 5,
    tv_nsec: 0,
};

/// A socket subscribed to notifications that only say that something
/// changed.
pub trait Notifications: AsFd + Send + 'static {
    /// Reads every notification queued, without blocking; true if one
    /// may concern what is watched (false: ask at the next POLL only).
    fn drain_all(&self) -> std::io::Result<bool>;
    /// What they announce, for the log ("tc", "IPsec (XFRM) policy").
    const WHAT: &'static str;
}

/// The event loop's end: the readings that differ from the last.
pub struct Watch<T, E> {
    rx: Option<mpsc::UnboundedReceiver<Result<T, E>>>,
}

impl<T: PartialEq + Clone + Send + 'static, E: Send + 'static> Watch<T, E> {
    /// A watch without a thread: nothing to watch.
    pub fn none() -> Self {
        Watch { rx: None }
    }

    /// Starts the thread named `name`, which waits on `events` (or POLL),
    /// calls `ask` and hands on what differs from `first`, the reading
    /// taken before.
    pub fn spawn<N: Notifications>(
        name: &str,
        events: N,
        mut ask: impl FnMut() -> Result<T, E> + Send + 'static,
        first: &Result<T, E>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut last = seen(first);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let poll = Duration::from_secs(POLL.tv_sec as u64);
                // The socket still tells of changes; if it fails, POLL alone.
                let mut notified = true;
                let mut asked = Instant::now();
                while !tx.is_closed() {
                    let relevant = if notified {
                        let woke = wait(&events);
                        notified = woke.is_some();
                        woke.unwrap_or(true)
                    } else {
                        std::thread::sleep(poll);
                        true
                    };
                    if !relevant && asked.elapsed() < poll {
                        continue;
                    }
                    asked = Instant::now();
                    let read = ask();
                    let now = seen(&read);
                    if now != last {
                        last = now;
                        if tx.send(read).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Watch { rx: Some(rx) })
    }

    /// The next reading that differs from the last; pending forever
    /// without a thread. Should the thread end (only with the loop, or by
    /// a panic), `ended`, once: the datapath cannot be sure any more.
    pub async fn next(&mut self, ended: impl FnOnce() -> E) -> Result<T, E> {
        match self.rx.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(read) => read,
                None => {
                    self.rx = None;
                    Err(ended())
                }
            },
            None => std::future::pending().await,
        }
    }
}

/// A reading as compared with the last: failures in a row are one.
fn seen<T: Clone, E>(read: &Result<T, E>) -> Option<T> {
    read.as_ref().ok().cloned()
}

/// Waits for notifications (and reads them) or POLL: whether one may
/// concern what is watched; None, said once, when the socket fails.
fn wait<N: Notifications>(events: &N) -> Option<bool> {
    let mut fds = [PollFd::new(events, PollFlags::IN)];
    let waited = match rustix::event::poll(&mut fds, Some(&POLL)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(e.into()),
    };
    match waited.and_then(|()| events.drain_all()) {
        Ok(relevant) => Some(relevant),
        Err(e) => {
            warn!(
                "{} notifications: {e}; asking the kernel every {} s instead",
                N::WHAT,
                POLL.tv_sec
            );
            None
        }
    }
}
