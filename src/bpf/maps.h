/* SPDX-License-Identifier: GPL-2.0 */
/* The maps the control plane keeps equal to the kernel's FIB. */
#ifndef ACCEL_MAPS_H
#define ACCEL_MAPS_H

#include "accel.h"

/* The slot an index array (iface_index, nh_index) names for `key`, which
 * holds 1 + the slot, or 0 for none: 1 and *slot, or 0. Read once
 * (volatile): the control plane switches it while the datapath runs. */
static __always_inline int index_slot(void *index, __u32 key, __u32 *slot)
{
	__u32 *v = bpf_map_lookup_elem(index, &key);

	if (!v)
		return 0;
	*slot = *(volatile __u32 *)v;
	if (!*slot)
		return 0;
	*slot -= 1;
	return 1;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct accel_config);
} accel_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ACCEL_MAX_IFACES);
	__type(key, __u32); /* ifindex */
	__type(value, struct accel_iface);
} ifaces SEC(".maps");

/* The same entries by array, two reads instead of a hash lookup (hash
 * lookups are the largest per-frame cost, BENCHMARKS.md): iface_index
 * holds, per ifindex below ACCEL_IFINDEX_CACHE, 1 + the slot of
 * iface_versions with the interface's entry, or 0. An entry is never
 * rewritten in place (a reader could see half of a changed MAC): a change
 * is written into another slot, then iface_index is switched to it, and
 * the old slot is reused after a grace period. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_IFINDEX_CACHE);
	__type(key, __u32);
	__type(value, __u32);
} iface_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_IFACE_VERSIONS);
	__type(key, __u32);
	__type(value, struct accel_iface);
} iface_versions SEC(".maps");

/* accel's interface with this ifindex, or NULL. */
static __always_inline struct accel_iface *iface_lookup(__u32 ifindex)
{
	struct accel_iface *in;
	__u32 slot;

	if (ifindex >= ACCEL_IFINDEX_CACHE)
		return bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!index_slot(&iface_index, ifindex, &slot))
		return 0;
	in = bpf_map_lookup_elem(&iface_versions, &slot);
	/* Left alone, clang makes the two lookups one call with the map
	 * chosen at run time; the verifier can then inline neither
	 * (do_misc_fixups() skips a call site that sees two maps), and every
	 * frame paid the generic helper's indirect call: 10 ns of a 46 ns
	 * forward (BENCHMARKS.md). The empty asm keeps the calls apart. */
	asm volatile("" : "+r"(in));
	return in;
}

/* Only accel's own interfaces, by their slot (accel_iface.slot, fixed for
 * the life of the instance): a redirect can never leave through another,
 * and an array index costs less than the hash by ifindex it replaces. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, ACCEL_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ACCEL_MAX_IFACES + 1);
	__type(key, __u32); /* accel_iface.slot, or ACCEL_STATS_RECOUNT */
	__type(value, struct accel_stats);
} stats SEC(".maps");

#include "fib.h"

/* Next hops by id: nh_index holds, per next-hop id, 1 + the slot of
 * nexthops with its entry, or 0 (bpf_fib_lookup decides). An entry carries
 * its gateway's MAC, which changes with the neighbour while routes keep
 * the id: it is never rewritten in place (a reader could see half of a
 * changed MAC) but written into another slot, then the index is switched
 * to it (src/datapath/nh_versions.rs). The control plane sizes both. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_MAX_NEXTHOPS);
	__type(key, __u32);
	__type(value, __u32);
} nh_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_MAX_NEXTHOPS);
	__type(key, __u32);
	__type(value, struct accel_nexthop);
} nexthops SEC(".maps");

/* The entry of next hop `id`, or NULL. */
static __always_inline struct accel_nexthop *nexthop_lookup(__u32 id)
{
	__u32 slot;

	if (!index_slot(&nh_index, id, &slot))
		return 0;
	return bpf_map_lookup_elem(&nexthops, &slot);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ACCEL_MAX_NEXTHOPS);
	__type(key, __u32);
	__type(value, struct accel_nh_stats);
} nh_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ACCEL_MAX_BLACKHOLES);
	__type(key, __u32);
	__type(value, struct accel_blackhole);
} blackhole_drops SEC(".maps");

/* Source RTBH: packets dropped because their source's route is that
 * blackhole prefix (same slots as blackhole_drops). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ACCEL_MAX_BLACKHOLES);
	__type(key, __u32);
	__type(value, struct accel_blackhole);
} src_blackhole_drops SEC(".maps");

/* Written by the control plane only: which prefix each slot counts. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_MAX_BLACKHOLES);
	__type(key, __u32);
	__type(value, struct accel_blackhole_prefix);
} blackhole_prefixes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_MAX_GROUPS);
	__type(key, __u32);
	__type(value, struct accel_nh_group);
} nh_groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ACCEL_MAX_NEIGH);
	__type(key, struct accel_neigh4_key);
	__type(value, struct accel_neigh);
} neigh4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ACCEL_MAX_NEIGH);
	__type(key, struct accel_neigh6_key);
	__type(value, struct accel_neigh);
} neigh6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ACCEL_MAX_SRC_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct accel_route4_key);
	__type(value, __u8);
} src_rules4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, ACCEL_MAX_SRC_RULES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct accel_route6_key);
	__type(value, __u8);
} src_rules6 SEC(".maps");

/* The router's own IPv4 addresses: the kernel drops packets that arrive
 * from outside with one of them as source (fib_validate_source). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ACCEL_MAX_LOCAL_ADDRS);
	__type(key, __u32);
	__type(value, __u8);
} local4 SEC(".maps");

/* In front of local4: bit local4_fold(a) is set while some address in
 * local4 folds to it, so that almost every source is known not to be local
 * without a hash lookup (the most expensive part of a forwarded frame). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_LOCAL4_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} local4_bits SEC(".maps");

/* Written by the control plane only, for `accel stats --capacity`: how
 * full each bounded structure is (indexed by enum accel_structure). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ACCEL_CAP_MAX);
	__type(key, __u32);
	__type(value, struct accel_capacity);
} capacity SEC(".maps");

#endif
