// SPDX-License-Identifier: GPL-2.0
/*
 * The ceiling of the forwarding path, not a router: the least any correct
 * XDP forwarder does per frame, with the route lookup handed to it for
 * free. Parse Ethernet and the IP header, refuse TTL / hop limit <= 1,
 * read the gateway the traffic generator tagged the frame with (IPv4 ID,
 * IPv6 flow label: accel-trafgen --tag-gateways), take that adjacency
 * (both MACs, the egress port) from an array, TTL - 1 with the incremental
 * checksum, rewrite the MACs, redirect through a devmap. accel's forwarding
 * rate over this one's is what its lookups and checks cost
 * (scripts/bench/forwarding.sh, mode "ceiling").
 *
 * ceiling_read_fwd is the same forwarder plus the reads a FIB cannot do
 * without: 64-byte lines of the `lines` array, chosen by a hash of the
 * destination, each on the frame's dependency chain (the last one's first
 * word, zero, is added to the tag). Sized like a FIB's node array
 * (accel-ceiling --read-mib, --reads), it is the fastest any lookup with
 * that many dependent reads into that much memory could forward
 * (forwarding.sh, mode "ceiling-read:MIB[xREADS][sSTRIDE]").
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define CEILING_ADJ 8

struct ceiling_adj {
	__u8 dmac[6];
	__u8 smac[6];
	__u32 port; /* slot in tx */
};
struct ceiling_adj ceiling_adj_type;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CEILING_ADJ);
	__type(key, __u32);
	__type(value, struct ceiling_adj);
} adj SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} tx SEC(".maps");

/* One cache line, as a FIB node's. */
struct ceiling_line {
	__u32 w[16];
};

/* Resized by accel-ceiling before loading (--read-mib). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ceiling_line);
} lines SEC(".maps");

/* Dependent reads per frame (at most CEILING_MAX_READS; set before
 * loading). */
const volatile __u32 read_count = 1;
/* Reads land on one line in line_stride only (--stride): with 65, each in
 * a page of its own at an offset that moves from page to page, so that
 * the pages stay many while the lines stay few and spread over the cache
 * sets (the TLB's reach apart from the caches'; 64 would put every line
 * at one page offset, in a few sets). slot_count is the number of lines
 * in `lines` divided by line_stride. */
const volatile __u32 line_stride = 1;
const volatile __u32 slot_count = 1;
#define CEILING_MAX_READS 8

static __always_inline int rewrite(struct ethhdr *eth, __u32 tag)
{
	__u32 k = tag % CEILING_ADJ;
	struct ceiling_adj *a = bpf_map_lookup_elem(&adj, &k);

	if (!a)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, a->dmac, 6);
	__builtin_memcpy(eth->h_source, a->smac, 6);
	return bpf_redirect_map(&tx, a->port, XDP_PASS);
}

/* TTL / hop limit - 1; returns the frame's tag and sets *dst to a word of
 * its destination, or returns -1 when the frame is not forwarded. */
static __always_inline long ttl_and_tag(struct ethhdr *eth, void *end,
					__u32 *dst)
{
	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 check;

		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return -1;
		/* RFC 1624, as ip_decrease_ttl(). */
		check = ip->check;
		check += bpf_htons(0x0100);
		ip->check = (__u16)(check + (check >= 0xFFFF));
		ip->ttl--;
		*dst = ip->daddr;
		return bpf_ntohs(ip->id);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return -1;
		ip6->hop_limit--;
		*dst = ip6->daddr.in6_u.u6_addr32[1] ^ ip6->daddr.in6_u.u6_addr32[3];
		return ((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2];
	}
	return -1;
}

SEC("xdp")
int ceiling_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 dst;
	long tag = ttl_and_tag(data, end, &dst);

	if (tag < 0)
		return XDP_PASS;
	return rewrite(data, tag);
}

SEC("xdp")
int ceiling_read_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ceiling_line *line;
	__u32 dst, i, r, word = 0;
	long tag = ttl_and_tag(data, end, &dst);

	if (tag < 0)
		return XDP_PASS;
	/* Each read's line depends on the one before (its word, zero, mixed
	 * into the hash), as a trie's levels do. */
	for (r = 0; r < CEILING_MAX_READS && r < read_count; r++) {
		/* A multiplicative hash, scaled to the line count without a
		 * division (which would cost more than the read's
		 * instructions). */
		dst = (dst ^ word) * 0x9E3779B1u + r;
		i = (((__u64)dst * slot_count) >> 32) * line_stride;
		line = bpf_map_lookup_elem(&lines, &i);
		if (!line)
			return XDP_PASS;
		word = line->w[0];
	}
	return rewrite(data, tag + word);
}
