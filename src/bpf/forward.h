/* SPDX-License-Identifier: GPL-2.0 */
/* The last step of a forwarding decision: rewrite the frame and redirect. */
#ifndef ACCEL_FORWARD_H
#define ACCEL_FORWARD_H

#include "accel.h"
#include "maps.h"
#include "pkt.h"

/* A step that declines returns this to hand the packet to the next one. */
#define ACCEL_TRY_FIB (-1)
/* A check that passes returns this to let the packet go on. */
#define ACCEL_GO (-2)

static __always_inline int count(struct accel_stats *st, enum accel_stat s,
				 int action)
{
	st->packets[s]++;
	/* action is a constant at every call: the branches fold away. */
	if (action == XDP_PASS)
		st->pass_bytes += st->frame_len;
	else if (action == XDP_DROP)
		st->drop_bytes += st->frame_len;
	return action;
}

/* Decrement the TTL and patch the header checksum (RFC 1624). */
static __always_inline void ipv4_decrease_ttl(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

/*
 * The egress interface an accepted decision may use, or NULL. It must be one
 * of accel's interfaces, be up, and differ from the ingress: the kernel
 * itself handles hairpin forwarding because it sends ICMP redirects.
 */
static __always_inline struct accel_iface *egress_iface(__u32 out_ifindex,
							__u32 in_ifindex)
{
	struct accel_iface *out;

	if (out_ifindex == in_ifindex)
		return 0;
	out = iface_lookup(out_ifindex);
	if (!out || !(out->flags & ACCEL_IF_UP))
		return 0;
	return out;
}

/* egress_iface() for a mirrored next hop, from the copy of the egress's
 * entry the next hop carries (no interface lookup). */
static __always_inline struct accel_iface *
nh_egress(struct accel_nexthop *nh, __u32 in_ifindex)
{
	if (nh->ifindex == in_ifindex || !(nh->flags & ACCEL_NH_EGRESS) ||
	    !(nh->out.flags & ACCEL_IF_UP))
		return 0;
	return &nh->out;
}

/* Cuts Ethernet padding beyond the IP length (ip_rcv_core() trims it
 * before forwarding); returns the frame's length as sent. */
static __always_inline __u32 trim_frame(struct pkt *k, __u32 frame_len)
{
	if (k->tc) {
		struct __sk_buff *skb = k->ctx;

		if (frame_len < k->len)
			bpf_skb_change_tail(skb, frame_len, 0);
		return skb->len;
	}
	struct xdp_md *xdp = k->ctx;

	if (frame_len < k->len)
		bpf_xdp_adjust_tail(xdp, -(int)(k->len - frame_len));
	return xdp->data_end - xdp->data;
}

/*
 * Rewrite the MACs (the source is the egress interface's: as the mirror
 * knows it, or as bpf_fib_lookup just read it), trim the frame to its IP
 * length (frame_len) and redirect. The L3 header has already been updated
 * by the caller.
 */
static __always_inline int redirect_frame(struct pkt *k, __u32 frame_len,
					  const __u8 *dmac, const __u8 *smac,
					  __u32 out_ifindex, __u32 out_slot,
					  enum accel_stat outcome)
{
	struct accel_stats *st = k->fwd_st;

	__builtin_memcpy(k->eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(k->eth->h_source, smac, ETH_ALEN);
	st->packets[outcome]++;
	st->fwd_bytes += trim_frame(k, frame_len);
	if (k->tc)
		return bpf_redirect(out_ifindex, 0) == TC_ACT_REDIRECT ?
			       XDP_REDIRECT : XDP_ABORTED;
	/* tx_ports holds every interface that ifaces marks up: a miss here is
	 * a control-plane bug and is better aborted (visible in
	 * xdp:xdp_exception) than passed half-rewritten.
	 * The result is folded to constants so that the verifier can see this
	 * path never returns ACCEL_TRY_FIB after the packet was changed. */
	if (bpf_redirect_map(&tx_ports, out_slot, 0) == XDP_REDIRECT)
		return XDP_REDIRECT;
	return XDP_ABORTED;
}

/*
 * TC only: forward through a next hop whose neighbour is not resolved
 * (bpf_fib_lookup said NO_NEIGH). bpf_redirect_neigh hands the frame to
 * the kernel's neighbour layer, which writes the MACs once it knows the
 * gateway's, queueing the frame meanwhile, as ip_finish_output2() does for
 * a forwarded packet. XDP cannot queue: it passes such packets instead.
 */
static __always_inline int redirect_neigh_frame(struct pkt *k, __u32 frame_len,
						__u32 out_ifindex,
						struct bpf_redir_neigh *nh)
{
	struct accel_stats *st = k->fwd_st;

	st->packets[ACCEL_STAT_FWD_NEIGH]++;
	st->fwd_bytes += trim_frame(k, frame_len);
	return bpf_redirect_neigh(out_ifindex, nh, sizeof(*nh), 0) ==
			       TC_ACT_REDIRECT ?
		       XDP_REDIRECT :
		       XDP_ABORTED;
}

/*
 * Whether this kernel lets an XDP program call bpf_xdp_adjust_meta, as the
 * loader found by probing (libbpf_probe_bpf_helper) and set before load.
 * Some kernels refuse the helper to XDP programs. There the call below is
 * on a path the verifier never walks (this constant is known to it), and
 * the frames XDP hands over go unmarked: the TC program beside XDP then
 * decides again every frame XDP passed (accel_run).
 */
const volatile __u32 handoff_meta = 0;

/*
 * XDP only: hands the frame, unchanged, to the TC program beside the XDP
 * program on this interface (ACCEL_IF_TC_BESIDE), which forwards it where
 * XDP cannot: to an ACCEL_IF_TC egress, or resolving a neighbour. Counted
 * as ACCEL_STAT_HANDOFF_TC here and by its outcome there. Without that
 * program, or where the driver keeps no metadata, the kernel gets the
 * frame, counted as `fallback`.
 */
static __always_inline int hand_to_tc(struct pkt *k, enum accel_stat fallback)
{
	struct xdp_md *xdp = k->ctx;
	__u32 *meta;

	if (k->tc || !(k->in->flags & ACCEL_IF_TC_BESIDE))
		return count(k->st, fallback, XDP_PASS);
	if (handoff_meta) {
		if (bpf_xdp_adjust_meta(xdp, -(int)sizeof(*meta)))
			return count(k->st, fallback, XDP_PASS);
		meta = (void *)(long)xdp->data_meta;
		if ((void *)(meta + 1) > (void *)(long)xdp->data)
			return count(k->st, fallback, XDP_PASS);
		*meta = ACCEL_HANDOFF_MARK;
	}
	/* Not count(): the bytes are TC's to count, as forwarded or passed. */
	k->st->packets[ACCEL_STAT_HANDOFF_TC]++;
	return XDP_PASS;
}

/*
 * TC, at a point only a frame XDP handed over reaches (one for a TC
 * egress, or to resolve a neighbour): its outcome is counted in the
 * interface's entry, as where the handoff is marked. Where it is not
 * (handoff_meta), TC decides again what XDP passed and counted; this is
 * where such a frame shows it was handed, not passed.
 */
static __always_inline void count_as_handed(struct pkt *k)
{
	k->st = k->fwd_st;
}

/* Whether this program can send a frame out through `out`: an XDP
 * redirect cannot reach an interface accel serves through TC, and would
 * pass by the qdisc and tc egress filters configured on one
 * (ACCEL_IF_EGRESS_TC), which the TC program's redirect goes through. */
static __always_inline int reaches(struct pkt *k, struct accel_iface *out)
{
	if (!(out->flags & (ACCEL_IF_TC | ACCEL_IF_EGRESS_TC)))
		return 1;
	if (k->tc)
		count_as_handed(k);
	return k->tc;
}

/* Map a refusal of bpf_fib_lookup to what the kernel will do with it.
 * NOT_FWDED covers both a local destination and none at all: `local` says
 * which (see not_fwded_local4/6), as the kernel's own counters would. */
static __always_inline int fib_refusal(struct accel_stats *st, long rc,
				       int local)
{
	switch (rc) {
	case BPF_FIB_LKUP_RET_BLACKHOLE:
		return count(st, ACCEL_STAT_DROP_BLACKHOLE, XDP_DROP);
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return count(st, ACCEL_STAT_PASS_NO_ROUTE, XDP_PASS);
	case BPF_FIB_LKUP_RET_NOT_FWDED:
		return count(st, local ? ACCEL_STAT_PASS_LOCAL :
				 ACCEL_STAT_PASS_NO_ROUTE, XDP_PASS);
	case BPF_FIB_LKUP_RET_FWD_DISABLED:
		return count(st, ACCEL_STAT_PASS_FWD_DISABLED, XDP_PASS);
	case BPF_FIB_LKUP_RET_NO_NEIGH:
		return count(st, ACCEL_STAT_PASS_NO_NEIGH, XDP_PASS);
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		return count(st, ACCEL_STAT_PASS_MTU, XDP_PASS);
	default:
		return count(st, ACCEL_STAT_PASS_FIB_OTHER, XDP_PASS);
	}
}

#endif
