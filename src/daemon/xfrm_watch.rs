//! Whether IPsec (XFRM) policies apply to forwarded packets, watched on a
//! thread beside the event loop (see [`crate::netlink::xfrm`]).
//!
//! The kernel is asked at start, before anything is attached, and again
//! after every notification on XFRMNLGRP_POLICY and every
//! [`super::watch::POLL`] (a safety net: kernels before 5.16 do not
//! announce a new default policy). Asking takes the kernel's per-namespace
//! XFRM config mutex, which an IKE daemon installing SAs holds (see
//! [`super::watch`]).

use log::{info, warn};

use super::watch::{Notifications, Watch};
use crate::error_chain;
use crate::netlink::xfrm::{XfrmError, XfrmSocket, XfrmState};

/// One reading of the kernel's state.
pub type Read = Result<XfrmState, XfrmError>;

/// Whether a reading makes the datapath hand forwarded packets to the
/// kernel: so does one that failed (the datapath cannot be sure).
pub fn hands_over(read: &Read) -> bool {
    read.as_ref().map_or(true, XfrmState::applies_to_forwarding)
}

impl Notifications for XfrmSocket {
    const WHAT: &'static str = "IPsec (XFRM) policy";

    fn drain_all(&self) -> std::io::Result<bool> {
        self.drain()
            .map(|_| true)
            .map_err(|e| std::io::Error::other(error_chain(&e)))
    }
}

/// The event loop's end: the readings that differ from the last.
pub struct XfrmWatch(Watch<XfrmState, XfrmError>);

impl XfrmWatch {
    /// Subscribes, reads the state once (here, before anything forwards)
    /// and starts the thread. A kernel without XFRM has no policies and
    /// nothing to watch. Err only when the socket cannot be opened.
    pub fn start() -> Result<(XfrmWatch, Read), XfrmError> {
        let Some(events) = XfrmSocket::open()? else {
            info!("this kernel has no IPsec (XFRM): nothing to watch");
            return Ok((XfrmWatch(Watch::none()), Ok(XfrmState::NONE)));
        };
        // Subscribed before the first reading: no change falls between.
        events.subscribe()?;
        let mut asker = XfrmSocket::open()?.ok_or_else(|| XfrmError::Socket {
            context: "opening a second one",
            source: std::io::Error::from_raw_os_error(libc::EPROTONOSUPPORT),
        })?;
        let first = asker.state();
        let watch = Watch::spawn("accel-xfrm", events, move || asker.state(), &first).map_err(
            |source| XfrmError::Socket {
                context: "starting the thread that watches it",
                source,
            },
        )?;
        Ok((XfrmWatch(watch), first))
    }

    /// The next reading that differs from the last (see [`Watch::next`]).
    pub async fn next(&mut self) -> Read {
        self.0.next(|| XfrmError::WatchEnded).await
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
