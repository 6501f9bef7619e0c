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

SEC("xdp")
int ceiling_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 check;

		if ((void *)(ip + 1) > end || ip->ttl <= 1)
			return XDP_PASS;
		/* RFC 1624, as ip_decrease_ttl(). */
		check = ip->check;
		check += bpf_htons(0x0100);
		ip->check = (__u16)(check + (check >= 0xFFFF));
		ip->ttl--;
		return rewrite(eth, bpf_ntohs(ip->id));
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return XDP_PASS;
		ip6->hop_limit--;
		return rewrite(eth, ((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2]);
	}
	return XDP_PASS;
}
