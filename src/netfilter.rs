//! Packets forwarded in XDP never traverse netfilter (prerouting, forward,
//! postrouting), tc or qdiscs. On a router that filters or NATs forwarded
//! traffic that would change what the router does, so accel looks first.

use crate::trusted_path::run_trusted;

/// Where `nft` may be: never looked up in $PATH, which root's caller may
/// have pointed anywhere.
const NFT: [&str; 2] = ["/usr/sbin/nft", "/sbin/nft"];

/// Netfilter state of the current namespace that XDP forwarding would
/// bypass, in words; empty when there is none.
pub fn bypassed_hooks() -> Vec<String> {
    let mut found = legacy_tables();
    match nft_ruleset() {
        Ok(Some(ruleset)) => match nft_hooks(&ruleset) {
            Ok(hooks) => found.extend(hooks),
            Err(why) => found.push(format!("nftables rules unknown: {why}")),
        },
        Ok(None) => {}
        // Rules accel cannot see count as rules.
        Err(why) => found.push(format!("nftables rules unknown: {why}")),
    }
    found
}

/// Legacy iptables tables loaded, in words (x_tables sends no
/// notification: these are polled).
pub fn legacy_tables() -> Vec<String> {
    let mut found = Vec::new();
    for (file, what) in [
        ("/proc/net/ip_tables_names", "iptables (legacy)"),
        ("/proc/net/ip6_tables_names", "ip6tables (legacy)"),
    ] {
        if let Ok(names) = std::fs::read_to_string(file) {
            let tables: Vec<&str> = names.split_whitespace().collect();
            if !tables.is_empty() {
                found.push(format!("{what} tables loaded: {}", tables.join(", ")));
            }
        }
    }
    found
}

/// `nft -j list ruleset` (see [`run_trusted`]); `Ok(None)` without nft,
/// or when it fails (no nftables in the kernel).
fn nft_ruleset() -> Result<Option<String>, String> {
    Ok(run_trusted(&NFT, &["-j", "list", "ruleset"])?
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// `nft -j` output (libnftables-json(5)): a list of one-key objects, of
/// which only chains matter here.
#[derive(serde::Deserialize)]
struct Ruleset {
    nftables: Vec<Object>,
}

#[derive(serde::Deserialize)]
struct Object {
    chain: Option<Chain>,
    flowtable: Option<Flowtable>,
}

/// A flowtable's hooks are netdev ingress hooks that forward the flows it
/// holds (NAT included), and outlive the rules that add flows to it.
#[derive(serde::Deserialize)]
struct Flowtable {
    family: String,
    table: String,
    name: String,
}

#[derive(serde::Deserialize)]
struct Chain {
    family: String,
    table: String,
    name: String,
    /// Base chains only.
    hook: Option<String>,
}

/// The hooks packets forwarded by the kernel cross; XDP forwarding skips
/// every one of them: XDP runs before the netdev ingress hook
/// (__netif_receive_skb_core) and a redirect leaves through the driver's
/// ndo_xdp_xmit, past the netdev egress hook (dev_queue_xmit). Ingress and
/// egress chains count whatever device they are bound to: nft 1.0.6's JSON
/// does not say which.
const FORWARDING_HOOKS: [&str; 5] = ["ingress", "prerouting", "forward", "postrouting", "egress"];

/// Chains of an `nft -j list ruleset` listing on the hooks forwarded
/// packets cross.
fn nft_hooks(json: &str) -> Result<Vec<String>, String> {
    let ruleset: Ruleset =
        serde_json::from_str(json).map_err(|e| format!("unreadable `nft -j` output: {e}"))?;
    Ok(ruleset
        .nftables
        .into_iter()
        .filter_map(|o| match (o.chain, o.flowtable) {
            (Some(c), _) => {
                let hook = c.hook.filter(|h| FORWARDING_HOOKS.contains(&h.as_str()))?;
                Some(format!(
                    "nftables chain {} {} {} on hook {hook}",
                    c.family, c.table, c.name
                ))
            }
            (None, Some(f)) => Some(format!(
                "nftables flowtable {} {} {}",
                f.family, f.table, f.name
            )),
            (None, None) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list ruleset` of nftables 1.0.6 (Debian 12) for
    ///   table inet filter { chain input {...hook input...}
    ///                       chain forward {...hook forward...} }
    ///   table ip nat { chain post {...hook postrouting...} chain helper {} }
    const RULESET: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "filter", "handle": 1}}, {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, {"table": {"family": "ip", "name": "nat", "handle": 2}}, {"chain": {"family": "ip", "table": "nat", "name": "post", "handle": 1, "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}, {"chain": {"family": "ip", "table": "nat", "name": "helper", "handle": 2}}]}"#;

    #[test]
    fn finds_forwarding_hooks_in_nft_json() {
        assert_eq!(
            nft_hooks(RULESET).unwrap(),
            vec![
                "nftables chain inet filter forward on hook forward",
                "nftables chain ip nat post on hook postrouting"
            ]
        );
        let empty =
            r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}"#;
        assert!(nft_hooks(empty).unwrap().is_empty());
    }

    /// netdev and inet ingress chains and a netdev egress chain, as nft
    /// 1.0.6 lists them (without their device).
    #[test]
    fn netdev_ingress_and_egress_chains_are_bypassed_too() {
        let ruleset = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "netdev", "name": "t", "handle": 1}}, {"chain": {"family": "netdev", "table": "t", "name": "ing", "handle": 1, "type": "filter", "hook": "ingress", "prio": 0, "policy": "accept"}}, {"chain": {"family": "netdev", "table": "t", "name": "eg", "handle": 2, "type": "filter", "hook": "egress", "prio": 0, "policy": "accept"}}, {"table": {"family": "inet", "name": "u", "handle": 2}}, {"chain": {"family": "inet", "table": "u", "name": "ing2", "handle": 1, "type": "filter", "hook": "ingress", "prio": 0, "policy": "accept"}}]}"#;
        assert_eq!(
            nft_hooks(ruleset).unwrap(),
            vec![
                "nftables chain netdev t ing on hook ingress",
                "nftables chain netdev t eg on hook egress",
                "nftables chain inet u ing2 on hook ingress"
            ]
        );
    }

    /// A flowtable, as nft 1.0.6 lists it.
    #[test]
    fn flowtables_count() {
        let ruleset = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "f", "handle": 1}}, {"flowtable": {"family": "inet", "name": "ft", "table": "f", "handle": 2, "hook": "ingress", "prio": 0, "dev": "eth0"}}]}"#;
        assert_eq!(
            nft_hooks(ruleset).unwrap(),
            vec!["nftables flowtable inet f ft"]
        );
    }

    #[test]
    fn unreadable_output_is_an_error_not_no_rules() {
        assert!(nft_hooks("table inet x {").is_err());
    }
}
