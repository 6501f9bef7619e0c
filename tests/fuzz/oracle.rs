//! The invariants every frame's outcome must satisfy, judged against the
//! world's models and the kernel reference (kernel_rx.rs):
//!
//! * never XDP_ABORTED (nor any action but DROP, PASS, REDIRECT);
//! * exactly one counter of the ingress moves, and it names the action;
//! * PASS and DROP leave the bytes as they came;
//! * DROP only where a blackhole route covers the destination, or where
//!   rp_filter on the ingress rejects the source;
//! * REDIRECT only for a frame the kernel would forward, through an egress
//!   and to a neighbour a route of the path taken (mirror or kernel FIB)
//!   names, within the egress MTU, from a source the kernel accepts, and
//!   the bytes are exactly the kernel's rewrite: new MACs, TTL - 1 with
//!   ip_decrease_ttl()'s checksum, padding past the IP length cut.

use std::net::IpAddr;

use accel::bpf::types::{accel_cfg_flags as C, accel_if_flags as F, accel_stat as S};

use super::frames::Frame;
use super::kernel_rx::{forwardable, header_drop, routable, Routable};
use super::lab::{forwarded, STAT_NAMES, XDP_DROP, XDP_PASS, XDP_REDIRECT};
use super::model::IfaceModel;
use super::pkt::{hex_diff, ipv4_csum_valid, ETH_HLEN};
use super::world::World;

/// What one BPF_PROG_TEST_RUN did.
pub struct Outcome {
    pub action: u32,
    pub out: Vec<u8>,
    /// (slot, counter, delta) of every per-slot counter that moved.
    pub moved: Vec<(usize, usize, u64)>,
    /// fwd_bytes delta per slot.
    pub fwd_bytes: Vec<u64>,
}

type Check = Result<(), String>;

pub fn check(w: &World, f: &Frame, o: &Outcome) -> Check {
    let ingress = w.iface(f.ingress).expect("frames arrive on lab interfaces");
    counters(ingress, o)?;
    match o.action {
        XDP_PASS => unchanged(f, o),
        XDP_DROP => {
            unchanged(f, o)?;
            drop_allowed(w, f, ingress, STAT_NAMES[o.moved[0].1])
        }
        XDP_REDIRECT => forward_allowed(w, f, ingress, o),
        a => Err(format!("action {a} ({})", super::lab::action_name(a))),
    }
}

fn unchanged(f: &Frame, o: &Outcome) -> Check {
    if o.out == f.bytes {
        return Ok(());
    }
    Err(format!(
        "frame changed though not forwarded:\n{}",
        hex_diff("input", &f.bytes, "output", &o.out)
    ))
}

/// One counter of the ingress slot moved by one and names the action;
/// fwd_bytes moved by the output length for a forward only. A frame on
/// an interface accel does not own moves nothing and goes up.
fn counters(ingress: &IfaceModel, o: &Outcome) -> Check {
    let Some(entry) = ingress.entry else {
        if o.action != XDP_PASS || !o.moved.is_empty() {
            return Err(format!(
                "interface not attached, yet action {} and counters {:?}",
                o.action, o.moved
            ));
        }
        return Ok(());
    };
    let slot = usize::from(entry.slot);
    let [(s, stat, 1)] = o.moved[..] else {
        return Err(format!("expected one counter +1, got {:?}", o.moved));
    };
    let fits = match o.action {
        XDP_REDIRECT => {
            stat == S::ACCEL_STAT_FWD_MIRROR.0 as usize || stat == S::ACCEL_STAT_FWD_FIB.0 as usize
        }
        XDP_DROP => STAT_NAMES[stat].starts_with("drop_"),
        _ => STAT_NAMES[stat].starts_with("pass_"),
    };
    if s != slot || !fits {
        return Err(format!(
            "counter slot {s} {} moved for action {} on slot {slot}",
            STAT_NAMES[stat], o.action
        ));
    }
    for (i, b) in o.fwd_bytes.iter().enumerate() {
        let want = if i == slot && o.action == XDP_REDIRECT {
            o.out.len() as u64
        } else {
            0
        };
        if *b != want {
            return Err(format!("slot {i} fwd_bytes moved by {b}, expected {want}"));
        }
    }
    Ok(())
}

/// The mirror may decide for this packet: no --mode fib, no policy the
/// mirror leaves to bpf_fib_lookup (rules, iif rules, source rules).
fn mirror_may_decide(w: &World, ingress: &IfaceModel, r: &Routable) -> bool {
    let cfg = w.mirror.cfg;
    let flags = ingress.entry.map_or(0, |e| e.flags);
    let (policy, iif_rules, src_rules) = if r.v6 {
        (
            C::ACCEL_CFG_POLICY6.0,
            F::ACCEL_IF_RULES6.0,
            C::ACCEL_CFG_SRC_RULES6.0,
        )
    } else {
        (
            C::ACCEL_CFG_POLICY4.0,
            F::ACCEL_IF_RULES4.0,
            C::ACCEL_CFG_SRC_RULES4.0,
        )
    };
    cfg & (C::ACCEL_CFG_FIB_ONLY.0 | policy) == 0
        && flags & iif_rules == 0
        && !(cfg & src_rules != 0 && w.mirror.src_rule(r.src))
}

