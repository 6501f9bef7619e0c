//! Multipath and nexthop-object entries: what a datapath group holds.
//!
//! Routes through nexthop objects and multipath routes both point at a
//! group (`nh_groups` in the datapath). A group lists paths with the upper
//! bounds of the kernel's hash-threshold selection; a nexthop object that
//! is a single next hop is a group of one path. Rewriting a group moves
//! every route that uses it in one map write, as `ip nexthop replace` does
//! in the kernel.

use std::collections::HashMap;

use super::decision::{NhKey, Path, PathSet, MAX_PATHS};
use super::entries::path_key;
use crate::model::{Family, GroupKind, NextHop, NexthopObject};

/// What a group slot stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Paths(PathSet),
    Object(u32),
}

/// A group's paths as the mirror resolved them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupContent {
    /// A blackhole nexthop object: drop.
    pub blackhole: bool,
    /// Empty (and not blackhole): the mirror cannot tell; bpf_fib_lookup
    /// decides.
    pub paths: Vec<Path>,
}

impl GroupContent {
    pub fn unknown() -> Self {
        GroupContent::default()
    }
}

/// The paths of nexthop object `id`, or unknown when the object is
/// missing, resilient, an FDB or encap next hop, dead, or too large.
pub fn resolve_object(id: u32, objects: &HashMap<u32, NexthopObject>) -> GroupContent {
    match objects.get(&id) {
        Some(NexthopObject::Single {
            blackhole: true, ..
        }) => GroupContent {
            blackhole: true,
            paths: Vec::new(),
        },
        Some(single @ NexthopObject::Single { .. }) => match single_path(single) {
            Some(nh) => GroupContent {
                blackhole: false,
                paths: vec![Path { nh, weight: 1 }],
            },
            None => GroupContent::unknown(),
        },
        Some(NexthopObject::Group {
            kind: GroupKind::Multipath,
            members,
            ..
        }) if !members.is_empty() && members.len() <= MAX_PATHS => {
            let paths: Option<Vec<Path>> = members
                .iter()
                .map(|(member, weight)| {
                    let nh = objects.get(member).and_then(single_path)?;
                    Some(Path {
                        nh,
                        weight: (*weight).max(1),
                    })
                })
                .collect();
            GroupContent {
                blackhole: false,
                paths: paths.unwrap_or_default(),
            }
        }
        _ => GroupContent::unknown(),
    }
}

/// A plain forwarding next hop of a single object.
fn single_path(o: &NexthopObject) -> Option<NhKey> {
    let NexthopObject::Single {
        ifindex: Some(ifindex),
        gateway,
        blackhole: false,
        flags,
        special: false,
        ..
    } = o
    else {
        return None;
    };
    let nh = NextHop {
        ifindex: *ifindex,
        gateway: *gateway,
        flags: *flags,
        weight: 1,
    };
    // An object's gateway family decides nothing about the routes using
    // it, except that IPv6 routes cannot use IPv4 gateways (the kernel
    // refuses them), so check it as for an IPv4 route. An object is never
    // link-down: the kernel refuses one on a device without carrier and
    // flushes those on a device that loses it (nh_netdev_event).
    path_key(&nh, Family::V4, false).ok()
}

/// Removes object `id` as the kernel does (remove_nexthop): from every
/// group that has it too (remove_nexthop_from_groups), and a group left
/// without members goes with it (remove_nh_grp_entry). Returns the ids
/// gone, `id` first.
pub fn remove_object(id: u32, objects: &mut HashMap<u32, NexthopObject>) -> Vec<u32> {
    let mut gone = vec![id];
    objects.remove(&id);
    for (gid, o) in objects.iter_mut() {
        if let NexthopObject::Group { members, .. } = o {
            let had = members.len();
            members.retain(|(m, _)| *m != id);
            if had > 0 && members.is_empty() {
                gone.push(*gid);
            }
        }
    }
    for g in &gone[1..] {
        objects.remove(g);
    }
    gone
}

/// True when object `id`'s content depends on object `changed`.
pub fn depends_on(id: u32, changed: u32, objects: &HashMap<u32, NexthopObject>) -> bool {
    id == changed
        || matches!(objects.get(&id), Some(NexthopObject::Group { members, .. })
            if members.iter().any(|(m, _)| *m == changed))
}

