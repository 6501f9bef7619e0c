//! The `ip rule` list, read again beside the event loop after a rule
//! event.
//!
//! A rule notification does not say which rules remain, so the rules are
//! dumped; a dump takes the kernel's RTNL lock, which a routing daemon
//! installing a table holds for each route, and waiting for it held the
//! event loop for as long (no route change applied meanwhile). The mirror
//! sends both families to bpf_fib_lookup from the event on
//! ([`crate::mirror::Mirror::apply_into`]), so nothing is forwarded by
//! old rules while the dump runs.

use std::time::Duration;

use rtnetlink::Handle;
use tokio::sync::mpsc;

use crate::model::Rule;
use crate::netlink::{self, NetlinkError};

/// A failed read is tried again after this long, doubled after each
/// failure in a row up to [`RETRY_MAX`] (meanwhile bpf_fib_lookup decides).
const RETRY: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What one read found.
pub type Read = Result<Vec<Rule>, NetlinkError>;

/// One read at a time: events during a read ask for one more after it
/// (a burst of rule changes, as a PBR daemon makes, costs two reads, not
/// one per event), and only the answer of a read started after the last
/// event is taken.
pub struct RuleReader {
    running: bool,
    /// A rule event came after the running read started.
    again: bool,
    /// Reads failed in a row.
    failures: u32,
    tx: mpsc::UnboundedSender<Read>,
    rx: mpsc::UnboundedReceiver<Read>,
}

impl Default for RuleReader {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        RuleReader {
            running: false,
            again: false,
            failures: 0,
            tx,
            rx,
        }
    }
}

impl RuleReader {
    /// Rules changed: a read that sees the change will answer.
    pub fn start(&mut self, handle: &Handle) {
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        let (tx, handle) = (self.tx.clone(), handle.clone());
        let retry = RETRY
            .saturating_mul(1 << self.failures.min(7))
            .min(RETRY_MAX);
        tokio::spawn(async move {
            let read = netlink::dump_rules(&handle).await;
            if read.is_err() {
                tokio::time::sleep(retry).await;
            }
            // The loop is gone only when accel stops.
            let _ = tx.send(read);
        });
    }

    /// The next answer; pending forever while no read runs.
    pub async fn next(&mut self) -> Read {
        match self.rx.recv().await {
            Some(read) => read,
            // `self` holds a sender: the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// The rules of `read` if no rule changed since it started; `None`
    /// when the next read has been started instead.
    pub fn take(&mut self, read: Read, handle: &Handle) -> Option<Read> {
        self.running = false;
        if read.is_err() {
            self.failures = self.failures.saturating_add(1);
        } else {
            self.failures = 0;
        }
        if std::mem::take(&mut self.again) {
            self.start(handle);
            return None;
        }
        Some(read)
    }
}
