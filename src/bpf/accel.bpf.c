// SPDX-License-Identifier: GPL-2.0
/*
 * accel's datapath: forward IPv4 and IPv6 exactly as the kernel would,
 * from a mirror of its FIB, and hand everything else to the kernel. One
 * decision code, two programs: accel_xdp and accel_tc (TC ingress, for
 * interfaces XDP cannot serve), see pkt.h.
 *
 * Every XDP_REDIRECT below is taken only after the checks the kernel's own
 * forwarding path makes (ip_rcv/ip_forward, ipv6_rcv/ip6_forward) have all
 * passed; whenever one of them would not, the packet goes up unmodified
 * with XDP_PASS and the kernel does what it always does.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "accel.h"
#include "maps.h"
#include "pkt.h"
#include "parse.h"
#include "forward.h"
#include "multipath.h"

char LICENSE[] SEC("license") = "GPL";

/* Referenced here so that BTF, and so the skeleton's Rust types, carry
 * every struct of the shared header. */
struct accel_abi {
	struct accel_route4_key route4_key;
	struct accel_route6_key route6_key;
	struct accel_route route;
	struct accel_nexthop nexthop;
	struct accel_path path;
	struct accel_nh_group nh_group;
	struct accel_neigh4_key neigh4_key;
	struct accel_neigh6_key neigh6_key;
	struct accel_neigh neigh;
	struct accel_iface iface;
	struct accel_config config;
	struct accel_stats stats;
	enum accel_stat stat;
	enum accel_route_type route_type;
	enum accel_limits limits;
	enum accel_nh_flags nh_flags;
	enum accel_if_flags if_flags;
	enum accel_cfg_flags cfg_flags;
	enum accel_group_flags group_flags;
	enum accel_leaf leaf;
	enum accel_trie trie;
	struct accel_leaves leaves;
	struct accel_blackhole blackhole;
	struct accel_blackhole_prefix blackhole_prefix;
	enum accel_fib_mark fib_mark;
	enum accel_structure structure;
	struct accel_capacity capacity;
	enum accel_handoff handoff;
};
struct accel_abi accel_abi_types;

#define IPV6_FLOWINFO_MASK bpf_htonl(0x0FFFFFFF)

/* The "ports" bpf_fib_lookup hashes under the L4 multipath policy: what the
 * kernel's flow dissector takes for the forwarding path's hash
 * (fib_multipath_hash() with the skb), 4 bytes at proto_ports_offset() for
 * TCP, UDP, DCCP, SCTP, UDP-Lite, and the SPI of ESP and AH
 * (l4_ports_offset(), multipath.h). Zero for fragments, as the dissector
 * leaves them for every fragment (the callers pass no first fragment). */
static __always_inline void l4_ports(void *l4, void *end, __u8 proto,
				     struct bpf_fib_lookup *p)
{
	int off = l4_ports_offset(proto);
	struct l4_ports {
		__be16 src;
		__be16 dst;
	} *ports;

	if (off < 0)
		return;
	ports = header_at(struct l4_ports, l4, end, off);
	if (ports) {
		p->sport = ports->src;
		p->dport = ports->dst;
	}
}

/* What a mirrored route that is not unicast decides, in both families. */
static __always_inline int route_type_verdict(struct pkt *k,
					      struct accel_route *rt)
{
	struct accel_stats *st = k->st;
	struct accel_blackhole *bh;

	switch (rt->type) {
	case ACCEL_RT_BLACKHOLE:
		bh = bpf_map_lookup_elem(&blackhole_drops, &rt->nh_id);
		if (bh) {
			bh->packets++;
			bh->bytes += k->len;
		}
		return count(st, ACCEL_STAT_DROP_BLACKHOLE, XDP_DROP);
	case ACCEL_RT_UNREACHABLE:
		return count(st, ACCEL_STAT_PASS_NO_ROUTE, XDP_PASS);
	case ACCEL_RT_LOCAL:
		return count(st, ACCEL_STAT_PASS_LOCAL, XDP_PASS);
	default:
		return ACCEL_TRY_FIB;
	}
}

/*
 * Whether a multipath route or nexthop object has a path through the
 * ingress (fib_info_nh_uses_dev): 1 yes, 0 no, -1 not the mirror's to
 * judge (an unresolved group, a blackhole object).
 */
static __always_inline int group_uses_dev(__u32 group, __u32 in_ifindex)
{
	struct accel_nh_group *g = bpf_map_lookup_elem(&nh_groups, &group);
	struct accel_nexthop *nh;
	int unknown = 0;

	if (!g || (g->flags & ACCEL_GROUP_BLACKHOLE) || !g->count)
		return -1;
#pragma unroll
	for (int i = 0; i < ACCEL_MAX_PATHS; i++) {
		if (i >= g->count)
			break;
		nh = nexthop_lookup(g->paths[i].nh_id);
		/* A path the mirror cannot read (its next hop's slot not
		 * written yet) may be the one through the ingress. */
		if (!nh)
			unknown = 1;
		else if (nh->ifindex == in_ifindex)
			return 1;
	}
	return unknown ? -1 : 0;
}

/*
 * The next hop of a route before any hashing: its own for a unicast route,
 * the only path of a one-path group (nexthop objects), a drop for a
 * blackhole object. *g is the group when the multipath hash must pick;
 * *nh_id 0 with no group: bpf_fib_lookup decides.
 */
static __always_inline int group_route(struct pkt *k, struct accel_route *rt,
				       __u32 *nh_id, struct accel_nh_group **g)
{
	struct accel_nh_group *grp;

	*g = NULL;
	*nh_id = rt->nh_id;
	if (rt->type != ACCEL_RT_MULTIPATH)
		return ACCEL_GO;
	*nh_id = 0;
	grp = bpf_map_lookup_elem(&nh_groups, &rt->nh_id);
	if (!grp)
		return ACCEL_GO;
	if (grp->flags & ACCEL_GROUP_BLACKHOLE)
		return count(k->st, ACCEL_STAT_DROP_BLACKHOLE, XDP_DROP);
	if (grp->count == 1)
		*nh_id = grp->paths[0].nh_id;
	else
		*g = grp;
	return ACCEL_GO;
}

/*
 * The IP length ip_exceeds_mtu() and ip6_pkt_too_big() hold against the
 * egress MTU: the packet's own, or for a GSO packet (TC only: GRO merged
 * it) the length of each segment it will be cut into again,
 * skb_gso_network_seglen(). 0xffff, more than any segment, where the
 * transport header is not TCP or UDP (other GSO types): the kernel
 * decides.
 */
