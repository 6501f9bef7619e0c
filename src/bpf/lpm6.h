/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The IPv6 route trie and its lookup, shared by the datapath and the lookup
 * micro-benchmark (tools/src/bpf/bench.bpf.c) so that both run the same code.
 *
 * A multibit trie with leaf pushing, strides 16-8-8-...-8: fib6_root holds
 * one leaf per /16, fib6_nodes groups of 256 leaves, one group per node.
 * Every leaf holds the answer for its whole range (a route, nothing, or the
 * next node), so a lookup reads one leaf per level and stops at the first
 * that is not a node: four array reads for an address under a /48, however
 * many routes there are. The control plane (src/datapath/trie6.rs) writes
 * the leaves through memory-mapped arrays and fills a node before any leaf
 * points to it.
 */
#ifndef ACCEL_LPM6_H
#define ACCEL_LPM6_H

#include "accel.h"
#include "dir24.h" /* leaf encoding and dir24_leaf() */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_ROOT6_LEAVES / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib6_root SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries,
	       ACCEL_NODES6 * ACCEL_NODE6_LEAVES / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib6_nodes SEC(".maps");

/* One level down, or out when the leaf is an answer. Spelt out rather than a
 * loop: clang will not unroll a loop with an early exit, and straight code
 * keeps every byte offset constant for the verifier. */
#define LPM6_LEVEL(i)                                                       \
	do {                                                                \
		if (!(leaf & ACCEL_LEAF_EXT))                               \
			goto done;                                          \
		leaf = dir24_leaf(&fib6_nodes,                              \
				  (leaf & ACCEL_LEAF_ID_MASK) *             \
						  ACCEL_NODE6_LEAVES +      \
					  a[i]);                            \
	} while (0)

/* Longest-prefix match of an IPv6 address (16 bytes, network order). */
static __always_inline int route6_lookup(const __u8 *a, struct accel_route *rt)
{
	__u32 leaf = dir24_leaf(&fib6_root, ((__u32)a[0] << 8) | a[1]);

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
	if (!(leaf & ACCEL_LEAF_ROUTE))
		return 0;
	rt->type = (leaf >> ACCEL_LEAF_TYPE_SHIFT) & ACCEL_LEAF_TYPE_MASK;
	rt->nh_id = leaf & ACCEL_LEAF_ID_MASK;
	return 1;
}

#undef LPM6_LEVEL

#endif
