//! What the mirror decides for a prefix: the datapath entry a route
//! becomes ([`RouteEntry`]), its next hops and paths, and why a route is
//! left to bpf_fib_lookup. Plain types, shared by the deciding code
//! ([`super::entries`]) and the compact encoding ([`super::code`]).

use std::net::IpAddr;

use crate::bpf::types::accel_limits;

/// A next hop as the datapath stores it; routes sharing one share an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhKey {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
}

/// One path of a multipath route, in the kernel's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    pub nh: NhKey,
    /// 1..=256 for a multipath route, 1..=65536 in a nexthop group.
    pub weight: u32,
}

/// An interned list of paths (see [`super::code::NhTable::intern_paths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathSet(pub u32);

/// The most paths the datapath's groups hold.
pub const MAX_PATHS: usize = accel_limits::ACCEL_MAX_PATHS.0 as usize;

/// The decision stored for a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteEntry {
    Unicast(NhKey),
    /// A multipath route (RTA_MULTIPATH): the kernel's hash picks a path.
    Multipath(PathSet),
    /// A route through nexthop object `id` (RTA_NH_ID), resolved through
    /// the objects the kernel announced, so that `ip nexthop replace`
    /// moves every route using it at once.
    Object(u32),
    Blackhole,
    /// unreachable / prohibit: the kernel sends the ICMP error.
    Unreachable,
    /// local, broadcast, anycast, multicast: the kernel delivers.
    Local,
    /// The mirror cannot represent it exactly: bpf_fib_lookup decides.
    Fib(FibReason),
    /// An IPv4 route with its own MTU: ip_forward() holds every packet to
    /// it (ip_dst_mtu_maybe_forward() with forwarding set), bpf_fib_lookup
    /// only where the MTU is locked (ip_mtu_from_fib_result()). Packets
    /// within it are bpf_fib_lookup's to forward, larger ones the kernel's
    /// (it fragments them or answers "fragmentation needed").
    FibWithinMtu(u16),
}

/// Declares [`FibReason`] from one list: each reason's code (its value in
/// a stored [`super::code::Code`]) and what `accel lookup` says about it.
macro_rules! fib_reasons {
    ($($(#[$doc:meta])* $name:ident = $value:literal: $text:literal,)*) => {
        /// Why a route is left to bpf_fib_lookup (shown by `accel lookup`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum FibReason {
            $($(#[$doc])* $name = $value,)*
        }

        impl FibReason {
            /// Every reason, in code order.
            pub const ALL: &[FibReason] = &[$(FibReason::$name,)*];

            pub fn code(self) -> u8 {
                self as u8
            }

            pub fn from_code(code: u8) -> Option<FibReason> {
                match code {
                    $($value => Some(FibReason::$name),)*
                    _ => None,
                }
            }

            fn text(self) -> &'static str {
                match self {
                    $(FibReason::$name => $text,)*
                }
            }
        }
    };
}

fib_reasons! {
    Multipath = 0: "multipath route with too many paths",
    Tos = 1: "TOS-specific route",
    RouteMtu = 2: "route has its own MTU",
    SourceSpecific = 3: "source-specific route",
    Encap = 4: "lightweight tunnel encapsulation",
    Throw = 5: "throw route",
    ForeignGateway = 6: "gateway of the other address family",
    DeadNexthop = 7: "next hop dead or link down",
    OtherType = 8: "route type the mirror does not model",
    /// Several routes share prefix, TOS and metric (`ip route append` or
    /// `prepend`): which one the kernel uses is list order the mirror does
    /// not keep.
    SameKey = 9: "several routes with this prefix and metric (ip route append)",
    /// The mirror has no room left for it (next-hop or group ids).
    Capacity = 10: "no room left in the datapath's tables",
    /// An IPv4 main-table route inside a local-table route that is not of
    /// type local: which wins depends on whether the kernel ever split
    /// its merged local and main tables (see `view::merged_or_not`).
    LocalCover = 11: "inside a custom local-table route (merged local and main tables or not)",
    /// The route expires (RA-learned, `expires`): the kernel stops using
    /// it when it does, before its deletion is announced.
    Expires = 12: "route that expires (the kernel stops using it before deleting it)",
}

impl std::fmt::Display for FibReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored code is TAG_FIB + code, the codes must be 0..ALL.len().
    #[test]
    fn fib_reason_codes_are_dense_and_round_trip() {
        for (i, r) in FibReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(r.code()), i);
            assert_eq!(FibReason::from_code(r.code()), Some(*r));
        }
        assert_eq!(FibReason::from_code(FibReason::ALL.len() as u8), None);
    }
}