static __always_inline __u32 seg_len(struct pkt *k, void *l4, __u8 proto,
				     __u32 l3_hdr_len, __u32 l3_len)
{
	struct tcphdr *th;

	if (!k->gso_size)
		return l3_len;
	/* A UDP GSO packet may be SKB_GSO_UDP_L4 (segments of udphdr +
	 * gso_size) or a tunnel's (SKB_GSO_UDP_TUNNEL: GRO merged a VXLAN or
	 * GENEVE flow, whose segments also carry the inner headers). TC
	 * cannot read gso_type to tell them apart: the kernel decides. */
	if (proto == IPPROTO_UDP)
		return 0xffff;
	th = header_at(struct tcphdr, l4, k->end, 0);
	if (proto == IPPROTO_TCP && th)
		return l3_hdr_len + th->doff * 4 + k->gso_size;
	return 0xffff;
}

/* ---------------------------------------------------------------- IPv4 */

/* 1 when a mirrored `ip rule from PREFIX` covers addr as a source. */
static __always_inline int src_rule4(struct pkt *k, __be32 addr)
{
	struct accel_route4_key key = { .prefixlen = 32, .addr = addr };

	return (k->cfg & ACCEL_CFG_SRC_RULES4) &&
	       bpf_map_lookup_elem(&src_rules4, &key);
}

/* The bit of local4_bits for addr (network order, as local4's keys); the
 * control plane folds the same way (src/datapath/maps.rs). */
static __always_inline __u32 local4_fold(__be32 addr)
{
	return ((__u32)addr ^ ((__u32)addr >> 16)) & 0xffff;
}

/* Whether addr is one of the router's own (inet_lookup_ifaddr_rcu()):
 * a clear bit answers no; a set one may be another address's, and the
 * hash decides. */
static __always_inline int local4_has(__be32 addr)
{
	__u32 bit = local4_fold(addr), word = bit / 64;
	__u64 *bits = bpf_map_lookup_elem(&local4_bits, &word);

	if (bits && !((*bits >> (bit % 64)) & 1))
		return 0;
	return bpf_map_lookup_elem(&local4, &addr) != NULL;
}

/* What fib_validate_source() decides for a forwarded packet's source. */
enum src_verdict {
	SRC_KERNEL = 0, /* the datapath cannot be sure: the kernel decides */
	SRC_OK,		/* accepted */
	SRC_RPF,	/* -EXDEV: rejected by rp_filter */
};

/*
 * __fib_validate_source() from the mirror's route for the source. The
 * kernel's reverse lookup fails for no route and for blackhole,
 * unreachable and prohibit routes alike (check_leaf returns their
 * fib_props error): last_resort, -EXDEV under rp_filter. A unicast route
 * must go back through the ingress (dev_match); if it does not, an ingress
 * without IPv4 address or strict mode rejects (-EXDEV), loose mode
 * accepts. Local, broadcast and the like are -EINVAL unless accept_local,
 * which is not mirrored: the kernel's call.
 */
static __always_inline int ipv4_mirror_source(struct pkt *k, __be32 saddr,
					      __u32 rpf, int certain)
{
	struct accel_route rt;
	struct accel_nexthop *nh;
	struct accel_blackhole *bh;
	int dev_match;

	if (!route4_lookup(saddr, &rt))
		return SRC_RPF; /* last_resort with rp_filter on */
	switch (rt.type) {
	case ACCEL_RT_BLACKHOLE:
		bh = certain ? bpf_map_lookup_elem(&src_blackhole_drops, &rt.nh_id)
			     : NULL;
		if (bh) {
			bh->packets++;
			bh->bytes += k->len;
		}
		return SRC_RPF;
	case ACCEL_RT_UNREACHABLE:
		return SRC_RPF;
	case ACCEL_RT_MULTIPATH:
		dev_match = group_uses_dev(rt.nh_id, k->in_ifindex);
		if (dev_match < 0)
			return SRC_KERNEL;
		break;
	case ACCEL_RT_UNICAST:
		nh = nexthop_lookup(rt.nh_id);
		if (!nh)
			return SRC_KERNEL;
		dev_match = nh->ifindex == k->in_ifindex;
		break;
	default:
		/* Local (accept_local is not mirrored), or bpf_fib_lookup's. */
		return SRC_KERNEL;
	}
	if (dev_match)
		return SRC_OK;
	if ((rpf & ACCEL_IF_RPF_STRICT) ||
	    (rpf && (k->in->flags & ACCEL_IF_NO_ADDR4)))
		return SRC_RPF;
	return SRC_OK;
}

/*
 * Whether the mirror may judge the source of a packet leaving through
 * out: __fib_validate_source() looks the source up with the egress as
 * input interface (flowi4_iif = oif), so an `ip rule iif EGRESS` may
 * apply, which only the kernel's own lookup (bpf_fib_lookup with that
 * ifindex) honours.
 */
static __always_inline int mirror_judges_source(int mirror,
						struct accel_iface *out)
{
	return mirror && !(out->flags & ACCEL_IF_RULES4);
}

/*
 * fib_validate_source() for a packet leaving through out_ifindex. A
 * rejection is only certain (and the packet dropped) from the mirror, with
 * a live lease, and with rp_filter configured on the ingress; otherwise
 * the kernel decides.
 */
