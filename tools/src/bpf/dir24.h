/* SPDX-License-Identifier: GPL-2.0 */
/* The IPv4 DIR-24-8 tables and their lookup, the datapath's until the DXR
 * FIB (src/bpf/dxr.h) replaced it; the lookup micro-benchmark's baseline.
 * Written by tools/src/dir24.rs. */
#ifndef ACCEL_DIR24_H
#define ACCEL_DIR24_H

#include "accel.h"
#include "leaf.h"

enum bench_dir24 {
	BENCH_TBL24_LEAVES = 1 << 24,
	BENCH_TBL8_GROUPS = 1 << 14,
	BENCH_GROUP_LEAVES = 256,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_TBL24_LEAVES / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib4_tbl24 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries,
	       BENCH_TBL8_GROUPS * BENCH_GROUP_LEAVES / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib4_tbl8 SEC(".maps");

/* Longest-prefix match of an IPv4 address: one or two array reads. */
static __always_inline int dir24_lookup(__be32 addr, struct accel_route *rt)
{
	__u32 a = bpf_ntohl(addr);
	__u32 leaf = leaf_at(&fib4_tbl24, a >> 8);

	if (leaf & ACCEL_LEAF_EXT)
		leaf = leaf_at(&fib4_tbl8,
				  (leaf & ACCEL_LEAF_ID_MASK) * BENCH_GROUP_LEAVES +
					  (a & 0xff));
	return leaf_route(leaf, rt);
}

#endif