fn drop_allowed(w: &World, f: &Frame, ingress: &IfaceModel, stat: &str) -> Check {
    if let Some(kernel) = header_drop(&f.bytes, ingress) {
        if stat == kernel {
            return Ok(());
        }
        return Err(format!(
            "dropped as {stat}; the kernel drops it as {kernel}"
        ));
    }
    let r = routable(&f.bytes, ingress).map_err(|why| format!("dropped, but {why}"))?;
    let mirror = mirror_may_decide(w, ingress, &r) && w.mirror.blackholes(r.dst);
    if mirror || w.kernel.blackholes(r.dst) || source_rejected(w, ingress, &r) {
        return Ok(());
    }
    Err(format!(
        "dropped, but no blackhole route covers {} and rp_filter accepts {}",
        r.dst, r.src
    ))
}

/// rp_filter is on for the ingress and the mirror, which may decide, has
/// no route back to the source that the mode accepts.
fn source_rejected(w: &World, ingress: &IfaceModel, r: &Routable) -> bool {
    let flags = ingress.entry.map_or(0, |e| e.flags);
    let strict = flags & F::ACCEL_IF_RPF_STRICT.0 != 0;
    let rpf = strict || flags & F::ACCEL_IF_RPF_LOOSE.0 != 0;
    !r.v6
        && rpf
        && mirror_may_decide(w, ingress, r)
        && !w.mirror.source_ok(r.src, ingress.ifindex, strict)
}

fn forward_allowed(w: &World, f: &Frame, ingress: &IfaceModel, o: &Outcome) -> Check {
    let r = forwardable(&f.bytes, ingress)
        .map_err(|why| format!("forwarded, but the kernel would not: {why}"))?;
    if w.mirror.cfg & C::ACCEL_CFG_XFRM.0 != 0 {
        return Err("forwarded while IPsec policies apply (only the kernel may)".into());
    }
    if o.out.len() < ETH_HLEN {
        return Err("forwarded a frame shorter than an Ethernet header".into());
    }
    let (dmac, smac): ([u8; 6], [u8; 6]) = (
        o.out[0..6].try_into().expect("6 bytes"),
        o.out[6..12].try_into().expect("6 bytes"),
    );
    let egress = w
        .ifaces
        .iter()
        .find(|i| i.mac == smac && i.ifindex != ingress.ifindex)
        .ok_or("source MAC is no other lab interface's")?;
    let entry = egress.entry.ok_or("egress not attached")?;
    if entry.flags & F::ACCEL_IF_UP.0 == 0 {
        return Err(format!("egress {} is down", egress.name));
    }
    let want = forwarded(&f.bytes, dmac, smac);
    if o.out != want {
        return Err(format!(
            "not the kernel's rewrite:\n{}",
            hex_diff("kernel", &want, "xdp", &o.out)
        ));
    }
    if !r.v6 && !ipv4_csum_valid(&o.out[ETH_HLEN..ETH_HLEN + 20]) {
        return Err("forwarded IPv4 header checksum does not verify".into());
    }
    let mtu = if r.v6 { entry.mtu6 } else { entry.mtu };
    if r.l3_len > mtu as usize {
        return Err(format!(
            "{} bytes forwarded over MTU {mtu} of {}",
            r.l3_len, egress.name
        ));
    }
    route_allows(w, ingress, &r, (egress.ifindex, dmac), o)?;
    source_allowed(w, ingress, &r)
}

/// The egress and neighbour belong to the route of the path the counter
/// names: the mirror's (which must be allowed to decide, and may pick
/// among paths only with the kernel's hash) or the kernel's FIB.
fn route_allows(
    w: &World,
    ingress: &IfaceModel,
    r: &Routable,
    hop: (u32, [u8; 6]),
    o: &Outcome,
) -> Check {
    let via_mirror = o.moved[0].1 == S::ACCEL_STAT_FWD_MIRROR.0 as usize;
    if via_mirror {
        if !mirror_may_decide(w, ingress, r) {
            return Err("forwarded from the mirror where the kernel's lookup must decide".into());
        }
        let hash = if r.v6 {
            C::ACCEL_CFG_MP_HASH6.0
        } else {
            C::ACCEL_CFG_MP_HASH4.0
        };
        if w.mirror.is_multipath(r.dst) && w.mirror.cfg & hash == 0 {
            return Err(
                "multipath route forwarded from the mirror without the kernel's hash seed".into(),
            );
        }
        if !w.mirror.hops(r.dst).contains(&hop) {
            return Err(format!("mirror has no route to {} via {hop:02x?}", r.dst));
        }
    } else if !w.kernel.hops(r.dst).contains(&hop) {
        return Err(format!(
            "kernel FIB has no route to {} via {hop:02x?}",
            r.dst
        ));
    }
    Ok(())
}

/// fib_validate_source(): never one of the router's own addresses; under
/// rp_filter a route back to the source (through the ingress if strict)
/// in the mirror or the kernel's FIB.
fn source_allowed(w: &World, ingress: &IfaceModel, r: &Routable) -> Check {
    if r.v6 {
        return Ok(());
    }
    let IpAddr::V4(src) = r.src else {
        unreachable!()
    };
    if w.mirror.local4.contains(&src) {
        return Err(format!("forwarded from the router's own address {src}"));
    }
    let flags = ingress.entry.map_or(0, |e| e.flags);
    let strict = flags & F::ACCEL_IF_RPF_STRICT.0 != 0;
    if !strict && flags & F::ACCEL_IF_RPF_LOOSE.0 == 0 {
        return Ok(());
    }
    if w.mirror.source_ok(r.src, ingress.ifindex, strict)
        || w.kernel.source_ok(r.src, ingress.ifindex, strict)
    {
        return Ok(());
    }
    Err(format!("rp_filter would reject source {src}"))
}
