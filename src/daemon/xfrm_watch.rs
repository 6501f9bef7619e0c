//! Whether IPsec (XFRM) policies apply to forwarded packets, watched on a
//! thread beside the event loop (see [`crate::netlink::xfrm`]).
//!
//! The kernel is asked at start, before anything is attached, and again
//! after every notification on XFRMNLGRP_POLICY and every [`POLL`] (a
//! safety net: kernels before 5.16 do not announce a new default policy).
//! Asking takes the kernel's per-namespace XFRM config mutex, which an IKE
//! daemon installing SAs holds: the thread waits for it, not the loop.
//! What was read goes to the loop only when it differs from the last.

use std::time::Duration;

use log::{info, warn};
use rustix::event::{PollFd, PollFlags, Timespec};
use tokio::sync::mpsc;

use crate::error_chain;
use crate::netlink::xfrm::{XfrmError, XfrmSocket, XfrmState};

/// How often the kernel is asked without a notification.
const POLL: Timespec = Timespec {
    tv_sec: 5,
    tv_nsec: 0,
};

/// One reading of the kernel's state.
pub type Read = Result<XfrmState, XfrmError>;

/// Whether a reading makes the datapath hand forwarded packets to the
/// kernel: so does one that failed (the datapath cannot be sure).
pub fn hands_over(read: &Read) -> bool {
    read.as_ref().map_or(true, XfrmState::applies_to_forwarding)
}

/// The event loop's end: the readings that differ from the last.
pub struct XfrmWatch {
    rx: Option<mpsc::UnboundedReceiver<Read>>,
}

impl XfrmWatch {
    /// Subscribes, reads the state once (here, before anything forwards)
    /// and starts the thread. A kernel without XFRM has no policies and
    /// nothing to watch. Err only when the socket cannot be opened.
    pub fn start() -> Result<(XfrmWatch, Read), XfrmError> {
        let none = XfrmWatch { rx: None };
        let Some(events) = XfrmSocket::open()? else {
            info!("this kernel has no IPsec (XFRM): nothing to watch");
            return Ok((none, Ok(XfrmState::NONE)));
        };
        // Subscribed before the first reading: no change falls between.
        events.subscribe()?;
        let mut asker = XfrmSocket::open()?.ok_or_else(|| XfrmError::Socket {
            context: "opening a second one",
            source: std::io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
        })?;
        let first = asker.state();
        let (tx, rx) = mpsc::unbounded_channel();
        let last = Seen::of(&first);
        std::thread::Builder::new()
            .name("accel-xfrm".into())
            .spawn(move || watch(asker, &events, last, &tx))
            .map_err(|source| XfrmError::Socket {
                context: "starting the thread that watches it",
                source,
            })?;
        Ok((XfrmWatch { rx: Some(rx) }, first))
    }

    /// The next reading that differs from the last; pending forever
    /// without XFRM. Should the thread end (it ends only with the loop,
    /// or by a panic), a failed reading, once: the datapath cannot be
    /// sure any more.
    pub async fn next(&mut self) -> Read {
        match self.rx.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(read) => read,
                None => {
                    self.rx = None;
                    Err(XfrmError::WatchEnded)
                }
            },
            None => std::future::pending().await,
        }
    }
}

/// A reading as compared with the last: failures in a row are one.
#[derive(PartialEq, Eq)]
enum Seen {
    State(XfrmState),
    Failed,
}

impl Seen {
    fn of(read: &Read) -> Seen {
        match read {
            Ok(s) => Seen::State(*s),
            Err(_) => Seen::Failed,
        }
    }
}

/// The thread: waits for a notification or POLL, asks, hands what
/// differs to the loop; ends when the loop is gone.
fn watch(
    mut asker: XfrmSocket,
    events: &XfrmSocket,
    mut last: Seen,
    tx: &mpsc::UnboundedSender<Read>,
) {
    // The socket still tells of changes; if it fails, POLL alone.
    let mut notified = true;
    while !tx.is_closed() {
        if notified {
            notified = wait(events);
        } else {
            std::thread::sleep(Duration::from_secs(POLL.tv_sec as u64));
        }
        let read = asker.state();
        let seen = Seen::of(&read);
        if seen != last {
            last = seen;
            if tx.send(read).is_err() {
                return;
            }
        }
    }
}

/// Waits for notifications (and reads them) or POLL; false, said once,
/// when the socket fails.
fn wait(events: &XfrmSocket) -> bool {
    let mut fds = [PollFd::new(events, PollFlags::IN)];
    let waited = match rustix::event::poll(&mut fds, Some(&POLL)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
        Err(e) => Err(XfrmError::Socket {
            context: "waiting for policy notifications",
            source: e.into(),
        }),
    };
    match waited.and_then(|()| events.drain()) {
        Ok(_) => true,
        Err(e) => {
            warn!(
                "IPsec (XFRM) policy notifications: {}; asking the kernel every {} s instead",
                error_chain(&e),
                POLL.tv_sec
            );
            false
        }
    }
}

impl super::Daemon {
    /// A reading that differs from the last: the datapath's
    /// ACCEL_CFG_XFRM follows it, and the log says when it flips.
    pub(super) fn xfrm_read(&mut self, read: Read) -> Result<(), super::DaemonError> {
        let xfrm = crate::mirror::CfgFlags::ACCEL_CFG_XFRM.0;
        let before = self.mirror.config_flags() & xfrm != 0;
        let on = hands_over(&read);
        match &read {
            Err(e) => warn!(
                "reading IPsec (XFRM) policies: {}; forwarded traffic handed to the kernel \
                 until they can be read",
                error_chain(e)
            ),
            Ok(s) if on && !before => warn!(
                "IPsec (XFRM) policies present: forwarded traffic handed to the kernel ({})",
                s.describe()
            ),
            Ok(_) if !on && before => info!(
                "no IPsec (XFRM) policy applies to forwarded traffic any more: the datapath \
                 forwards again"
            ),
            Ok(_) => {}
        }
        let changes = self.mirror.set_xfrm(on);
        Ok(self.maps.apply(&changes)?)
    }
}
