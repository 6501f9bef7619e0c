/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The IPv4 FIB and its lookup: DXR's range layout (Zec, "DXR: towards a
 * billion routing lookups per second in software"; FreeBSD in_fib_dxr.c),
 * with a direct table of 2^ACCEL_FIB4_DIR_BITS chunks, shared by the
 * datapath and the lookup micro-benchmark.
 *
 * fib4_dir holds a word per chunk: a route leaf for the whole chunk, or
 * (ACCEL_FIB4_CHUNK) where its ranges lie in fib4_ranges: 2^log ranges
 * sorted by their first address (offset in the chunk), padded past the last
 * with starts no address reaches. The lookup is a binary search of log
 * steps over a few cache lines; a full table needs about 11 MiB, so it
 * stays in cache. The control plane (src/datapath/fib4.rs) writes a chunk's
 * ranges completely before the word points to them.
 */
#ifndef ACCEL_DXR_H
#define ACCEL_DXR_H

#include "accel.h"
#include "leaf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_FIB4_CHUNKS / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib4_dir SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_FIB4_RANGES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_range4);
} fib4_ranges SEC(".maps");

static __always_inline __u32 range4_start(__u32 i)
{
	struct accel_range4 *r = bpf_map_lookup_elem(&fib4_ranges, &i);

	return r ? r->start : ~0u;
}

/* Longest-prefix match of an IPv4 address: one word, and for a chunk with
 * longer routes a binary search of its ranges. */
static __always_inline int route4_lookup(__be32 addr, struct accel_route *rt)
{
	__u32 a = bpf_ntohl(addr);
	__u32 word = leaf_at(&fib4_dir, a >> (32 - ACCEL_FIB4_DIR_BITS));

	if (word & ACCEL_FIB4_CHUNK) {
		__u32 base = word & ACCEL_FIB4_BASE_MASK;
		__u32 log = (word >> ACCEL_FIB4_LOG_SHIFT) & ACCEL_FIB4_LOG_MASK;
		__u32 key = a & ((1u << (32 - ACCEL_FIB4_DIR_BITS)) - 1), i = 0;
		struct accel_range4 *r;

		/* Fixed steps, halving: the last range starting at or before
		 * key (the first starts at 0). */
#pragma unroll
		for (int l = ACCEL_FIB4_MAX_LOG - 1; l >= 0; l--) {
			if ((__u32)l < log &&
			    range4_start(base + i + (1u << l)) <= key)
				i += 1u << l;
		}
		base += i;
		r = bpf_map_lookup_elem(&fib4_ranges, &base);
		word = r ? r->leaf : 0;
	}
	return leaf_route(word, rt);
}

#endif
