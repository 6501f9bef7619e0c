/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The route tries of both families and their lookups, shared by the
 * datapath and the lookup micro-benchmark (tools/src/bpf/bench.bpf.c) so
 * that both run the same code.
 *
 * Multibit tries with leaf pushing, strides 16-8-8-...: a root holds one
 * leaf per /16, the node arrays nodes of 256 leaves, stored DIRECT,
 * SEGMENTED or COMPACT (accel.h).
 * Every leaf holds the answer for its whole range (a route, nothing, or the
 * next node), so a lookup reads one leaf per level and stops at the first
 * that is not a node: one read where a /16 holds no longer route, two
 * under a /24, three under a longer IPv4 route; five under an IPv6 /48.
 * The control plane (src/datapath/trie.rs) writes the leaves through
 * memory-mapped arrays and fills a node before any leaf points to it.
 *
 * IPv4 used a DIR-24-8 with a 64 MiB first level; this layout reads the
 * same chain (the /16 root was its summary) from a third of the memory.
 */
#ifndef ACCEL_FIB_H
#define ACCEL_FIB_H

#include "accel.h"

#define ACCEL_LEAF_ARRAY(name, leaves)                                      \
	struct {                                                            \
		__uint(type, BPF_MAP_TYPE_ARRAY);                           \
		__uint(max_entries, (leaves) / ACCEL_LEAVES_PER_ENTRY);     \
		__uint(map_flags, BPF_F_MMAPABLE);                          \
		__type(key, __u32);                                         \
		__type(value, struct accel_leaves);                         \
	} name SEC(".maps")

/* The node arrays (64-byte lines) are sized by the control plane before
 * load. */
ACCEL_LEAF_ARRAY(fib4_root, ACCEL_ROOT_LEAVES);
ACCEL_LEAF_ARRAY(fib4_nodes, ACCEL_LINES4 * ACCEL_LEAVES_PER_ENTRY);
ACCEL_LEAF_ARRAY(fib6_root, ACCEL_ROOT_LEAVES);
ACCEL_LEAF_ARRAY(fib6_nodes, ACCEL_LINES6 * ACCEL_LEAVES_PER_ENTRY);

static __always_inline __u32 fib_leaf(void *map, __u32 i)
{
	__u32 key = i / ACCEL_LEAVES_PER_ENTRY;
	struct accel_leaves *e = bpf_map_lookup_elem(map, &key);

	return e ? e->leaf[i & (ACCEL_LEAVES_PER_ENTRY - 1)] : 0;
}

/* Bits set in x: the BPF instruction set has no popcount. */
static __always_inline __u32 fib_popcount(__u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

/* Leaf i of the node `ptr` points to (accel.h: DIRECT, SEGMENTED or
 * COMPACT): one line read, but for a COMPACT node of over
 * ACCEL_COMPACT_SMALL runs, where it may be two (its first line holds its
 * bitmap and its first runs). */
static __always_inline __u32 fib_node_leaf(void *nodes, __u32 ptr, __u32 i)
{
	__u32 line = ptr & ACCEL_LEAF_ID_MASK;
	struct accel_leaves *h;
	__u32 k, rank, w;
	__u64 bits;

	if (ptr & ACCEL_LEAF_DIRECT)
		return fib_leaf(nodes, line * ACCEL_LEAVES_PER_ENTRY + i);
	if (ptr & ACCEL_LEAF_SEGMENTED) {
		line += i / ACCEL_SEG_LEAVES;
		h = bpf_map_lookup_elem(nodes, &line);
		if (!h)
			return 0;
		k = (h->leaf[(i / 8) % 8] >> (4 * (i % 8))) & 0xf;
		/* ACCEL_SEG_NONE and the codes no palette word has: no route. */
		if (k >= ACCEL_SEG_SLOTS)
			return 0;
		return h->leaf[ACCEL_SEG_PALETTE + k];
	}
	h = bpf_map_lookup_elem(nodes, &line);
	if (!h)
		return 0;
	k = (i >> 6) & 3;
	bits = ((__u64)h->leaf[2 * k + 1] << 32) | h->leaf[2 * k];
	/* Bits 0..i of the word; (2 << 63) - 1 is every bit. */
	bits &= (2ULL << (i & 63)) - 1;
	rank = ((h->leaf[ACCEL_COMPACT_COUNTS] >> (8 * k)) & 0xff) + fib_popcount(bits);
	/* Bit 0 is always set: rank >= 1, the entry ACCEL_COMPACT_ENTRIES +
	 * rank - 1. */
	w = ACCEL_COMPACT_ENTRIES - 1 + (rank & 0xff);
	if (w < ACCEL_LEAVES_PER_ENTRY)
		return h->leaf[w];
	return fib_leaf(nodes, line * ACCEL_LEAVES_PER_ENTRY + w);
}

static __always_inline int fib_route(__u32 leaf, struct accel_route *rt)
{
	if (!(leaf & ACCEL_LEAF_ROUTE))
		return 0;
	rt->type = (leaf >> ACCEL_LEAF_TYPE_SHIFT) & ACCEL_LEAF_TYPE_MASK;
	rt->nh_id = leaf & ACCEL_LEAF_ID_MASK;
	return 1;
}

/* Longest-prefix match of an IPv4 address: the leaf that answers it. */
static __always_inline __u32 route4_leaf(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);
	__u32 leaf = fib_leaf(&fib4_root, a >> 16);

	if (leaf & ACCEL_LEAF_EXT)
		leaf = fib_node_leaf(&fib4_nodes, leaf, (a >> 8) & 0xff);
	if (leaf & ACCEL_LEAF_EXT)
		leaf = fib_node_leaf(&fib4_nodes, leaf, a & 0xff);
	return leaf;
}

static __always_inline int route4_lookup(__be32 addr, struct accel_route *rt)
{
	return fib_route(route4_leaf(addr), rt);
}

/* One level down, or out when the leaf is an answer. Spelt out rather than a
 * loop: clang will not unroll a loop with an early exit, and straight code
 * keeps every byte offset constant for the verifier. */
#define LPM6_LEVEL(i)                                                       \
	do {                                                                \
		if (!(leaf & ACCEL_LEAF_EXT))                               \
			goto done;                                          \
		leaf = fib_node_leaf(&fib6_nodes, leaf, a[i]);              \
	} while (0)

/* Longest-prefix match of an IPv6 address (16 bytes, network order): the
 * leaf that answers it. */
static __always_inline __u32 route6_leaf(const __u8 *a)
{
	__u32 leaf = fib_leaf(&fib6_root, ((__u32)a[0] << 8) | a[1]);

	/* ACCEL_TRIE6_LEVELS - 1 node levels, one per byte after the second. */
	LPM6_LEVEL(2);
	LPM6_LEVEL(3);
	LPM6_LEVEL(4);
	LPM6_LEVEL(5);
	LPM6_LEVEL(6);
	LPM6_LEVEL(7);
	LPM6_LEVEL(8);
	LPM6_LEVEL(9);
	LPM6_LEVEL(10);
	LPM6_LEVEL(11);
	LPM6_LEVEL(12);
	LPM6_LEVEL(13);
	LPM6_LEVEL(14);
	LPM6_LEVEL(15);
done:
	return leaf;
}

static __always_inline int route6_lookup(const __u8 *a, struct accel_route *rt)
{
	return fib_route(route6_leaf(a), rt);
}

#undef LPM6_LEVEL
#undef ACCEL_LEAF_ARRAY

#endif
