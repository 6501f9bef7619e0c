// SPDX-License-Identifier: GPL-2.0
/*
 * Lookup micro-benchmark, run only through BPF_PROG_TEST_RUN by
 * `accel-bench lookup`: what one route lookup costs in XDP, for accel's
 * IPv4 and IPv6 tries (the very route4_lookup() and route6_lookup()
 * of the datapath), the kernel's bpf_fib_lookup and a BPF_MAP_TYPE_LPM_TRIE.
 *
 * The packet does not matter: each run takes the next destination from an
 * array of random addresses (so `repeat` sees a new one every time) and
 * folds the result into a global so that the lookup cannot be optimised
 * away. bench_base4/6 do everything but the lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "accel.h"
#include "fib.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10

enum bench_limits {
	BENCH_DESTS = 1 << 20, /* a power of two */
	BENCH_LPM4_MAX = 1 << 20,
	BENCH_LPM6_MAX = 1 << 18,
	BENCH_FIB_RCS = 16,
};

struct bench_lpm4_key {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct bench_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct bench_addr6 {
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_DESTS);
	__type(key, __u32);
	__type(value, __u32); /* network byte order */
} dests4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BENCH_DESTS);
	__type(key, __u32);
	__type(value, struct bench_addr6);
} dests6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BENCH_LPM4_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bench_lpm4_key);
	__type(value, __u32);
} lpm4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, BENCH_LPM6_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct bench_lpm6_key);
	__type(value, __u32);
} lpm6 SEC(".maps");

/* Written by accel-bench after load; read back after the runs. */
__u32 fib_ifindex;   /* the "ingress" device bpf_fib_lookup is asked about */
__u32 next_dest;     /* advances once per run */
__u64 sink;	     /* folds every result in */
__u64 hits;	     /* lookups that found a route */
__u64 fib_rc[BENCH_FIB_RCS]; /* bpf_fib_lookup return codes */

/* Referenced so that BTF, and so the skeleton, carries the types. */
struct bench_abi {
	struct bench_lpm4_key lpm4_key;
	struct bench_lpm6_key lpm6_key;
	struct bench_addr6 addr6;
	enum bench_limits limits;
};
struct bench_abi bench_abi_types;

static __always_inline __u32 next_index(void)
{
	__u32 i = next_dest;

	next_dest = i + 1;
	return i & (BENCH_DESTS - 1);
}

static __always_inline __u32 *dest4(void)
{
	__u32 i = next_index();

	return bpf_map_lookup_elem(&dests4, &i);
}

static __always_inline struct bench_addr6 *dest6(void)
{
	__u32 i = next_index();

	return bpf_map_lookup_elem(&dests6, &i);
}

SEC("xdp")
int bench_base4(struct xdp_md *ctx)
{
	__u32 *d = dest4();

	if (!d)
		return XDP_ABORTED;
	sink += *d;
	return XDP_DROP;
}

SEC("xdp")
int bench_trie4(struct xdp_md *ctx)
{
	struct accel_route rt = {};
	__u32 *d = dest4();

	if (!d)
		return XDP_ABORTED;
	if (route4_lookup(*d, &rt))
		hits++;
	sink += rt.nh_id;
	return XDP_DROP;
}

SEC("xdp")
int bench_lpm4(struct xdp_md *ctx)
{
	struct bench_lpm4_key k = { .prefixlen = 32 };
	__u32 *d = dest4(), *v;

	if (!d)
		return XDP_ABORTED;
	k.addr = *d;
	v = bpf_map_lookup_elem(&lpm4, &k);
	if (v) {
		hits++;
		sink += *v;
	}
	return XDP_DROP;
}

static __always_inline void fib_done(struct xdp_md *ctx,
				     struct bpf_fib_lookup *p, long rc)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		hits++;
	if (rc >= 0 && rc < BENCH_FIB_RCS)
		fib_rc[rc]++;
	sink += p->ifindex + rc;
}

SEC("xdp")
int bench_fib4(struct xdp_md *ctx)
{
	struct bpf_fib_lookup p = {};
	__u32 *d = dest4();
	long rc;

	if (!d)
		return XDP_ABORTED;
	p.family = AF_INET;
	p.ifindex = fib_ifindex;
	p.ipv4_dst = *d;
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	fib_done(ctx, &p, rc);
	return XDP_DROP;
}

SEC("xdp")
int bench_base6(struct xdp_md *ctx)
{
	struct bench_addr6 *d = dest6();

	if (!d)
		return XDP_ABORTED;
	sink += *(__u32 *)&d->addr[12];
	return XDP_DROP;
}

SEC("xdp")
int bench_lpm6(struct xdp_md *ctx)
{
	struct bench_lpm6_key k = { .prefixlen = 128 };
	struct bench_addr6 *d = dest6();
	__u32 *v;

	if (!d)
		return XDP_ABORTED;
	__builtin_memcpy(k.addr, d->addr, 16);
	v = bpf_map_lookup_elem(&lpm6, &k);
	if (v) {
		hits++;
		sink += *v;
	}
	return XDP_DROP;
}

SEC("xdp")
int bench_trie6(struct xdp_md *ctx)
{
	struct accel_route rt = {};
	struct bench_addr6 *d = dest6();

	if (!d)
		return XDP_ABORTED;
	if (route6_lookup(d->addr, &rt))
		hits++;
	sink += rt.nh_id;
	return XDP_DROP;
}

SEC("xdp")
int bench_fib6(struct xdp_md *ctx)
{
	struct bpf_fib_lookup p = {};
	struct bench_addr6 *d = dest6();
	long rc;

	if (!d)
		return XDP_ABORTED;
	p.family = AF_INET6;
	p.ifindex = fib_ifindex;
	__builtin_memcpy(p.ipv6_dst, d->addr, 16);
	rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	fib_done(ctx, &p, rc);
	return XDP_DROP;
}
