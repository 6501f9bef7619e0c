// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark traffic, not part of the datapath.
 *
 * trafgen_tx: run through BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES; each
 * invocation rewrites the frame from the template in `cfg` (live-frame pages
 * are reused without re-initialisation, so a forwarder's rewrite of the
 * previous frame must not leak into the next), writes a destination from
 * `dests`, fixes the checksums and returns XDP_TX, which sends the frame out
 * of ctx_in.ingress_ifindex.
 *
 * trafgen_sink: attached to the receiving interface; counts and drops UDP to
 * the test port and passes everything else (ARP and ND above all: dropping
 * them would leave the router's neighbours FAILED).
 *
 * trafgen_loop: a sink that sends every test frame, rewritten, back to the
 * router through the generator's interface (see its comment).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "trafgen.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP 17

/* BTF for the skeleton's Rust types. */
struct trafgen_abi {
	struct trafgen_dst dst;
	struct trafgen_stats stats;
	enum trafgen_limits limits;
	enum trafgen_pick pick;
};
struct trafgen_abi trafgen_abi_types;

/* Plain globals (.bss), filled in by accel-trafgen before load. */
struct trafgen_cfg cfg;
struct trafgen_sink_cfg sink_cfg;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRAFGEN_DESTS_DEFAULT);
	__type(key, __u32);
	__type(value, struct trafgen_dst);
} dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trafgen_stats);
} tg_stats SEC(".maps");

/* trafgen_loop's way back: the generator's interface, at key 0. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} loop_tx SEC(".maps");

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Writes the next test frame over the one at ctx (the template, a
 * destination from `dests`, the checksums): 0, or -1 when the buffer is
 * not a template's length.
 */
static __always_inline int build_frame(struct xdp_md *ctx,
				       struct trafgen_stats *st)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len = cfg.frame_len;
	__u32 idx, n = cfg.n_dests;
	struct trafgen_dst *d;
	__u32 sum;

	if (n == 0 || len > TRAFGEN_FRAME_MAX || data + len != end)
		return -1;

	/* The template, 8 bytes at a time, then 2 at a time. */
#pragma unroll
	for (int i = 0; i < TRAFGEN_FRAME_MAX / 8; i++) {
		if (i * 8 + 8 > len)
			break;
		if (data + i * 8 + 8 > end)
			return -1;
		*(__u64 *)(data + i * 8) = *(__u64 *)&cfg.frame[i * 8];
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 off = (len & ~7U) + i * 2;

		if (off + 2 > len || off + 2 > TRAFGEN_FRAME_MAX)
			break;
		if (data + off + 2 > end)
			return -1;
		*(__u16 *)(data + off) = *(__u16 *)&cfg.frame[off];
	}

	if (cfg.pick == TRAFGEN_PICK_RANDOM)
		idx = bpf_get_prandom_u32() % n;
	else
		idx = (__u32)(st->sent % n);
	st->sent++;
	d = bpf_map_lookup_elem(&dests, &idx);
	if (!d)
		return -1;

	if (cfg.family == 4) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__u16 *w = (__u16 *)d->addr;

		if ((void *)(ip + 1) > end)
			return -1;
		__builtin_memcpy(&ip->daddr, d->addr, 4);
		ip->id = bpf_htons((__u16)d->tag);
		sum = cfg.ip_csum_base + w[0] + w[1] + ip->id;
		ip->check = csum_fold(sum);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		struct udphdr *udp = (void *)(ip6 + 1);
		__u16 *w = (__u16 *)d->addr;
		__u16 c;

		if ((void *)(udp + 1) > end)
			return -1;
		__builtin_memcpy(&ip6->daddr, d->addr, 16);
		/* The flow label is in no checksum. */
		ip6->flow_lbl[1] = d->tag >> 8;
		ip6->flow_lbl[2] = d->tag;
		sum = cfg.udp_csum_base;
#pragma unroll
		for (int i = 0; i < 8; i++)
			sum += w[i];
		c = csum_fold(sum);
		udp->check = c ? c : 0xffff;
	}
	return 0;
}

SEC("xdp")
int trafgen_tx(struct xdp_md *ctx)
{
	struct trafgen_stats *st;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&tg_stats, &zero);
	if (!st || build_frame(ctx, st))
		return XDP_ABORTED;
	return XDP_TX;
}

/* Whether the frame is test traffic: UDP to the sink's port. */
static __always_inline int is_test_frame(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u8 proto;

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl != 5)
			return 0;
		proto = ip->protocol;
		udp = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return 0;
		proto = ip6->nexthdr;
		udp = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	return proto == IPPROTO_UDP && (void *)(udp + 1) <= end &&
	       udp->dest == bpf_htons(sink_cfg.udp_dport);
}

/* The sink's count: 1 for test traffic (counted as such), 0 for anything
 * else (counted as passed); -1 without counters. */
static __always_inline int sink_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct trafgen_stats *st;
	__u32 zero = 0;

	st = bpf_map_lookup_elem(&tg_stats, &zero);
	if (!st)
		return -1;
	if (!is_test_frame(data, end)) {
		st->sink_passed++;
		return 0;
	}
	st->sink_pkts++;
	st->sink_bytes += end - data;
	return 1;
}

SEC("xdp")
int trafgen_sink(struct xdp_md *ctx)
{
	return sink_count(ctx) == 1 ? XDP_DROP : XDP_PASS;
}

/*
 * The sink of a closed loop (accel-trafgen loop): counts a test frame as
 * trafgen_sink does, then rewrites it into the next test frame and sends
 * it out of the generator's interface (loop_tx), back into the router.
 * The frames the loop was primed with circulate without any generator
 * running: for kernels whose BPF_PROG_RUN refuses live frames.
 */
SEC("xdp")
int trafgen_loop(struct xdp_md *ctx)
{
	struct trafgen_stats *st;
	__u32 zero = 0;

	if (sink_count(ctx) != 1)
		return XDP_PASS;
	st = bpf_map_lookup_elem(&tg_stats, &zero);
	if (!st || build_frame(ctx, st))
		return XDP_DROP;
	return bpf_redirect_map(&loop_tx, 0, XDP_DROP);
}
