// SPDX-License-Identifier: GPL-2.0
/*
 * What one dependent read of a BPF array map costs at a given working set
 * (`accel-bench memlat`, BENCHMARKS.md): a chain of MEMLAT_CHAIN reads per
 * test run, each line holding the index of the next, over a random cycle
 * of lines. Two kinds of storage: one large array (vmalloc'd, as the
 * datapath's BPF_F_MMAPABLE arrays are: 4 KiB pages) and arrays of at most
 * 32 KiB inside an array of maps (kmalloc'd: the kernel's direct mapping,
 * huge pages), so that the cost of the TLB shows apart from the caches'.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "memlat.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MEMLAT_LINES);
	__type(key, __u32);
	__type(value, struct memlat_line);
} big SEC(".maps");

struct memlat_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MEMLAT_INNER);
	__type(key, __u32);
	__type(value, struct memlat_line);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MEMLAT_OUTER);
	__type(key, __u32);
	__array(values, struct memlat_inner);
} small SEC(".maps");

/* Where the chain goes on from; written by accel-bench, then by each run. */
__u32 start;

/* Referenced so that BTF, and so the skeleton, carries the types. */
struct memlat_abi {
	struct memlat_line line;
	enum memlat_sizes sizes;
};
struct memlat_abi memlat_abi_types;

SEC("xdp")
int memlat_big(struct xdp_md *ctx)
{
	__u32 i = start;

	for (int k = 0; k < MEMLAT_CHAIN; k++) {
		struct memlat_line *l = bpf_map_lookup_elem(&big, &i);

		if (!l)
			return XDP_ABORTED;
		i = l->next;
	}
	start = i;
	return XDP_DROP;
}

/* Index i: inner map i % MEMLAT_OUTER, line i / MEMLAT_OUTER of it. */
SEC("xdp")
int memlat_small(struct xdp_md *ctx)
{
	__u32 i = start;

	for (int k = 0; k < MEMLAT_CHAIN; k++) {
		__u32 outer = i % MEMLAT_OUTER, line = i / MEMLAT_OUTER;
		void *inner = bpf_map_lookup_elem(&small, &outer);
		struct memlat_line *l;

		if (!inner)
			return XDP_ABORTED;
		l = bpf_map_lookup_elem(inner, &line);
		if (!l)
			return XDP_ABORTED;
		i = l->next;
	}
	start = i;
	return XDP_DROP;
}
