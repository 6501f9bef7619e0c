//! How full each bounded structure is: what `accel stats --capacity`
//! shows, what the alerts are raised from, and what a metrics exporter can
//! read ([`super::Monitor::figures`]).

use std::collections::BTreeMap;

use crate::bpf::types::accel_structure as S;

/// A structure of bounded size, in the order of enum accel_structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Structure {
    Ipv4Trie,
    Ipv6Trie,
    Nexthops,
    NhGroups,
    Neigh4,
    Neigh6,
    Local4,
    Blackholes,
    SrcRules4,
    SrcRules6,
}

impl Structure {
    pub const ALL: [Structure; S::ACCEL_CAP_MAX.0 as usize] = [
        Structure::Ipv4Trie,
        Structure::Ipv6Trie,
        Structure::Nexthops,
        Structure::NhGroups,
        Structure::Neigh4,
        Structure::Neigh6,
        Structure::Local4,
        Structure::Blackholes,
        Structure::SrcRules4,
        Structure::SrcRules6,
    ];

    /// Its index in the capacity map.
    pub fn index(self) -> u32 {
        let s = match self {
            Structure::Ipv4Trie => S::ACCEL_CAP_IPV4_TRIE,
            Structure::Ipv6Trie => S::ACCEL_CAP_IPV6_TRIE,
            Structure::Nexthops => S::ACCEL_CAP_NEXTHOPS,
            Structure::NhGroups => S::ACCEL_CAP_NH_GROUPS,
            Structure::Neigh4 => S::ACCEL_CAP_NEIGH4,
            Structure::Neigh6 => S::ACCEL_CAP_NEIGH6,
            Structure::Local4 => S::ACCEL_CAP_LOCAL4,
            Structure::Blackholes => S::ACCEL_CAP_BLACKHOLES,
            Structure::SrcRules4 => S::ACCEL_CAP_SRC_RULES4,
            Structure::SrcRules6 => S::ACCEL_CAP_SRC_RULES6,
        };
        s.0
    }

    /// The name in `accel stats --capacity` and its JSON.
    pub fn name(self) -> &'static str {
        match self {
            Structure::Ipv4Trie => "ipv4_trie",
            Structure::Ipv6Trie => "ipv6_trie",
            Structure::Nexthops => "nexthops",
            Structure::NhGroups => "nh_groups",
            Structure::Neigh4 => "neigh4",
            Structure::Neigh6 => "neigh6",
            Structure::Local4 => "local4",
            Structure::Blackholes => "blackholes",
            Structure::SrcRules4 => "src_rules4",
            Structure::SrcRules6 => "src_rules6",
        }
    }

    /// What it holds, for the alerts.
    pub fn what(self) -> &'static str {
        match self {
            Structure::Ipv4Trie => "IPv4 trie lines",
            Structure::Ipv6Trie => "IPv6 trie lines",
            Structure::Nexthops => "next-hop ids",
            Structure::NhGroups => "multipath/nexthop-object group ids",
            Structure::Neigh4 => "IPv4 neighbour entries",
            Structure::Neigh6 => "IPv6 neighbour entries",
            Structure::Local4 => "local IPv4 address entries",
            Structure::Blackholes => "blackhole drop-counter slots",
            Structure::SrcRules4 => "IPv4 `ip rule from` prefixes",
            Structure::SrcRules6 => "IPv6 `ip rule from` prefixes",
        }
    }

    /// Whether it holds ids handed out again only after a grace period
    /// (see [`crate::slots`]).
    pub fn is_ids(self) -> bool {
        matches!(
            self,
            Structure::Nexthops | Structure::NhGroups | Structure::Blackholes
        )
    }

    /// What the lack of room does, given the figures.
    pub fn effect(self, u: &Usage) -> String {
        let (n, r) = (u.degraded, u.regions);
        match self {
            Structure::Ipv4Trie | Structure::Ipv6Trie => format!(
                "{n} routes in {r} address ranges: those ranges are forwarded through \
                 bpf_fib_lookup"
            ),
            Structure::Nexthops => format!(
                "{n} routes and groups without a next-hop id are forwarded through bpf_fib_lookup"
            ),
            Structure::NhGroups => format!(
                "{n} multipath or nexthop-object routes without a group are forwarded through \
                 bpf_fib_lookup"
            ),
            Structure::Neigh4 | Structure::Neigh6 => format!(
                "{n} neighbours are not mirrored: traffic to them is forwarded through \
                 bpf_fib_lookup"
            ),
            Structure::Local4 => format!(
                "{n} local addresses are not mirrored: every IPv4 source is validated with \
                 bpf_fib_lookup"
            ),
            Structure::Blackholes => format!(
                "{n} blackhole prefixes count their drops together in the shared slot (\"other\")"
            ),
            Structure::SrcRules4 => format!(
                "{n} source prefixes do not fit: all IPv4 traffic is forwarded through \
                 bpf_fib_lookup"
            ),
            Structure::SrcRules6 => format!(
                "{n} source prefixes do not fit: all IPv6 traffic is forwarded through \
                 bpf_fib_lookup"
            ),
        }
    }
}

