/* SPDX-License-Identifier: GPL-2.0 */
/* Header access and address classification, all bounds-checked. */
#ifndef ACCEL_PARSE_H
#define ACCEL_PARSE_H

#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60
#define IPPROTO_MH 135
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* Pointer to a T at data + off, or NULL when the packet is too short. */
#define header_at(T, data, end, off)                                           \
	({                                                                     \
		T *__h = (T *)((void *)(data) + (off));                       \
		((void *)(__h + 1) > (void *)(end)) ? (T *)0 : __h;           \
	})

/* Words that may alias bytes and headers: read through them, a packet
 * is still the same memory to the compiler (-fstrict-aliasing is on). */
typedef __u32 __attribute__((may_alias)) accel_any_u32;
typedef __u16 __attribute__((may_alias)) accel_any_u16;

/* Two loads a side, not six. The verifier allows unaligned reads of
 * packets and map values where the CPU does them well
 * (CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS): x86-64, the architecture of
 * vmlinux/vmlinux.h, and arm64. */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return *(const accel_any_u32 *)a == *(const accel_any_u32 *)b &&
	       *(const accel_any_u16 *)(a + 4) == *(const accel_any_u16 *)(b + 4);
}

/* The kernel drops IPv4 headers whose checksum does not verify. Summed in
 * 32-bit words and folded, as ip_fast_csum() does: the ones' complement
 * sum does not depend on the word size (RFC 1071). */
static __always_inline int ipv4_csum_ok(const struct iphdr *ip)
{
	const accel_any_u32 *w = (const accel_any_u32 *)ip;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < 5; i++)
		sum += w[i];
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Addresses the kernel never forwards as plain unicast: zeronet, loopback,
 * multicast, class E and limited broadcast. */
static __always_inline int ipv4_special(__be32 addr)
{
	__u8 first = bpf_ntohl(addr) >> 24;

	return first == 0 || first == 127 || first >= 224;
}

/* Sources ip_route_input_slow() rejects for a unicast destination before
 * any lookup: multicast, limited broadcast, 0.0.0.0/8. (127/8 depends on
 * route_localnet, which is not mirrored; 240/4 is accepted.) */
static __always_inline int ipv4_martian_src(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);

	return (a >> 28) == 0xe || a == 0xffffffff || (a >> 24) == 0;
}

/* ::1 (ip6_rcv_core() drops it as source or destination off loopback). */
static __always_inline int ipv6_loopback(const struct in6_addr *a)
{
	return !(a->in6_u.u6_addr32[0] | a->in6_u.u6_addr32[1] |
		 a->in6_u.u6_addr32[2]) &&
	       a->in6_u.u6_addr32[3] == bpf_htonl(1);
}

/* Multicast, link-local, loopback, unspecified and v4-mapped addresses. */
static __always_inline int ipv6_special(const struct in6_addr *a)
{
	__u32 w0 = bpf_ntohl(a->in6_u.u6_addr32[0]);
	__u32 w1 = a->in6_u.u6_addr32[1], w2 = a->in6_u.u6_addr32[2];
	__u32 w3 = bpf_ntohl(a->in6_u.u6_addr32[3]);

	if ((w0 >> 24) == 0xff)			/* ff00::/8 multicast */
		return 1;
	if ((w0 >> 22) == (0xfe80 >> 6))	/* fe80::/10 link-local */
		return 1;
	if (w0 == 0 && w1 == 0) {
		if (w2 == 0 && (w3 == 0 || w3 == 1)) /* :: and ::1 */
			return 1;
		if (w2 == bpf_htonl(0xffff))	/* ::ffff:0:0/96 */
			return 1;
	}
	return 0;
}

/* ICMP errors: the kernel hashes them on the quoted header for multipath. */
static __always_inline int icmp4_is_error(__u8 type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

static __always_inline int icmp6_is_error(__u8 type)
{
	return type < 128;
}

/* Protocols the kernel's flow dissector looks inside (__skb_flow_dissect():
 * IP in IP, IPv6 in IP, GRE, MPLS in IP, Ethernet in IP, L2TPv3), and so
 * whose multipath hash can take inner headers. */
static __always_inline int encapsulates(__u8 proto)
{
	switch (proto) {
	case IPPROTO_IPIP:
	case IPPROTO_IPV6:
	case IPPROTO_GRE:
	case IPPROTO_MPLS:
	case IPPROTO_ETHERNET:
	case IPPROTO_L2TP:
		return 1;
	default:
		return 0;
	}
}

/* Neighbour discovery (RFC 4861): router solicitation and advertisement,
 * neighbour solicitation and advertisement, redirect; the types
 * ip6_forward_proxy_check() hands to ip6_input(). */
static __always_inline int icmp6_is_ndisc(__u8 type)
{
	return type >= 133 && type <= 137;
}

#endif
