//! How many entries each bounded structure of the datapath holds.
//!
//! The defaults are accel.h's, sized for full Internet tables. The
//! environment variable `ACCEL_CAPACITY` overrides them at start, for tests
//! (tiny tables that fill up with a handful of routes) and for routers that
//! need more room: `ACCEL_CAPACITY=ipv4_trie=64,nexthops=16`. The BPF maps
//! are sized from these values before the object is loaded, and the
//! control plane's allocators from the same values, so the two always
//! agree.

use crate::bpf::types::{accel_leaf as D, accel_limits as L, accel_trie as T};

pub const ENV: &str = "ACCEL_CAPACITY";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// 64-byte lines of the IPv4 trie's node array (a node of few routes
    /// takes one, the densest 16; see accel.h).
    pub ipv4_trie: u32,
    /// Lines of the IPv6 trie's node array.
    pub ipv6_trie: u32,
    /// Next-hop ids, id 0 included (never used).
    pub nexthops: u32,
    /// Multipath / nexthop-object group ids, id 0 included (never used).
    pub nh_groups: u32,
    /// Entries of neigh4 and of neigh6, each.
    pub neighbours: u32,
    /// Local IPv4 addresses.
    pub local_addrs: u32,
    /// Blackhole drop-counter slots, the shared slot 0 included.
    pub blackholes: u32,
    /// Source prefixes of `ip rule from` per family.
    pub src_rules: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ipv4_trie: T::ACCEL_LINES4.0,
            ipv6_trie: T::ACCEL_LINES6.0,
            nexthops: L::ACCEL_MAX_NEXTHOPS.0,
            nh_groups: L::ACCEL_MAX_GROUPS.0,
            neighbours: L::ACCEL_MAX_NEIGH.0,
            local_addrs: L::ACCEL_MAX_LOCAL_ADDRS.0,
            blackholes: L::ACCEL_MAX_BLACKHOLES.0,
            src_rules: L::ACCEL_MAX_SRC_RULES.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LimitsError {
    #[error("{ENV}: {0:?} is not NAME=COUNT (names: {NAMES})")]
    Syntax(String),
    #[error("{ENV}: unknown structure {0:?} (names: {NAMES})")]
    Unknown(String),
    #[error("{ENV}: {name} must be a number from {min} to {max}, not {value:?}")]
    Range {
        name: &'static str,
        value: String,
        min: u32,
        max: u32,
    },
}

const NAMES: &str =
    "ipv4_trie, ipv6_trie, nexthops, nh_groups, neighbours, local_addrs, blackholes, src_rules";

/// The names older versions gave the route structures: the IPv4
/// DIR-24-8's groups, then both tries' nodes of 256 leaves.
const RETIRED: [&str; 3] = ["ipv4_groups", "ipv4_nodes", "ipv6_nodes"];

/// Ids and group/node numbers travel in the 24-bit id field of a leaf.
const LEAF_IDS: u32 = D::ACCEL_LEAF_ID_MASK.0 + 1;

impl Limits {
    /// The defaults, with what `ACCEL_CAPACITY` overrides.
    pub fn from_env() -> Result<Limits, LimitsError> {
        match std::env::var(ENV) {
            Ok(spec) => Limits::parse(&spec),
            Err(_) => Ok(Limits::default()),
        }
    }

