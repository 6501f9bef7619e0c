//! The tc configuration on accel's interfaces (see [`crate::netlink::tc`]),
//! watched on a thread beside the event loop.
//!
//! Read at start, before anything is attached, then after every
//! notification on RTNLGRP_TC and every [`super::watch::POLL`] (tcx
//! programs come and go without a notification). A dump takes the RTNL
//! lock, which a routing daemon installing a table holds for each route
//! (see [`super::watch`]).

use std::collections::BTreeMap;

use log::{info, warn};

use super::watch::{Notifications, Watch};
use crate::datapath::{cls_bpf, tcx};
use crate::error_chain;
use crate::netlink::tc::{self, TcError, TcIface, TcSocket};

/// What acts on each of accel's interfaces, by ifindex.
pub type TcState = BTreeMap<u32, TcIface>;

/// One reading of the kernel's state.
pub type Read = Result<TcState, TcError>;

/// The subscribed socket, and the interfaces whose notifications count.
struct TcEvents {
    sock: TcSocket,
    ifaces: Vec<u32>,
}

impl std::os::fd::AsFd for TcEvents {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl Notifications for TcEvents {
    const WHAT: &'static str = "tc";

    /// Changes on other interfaces (a container host's churn) wait for
    /// the next POLL.
    fn drain_all(&self) -> std::io::Result<bool> {
        self.sock.drain(&self.ifaces)
    }
}

/// The event loop's end: the readings that differ from the last.
pub struct TcWatch {
    watch: Watch<TcState, TcError>,
    /// The last reading failed: the flags say nothing of what is there.
    failed: bool,
}

impl TcWatch {
    /// Nothing watched yet.
    pub fn none() -> TcWatch {
        TcWatch {
            watch: Watch::none(),
            failed: false,
        }
    }

    /// Subscribes, reads the state of `ifaces` once and starts the thread;
    /// `ours`: accel's TC program. Started once accel's own programs are
    /// attached: the tcx programs of a predecessor handing over may not be
    /// recognisable as accel's (telling a program's name by its id takes
    /// CAP_SYS_ADMIN), and tcx sends no notification when they go. Err
    /// only when a socket cannot be opened.
    pub fn start(ifaces: Vec<u32>, ours: u32) -> Result<(TcWatch, Read), TcError> {
        let socket = |context| move |source| TcError::Socket { context, source };
        // Subscribed before the first reading: no change falls between.
        let events = TcSocket::open(true).map_err(socket("subscribing to RTNLGRP_TC"))?;
        let asker = TcSocket::open(false).map_err(socket("opening one to ask"))?;
        let first = read(&asker, &ifaces, ours);
        let events = TcEvents {
            sock: events,
            ifaces: ifaces.clone(),
        };
        let ask = move || read(&asker, &ifaces, ours);
        let watch = Watch::spawn("accel-tc", events, ask, &first)
            .map_err(socket("starting the thread that watches it"))?;
        Ok((
            TcWatch {
                watch,
                failed: false,
            },
            first,
        ))
    }

    /// The next reading that differs from the last (see [`Watch::next`]).
    pub async fn next(&mut self) -> Read {
        self.watch.next(|| TcError::WatchEnded).await
    }
}

/// One reading on a socket of its own: before anything is attached, so
/// that accel never forwards past what is configured.
pub fn read_once(ifaces: &[u32], ours: u32) -> Read {
    let sock = TcSocket::open(false).map_err(|source| TcError::Socket {
        context: "opening one to ask",
        source,
    })?;
    read(&sock, ifaces, ours)
}

/// What acts on each of `ifaces`, `ours` being accel's TC program. A
/// device deleted meanwhile has an empty dump (its notification asks
/// again).
fn read(sock: &TcSocket, ifaces: &[u32], ours: u32) -> Read {
    let dumped = |what| move |source| TcError::Dump { what, source };
    let qdiscs = sock.qdiscs().map_err(dumped("qdiscs"))?;
    let mut state = TcState::new();
    for &ifindex in ifaces {
        let mut found = TcIface::default();
        let (ingress, clsact) = tc::judge_qdiscs(ifindex, &qdiscs, &mut found);
        let filters = |parent, hook, out: &mut Vec<String>| -> Result<(), TcError> {
            let listed = sock
                .filters(ifindex, parent)
                .map_err(dumped("tc filters"))?;
            tc::judge_filters(&listed, &cls_bpf::is_accels, hook, out);
            Ok(())
        };
        if ingress {
            filters(tc::PARENT_INGRESS, "ingress", &mut found.ingress)?;
        }
        if clsact {
            filters(tc::PARENT_EGRESS, "egress", &mut found.egress)?;
        }
        let tcx = |egress| tcx::foreign(ifindex, egress, ours).map_err(dumped("tcx programs"));
        found.ingress.extend(tcx(false)?);
        found.egress.extend(tcx(true)?);
        state.insert(ifindex, found);
    }
    Ok(state)
}

impl super::Daemon {
    /// A reading that differs from the last: each interface's
    /// ACCEL_IF_INGRESS_TC and ACCEL_IF_EGRESS_TC follow it, and the log
    /// says when they flip. A failed reading sets both: the datapath
    /// cannot be sure.
    pub(super) fn tc_read(&mut self, read: Read) -> Result<(), super::DaemonError> {
        if let Err(e) = &read {
            warn!(
                "reading the tc configuration: {}; traffic arriving on or leaving through \
                 accel's interfaces is left to the kernel until it can be read",
                error_chain(e)
            );
        }
        let unknown = || TcIface {
            ingress: vec!["unknown tc configuration".into()],
            egress: vec!["unknown tc configuration".into()],
        };
        let mut changes = Vec::new();
        let mut ifaces: Vec<(u32, String)> =
            self.ifaces.iter().map(|(i, n)| (*i, n.clone())).collect();
        ifaces.sort_unstable();
        for (ifindex, name) in ifaces {
            let found = match &read {
                Ok(state) => state.get(&ifindex).cloned().unwrap_or_default(),
                Err(_) => unknown(),
            };
            if read.is_ok() {
                // After a failure every flag is set: name all there is.
                let before = if self.tc.failed {
                    0
                } else {
                    self.mirror.tc_flags(ifindex)
                };
                log_flip(&name, before, &found);
            }
            changes.extend(self.mirror.set_tc_flags(ifindex, found.flags()));
        }
        self.tc.failed = read.is_err();
        Ok(self.maps.apply(&changes)?)
    }
}

/// Says what changes for `name`'s traffic.
fn log_flip(name: &str, before: u32, now: &TcIface) {
    use crate::bpf::types::accel_if_flags as F;
    let was = |f: F| before & f.0 != 0;
    match (was(F::ACCEL_IF_INGRESS_TC), now.ingress.is_empty()) {
        (false, false) => warn!(
            "{name}: {} act on what arrives there: accel forwards none of it, the kernel \
             runs them first (pass_tc_filters)",
            now.ingress.join(", ")
        ),
        (true, true) => info!("{name}: no tc ingress filter besides accel's: forwarding again"),
        _ => {}
    }
    match (was(F::ACCEL_IF_EGRESS_TC), now.egress.is_empty()) {
        (false, false) => info!(
            "{name}: {} act on what leaves there: traffic to it is forwarded through them \
             by accel's TC program, not redirected in XDP",
            now.egress.join(", ")
        ),
        (true, true) => {
            info!("{name}: nothing configured on its egress: XDP redirects to it again")
        }
        _ => {}
    }
}