/// The kernel's hash-threshold upper bounds (fib_rebalance,
/// rt6_multipath_rebalance, nh_group_rebalance): the cumulative weight
/// scaled to 2^31, rounded to the closest integer, minus one.
pub fn upper_bounds(weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    let mut w = 0u64;
    weights
        .iter()
        .map(|x| {
            w += u64::from(*x);
            (((w << 31) + total / 2) / total).saturating_sub(1) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(id: u32, ifindex: u32, gw: &str) -> NexthopObject {
        NexthopObject::Single {
            id,
            ifindex: Some(ifindex),
            gateway: Some(gw.parse().unwrap()),
            blackhole: false,
            flags: crate::model::NhFlags::empty(),
            special: false,
        }
    }

    #[test]
    fn bounds_match_the_kernel() {
        // Two equal paths split the 31-bit hash space in halves.
        assert_eq!(upper_bounds(&[1, 1]), vec![(1 << 30) - 1, (1 << 31) - 1]);
        // Weights 1 and 2: a third and the rest, rounded to closest.
        assert_eq!(upper_bounds(&[1, 2]), vec![715_827_882, (1 << 31) - 1]);
        assert_eq!(upper_bounds(&[5]), vec![(1 << 31) - 1]);
    }

    #[test]
    fn objects_resolve_to_paths() {
        let mut o = HashMap::new();
        o.insert(1, single(1, 3, "192.0.2.1"));
        o.insert(2, single(2, 4, "fe80::2"));
        o.insert(
            10,
            NexthopObject::Group {
                id: 10,
                kind: GroupKind::Multipath,
                members: vec![(1, 1), (2, 3)],
            },
        );
        let g = resolve_object(10, &o);
        assert!(!g.blackhole);
        assert_eq!(g.paths.len(), 2);
        assert_eq!((g.paths[1].nh.ifindex, g.paths[1].weight), (4, 3));
        assert_eq!(resolve_object(1, &o).paths.len(), 1);
        assert!(depends_on(10, 2, &o) && depends_on(2, 2, &o) && !depends_on(1, 2, &o));
        // A member the mirror has not seen: unknown, bpf_fib_lookup decides.
        o.insert(
            11,
            NexthopObject::Group {
                id: 11,
                kind: GroupKind::Multipath,
                members: vec![(1, 1), (99, 1)],
            },
        );
        assert_eq!(resolve_object(11, &o), GroupContent::unknown());
        assert_eq!(resolve_object(12, &o), GroupContent::unknown());
    }

    /// `ip nexthop del id 1`: group 10 loses a member, group 11 its last
    /// one and goes too.
    #[test]
    fn a_deleted_object_leaves_its_groups() {
        let mut o = HashMap::new();
        o.insert(1, single(1, 3, "192.0.2.1"));
        o.insert(2, single(2, 3, "192.0.2.2"));
        for (id, members) in [(10, vec![(1, 1), (2, 1)]), (11, vec![(1, 1)])] {
            let kind = GroupKind::Multipath;
            o.insert(id, NexthopObject::Group { id, kind, members });
        }
        let mut gone = remove_object(1, &mut o);
        gone.sort_unstable();
        assert_eq!(gone, vec![1, 11]);
        assert!(
            matches!(&o[&10], NexthopObject::Group { members, .. } if *members == vec![(2, 1)])
        );
        assert_eq!(o.len(), 2);
        assert_eq!(
            remove_object(7, &mut o),
            vec![7],
            "unknown: nothing else goes"
        );
    }

    #[test]
    fn resilient_and_blackhole_objects() {
        let mut o = HashMap::new();
        o.insert(1, single(1, 3, "192.0.2.1"));
        o.insert(
            20,
            NexthopObject::Group {
                id: 20,
                kind: GroupKind::Resilient,
                members: vec![(1, 1)],
            },
        );
        o.insert(
            30,
            NexthopObject::Single {
                id: 30,
                ifindex: None,
                gateway: None,
                blackhole: true,
                flags: crate::model::NhFlags::empty(),
                special: false,
            },
        );
        assert_eq!(resolve_object(20, &o), GroupContent::unknown());
        assert!(resolve_object(30, &o).blackhole);
    }
}
