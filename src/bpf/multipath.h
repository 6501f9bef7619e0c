/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's multipath hash, reproduced: fib_multipath_hash() and
 * rt6_multipath_hash() fill a struct flow_keys, sort its addresses and
 * ports (__flow_hash_consistentify), and run SipHash-2-4 over it from the
 * `basic` member on, keyed with the fib_multipath_hash_seed sysctl. With a
 * seed set by the operator the result is a pure function of the packet,
 * so the datapath picks the path the kernel would pick. Without one the
 * kernel keys the hash with a random per-namespace value, and multipath
 * routes are left to bpf_fib_lookup.
 *
 * struct flow_keys comes from vmlinux.h; multipath_layout_ok() checks with
 * CO-RE that the running kernel lays it out the same way, and the datapath
 * falls back to bpf_fib_lookup when it does not.
 */
#ifndef ACCEL_MULTIPATH_H
#define ACCEL_MULTIPATH_H

#include <bpf/bpf_core_read.h>

#include "accel.h"
#include "maps.h"
#include "parse.h"

#define FLOW_KEYS_HASH_START __builtin_offsetof(struct flow_keys, basic)
/* flow_keys_hash_length(): the struct past `basic`, less the part of the
 * address union the family does not use. */
#define FLOW_KEYS_LEN(family_addrs)                                         \
	(sizeof(struct flow_keys) - FLOW_KEYS_HASH_START -                  \
	 sizeof(struct flow_dissector_key_addrs) + sizeof(family_addrs))
#define FLOW_KEYS_LEN4 FLOW_KEYS_LEN(struct flow_dissector_key_ipv4_addrs)
#define FLOW_KEYS_LEN6 FLOW_KEYS_LEN(struct flow_dissector_key_ipv6_addrs)

_Static_assert(FLOW_KEYS_LEN4 % 8 == 0 && FLOW_KEYS_LEN6 % 8 == 0,
	       "SipHash below takes whole words only");

/* vmlinux.h's types carry preserve_access_index, so the usual offsetof()
 * would itself be relocated: compare with the compile-time offsets. */
#define FK_OFF(m) __builtin_offsetof(struct flow_keys, m)

static __always_inline int multipath_layout_ok(void)
{
	return bpf_core_type_size(struct flow_keys) == sizeof(struct flow_keys) &&
	       bpf_core_field_offset(struct flow_keys, basic) == FK_OFF(basic) &&
	       bpf_core_field_offset(struct flow_keys, tags) == FK_OFF(tags) &&
	       bpf_core_field_offset(struct flow_keys, ports) == FK_OFF(ports) &&
	       bpf_core_field_offset(struct flow_keys, addrs) == FK_OFF(addrs);
}

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIP_ROUND                                                           \
	do {                                                                \
		v0 += v1; v1 = SIP_ROTL(v1, 13); v1 ^= v0;                  \
		v0 = SIP_ROTL(v0, 32);                                      \
		v2 += v3; v3 = SIP_ROTL(v3, 16); v3 ^= v2;                  \
		v0 += v3; v3 = SIP_ROTL(v3, 21); v3 ^= v0;                  \
		v2 += v1; v1 = SIP_ROTL(v1, 17); v1 ^= v2;                  \
		v2 = SIP_ROTL(v2, 32);                                      \
	} while (0)

/* SipHash-2-4 of `words` little-endian words, keyed as
 * fib_multipath_hash_construct_key() does: both key halves are the 32-bit
 * seed twice. */
static __always_inline __u64 siphash_words(const __u64 *w, const int words,
					   __u32 seed)
{
	__u64 key = ((__u64)seed << 32) | seed;
	__u64 v0 = 0x736f6d6570736575ULL ^ key;
	__u64 v1 = 0x646f72616e646f6dULL ^ key;
	__u64 v2 = 0x6c7967656e657261ULL ^ key;
	__u64 v3 = 0x7465646279746573ULL ^ key;
	__u64 b = (__u64)(words * 8) << 56;

#pragma unroll
	for (int i = 0; i < words; i++) {
		__u64 m = w[i];

		v3 ^= m;
		SIP_ROUND;
		SIP_ROUND;
		v0 ^= m;
	}
	v3 ^= b;
	SIP_ROUND;
	SIP_ROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	SIP_ROUND;
	return (v0 ^ v1) ^ (v2 ^ v3);
}

/* __flow_hash_from_keys() then fib_multipath_hash()'s final shift. */
static __always_inline __u32 flow_keys_mp_hash(struct flow_keys *keys,
					       const int len, __u32 seed)
{
	__u32 h = (__u32)siphash_words((const __u64 *)&keys->basic, len / 8, seed);

	return (h ? h : 1) >> 1;
}

/* Where the flow dissector finds "ports" for the L4 hash
 * (proto_ports_offset()); -1 for protocols without them. */
