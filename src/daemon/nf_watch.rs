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

/// What forwarded packets would cross, in words (empty: nothing).
pub type Read = Result<Vec<String>, NfError>;

#[derive(Debug, thiserror::Error)]
pub enum NfError {
    #[error("NETLINK_NETFILTER socket: {context}")]
    Socket {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("dumping the nftables chains")]
    Dump(#[source] std::io::Error),
    #[error("the thread that watches them ended")]
    WatchEnded,
}

impl Notifications for NfSocket {
    const WHAT: &'static str = "nftables ruleset";

    fn drain_all(&self) -> std::io::Result<bool> {
        self.drain().map(|()| true)
    }
}

/// The event loop's end: the readings that differ from the last.
pub struct NfWatch(Watch<Vec<String>, NfError>);

impl NfWatch {
    /// Nothing watched (`--allow-netfilter-bypass`).
    pub fn none() -> NfWatch {
        NfWatch(Watch::none())
    }

    /// Subscribes, reads once and starts the thread. A kernel without
    /// nftables has only the legacy tables to poll.
    pub fn start() -> Result<(NfWatch, Read), NfError> {
        let socket = |context| move |source| NfError::Socket { context, source };
        let events = match NfSocket::open(true) {
            Ok(s) => s,
            Err(e) if e.raw_os_error() == Some(libc::EPROTONOSUPPORT) => {
                info!("this kernel has no NETLINK_NETFILTER: nftables cannot be watched");
                return Ok((NfWatch::none(), Ok(crate::netfilter::legacy_tables())));
            }
            Err(e) => return Err(socket("subscribing to ruleset changes")(e)),
        };
        let asker = NfSocket::open(false).map_err(socket("opening one to ask"))?;
        let first = read(&asker);
        let watch = Watch::spawn("accel-nf", events, move || read(&asker), &first)
            .map_err(socket("starting the thread that watches it"))?;
        Ok((NfWatch(watch), first))
    }

    /// The next reading that differs from the last (see [`Watch::next`]).
    pub async fn next(&mut self) -> Read {
        self.0.next(|| NfError::WatchEnded).await
    }
}

fn read(sock: &NfSocket) -> Read {
    let mut found = crate::netfilter::legacy_tables();
    // nfnetlink answers EOPNOTSUPP without nf_tables, EAGAIN when it has
    // just loaded the module (nfnetlink_rcv_msg()): asked once more.
    let chains = match sock.base_chains() {
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => sock.base_chains(),
        other => other,
    };
    let chains = match chains {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Vec::new(),
        other => other.map_err(NfError::Dump)?,
    };
    found.extend(
        chains
            .iter()
            .filter_map(|c| c.forwarding_hook().map(|h| c.describe(h))),
    );
    Ok(found)
}

impl super::Daemon {
    /// A reading that differs from the last: the datapath's
    /// ACCEL_CFG_NETFILTER follows it (a failed one sets it: the datapath
    /// cannot be sure), and the log says when it flips.
    pub(super) fn nf_read(&mut self, read: Read) -> Result<(), super::DaemonError> {
        let flag = crate::mirror::CfgFlags::ACCEL_CFG_NETFILTER.0;
        let before = self.mirror.config_flags() & flag != 0;
        let on = read.as_ref().map_or(true, |found| !found.is_empty());
        match &read {
            Err(e) => warn!(
                "reading the netfilter rules: {}; forwarded traffic handed to the kernel \
                 until they can be read",
                error_chain(e)
            ),
            Ok(found) if on && !before => warn!(
                "netfilter rules on the forwarding path ({}): forwarded traffic handed to the \
                 kernel, which runs them (pass_netfilter)",
                found.join("; ")
            ),
            Ok(_) if !on && before => info!(
                "no netfilter rule on the forwarding path any more: the datapath forwards again"
            ),
            Ok(_) => {}
        }
        let changes = self.mirror.set_netfilter(on);
        Ok(self.maps.apply(&changes)?)
    }
}
