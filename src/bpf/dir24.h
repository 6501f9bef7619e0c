/* SPDX-License-Identifier: GPL-2.0 */
/* The IPv4 DIR-24-8 tables and their lookup, shared by the datapath and the
 * lookup micro-benchmark (tools/src/bpf/bench.bpf.c) so that both run the same code. */
#ifndef ACCEL_DIR24_H
#define ACCEL_DIR24_H

#include "accel.h"

/* A word per /16: 256 KiB, in cache, where a default route and few longer
 * routes answer most lookups without touching the 64 MiB first level. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_SUMMARY_WORDS / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib4_summary SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_TBL24_LEAVES / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib4_tbl24 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries,
	       ACCEL_TBL8_GROUPS * ACCEL_GROUP_LEAVES / ACCEL_LEAVES_PER_ENTRY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct accel_leaves);
} fib4_tbl8 SEC(".maps");

static __always_inline __u32 dir24_leaf(void *map, __u32 i)
{
	__u32 key = i / ACCEL_LEAVES_PER_ENTRY;
	struct accel_leaves *e = bpf_map_lookup_elem(map, &key);

	return e ? e->leaf[i & (ACCEL_LEAVES_PER_ENTRY - 1)] : 0;
}

/* Longest-prefix match of an IPv4 address: the /16's summary word, and
 * where the /16 holds longer routes one or two array reads more. */
static __always_inline int route4_lookup(__be32 addr, struct accel_route *rt)
{
	__u32 a = bpf_ntohl(addr);
	__u32 leaf = dir24_leaf(&fib4_summary, a >> 16);

	if (leaf & ACCEL_LEAF_EXT)
		leaf = dir24_leaf(&fib4_tbl24, a >> 8);
	if (leaf & ACCEL_LEAF_EXT)
		leaf = dir24_leaf(&fib4_tbl8,
				  (leaf & ACCEL_LEAF_ID_MASK) * ACCEL_GROUP_LEAVES +
					  (a & 0xff));
	if (!(leaf & ACCEL_LEAF_ROUTE))
		return 0;
	rt->type = (leaf >> ACCEL_LEAF_TYPE_SHIFT) & ACCEL_LEAF_TYPE_MASK;
	rt->nh_id = leaf & ACCEL_LEAF_ID_MASK;
	return 1;
}

#endif