static __always_inline int l4_ports_offset(__u8 proto)
{
	switch (proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_DCCP:
	case IPPROTO_ESP: /* the SPI */
	case IPPROTO_SCTP:
	case IPPROTO_UDPLITE:
		return 0;
	case IPPROTO_AH: /* the SPI */
		return 4;
	default:
		return -1;
	}
}

/* Copies the 4 bytes of ports (or SPI) at l4 + offset, if present. A packet
 * too short to hold them is dissected by the kernel as port-less too. */
static __always_inline void mp_ports(struct flow_keys *keys, void *l4,
				     void *end, __u8 proto)
{
	int off = l4_ports_offset(proto);
	__be32 *ports;

	if (off < 0)
		return;
	ports = header_at(__be32, l4, end, off);
	if (ports)
		keys->ports.ports = *ports;
}

static __always_inline void mp_sort_ports(struct flow_keys *keys)
{
	__be16 t;

	if ((__u16)keys->ports.dst < (__u16)keys->ports.src) {
		t = keys->ports.src;
		keys->ports.src = keys->ports.dst;
		keys->ports.dst = t;
	}
}

/* fib_multipath_hash() for a forwarded IPv4 packet (not an ICMP error:
 * those the kernel hashes on the header they quote, and the datapath
 * passes them up). */
static __always_inline __u32 mp_hash4(struct iphdr *ip, void *end, int l4,
				      __u32 seed)
{
	struct flow_keys keys;
	__be32 t;

	__builtin_memset(&keys, 0, sizeof(keys));
	keys.addrs.v4addrs.src = ip->saddr;
	keys.addrs.v4addrs.dst = ip->daddr;
	if (l4) {
		keys.basic.ip_proto = ip->protocol;
		/* The dissector reads no ports from any fragment. */
		if (!(ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
			mp_ports(&keys, ip + 1, end, ip->protocol);
	}
	if ((__u32)keys.addrs.v4addrs.dst < (__u32)keys.addrs.v4addrs.src) {
		t = keys.addrs.v4addrs.src;
		keys.addrs.v4addrs.src = keys.addrs.v4addrs.dst;
		keys.addrs.v4addrs.dst = t;
	}
	mp_sort_ports(&keys);
	return flow_keys_mp_hash(&keys, FLOW_KEYS_LEN4, seed);
}

/* 1 for the next-header values the flow dissector walks past (extension
 * headers): under the L4 policy the kernel hashes what follows them. */
static __always_inline int ipv6_ext_header(__u8 nexthdr)
{
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_FRAGMENT:
	case IPPROTO_DSTOPTS:
	case IPPROTO_MH:
	case 139: /* HIP */
	case 140: /* shim6 */
		return 1;
	default:
		return 0;
	}
}

/* rt6_multipath_hash(). Returns 0 when only the kernel's dissector can
 * tell the hash (L4 policy behind extension headers). */
static __always_inline int mp_hash6(struct ipv6hdr *ip6, void *end, int l4,
				    __u32 seed, __u32 *hash)
{
	struct flow_keys keys;
	int i, swap = 0;

	__builtin_memset(&keys, 0, sizeof(keys));
	__builtin_memcpy(&keys.addrs.v6addrs.src, &ip6->saddr, 16);
	__builtin_memcpy(&keys.addrs.v6addrs.dst, &ip6->daddr, 16);
	keys.basic.ip_proto = ip6->nexthdr;
	if (l4) {
		if (ipv6_ext_header(ip6->nexthdr))
			return 0;
		mp_ports(&keys, ip6 + 1, end, ip6->nexthdr);
	} else {
		keys.tags.flow_label =
			*(__be32 *)ip6 & bpf_htonl(0x000FFFFF);
	}
	/* memcmp(dst, src) < 0: swap. */
#pragma unroll
	for (i = 0; i < 16; i++) {
		__u8 d = keys.addrs.v6addrs.dst.in6_u.u6_addr8[i];
		__u8 s = keys.addrs.v6addrs.src.in6_u.u6_addr8[i];

		if (d != s) {
			swap = d < s;
			break;
		}
	}
	if (swap) {
		struct in6_addr t = keys.addrs.v6addrs.src;

		keys.addrs.v6addrs.src = keys.addrs.v6addrs.dst;
		keys.addrs.v6addrs.dst = t;
	}
	mp_sort_ports(&keys);
	*hash = flow_keys_mp_hash(&keys, FLOW_KEYS_LEN6, seed);
	return 1;
}

/* The next hop the kernel's hash-threshold selection lands on, or 0. */
static __always_inline __u32 mp_select(struct accel_nh_group *g, __u32 hash)
{
#pragma unroll
	for (int i = 0; i < ACCEL_MAX_PATHS; i++) {
		if (i >= g->count)
			return 0;
		if (hash <= g->paths[i].upper_bound)
			return g->paths[i].nh_id;
	}
	return 0;
}

#endif