static __always_inline int ipv4_source_verdict(struct pkt *k, struct iphdr *ip,
					       __u32 out_ifindex, int mirror)
{
	__u32 rpf = k->in->flags & (ACCEL_IF_RPF_STRICT | ACCEL_IF_RPF_LOOSE);
	int certain = rpf && !(k->cfg & ACCEL_CFG_NO_LEASE);
	int v;

	/* Without a lease, rp_filter and the local addresses as mirrored may
	 * be stale: check as strictly as the kernel ever would, through its
	 * own lookup, and leave every doubtful packet to it. */
	if (k->cfg & ACCEL_CFG_NO_LEASE)
		rpf = ACCEL_IF_RPF_STRICT;

	/* A local source is martian unless accept_local (not mirrored). */
	if (local4_has(ip->saddr))
		return SRC_KERNEL;
	/* local4 without room for every local address cannot tell that a
	 * source is not the router's own; the kernel's reverse lookup can
	 * (a local address has no unicast route). */
	if (k->cfg & ACCEL_CFG_LOCAL4_PARTIAL)
		mirror = 0;
	else if (!rpf && !(k->cfg & ACCEL_CFG_SRC_FULL4))
		return SRC_OK;
	/* The reverse lookup has the packet's destination as its source: a
	 * source rule may apply to it. */
	if (src_rule4(k, ip->daddr))
		mirror = 0;

	if (mirror) {
		v = ipv4_mirror_source(k, ip->saddr, rpf, certain);
		if (v == SRC_OK || certain)
			return v;
		return SRC_KERNEL;
	}

	struct bpf_fib_lookup p = {};

	p.family = AF_INET;
	p.tos = ip->tos;
	/* The reverse lookup has no packet size to check: a length that fits
	 * any MTU. Left 0, an skb's lookup would hold the packet itself
	 * against the reverse route's device (is_skb_forwardable()), which
	 * an XDP lookup does not. */
	p.tot_len = sizeof(*ip);
	p.ifindex = out_ifindex;
	p.ipv4_src = ip->daddr;
	p.ipv4_dst = ip->saddr;
	if (bpf_fib_lookup(k->ctx, &p, sizeof(p), BPF_FIB_LOOKUP_SKIP_NEIGH) !=
	    BPF_FIB_LKUP_RET_SUCCESS)
		return SRC_KERNEL;
	if (p.ifindex == k->in_ifindex || !rpf)
		return SRC_OK;
	if ((rpf & ACCEL_IF_RPF_STRICT) || (k->in->flags & ACCEL_IF_NO_ADDR4))
		return SRC_KERNEL;
	return SRC_OK;
}

/*
 * What ip_forward checks once the route says "forward", in its order: these
 * come after the route lookup so that packets for local, unreachable or
 * blackhole destinations are counted (and treated) as the route decides.
 * ICMP errors go to the kernel because its multipath hash reads the header
 * they quote.
 */
static __always_inline int ipv4_forward_gate(struct pkt *k, struct iphdr *ip,
					     struct accel_iface *out)
{
	if (ip->ttl <= 1)
		return count(k->st, ACCEL_STAT_PASS_TTL, XDP_PASS);
	if (ip->protocol == IPPROTO_ICMP &&
	    !(ip->frag_off & bpf_htons(IP_OFFSET))) {
		__u8 *type = header_at(__u8, ip + 1, k->end, 0);

		if (type && icmp4_is_error(*type))
			return count(k->st, ACCEL_STAT_PASS_ICMP_ERROR, XDP_PASS);
	}
	if (k->seg_len > out->mtu)
		return count(k->st, ACCEL_STAT_PASS_MTU, XDP_PASS);
	return ACCEL_GO;
}

/* A packet the mirror forwards through next hop nh_id (0: none, it came
 * from bpf_fib_lookup); len is the frame as sent. */
static __always_inline void count_nexthop(__u32 nh_id, __u64 len)
{
	struct accel_nh_stats *s;

	if (!nh_id)
		return;
	s = bpf_map_lookup_elem(&nh_stats, &nh_id);
	if (s) {
		s->packets++;
		s->bytes += len;
	}
}

/* ipv4_source_verdict() as the packet's fate: ACCEL_GO when accepted. */
static __always_inline int ipv4_accept_source(struct pkt *k, struct iphdr *ip,
					      __u32 out_ifindex, int mirror)
{
	switch (ipv4_source_verdict(k, ip, out_ifindex, mirror)) {
	case SRC_OK:
		return ACCEL_GO;
	case SRC_RPF:
		return count(k->st, ACCEL_STAT_DROP_RPFILTER, XDP_DROP);
	default:
		return count(k->st, ACCEL_STAT_PASS_SRC_CHECK, XDP_PASS);
	}
}

/*
 * ip_forward() with ip_forward_update_priority: the packet's priority from
 * its TOS, rt_tos2priority(). ip_tos2prio[] maps TOS bits 4 and 3 to best
 * effort, bulk, interactive and interactive bulk (TC_PRIO_* 0, 2, 6, 4:
 * twice the Gray code of the two bits). TC only: an XDP frame has no skb
 * to carry a priority.
 */
static __always_inline void ipv4_forward_priority(struct pkt *k,
						  struct iphdr *ip)
{
	__u32 bits = (ip->tos >> 3) & 3;

	if (k->tc && (k->configured & ACCEL_CFG_UPDATE_PRIO4))
		((struct __sk_buff *)k->ctx)->priority = (bits ^ (bits >> 1)) * 2;
}

static __always_inline __u32 ipv4_frame_len(struct iphdr *ip)
{
	return sizeof(struct ethhdr) + bpf_ntohs(ip->tot_len);
}

static __always_inline int ipv4_commit(struct pkt *k, struct iphdr *ip,
				       const __u8 *dmac, const __u8 *smac,
				       __u32 out_ifindex, __u32 out_slot,
				       int mirror, __u32 nh_id,
				       enum accel_stat outcome)
{
	int rc = ipv4_accept_source(k, ip, out_ifindex, mirror);

	if (rc != ACCEL_GO)
		return rc;
	count_nexthop(nh_id, ipv4_frame_len(ip));
	ipv4_decrease_ttl(ip);
	ipv4_forward_priority(k, ip);
	return redirect_frame(k, ipv4_frame_len(ip), dmac, smac, out_ifindex,
			      out_slot, outcome);
}

/* bpf_redirect_neigh's next hop: the gateway (or destination)
 * bpf_fib_lookup named, in whichever family it is (RFC 5549). */
static __always_inline void fib_neigh(struct bpf_fib_lookup *p,
				      struct bpf_redir_neigh *nh)
{
	nh->nh_family = p->family;
	if (p->family == AF_INET6)
		__builtin_memcpy(nh->ipv6_nh, p->ipv6_dst, 16);
	else
		nh->ipv4_nh = p->ipv4_dst;
}

/* TC only: forward what bpf_fib_lookup routed but found no neighbour for
 * (p as it returned NO_NEIGH: egress and next hop filled in), after the
 * same checks as a forward with a known neighbour. */
static __always_inline int ipv4_resolve(struct pkt *k, struct iphdr *ip,
					struct bpf_fib_lookup *p, int mirror)
{
	struct bpf_redir_neigh nh = {};
	struct accel_iface *out = egress_iface(p->ifindex, k->in_ifindex);
	__u32 out_ifindex = p->ifindex;
	int rc;

