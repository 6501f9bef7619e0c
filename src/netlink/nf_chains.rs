//! nftables base chains on the hooks forwarded packets cross, read from
//! the kernel over NETLINK_NETFILTER (NFT_MSG_GETCHAIN, what `nft list
//! chains` asks), for the watch that follows them while accel runs (see
//! [`crate::netfilter`] for why they matter). Notifications on
//! NFNLGRP_NFTABLES only say that the ruleset changed.

use std::io;

use netlink_sys::protocols::NETLINK_NETFILTER;
use netlink_sys::Socket;

use super::attrs::attrs;
use super::raw_dump;

/// NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN, GETFLOWTABLE, and the
/// answers' types.
const GETCHAIN: u16 = 10 << 8 | 4;
const NEWCHAIN: u16 = 10 << 8 | 3;
const GETFLOWTABLE: u16 = 10 << 8 | 23;
const NEWFLOWTABLE: u16 = 10 << 8 | 22;
/// enum nft_flowtable_attributes.
const NFTA_FLOWTABLE_TABLE: u16 = 1;
const NFTA_FLOWTABLE_NAME: u16 = 2;
/// enum nfnetlink_groups: ruleset changes.
const NFNLGRP_NFTABLES: u32 = 7;
/// struct nfgenmsg: family, version, resource id.
const NFGENMSG_LEN: usize = 4;
/// enum nft_chain_attributes, enum nft_hook_attributes.
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_HOOK_HOOKNUM: u16 = 1;
/// NFPROTO_*.
const INET: u8 = 1;
const IPV4: u8 = 2;
const NETDEV: u8 = 5;
const BRIDGE: u8 = 7;
const IPV6: u8 = 10;

/// A base chain: family, table, name and hook number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    pub family: u8,
    pub table: String,
    pub name: String,
    pub hook: u32,
}

impl BaseChain {
    /// The hook's name where forwarded packets cross it: prerouting,
    /// forward, postrouting (NF_INET_* and NF_BR_* share the numbers),
    /// inet ingress, netdev ingress and egress (whatever device: the
    /// start check cannot tell them either).
    pub fn forwarding_hook(&self) -> Option<&'static str> {
        match (self.family, self.hook) {
            (INET | IPV4 | IPV6 | BRIDGE, 0) => Some("prerouting"),
            (INET | IPV4 | IPV6 | BRIDGE, 2) => Some("forward"),
            (INET | IPV4 | IPV6 | BRIDGE, 4) => Some("postrouting"),
            (INET, 5) | (NETDEV, 0) => Some("ingress"),
            (NETDEV, 1) => Some("egress"),
            _ => None,
        }
    }

    /// As the start check names them ([`crate::netfilter`]).
    pub fn describe(&self, hook: &str) -> String {
        format!(
            "nftables chain {} {} {} on hook {hook}",
            family_name(self.family),
            self.table,
            self.name
        )
    }
}

fn family_name(family: u8) -> &'static str {
    match family {
        INET => "inet",
        IPV4 => "ip",
        IPV6 => "ip6",
        NETDEV => "netdev",
        BRIDGE => "bridge",
        _ => "other",
    }
}

/// A NETLINK_NETFILTER socket; subscribed, it also receives ruleset
/// change notifications.
pub struct NfSocket {
    sock: Socket,
}

impl NfSocket {
    pub fn open(subscribe: bool) -> io::Result<NfSocket> {
        let group = subscribe.then_some(NFNLGRP_NFTABLES);
        Ok(NfSocket {
            sock: raw_dump::socket(NETLINK_NETFILTER, group)?,
        })
    }

    /// Every base chain of the namespace, all families.
    pub fn base_chains(&self) -> io::Result<Vec<BaseChain>> {
        raw_dump::dump(
            &self.sock,
            &mut request(GETCHAIN),
            |kind, payload| match kind {
                NEWCHAIN => parse_chain(payload),
                _ => Ok(None),
            },
        )
    }

    /// Every flowtable, in words. Its hooks are netdev ingress hooks that
    /// forward the flows it holds, NAT included, and outlive the rules
    /// that added them (nf_flow_offload_ip_hook()).
    pub fn flowtables(&self) -> io::Result<Vec<String>> {
        raw_dump::dump(&self.sock, &mut request(GETFLOWTABLE), |kind, payload| {
            Ok((kind == NEWFLOWTABLE).then(|| describe_flowtable(payload)))
        })
    }

