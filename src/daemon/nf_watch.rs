//! Netfilter chains and tables that forwarded packets would cross (see
//! [`crate::netfilter`]), watched while accel runs on a thread beside the
//! event loop ([`super::watch`]).
//!
//! At start accel refuses to run beside them (unless told to bypass
//! them); rules added later cannot be refused: while any exist, the
//! datapath hands every packet it would forward to the kernel
//! (ACCEL_CFG_NETFILTER), which runs them. nftables base chains are read
//! over NETLINK_NETFILTER after every ruleset notification and every
//! [`super::watch::POLL`], legacy iptables tables (no notifications) from
//! /proc at the same pace.

use log::{info, warn};

use super::watch::{Notifications, Watch};
use crate::error_chain;
use crate::netlink::nf_chains::NfSocket;

/// What forwarded packets would cross.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NfFound {
    /// In words (empty: nothing).
    pub hooks: Vec<String>,
    /// Some of it runs at the netdev ingress hook (ingress chains,
    /// flowtables), before the kernel's IP header checks.
    pub ingress: bool,
}

pub type Read = Result<NfFound, NfError>;

#[derive(Debug, thiserror::Error)]
pub enum NfError {
    #[error("NETLINK_NETFILTER socket: {context}")]
    Socket {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("dumping the nftables {what}")]
    Dump {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread that watches them ended")]
    WatchEnded,
}

impl Notifications for NfSocket {
    const WHAT: &'static str = "nftables ruleset";

    fn drain_all(&self) -> std::io::Result<bool> {
        self.drain().map(|()| true)
    }
}

/// Without NETLINK_NETFILTER: nothing notifies, the legacy tables are
/// polled.
struct NoNotifications(std::os::fd::OwnedFd);

impl std::os::fd::AsFd for NoNotifications {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Notifications for NoNotifications {
    const WHAT: &'static str = "none";

    fn drain_all(&self) -> std::io::Result<bool> {
        Ok(false)
    }
}

/// The event loop's end: the readings that differ from the last.
pub struct NfWatch(Watch<NfFound, NfError>);

impl NfWatch {
    /// Nothing watched (`--allow-netfilter-bypass`).
    pub fn none() -> NfWatch {
        NfWatch(Watch::none())
    }

    /// Subscribes, reads once and starts the thread. A kernel without
    /// NETLINK_NETFILTER has only the legacy tables to poll.
    pub fn start() -> Result<(NfWatch, Read), NfError> {
        let socket = |context| move |source| NfError::Socket { context, source };
        let thread = socket("starting the thread that watches them");
        let events = match NfSocket::open(true) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => {
                info!(
                    "this kernel has no NETLINK_NETFILTER: only legacy iptables tables are watched"
                );
                // An eventfd nobody writes: never readable, so the thread
                // polls.
                let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)
                    .map_err(|e| thread(e.into()))?;
                let first = Ok(legacy());
                let watch = Watch::spawn("accel-nf", NoNotifications(fd), || Ok(legacy()), &first)
                    .map_err(thread)?;
                return Ok((NfWatch(watch), first));
            }
            Err(e) => return Err(socket("subscribing to ruleset changes")(e)),
        };
        let asker = NfSocket::open(false).map_err(socket("opening one to ask"))?;
        let first = read(&asker);
        let watch =
            Watch::spawn("accel-nf", events, move || read(&asker), &first).map_err(thread)?;
        Ok((NfWatch(watch), first))
    }

    /// The next reading that differs from the last (see [`Watch::next`]).
    pub async fn next(&mut self) -> Read {
        self.0.next(|| NfError::WatchEnded).await
    }
}

fn legacy() -> NfFound {
    NfFound {
        hooks: crate::netfilter::legacy_tables(),
        ingress: false,
    }
}

fn read(sock: &NfSocket) -> Read {
    let mut found = legacy();
    // nfnetlink answers EINVAL to a request for a subsystem it does not
    // have (nfnetlink_rcv_msg()): a kernel without nf_tables.
    fn none<T>(e: std::io::Error) -> std::io::Result<Vec<T>> {
        match e.raw_os_error() {
            Some(libc::EINVAL) => Ok(Vec::new()),
            _ => Err(e),
        }
    }
    let dumped = |what| move |source| NfError::Dump { what, source };
    let chains = sock.base_chains().or_else(none).map_err(dumped("chains"))?;
    for c in &chains {
        if let Some(hook) = c.forwarding_hook() {
            found.ingress |= hook == "ingress";
            found.hooks.push(c.describe(hook));
        }
    }
    let flowtables = sock
        .flowtables()
        .or_else(none)
        .map_err(dumped("flowtables"))?;
    found.ingress |= !flowtables.is_empty();
    found.hooks.extend(flowtables);
    Ok(found)
}

impl super::Daemon {
    /// A reading that differs from the last: the datapath's
    /// ACCEL_CFG_NETFILTER follows it (a failed one sets it: the datapath
    /// cannot be sure), and the log says when it flips.
    pub(super) fn nf_read(&mut self, read: Read) -> Result<(), super::DaemonError> {
        let flag = crate::mirror::CfgFlags::ACCEL_CFG_NETFILTER.0;
        let before = self.mirror.config_flags() & flag != 0;
        let on = read.as_ref().map_or(true, |found| !found.hooks.is_empty());
        // Unsure: from the ingress hook on.
        let ingress = read.as_ref().map_or(true, |found| found.ingress);
        match &read {
            Err(e) => warn!(
                "reading the netfilter rules: {}; forwarded traffic handed to the kernel \
                 until they can be read",
                error_chain(e)
            ),
            Ok(found) if on && !before => warn!(
                "netfilter rules on the forwarding path ({}): forwarded traffic handed to the \
                 kernel, which runs them (pass_netfilter)",
                found.hooks.join("; ")
            ),
            Ok(_) if !on && before => info!(
                "no netfilter rule on the forwarding path any more: the datapath forwards again"
            ),
            Ok(_) => {}
        }
        let changes = self.mirror.set_netfilter(on, ingress);
        Ok(self.maps.apply(&changes)?)
    }
}