	count_as_handed(k);
	if (!out)
		return count(k->st, ACCEL_STAT_PASS_EGRESS, XDP_PASS);
	rc = ipv4_forward_gate(k, ip, out);
	if (rc != ACCEL_GO)
		return rc;
	rc = ipv4_accept_source(k, ip, out_ifindex,
				mirror_judges_source(mirror, out));
	if (rc != ACCEL_GO)
		return rc;
	fib_neigh(p, &nh);
	ipv4_decrease_ttl(ip);
	ipv4_forward_priority(k, ip);
	return redirect_neigh_frame(k, ipv4_frame_len(ip), out_ifindex, &nh);
}

/*
 * Sets *nh_id to the next hop a mirrored route sends this packet to: its
 * own, or for a multipath route the path the kernel's hash picks; 0 when
 * the mirror cannot tell (unknown hash seed): bpf_fib_lookup decides.
 * Returns ACCEL_GO, or the verdict of a blackhole object.
 *
 * Should the picked path's neighbour be unusable, the caller asks
 * bpf_fib_lookup, which is exactly right even where the kernel skips such
 * paths (nexthop groups, fib_multipath_use_neigh): every path before the
 * picked one has a bound below the hash, so the kernel's choice is the
 * picked path or, if it skips it, one the mirror cannot know.
 */
static __always_inline int ipv4_route_nh(struct pkt *k, struct iphdr *ip,
					 struct accel_route *rt, __u32 *nh_id)
{
	struct accel_nh_group *g;
	int rc = group_route(k, rt, nh_id, &g);

	if (rc != ACCEL_GO || !g)
		return rc;
	if ((k->cfg & ACCEL_CFG_MP_HASH4) && multipath_layout_ok())
		*nh_id = mp_select(g, mp_hash4(ip, k->end,
					       k->cfg & ACCEL_CFG_MP_L4_4,
					       k->mp_seed));
	return ACCEL_GO;
}

/* Forward through a mirrored next hop, or ACCEL_TRY_FIB when the mirror
 * lacks the neighbour. */
static __always_inline int ipv4_mirror(struct pkt *k, struct iphdr *ip,
				       struct accel_route *rt)
{
	int rc;
	struct accel_neigh4_key nkey;
	struct accel_nexthop *nh;
	struct accel_iface *out;
	struct accel_neigh *n;
	__u32 nh_id;

	if (rt->type != ACCEL_RT_UNICAST && rt->type != ACCEL_RT_MULTIPATH)
		return route_type_verdict(k, rt);
	rc = ipv4_route_nh(k, ip, rt, &nh_id);
	if (rc != ACCEL_GO)
		return rc;
	if (!nh_id)
		return ACCEL_TRY_FIB;

	nh = nexthop_lookup(nh_id);
	if (!nh)
		return ACCEL_TRY_FIB;
	out = nh_egress(nh, k->in_ifindex);
	if (!out)
		return count(k->st, ACCEL_STAT_PASS_EGRESS, XDP_PASS);
	if (!reaches(k, out))
		return hand_to_tc(k, ACCEL_STAT_PASS_EGRESS);
	rc = ipv4_forward_gate(k, ip, out);
	if (rc != ACCEL_GO)
		return rc;

	if (nh->flags & ACCEL_NH_GATEWAY) {
		/* The gateway's MAC is in the next hop (an IPv6 gateway's too,
		 * RFC 5549, resolved by neighbour discovery); without it the
		 * mirror has no usable neighbour. */
		if (!(nh->flags & ACCEL_NH_MAC))
			return ACCEL_TRY_FIB;
		return ipv4_commit(k, ip, nh->mac, out->mac, nh->ifindex,
				   out->slot, mirror_judges_source(1, out), nh_id,
				   ACCEL_STAT_FWD_MIRROR);
	}
	nkey.ifindex = nh->ifindex;
	nkey.addr = ip->daddr;
	n = bpf_map_lookup_elem(&neigh4, &nkey);
	if (!n)
		return ACCEL_TRY_FIB;
	return ipv4_commit(k, ip, n->mac, out->mac, nkey.ifindex, out->slot,
			   mirror_judges_source(1, out), nh_id,
			   ACCEL_STAT_FWD_MIRROR);
}

/*
 * Whether a destination bpf_fib_lookup did not forward (NOT_FWDED) is
 * delivered locally rather than unroutable, for the counters only: the
 * mirror holds the local table whenever it holds routes (a lapsed lease
 * makes it unfit to forward from, not to count with); in --mode fib it
 * holds none, and both count as local.
 */
static __always_inline int not_fwded_local4(struct pkt *k, __be32 daddr)
{
	struct accel_route rt;

	if (k->configured & ACCEL_CFG_FIB_ONLY)
		return 1;
	return route4_lookup(daddr, &rt) && rt.type == ACCEL_RT_LOCAL;
}

static __always_inline int not_fwded_local6(struct pkt *k,
					    const struct in6_addr *daddr)
{
	struct accel_route rt;

	if (k->configured & ACCEL_CFG_FIB_ONLY)
		return 1;
	return route6_lookup((const __u8 *)daddr, &rt) &&
	       rt.type == ACCEL_RT_LOCAL;
}

/*
 * Whether the mirror's route for the destination (the leaf route_early()
 * found, if any) has its own MTU that the packet exceeds: ip_forward()
 * holds packets to it (ip_dst_mtu_maybe_forward()), bpf_fib_lookup does
 * not unless it is locked. Read on every way to bpf_fib_lookup, without a
 * lease too: a stale answer can only send a packet to the kernel.
 */
static __always_inline int over_route_mtu(struct pkt *k)
{
	struct accel_route rt;

	return fib_route(k->dst_leaf, &rt) && rt.type == ACCEL_RT_FIB &&
	       (rt.nh_id & ~ACCEL_FIB_MTU_MASK) == ACCEL_FIB_MTU &&
	       k->seg_len > (rt.nh_id & ACCEL_FIB_MTU_MASK);
}

