//! Per-interface forwarding settings the datapath must honour. They change
//! without netlink events that accel decodes, so the daemon polls them.

use std::path::Path;

use crate::bpf::types::accel_if_flags as IfFlags;

fn read(path: &str) -> Option<u32> {
    std::fs::read_to_string(Path::new(path))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The IPv6 MTU the kernel forwards with on an interface (ip6_forward uses
/// it, not the device MTU); 0 where IPv6 is disabled there: ip6_output()
/// drops what would leave through it, and the datapath's MTU check then
/// leaves every such packet to the kernel.
pub fn ipv6_mtu(name: &str) -> u32 {
    if !ipv6_enabled(name) {
        return 0;
    }
    read(&format!("/proc/sys/net/ipv6/conf/{name}/mtu")).unwrap_or(0)
}

/// Whether an interface has IPv6 at all: ip6_rcv_core() drops what arrives
/// on one without it (no inet6_dev, or disable_ipv6 set), as ip6_output()
/// does for what would leave through it.
fn ipv6_enabled(name: &str) -> bool {
    read(&format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6")) == Some(0)
}

/// ACCEL_IF_FWD4/FWD6/RPF_* for an interface of the current namespace.
pub fn iface_flags(name: &str) -> u32 {
    let mut flags = 0;
    // IPv4 forwards per ingress interface (IN_DEV_FORWARD).
    if read(&format!("/proc/sys/net/ipv4/conf/{name}/forwarding")) == Some(1) {
        flags |= IfFlags::ACCEL_IF_FWD4.0;
    }
    // IPv6 forwards when the global switch is on, or the interface forces
    // it, on an interface with IPv6 (else the kernel drops what arrives).
    if ipv6_enabled(name)
        && (read("/proc/sys/net/ipv6/conf/all/forwarding") == Some(1)
            || read(&format!("/proc/sys/net/ipv6/conf/{name}/force_forwarding")) == Some(1))
    {
        flags |= IfFlags::ACCEL_IF_FWD6.0;
    }
    // The kernel uses the larger of the "all" and the interface value.
    let rpf = read("/proc/sys/net/ipv4/conf/all/rp_filter")
        .unwrap_or(0)
        .max(read(&format!("/proc/sys/net/ipv4/conf/{name}/rp_filter")).unwrap_or(0));
    match rpf {
        0 => {}
        1 => flags |= IfFlags::ACCEL_IF_RPF_STRICT.0,
        _ => flags |= IfFlags::ACCEL_IF_RPF_LOOSE.0,
    }
    flags
}

/// The namespace-wide forwarding sysctls the datapath must honour: those
/// that decide the kernel's multipath hash (the seed is shared by IPv4 and
/// IPv6), and whether ip_forward() sets a packet's priority from its TOS.
pub fn forwarding() -> crate::mirror::ForwardingSysctls {
    crate::mirror::ForwardingSysctls {
        seed: read("/proc/sys/net/ipv4/fib_multipath_hash_seed").unwrap_or(0),
        policy4: read("/proc/sys/net/ipv4/fib_multipath_hash_policy").unwrap_or(0),
        policy6: read("/proc/sys/net/ipv6/fib_multipath_hash_policy").unwrap_or(0),
        // On by default since it was added (Linux 4.19).
        update_priority4: read("/proc/sys/net/ipv4/ip_forward_update_priority") != Some(0),
    }
}

/// Whether the kernel passes over next hops through a device that lost
/// carrier, and reports them dead (ignore_routes_with_linkdown): for IPv4
/// the larger of "all" and the device's (IN_DEV_ORCONF), for IPv6 the
/// device's (writing "all" sets every device). `own` is the device's own
/// setting as its link message carries it, exact for that moment: it can
/// be set without a netconf event (RTM_SETLINK with IFLA_AF_SPEC), and a
/// name read later may belong to another device.
pub fn ignores_linkdown(own: bool) -> bool {
    own || read("/proc/sys/net/ipv4/conf/all/ignore_routes_with_linkdown").unwrap_or(0) != 0
}

/// The device's own setting, read by name (after a netconf event, which
/// carries no link message): IPv4 or IPv6.
pub fn own_ignores_linkdown(name: &str) -> bool {
    ["ipv4", "ipv6"].iter().any(|f| {
        read(&format!(
            "/proc/sys/net/{f}/conf/{name}/ignore_routes_with_linkdown"
        ))
        .unwrap_or(0)
            != 0
    })
}