    /// Reads every notification queued, without blocking.
    pub fn drain(&self) -> io::Result<()> {
        raw_dump::drain(&self.sock, |_, _| {})
    }
}

impl std::os::fd::AsFd for NfSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// A dump request for every family (struct nfgenmsg: NFPROTO_UNSPEC,
/// NFNETLINK_V0).
fn request(kind: u16) -> Vec<u8> {
    raw_dump::request(kind, NFGENMSG_LEN)
}

fn string(v: &[u8]) -> String {
    let s = v.split(|c| *c == 0).next().unwrap_or_default();
    String::from_utf8_lossy(s).into_owned()
}

fn describe_flowtable(p: &[u8]) -> String {
    let (mut table, mut name) = (String::new(), String::new());
    for a in attrs(p.get(NFGENMSG_LEN..).unwrap_or_default()).map_while(Result::ok) {
        match a.kind {
            NFTA_FLOWTABLE_TABLE => table = string(a.value),
            NFTA_FLOWTABLE_NAME => name = string(a.value),
            _ => {}
        }
    }
    let family = family_name(p.first().copied().unwrap_or(0));
    format!("nftables flowtable {family} {table} {name}")
}

/// A chain message: `None` for a chain without a hook (a regular chain,
/// reached only by a jump from a base chain).
fn parse_chain(p: &[u8]) -> io::Result<Option<BaseChain>> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed nftables chain");
    let family = *p.first().ok_or_else(malformed)?;
    let (mut table, mut name, mut hook) = (String::new(), String::new(), None);
    for a in attrs(p.get(NFGENMSG_LEN..).ok_or_else(malformed)?) {
        let a = a.map_err(|_| malformed())?;
        match a.kind {
            NFTA_CHAIN_TABLE => table = string(a.value),
            NFTA_CHAIN_NAME => name = string(a.value),
            NFTA_CHAIN_HOOK => {
                for h in attrs(a.value) {
                    let h = h.map_err(|_| malformed())?;
                    if h.kind == NFTA_HOOK_HOOKNUM {
                        let n: [u8; 4] = h.value.try_into().map_err(|_| malformed())?;
                        hook = Some(u32::from_be_bytes(n));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(hook.map(|hook| BaseChain {
        family,
        table,
        name,
        hook,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize((a.len() + 3) & !3, 0);
        a
    }

    /// A chain message's payload as nf_tables_fill_chain_info() builds it.
    fn chain(family: u8, table: &str, name: &str, hook: Option<u32>) -> Vec<u8> {
        let mut p = vec![family, 0, 0, 0];
        p.extend(attr(NFTA_CHAIN_TABLE, format!("{table}\0").as_bytes()));
        p.extend(attr(NFTA_CHAIN_NAME, format!("{name}\0").as_bytes()));
        if let Some(h) = hook {
            let nested = [
                attr(NFTA_HOOK_HOOKNUM, &h.to_be_bytes()),
                attr(2, &0u32.to_be_bytes()),
            ]
            .concat();
            p.extend(attr(NFTA_CHAIN_HOOK | 0x8000, &nested));
        }
        p
    }

    #[test]
    fn base_chains_on_forwarding_hooks_are_named_as_the_start_check_names_them() {
        let dump = [
            chain(INET, "filter", "input", Some(1)),
            chain(INET, "filter", "forward", Some(2)),
            chain(IPV4, "nat", "post", Some(4)),
            chain(IPV4, "nat", "helper", None),
            chain(NETDEV, "t", "eg", Some(1)),
            chain(3, "arp", "in", Some(0)),
        ];
        let found: Vec<BaseChain> = dump
            .iter()
            .filter_map(|c| parse_chain(c).unwrap())
            .collect();
        assert_eq!(found.len(), 5, "the regular chain has no hook: {found:?}");
        let named: Vec<String> = found
            .iter()
            .filter_map(|c| c.forwarding_hook().map(|h| c.describe(h)))
            .collect();
        assert_eq!(
            named,
            [
                "nftables chain inet filter forward on hook forward",
                "nftables chain ip nat post on hook postrouting",
                "nftables chain netdev t eg on hook egress",
            ]
        );
    }

    #[test]
    fn a_truncated_chain_is_an_error() {
        assert!(parse_chain(&[]).is_err());
        assert!(parse_chain(&[INET, 0, 0, 0, 9, 0]).is_err());
    }
}
