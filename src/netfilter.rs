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
    match nft_ruleset() {
        Ok(Some(ruleset)) => found.extend(nft_hooks(&ruleset)),
        Ok(None) => {}
        // Rules accel cannot see count as rules.
        Err(why) => found.push(format!("nftables rules unknown: {why}")),
    }
    found
}

/// `nft list ruleset` (see [`run_trusted`]); `Ok(None)` without nft, or
/// when it fails (no nftables in the kernel).
fn nft_ruleset() -> Result<Option<String>, String> {
    Ok(run_trusted(&NFT, &["list", "ruleset"])?
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Chains of an `nft list ruleset` listing on the hooks forwarded packets
/// cross.
fn nft_hooks(ruleset: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut table = "";
    let mut chain = "";
    for line in ruleset.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("table ") {
            table = rest.trim_end_matches(" {");
        } else if let Some(rest) = line.strip_prefix("chain ") {
            chain = rest.trim_end_matches(" {");
        } else if line.starts_with("type ") {
            for hook in ["prerouting", "forward", "postrouting"] {
                if line.contains(&format!("hook {hook}")) {
                    found.push(format!("nftables chain {table} {chain} on hook {hook}"));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_forwarding_hooks_in_nft_listing() {
        let ruleset = "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\ntable ip nat {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}\n";
        assert_eq!(
            nft_hooks(ruleset),
            vec![
                "nftables chain inet filter forward on hook forward",
                "nftables chain ip nat post on hook postrouting"
            ]
        );
        assert!(nft_hooks(
            "table inet x {\n chain input {\n type filter hook input priority 0;\n }\n}"
        )
        .is_empty());
    }
}
