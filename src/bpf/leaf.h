/* SPDX-License-Identifier: GPL-2.0 */
/* Route leaves (accel.h, enum accel_leaf): reading one out of an array of
 * packed leaves, and turning one into a route. Shared by the IPv4 FIB, the
 * IPv6 trie and the lookup micro-benchmark. */
#ifndef ACCEL_LEAF_H
#define ACCEL_LEAF_H

#include "accel.h"

/* Leaf i of an array of struct accel_leaves; 0 when out of range. Read
 * once: the control plane rewrites leaves while packets read them. */
static __always_inline __u32 leaf_at(void *map, __u32 i)
{
	__u32 key = i / ACCEL_LEAVES_PER_ENTRY;
	struct accel_leaves *e = bpf_map_lookup_elem(map, &key);

	return e ? *(volatile __u32 *)&e->leaf[i & (ACCEL_LEAVES_PER_ENTRY - 1)]
		 : 0;
}

/* The route a leaf holds; 0 when it holds none. */
static __always_inline int leaf_route(__u32 leaf, struct accel_route *rt)
{
	if (!(leaf & ACCEL_LEAF_ROUTE))
		return 0;
	rt->type = (leaf >> ACCEL_LEAF_TYPE_SHIFT) & ACCEL_LEAF_TYPE_MASK;
	rt->nh_id = leaf & ACCEL_LEAF_ID_MASK;
	return 1;
}

#endif