/// One structure's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Entries it can hold.
    pub capacity: u64,
    /// Entries in use.
    pub used: u64,
    /// Routes or entries it has no room for (left to bpf_fib_lookup, or
    /// for blackholes counted in the shared slot).
    pub degraded: u64,
    /// The /24s or IPv6 ranges those routes make bpf_fib_lookup answer
    /// for (route tables only).
    pub regions: u64,
}

impl Usage {
    pub fn new(capacity: usize, used: usize) -> Usage {
        Usage {
            capacity: capacity as u64,
            used: used as u64,
            ..Usage::default()
        }
    }

    pub fn degraded(self, degraded: usize, regions: usize) -> Usage {
        Usage {
            degraded: degraded as u64,
            regions: regions as u64,
            ..self
        }
    }

    /// Something did not fit.
    pub fn is_degraded(&self) -> bool {
        self.degraded > 0
    }
}

/// Every structure's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Figures(BTreeMap<Structure, Usage>);

impl Figures {
    pub fn set(&mut self, s: Structure, u: Usage) {
        self.0.insert(s, u);
    }

    pub fn get(&self, s: Structure) -> Usage {
        self.0.get(&s).copied().unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Structure, Usage)> + '_ {
        self.0.iter().map(|(s, u)| (*s, *u))
    }

    /// Routes and entries left without room, over all structures.
    pub fn degraded(&self) -> u64 {
        self.0.values().map(|u| u.degraded).sum()
    }

    /// The table of `accel stats --capacity`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{:<12} {:>10} {:>10} {:>10} {:>8}\n",
            "structure", "capacity", "used", "degraded", "regions"
        );
        for (st, u) in self.iter() {
            s += &format!(
                "{:<12} {:>10} {:>10} {:>10} {:>8}\n",
                st.name(),
                u.capacity,
                u.used,
                u.degraded,
                u.regions
            );
        }
        for (st, u) in self.iter().filter(|(_, u)| u.is_degraded()) {
            s += &format!("{} exhausted: {}\n", st.name(), st.effect(&u));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_follow_the_shared_enum() {
        for (i, s) in Structure::ALL.iter().enumerate() {
            assert_eq!(s.index() as usize, i);
        }
        let json = serde_json::to_value(Structure::SrcRules4).unwrap();
        assert_eq!(json, Structure::SrcRules4.name());
    }

    #[test]
    fn render_names_what_is_degraded() {
        let mut f = Figures::default();
        f.set(Structure::Nexthops, Usage::new(15, 3));
        f.set(Structure::Ipv4Trie, Usage::new(4, 4).degraded(12, 3));
        let text = f.render();
        assert!(text.contains("ipv4_trie             4          4         12        3"));
        assert!(text.contains("ipv4_trie exhausted: 12 routes in 3 address ranges"));
        assert!(!text.contains("nexthops exhausted"));
        assert_eq!(f.degraded(), 12);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["ipv4_trie"]["degraded"], 12);
    }
}
