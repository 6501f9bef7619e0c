/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One packet as the forwarding code sees it, whichever hook runs it: XDP
 * (struct xdp_md) or TC ingress (struct __sk_buff). The decision code is
 * written once and returns XDP verdicts; where the hooks differ (frame
 * length, trimming, redirecting, checksum state) it asks `tc`, a constant
 * at each entry point that the compiler folds, so that each program holds
 * only its own hook's helper calls.
 */
#ifndef ACCEL_PKT_H
#define ACCEL_PKT_H

#include "accel.h"

/* linux/pkt_cls.h (not in vmlinux.h). TC_ACT_UNSPEC is tcx's TCX_NEXT:
 * a packet accel does not forward goes on to any later program and then
 * up the stack, as XDP_PASS would. */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

struct pkt {
	void *ctx; /* struct xdp_md * or struct __sk_buff * */
	struct ethhdr *eth;
	/* End of the bytes the program may read directly: all of an XDP
	 * frame, the linear part of an skb. */
	void *end;
	/* The whole frame's length (skb->len; may exceed end - eth). */
	__u32 len;
	/* The skb's GSO segment payload size, 0 if none (always 0 in XDP). */
	__u32 gso_size;
	/* The IP length the egress MTU applies to: the packet's, or for a
	 * GSO packet its segments' (set by handle_ipv4/6). */
	__u32 seg_len;
	/* 1 in the TC program, 0 in the XDP program. */
	int tc;
	/* TC: the XDP program on this interface handed the frame over. */
	int handed;
	struct accel_iface *in;
	/* Where verdicts are counted, and where forwards are: the same
	 * entry, except where TC decides again what XDP counted already. */
	struct accel_stats *st;
	struct accel_stats *fwd_st;
	__u32 in_ifindex;
	__u32 cfg;
	/* The flags as configured, before a lapsed lease overrode them. */
	__u32 configured;
	__u32 mp_seed;
	/* The mirror's leaf for the destination (route_early(), after the
	 * lease is loaded); 0 where not looked up (non-IP or short frame,
	 * --mode fib). */
	__u32 dst_leaf;
};

/* The TC program's verdict for the XDP verdict the decision code took. */
static __always_inline int tc_verdict(int xdp_action)
{
	switch (xdp_action) {
	case XDP_PASS:
		return TC_ACT_UNSPEC;
	case XDP_REDIRECT:
		return TC_ACT_REDIRECT;
	default: /* XDP_DROP, XDP_ABORTED */
		return TC_ACT_SHOT;
	}
}

#endif