    /// `NAME=COUNT[,NAME=COUNT...]` over the defaults.
    pub fn parse(spec: &str) -> Result<Limits, LimitsError> {
        let mut l = Limits::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| LimitsError::Syntax(item.to_string()))?;
            let (name, value) = (name.trim(), value.trim());
            if RETIRED.contains(&name) {
                // Older instances hand it to their successor (a growth or
                // an upgrade), and operators may have it configured: an
                // upgrade must not fail on it.
                log::warn!(
                    "{ENV}: {name} (a route structure of older versions) is ignored; \
                     routes are sized by ipv4_trie and ipv6_trie, in 64-byte lines \
                     (defaults {} and {})",
                    T::ACCEL_LINES4.0,
                    T::ACCEL_LINES6.0
                );
                continue;
            }
            let (name, field, min, max) = l.field(name)?;
            *field = value
                .parse::<u32>()
                .ok()
                .filter(|v| (min..=max).contains(v))
                .ok_or_else(|| LimitsError::Range {
                    name,
                    value: value.to_string(),
                    min,
                    max,
                })?;
        }
        Ok(l)
    }

    /// The field called `name` with its bounds: ids need room for the
    /// unused id 0, and leaf-encoded numbers must fit the leaf.
    #[allow(clippy::type_complexity)]
    fn field(&mut self, name: &str) -> Result<(&'static str, &mut u32, u32, u32), LimitsError> {
        Ok(match name {
            "ipv4_trie" => ("ipv4_trie", &mut self.ipv4_trie, 1, LEAF_IDS),
            "ipv6_trie" => ("ipv6_trie", &mut self.ipv6_trie, 1, LEAF_IDS),
            "nexthops" => ("nexthops", &mut self.nexthops, 2, LEAF_IDS),
            "nh_groups" => ("nh_groups", &mut self.nh_groups, 2, LEAF_IDS),
            "neighbours" => ("neighbours", &mut self.neighbours, 1, u32::MAX),
            "local_addrs" => ("local_addrs", &mut self.local_addrs, 1, u32::MAX),
            "blackholes" => ("blackholes", &mut self.blackholes, 1, u32::MAX),
            "src_rules" => ("src_rules", &mut self.src_rules, 1, u32::MAX),
            other => return Err(LimitsError::Unknown(other.to_string())),
        })
    }

    pub fn is_default(&self) -> bool {
        *self == Limits::default()
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ipv4_trie={},ipv6_trie={},nexthops={},nh_groups={},neighbours={},local_addrs={},blackholes={},src_rules={}",
            self.ipv4_trie,
            self.ipv6_trie,
            self.nexthops,
            self.nh_groups,
            self.neighbours,
            self.local_addrs,
            self.blackholes,
            self.src_rules
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overrides_over_the_defaults() {
        // Older versions' route structures are ignored, not an error: a
        // successor inherits the ACCEL_CAPACITY its predecessor grew to.
        let old =
            Limits::parse("ipv4_groups=32768,ipv4_nodes=7,ipv6_nodes=8,ipv6_trie=99").unwrap();
        assert_eq!(old.ipv4_trie, Limits::default().ipv4_trie);
        assert_eq!(old.ipv6_trie, 99);
        let l = Limits::parse("ipv4_trie=64, nexthops=16,").unwrap();
        assert_eq!(l.ipv4_trie, 64);
        assert_eq!(l.nexthops, 16);
        assert_eq!(l.ipv6_trie, Limits::default().ipv6_trie);
        assert!(Limits::parse("").unwrap().is_default());
        // What Display prints parses back to the same limits.
        assert_eq!(Limits::parse(&l.to_string()).unwrap(), l);
    }

    #[test]
    fn refuses_what_the_datapath_cannot_hold() {
        assert_eq!(
            Limits::parse("ipv4_trie"),
            Err(LimitsError::Syntax("ipv4_trie".into()))
        );
        assert_eq!(
            Limits::parse("groups=3"),
            Err(LimitsError::Unknown("groups".into()))
        );
        for bad in [
            "nexthops=1",
            "ipv6_trie=0",
            "ipv4_trie=16777217",
            "neighbours=x",
        ] {
            assert!(
                matches!(Limits::parse(bad), Err(LimitsError::Range { .. })),
                "{bad}"
            );
        }
        let e = Limits::parse("nexthops=1").unwrap_err().to_string();
        assert_eq!(
            e,
            "ACCEL_CAPACITY: nexthops must be a number from 2 to 16777216, not \"1\""
        );
    }
}
