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

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int trafgen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len = cfg.frame_len;
	__u32 zero = 0, idx, n = cfg.n_dests;
	struct trafgen_stats *st;
	struct trafgen_dst *d;
	__u32 sum;

	if (n == 0 || len > TRAFGEN_FRAME_MAX || data + len != end)
		return XDP_ABORTED;
	st = bpf_map_lookup_elem(&tg_stats, &zero);
	if (!st)
		return XDP_ABORTED;

	/* The template, 8 bytes at a time, then 2 at a time. */
#pragma unroll
	for (int i = 0; i < TRAFGEN_FRAME_MAX / 8; i++) {
		if (i * 8 + 8 > len)
			break;
		if (data + i * 8 + 8 > end)
			return XDP_ABORTED;
		*(__u64 *)(data + i * 8) = *(__u64 *)&cfg.frame[i * 8];
	}
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 off = (len & ~7U) + i * 2;

		if (off + 2 > len || off + 2 > TRAFGEN_FRAME_MAX)
			break;
		if (data + off + 2 > end)
			return XDP_ABORTED;
		*(__u16 *)(data + off) = *(__u16 *)&cfg.frame[off];
	}

	if (cfg.pick == TRAFGEN_PICK_RANDOM)
		idx = bpf_get_prandom_u32() % n;
	else
		idx = (__u32)(st->sent % n);
	st->sent++;
	d = bpf_map_lookup_elem(&dests, &idx);
	if (!d)
		return XDP_ABORTED;

	if (cfg.family == 4) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__u16 *w = (__u16 *)d->addr;

		if ((void *)(ip + 1) > end)
			return XDP_ABORTED;
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
			return XDP_ABORTED;
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
	return XDP_TX;
}

SEC("xdp")
int trafgen_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct trafgen_stats *st;
	struct udphdr *udp;
	__u32 zero = 0;
	__u8 proto;

	st = bpf_map_lookup_elem(&tg_stats, &zero);
	if (!st)
		return XDP_PASS;
	if ((void *)(eth + 1) > end)
		goto pass;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end || ip->ihl != 5)
			goto pass;
		proto = ip->protocol;
		udp = (void *)(ip + 1);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			goto pass;
		proto = ip6->nexthdr;
		udp = (void *)(ip6 + 1);
	} else {
		goto pass;
	}
	if (proto != IPPROTO_UDP || (void *)(udp + 1) > end ||
	    udp->dest != bpf_htons(sink_cfg.udp_dport))
		goto pass;
	st->sink_pkts++;
	st->sink_bytes += end - data;
	return XDP_DROP;
pass:
	st->sink_passed++;
	return XDP_PASS;
}