static __always_inline int ipv4_fib(struct pkt *k, struct iphdr *ip, int mirror)
{
	struct bpf_fib_lookup p = {};
	struct accel_iface *out;
	long rc;

	if (over_route_mtu(k))
		return count(k->st, ACCEL_STAT_PASS_MTU, XDP_PASS);
	if ((k->configured & ACCEL_CFG_MP_INNER4) && encapsulates(ip->protocol))
		return count(k->st, ACCEL_STAT_PASS_MP_HASH, XDP_PASS);
	p.family = AF_INET;
	p.tos = ip->tos;
	p.l4_protocol = ip->protocol;
	p.tot_len = k->seg_len;
	p.ifindex = k->in_ifindex;
	p.ipv4_src = ip->saddr;
	p.ipv4_dst = ip->daddr;
	if (!(ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		l4_ports(ip + 1, k->end, ip->protocol, &p);

	rc = bpf_fib_lookup(k->ctx, &p, sizeof(p), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return k->tc ? ipv4_resolve(k, ip, &p, mirror) :
			       hand_to_tc(k, ACCEL_STAT_PASS_NO_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return fib_refusal(k->st, rc,
				   rc == BPF_FIB_LKUP_RET_NOT_FWDED &&
					   not_fwded_local4(k, ip->daddr));
	out = egress_iface(p.ifindex, k->in_ifindex);
	if (!out)
		return count(k->st, ACCEL_STAT_PASS_EGRESS, XDP_PASS);
	if (!reaches(k, out))
		return hand_to_tc(k, ACCEL_STAT_PASS_EGRESS);
	rc = ipv4_forward_gate(k, ip, out);
	if (rc != ACCEL_GO)
		return rc;
	return ipv4_commit(k, ip, p.dmac, p.smac, p.ifindex, out->slot,
			   mirror_judges_source(mirror, out), 0,
			   ACCEL_STAT_FWD_FIB);
}

static __always_inline int handle_ipv4(struct pkt *k)
{
	struct iphdr *ip = header_at(struct iphdr, k->eth, k->end, sizeof(struct ethhdr));
	struct accel_route rt;
	int mirror, rc;
	__u16 tot_len;

	/* ip_rcv_core()'s checks, in its order: every failure is a silent
	 * drop there. */
	if (!ip || ip->version != 4 || ip->ihl < 5)
		return count(k->st, ACCEL_STAT_DROP_HDR_ERRORS, XDP_DROP);
	if (ip->ihl != 5)
		return count(k->st, ACCEL_STAT_PASS_OPTIONS, XDP_PASS);
	/* A BIG TCP super-packet (GRO beyond 64 KiB) says length 0 and is
	 * measured by the skb instead (iph_totlen()). */
	if (k->gso_size && !ip->tot_len)
		return count(k->st, ACCEL_STAT_PASS_MTU, XDP_PASS);
	if (!ipv4_csum_ok(ip))
		return count(k->st, ACCEL_STAT_DROP_HDR_ERRORS, XDP_DROP);
	tot_len = bpf_ntohs(ip->tot_len);
	if (sizeof(struct ethhdr) + tot_len > k->len)
		return count(k->st, ACCEL_STAT_DROP_TRUNCATED, XDP_DROP);
	if (tot_len < sizeof(*ip))
		return count(k->st, ACCEL_STAT_DROP_HDR_ERRORS, XDP_DROP);
	/* ip_rcv(): NF_INET_PRE_ROUTING next. */
	if (k->configured & ACCEL_CFG_NETFILTER)
		return count(k->st, ACCEL_STAT_PASS_NETFILTER, XDP_PASS);
	k->seg_len = seg_len(k, ip + 1, ip->protocol, sizeof(*ip), tot_len);
	if (!(k->in->flags & ACCEL_IF_FWD4))
		return count(k->st, ACCEL_STAT_PASS_FWD_DISABLED, XDP_PASS);
	if (ipv4_special(ip->daddr))
		return count(k->st, ACCEL_STAT_PASS_SPECIAL_ADDR, XDP_PASS);
	if (ipv4_martian_src(ip->saddr))
		return count(k->st, ACCEL_STAT_DROP_MARTIAN_SRC, XDP_DROP);
	if (ipv4_special(ip->saddr))
		return count(k->st, ACCEL_STAT_PASS_SPECIAL_ADDR, XDP_PASS);
	/* ip_forward(): xfrm4_policy_check(FWD) and xfrm4_route_forward().
	 * k->configured: a lapsed lease replaces k->cfg, not this. */
	if (k->configured & ACCEL_CFG_XFRM)
		return count(k->st, ACCEL_STAT_PASS_XFRM, XDP_PASS);

	mirror = !(k->cfg & (ACCEL_CFG_FIB_ONLY | ACCEL_CFG_POLICY4)) &&
		 !(k->in->flags & ACCEL_IF_RULES4) && !src_rule4(k, ip->saddr);
	if (mirror && fib_route(k->dst_leaf, &rt)) {
		rc = ipv4_mirror(k, ip, &rt);
		if (rc != ACCEL_TRY_FIB)
			return rc;
	}
	return ipv4_fib(k, ip, mirror);
}

/* ---------------------------------------------------------------- IPv6 */

static __always_inline int src_rule6(struct pkt *k, struct in6_addr *addr)
{
	struct accel_route6_key key = { .prefixlen = 128 };

	if (!(k->cfg & ACCEL_CFG_SRC_RULES6))
		return 0;
	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&src_rules6, &key) != NULL;
}

/* ip6_forward's checks after the route lookup, as for IPv4. */
static __always_inline int ipv6_forward_gate(struct pkt *k, struct ipv6hdr *ip6,
					     struct accel_iface *out)
{
	if (ip6->hop_limit <= 1)
		return count(k->st, ACCEL_STAT_PASS_TTL, XDP_PASS);
	if (ip6->nexthdr == IPPROTO_ICMPV6) {
		__u8 *type = header_at(__u8, ip6 + 1, k->end, 0);

		if (type && icmp6_is_error(*type))
			return count(k->st, ACCEL_STAT_PASS_ICMP_ERROR, XDP_PASS);
		/* With proxy_ndp, ip6_forward() delivers neighbour discovery
		 * for a proxied address locally (ip6_forward_proxy_check()):
		 * the proxy table is not mirrored, the kernel decides. */
		if (type && icmp6_is_ndisc(*type))
			return count(k->st, ACCEL_STAT_PASS_NDISC, XDP_PASS);
	}
	if (k->seg_len > out->mtu6)
		return count(k->st, ACCEL_STAT_PASS_MTU, XDP_PASS);
	return ACCEL_GO;
}

static __always_inline __u32 ipv6_frame_len(struct ipv6hdr *ip6)
{
	return sizeof(struct ethhdr) + sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
}

/*
 * Hop limit - 1. IPv6 has no header checksum, but an skb's
 * CHECKSUM_COMPLETE sum covers the header: the TC program adds the
 * difference (the kernel's forwarding path drops the sum instead, in
 * skb_forward_csum()), or the receiver would find the packet corrupt.
 */
static __always_inline void ipv6_decrease_hop_limit(struct pkt *k,
						    struct ipv6hdr *ip6)
{
	__be32 *word = (__be32 *)&ip6->payload_len; /* with hop_limit */
	__be32 old = *word, new;

	ip6->hop_limit--;
	if (!k->tc)
		return;
	new = *word;
	bpf_csum_update(k->ctx, bpf_csum_diff(&old, 4, &new, 4, 0));
}

static __always_inline int ipv6_commit(struct pkt *k, struct ipv6hdr *ip6,
				       const __u8 *dmac, const __u8 *smac,
				       __u32 out_ifindex, __u32 out_slot,
				       __u32 nh_id, enum accel_stat outcome)
{
	count_nexthop(nh_id, ipv6_frame_len(ip6));
	ipv6_decrease_hop_limit(k, ip6);
	return redirect_frame(k, ipv6_frame_len(ip6), dmac, smac, out_ifindex,
			      out_slot, outcome);
}

/* ipv4_resolve() for IPv6. */
static __always_inline int ipv6_resolve(struct pkt *k, struct ipv6hdr *ip6,
					struct bpf_fib_lookup *p)
{
	struct bpf_redir_neigh nh = {};
	struct accel_iface *out = egress_iface(p->ifindex, k->in_ifindex);
	__u32 out_ifindex = p->ifindex;
	int rc;

	count_as_handed(k);
	if (!out)
		return count(k->st, ACCEL_STAT_PASS_EGRESS, XDP_PASS);
	rc = ipv6_forward_gate(k, ip6, out);
	if (rc != ACCEL_GO)
		return rc;
	fib_neigh(p, &nh);
	ipv6_decrease_hop_limit(k, ip6);
	return redirect_neigh_frame(k, ipv6_frame_len(ip6), out_ifindex, &nh);
}

/* ipv4_route_nh() for IPv6; ACCEL_STAT_PASS_MP_HASH's packets are
 * passed here. */
static __always_inline int ipv6_route_nh(struct pkt *k, struct ipv6hdr *ip6,
					 struct accel_route *rt, __u32 *nh_id)
{
	struct accel_nh_group *g;
	int rc = group_route(k, rt, nh_id, &g);
	__u32 hash;

	if (rc != ACCEL_GO || !g)
		return rc;
	if (!(k->cfg & ACCEL_CFG_MP_HASH6) || !multipath_layout_ok())
		return ACCEL_GO;
	if (!mp_hash6(ip6, k->end, k->cfg & ACCEL_CFG_MP_L4_6, k->mp_seed,
		      &hash))
		return count(k->st, ACCEL_STAT_PASS_MP_HASH, XDP_PASS);
	*nh_id = mp_select(g, hash);
	return ACCEL_GO;
}

static __always_inline int ipv6_mirror(struct pkt *k, struct ipv6hdr *ip6,
				       struct accel_route *rt)
{
	int rc;
	struct accel_neigh6_key nkey;
	struct accel_nexthop *nh;
	struct accel_iface *out;
	struct accel_neigh *n;
	__u32 nh_id;

	if (rt->type != ACCEL_RT_UNICAST && rt->type != ACCEL_RT_MULTIPATH)
		return route_type_verdict(k, rt);
	rc = ipv6_route_nh(k, ip6, rt, &nh_id);
	if (rc != ACCEL_GO)
		return rc;
	if (!nh_id)
		return ACCEL_TRY_FIB;

	nh = nexthop_lookup(nh_id);
	if (!nh)
		return ACCEL_TRY_FIB;
	if ((nh->flags & ACCEL_NH_GATEWAY) && !(nh->flags & ACCEL_NH_GW6))
		return ACCEL_TRY_FIB;
	out = nh_egress(nh, k->in_ifindex);
	if (!out)
		return count(k->st, ACCEL_STAT_PASS_EGRESS, XDP_PASS);
	if (!reaches(k, out))
		return hand_to_tc(k, ACCEL_STAT_PASS_EGRESS);
	rc = ipv6_forward_gate(k, ip6, out);
	if (rc != ACCEL_GO)
		return rc;

	if (nh->flags & ACCEL_NH_GATEWAY) {
		if (!(nh->flags & ACCEL_NH_MAC))
			return ACCEL_TRY_FIB;
		return ipv6_commit(k, ip6, nh->mac, out->mac, nh->ifindex,
				   out->slot, nh_id, ACCEL_STAT_FWD_MIRROR);
	}
	nkey.ifindex = nh->ifindex;
	__builtin_memcpy(nkey.addr, &ip6->daddr, 16);
	n = bpf_map_lookup_elem(&neigh6, &nkey);
	if (!n)
		return ACCEL_TRY_FIB;
	return ipv6_commit(k, ip6, n->mac, out->mac, nkey.ifindex, out->slot,
			   nh_id, ACCEL_STAT_FWD_MIRROR);
}

static __always_inline int ipv6_fib(struct pkt *k, struct ipv6hdr *ip6)
{
	struct bpf_fib_lookup p = {};
	struct accel_iface *out;
	long rc;

	if ((k->configured & ACCEL_CFG_MP_INNER6) && encapsulates(ip6->nexthdr))
		return count(k->st, ACCEL_STAT_PASS_MP_HASH, XDP_PASS);
	if ((k->configured & ACCEL_CFG_MP_EXT6) && ipv6_ext_header(ip6->nexthdr))
		return count(k->st, ACCEL_STAT_PASS_MP_HASH, XDP_PASS);
	p.family = AF_INET6;
	/* Flow label and next header feed the kernel's multipath hash. */
	p.flowinfo = *(__be32 *)ip6 & IPV6_FLOWINFO_MASK;
	p.l4_protocol = ip6->nexthdr;
	p.tot_len = k->seg_len;
	p.ifindex = k->in_ifindex;
	__builtin_memcpy(p.ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(p.ipv6_dst, &ip6->daddr, 16);
	l4_ports(ip6 + 1, k->end, ip6->nexthdr, &p);

	rc = bpf_fib_lookup(k->ctx, &p, sizeof(p), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return k->tc ? ipv6_resolve(k, ip6, &p) :
			       hand_to_tc(k, ACCEL_STAT_PASS_NO_NEIGH);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return fib_refusal(k->st, rc,
				   rc == BPF_FIB_LKUP_RET_NOT_FWDED &&
					   not_fwded_local6(k, &ip6->daddr));
	out = egress_iface(p.ifindex, k->in_ifindex);
	if (!out)
		return count(k->st, ACCEL_STAT_PASS_EGRESS, XDP_PASS);
	if (!reaches(k, out))
		return hand_to_tc(k, ACCEL_STAT_PASS_EGRESS);
	rc = ipv6_forward_gate(k, ip6, out);
	if (rc != ACCEL_GO)
		return rc;
	return ipv6_commit(k, ip6, p.dmac, p.smac, p.ifindex, out->slot, 0,
			   ACCEL_STAT_FWD_FIB);
}

static __always_inline int handle_ipv6(struct pkt *k)
{
	struct ipv6hdr *ip6 = header_at(struct ipv6hdr, k->eth, k->end, sizeof(struct ethhdr));
	int rc;

	/* ip6_rcv_core()'s silent drops, in its order: loopback either way,
	 * multicast destinations of scope 0 or 1, a multicast source. */
	if (!ip6 || ip6->version != 6 || ipv6_loopback(&ip6->saddr) ||
	    ipv6_loopback(&ip6->daddr) ||
	    (ip6->daddr.in6_u.u6_addr8[0] == 0xff &&
	     (ip6->daddr.in6_u.u6_addr8[1] & 0x0f) <= 1) ||
	    ip6->saddr.in6_u.u6_addr8[0] == 0xff)
		return count(k->st, ACCEL_STAT_DROP_HDR_ERRORS, XDP_DROP);
	/* As for IPv4: BIG TCP's payload length 0, measured by the skb. */
	if (k->gso_size && !ip6->payload_len)
		return count(k->st, ACCEL_STAT_PASS_MTU, XDP_PASS);
	/* A jumbogram (payload length 0 behind hop-by-hop options) goes on
	 * to the options check. */
	if (ipv6_frame_len(ip6) > k->len)
		return count(k->st, ACCEL_STAT_DROP_TRUNCATED, XDP_DROP);
	/* ipv6_rcv(): NF_INET_PRE_ROUTING next. */
	if (k->configured & ACCEL_CFG_NETFILTER)
		return count(k->st, ACCEL_STAT_PASS_NETFILTER, XDP_PASS);
	k->seg_len = seg_len(k, ip6 + 1, ip6->nexthdr, sizeof(*ip6),
			     ipv6_frame_len(ip6) - sizeof(struct ethhdr));
	if (!(k->in->flags & ACCEL_IF_FWD6))
		return count(k->st, ACCEL_STAT_PASS_FWD_DISABLED, XDP_PASS);
	/* Hop-by-hop options are processed by every router on the path. */
	if (ip6->nexthdr == IPPROTO_HOPOPTS)
		return count(k->st, ACCEL_STAT_PASS_OPTIONS, XDP_PASS);
	if (ipv6_special(&ip6->daddr) || ipv6_special(&ip6->saddr))
		return count(k->st, ACCEL_STAT_PASS_SPECIAL_ADDR, XDP_PASS);
	/* ip6_forward(): xfrm6_policy_check(FWD), xfrm6_route_forward(). */
	if (k->configured & ACCEL_CFG_XFRM)
		return count(k->st, ACCEL_STAT_PASS_XFRM, XDP_PASS);

	if (!(k->cfg & (ACCEL_CFG_FIB_ONLY | ACCEL_CFG_POLICY6)) &&
	    !(k->in->flags & ACCEL_IF_RULES6) && !src_rule6(k, &ip6->saddr)) {
		struct accel_route rt;

		if (fib_route(k->dst_leaf, &rt)) {
			rc = ipv6_mirror(k, ip6, &rt);
			if (rc != ACCEL_TRY_FIB)
				return rc;
		}
	}
	return ipv6_fib(k, ip6);
}

/* ------------------------------------------------------------- program */

/*
 * The leases' clock as the datapath reads it, for the control plane
 * (BPF_PROG_TEST_RUN): bpf_ktime_get_coarse_ns() is the host's clock, which
 * differs from the daemon's own CLOCK_MONOTONIC_COARSE in a time namespace.
 */
SEC("xdp")
int accel_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	__u64 now = bpf_ktime_get_coarse_ns();

	if (data + sizeof(now) > (void *)(long)ctx->data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, &now, sizeof(now));
	return XDP_PASS;
}

/*
 * The mirror's route for the frame's destination, looked up after the
 * lease is read (accel_run) but before the frame is known to be one to
 * forward: the checks before the route lookup then run while the
 * lookup's reads are still on their way (the root leaf, read at random,
 * is an L2 hit with a TLB miss at best; the nodes of a full table are
 * reads from memory), where looked up in its place the program stalled on
 * them. The result is used only where the lookup stood (handle_ipv4/6),
 * after every check and only under a live lease. Reading the tries
 * earlier is like reading them there, as the control plane can change
 * them at any moment, provided they are read after the lease: never move
 * this above accel_run's lease loads.
 */
static __always_inline void route_early(struct pkt *k, void *data)
{
	struct ethhdr *eth = header_at(struct ethhdr, data, k->end, 0);
	struct ipv6hdr *ip6;
	struct iphdr *ip;

	if (!eth)
		return;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		ip = header_at(struct iphdr, data, k->end, sizeof(*eth));
		if (ip)
			k->dst_leaf = route4_leaf(ip->daddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		ip6 = header_at(struct ipv6hdr, data, k->end, sizeof(*eth));
		if (ip6)
			k->dst_leaf = route6_leaf((const __u8 *)&ip6->daddr);
	}
}

/*
 * What both programs do once they have set up k's hook fields (ctx, end,
 * len, gso_size, tc, handed, in_ifindex): the lease's deadlines loaded and
 * the destination's leaf looked up (route_early()), the per-interface and
 * global checks, then the family's forwarding decision. Returns an XDP
 * verdict.
 */
static __always_inline int accel_run(struct pkt *k, void *data)
{
	struct accel_config *cfg = bpf_map_lookup_elem(&accel_cfg, &(__u32){ 0 });
	__u64 now, alive_until, lease_until;
	int recount = 0, look;
	__u32 slot;

	if (!cfg)
		return XDP_PASS;
	/* The lease is read before the tries: the control plane renews it
	 * only once the mirror it vouches for is written, so tries read after
	 * it are at least as new as what it vouches for. A load is not
	 * reordered with older loads on x86; the compiler cannot move these
	 * volatile loads past the opaque map lookup calls the tries' loads
	 * depend on. (On a weakly ordered CPU, arm64, nothing here orders
	 * them, nor did anything before: that would take load-acquire.) Read
	 * the other way round, tries from before a resync could be taken on
	 * the word of the lease renewed after it. In --mode fib the tries
	 * are empty: nothing to look up. */
	alive_until = *(volatile __u64 *)&cfg->alive_until_ns;
	lease_until = *(volatile __u64 *)&cfg->lease_until_ns;
	look = !(cfg->flags & ACCEL_CFG_FIB_ONLY);
	if (!k->tc && look)
		route_early(k, data);
	k->in = iface_lookup(k->in_ifindex);
	if (!k->in)
		return XDP_PASS;
	/* Beside an XDP program, TC takes only what it was handed: the rest
	 * XDP decided (and counted) already. Without the metadata that says
	 * what was handed, TC decides again what XDP passed, and counts only
	 * what it forwards: XDP counted the rest. */
	if (k->tc && !(k->in->flags & ACCEL_IF_TC) && !k->handed) {
		if (handoff_meta)
			return XDP_PASS;
		recount = 1;
	}
	/* TC looks up only for the frames it decides. */
	if (k->tc && look)
		route_early(k, data);
	slot = k->in->slot;
	k->fwd_st = bpf_map_lookup_elem(&stats, &slot);
	k->st = k->fwd_st;
	if (recount) {
		slot = ACCEL_STATS_RECOUNT;
		k->st = bpf_map_lookup_elem(&stats, &slot);
	}
	if (!k->st || !k->fwd_st)
		return XDP_PASS;
	k->st->frame_len = k->len;
	/* The operator's tc ingress filters run after XDP and before the IP
	 * layer (__netif_receive_skb_core()): the kernel runs them first. */
	if (k->in->flags & ACCEL_IF_INGRESS_TC)
		return count(k->st, ACCEL_STAT_PASS_TC_FILTERS, XDP_PASS);
	/* Netfilter's ingress hook next, then the IP layer. */
	if (cfg->flags & ACCEL_CFG_NF_INGRESS)
		return count(k->st, ACCEL_STAT_PASS_NETFILTER, XDP_PASS);
	now = bpf_ktime_get_coarse_ns();
	if (now >= alive_until)
		return count(k->st, ACCEL_STAT_PASS_INACTIVE, XDP_PASS);
	k->cfg = cfg->flags;
	k->configured = cfg->flags;
	k->mp_seed = cfg->mp_seed;
	if (now >= lease_until) {
		/* Nobody vouches for the mirror now (lost events, a resync, a
		 * paused daemon): the kernel's own lookup decides instead. */
		k->cfg = ACCEL_CFG_FIB_ONLY | ACCEL_CFG_NO_LEASE;
		k->st->no_lease++;
	}

	k->eth = header_at(struct ethhdr, data, k->end, 0);
	if (!k->eth)
		return count(k->st, ACCEL_STAT_PASS_MALFORMED, XDP_PASS);
	if (k->eth->h_proto != bpf_htons(ETH_P_IP) &&
	    k->eth->h_proto != bpf_htons(ETH_P_IPV6))
		return count(k->st, ACCEL_STAT_PASS_NON_IP, XDP_PASS);
	/* Frames for other hosts (promiscuous mode), broadcast and multicast
	 * are never forwarded by the kernel's IP layer as unicast. */
	if (!mac_equal(k->eth->h_dest, k->in->mac))
		return count(k->st, ACCEL_STAT_PASS_NOT_FOR_US, XDP_PASS);

	if (k->eth->h_proto == bpf_htons(ETH_P_IP))
		return handle_ipv4(k);
	return handle_ipv6(k);
}

SEC("xdp")
int accel_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct pkt k = {};

	k.ctx = ctx;
	k.end = (void *)(long)ctx->data_end;
	k.len = k.end - data;
	k.in_ifindex = ctx->ingress_ifindex;
	return accel_run(&k, data);
}

/* Bytes of an skb the decision code reads directly: Ethernet, IPv6 and a
 * TCP header with options, or the headers the multipath hash walks. */
#define ACCEL_TC_PULL 128

/* The skb's packet pointers, each read by one load at its constant
 * offset, the only access the verifier accepts for them: written plainly,
 * clang merges the reads before and after bpf_skb_pull_data into one
 * load through a computed address. */
#define SKB_POINTER(name, field)                                               \
	static __always_inline void *name(struct __sk_buff *skb)               \
	{                                                                      \
		__u64 p;                                                       \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                          \
			     : "=r"(p)                                         \
			     : "r"(skb),                                       \
			       "i"(__builtin_offsetof(struct __sk_buff, field))); \
		return (void *)(long)p;                                        \
	}
SKB_POINTER(skb_data, data)
SKB_POINTER(skb_data_end, data_end)
SKB_POINTER(skb_data_meta, data_meta)

/* Whether the XDP program before this one handed the frame over
 * (hand_to_tc()). */
static __always_inline int handed_over(struct __sk_buff *skb)
{
	__u32 *meta = skb_data_meta(skb);

	if ((void *)(meta + 1) > skb_data(skb))
		return 0;
	return *meta == ACCEL_HANDOFF_MARK;
}

/*
 * TC ingress, for interfaces XDP cannot serve (bridges, tunnels, macvlan,
 * drivers without native XDP). The same decisions on the skb, before the
 * kernel's IP layer sees it.
 */
SEC("tc")
int accel_tc(struct __sk_buff *skb)
{
	struct pkt k = {};
	void *data;

	/* A VLAN tag the driver took off belongs to a VLAN device's packet,
	 * not to this interface's. */
	if (skb->vlan_present)
		return TC_ACT_UNSPEC;
	k.handed = handed_over(skb);
	k.ctx = skb;
	k.len = skb->len;
	k.gso_size = skb->gso_size;
	k.tc = 1;
	k.in_ifindex = skb->ifindex;
	if (skb_data(skb) + ACCEL_TC_PULL > skb_data_end(skb))
		bpf_skb_pull_data(skb, k.len < ACCEL_TC_PULL ? k.len :
							       ACCEL_TC_PULL);
	data = skb_data(skb);
	k.end = skb_data_end(skb);
	return tc_verdict(accel_run(&k, data));
}
