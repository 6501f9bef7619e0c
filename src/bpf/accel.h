/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one interface between the XDP datapath and the Rust control plane:
 * every map key and value, every flag and every counter index lives here.
 * Rust sees these through the skeleton's generated types.
 */
#ifndef ACCEL_H
#define ACCEL_H

/* Flags and limits are enums, not #defines, so that BTF carries them to the
 * skeleton's Rust types. The limits are the default sizes of the maps; the
 * control plane may size them otherwise before load (ACCEL_CAPACITY, see
 * src/capacity/limits.rs), so the datapath never relies on them as bounds
 * of what it reads. */
enum accel_limits {
	ACCEL_MAX_IFACES = 64,
	/* The stats entry after the interfaces' (slots 0 to 63): where the
	 * TC program beside XDP counts the verdicts XDP counted already (a
	 * frame it decides again, see handoff_meta in forward.h). Never
	 * read. One map for both keeps the verifier's states alike. */
	ACCEL_STATS_RECOUNT = ACCEL_MAX_IFACES,
	/* Interfaces with an ifindex below this are found through arrays
	 * (iface_index, iface_versions), the others through the ifaces
	 * hash. */
	ACCEL_IFINDEX_CACHE = 4096,
	ACCEL_IFACE_VERSIONS = 2 * ACCEL_MAX_IFACES,
	ACCEL_MAX_NEXTHOPS = 65536,
	ACCEL_MAX_NEIGH = 65536,
	ACCEL_MAX_LOCAL_ADDRS = 4096,
	/* local4_bits: 65,536 bits in u64 words, one per fold of an address
	 * (accel.bpf.c, local4_fold()). */
	ACCEL_LOCAL4_WORDS = 1024,
	/* Multipath next-hop sets: distinct sets are few (FRR shares one
	 * group object among all routes with the same paths). */
	ACCEL_MAX_GROUPS = 8192,
	ACCEL_MAX_PATHS = 32,
	/* Blackhole prefixes with a drop counter of their own; more share
	 * slot 0. */
	ACCEL_MAX_BLACKHOLES = 4096,
	/* Source prefixes of mirrored `ip rule from PREFIX` rules. */
	ACCEL_MAX_SRC_RULES = 1024,
};

/* What the datapath does with a destination covered by a mirrored route. */
enum accel_route_type {
	/* Forward through next hop nh_id (nexthop_lookup(), maps.h). */
	ACCEL_RT_UNICAST = 0,
	/* Drop silently, as the kernel does for blackhole routes; nh_id is the
	 * prefix's slot in blackhole_drops. */
	ACCEL_RT_BLACKHOLE = 1,
	/* The kernel answers with an ICMP error (unreachable, prohibit). */
	ACCEL_RT_UNREACHABLE = 2,
	/* Delivered or handled locally: local, broadcast, anycast, multicast. */
	ACCEL_RT_LOCAL = 3,
	/* The mirror cannot decide (multipath, TOS, route MTU, encap, throw,
	 * nexthop objects without expansion...): ask bpf_fib_lookup. */
	ACCEL_RT_FIB = 4,
	/* Forward through one path of nh_groups[nh_id], picked by the
	 * kernel's own multipath hash. */
	ACCEL_RT_MULTIPATH = 5,
};

/* The nh_id of an ACCEL_RT_FIB leaf written because a structure was full
 * (next-hop ids, groups, trie nodes): the mirror would
 * forward the route itself but has no room for it. The datapath ignores
 * it; `accel lookup` says why bpf_fib_lookup decides. */
enum accel_fib_mark {
	ACCEL_FIB_CAPACITY = 1,
	/* Or, with the node's index in the bits below: a trie node that has
	 * no lines (each such leaf distinct, as a node pointer is). */
	ACCEL_FIB_UNPLACED = 1 << 23,
	/* Or, with an MTU in the low 16 bits: an IPv4 route with its own MTU
	 * (RouteEntry::FibWithinMtu), which ip_forward() holds every packet
	 * to and bpf_fib_lookup does not (unless locked): larger packets go
	 * to the kernel, the rest to bpf_fib_lookup. */
	ACCEL_FIB_MTU = 1 << 22,
	ACCEL_FIB_MTU_MASK = 0xffff,
};

/*
 * Route leaves: 0 (no route), a route (ROUTE | type << TYPE_SHIFT | nh_id)
 * or the next node of a trie (EXT | [DIRECT or SEGMENTED] | first line of
 * the node).
 * Packed ACCEL_LEAVES_PER_ENTRY to a map entry (a 64-byte line) so that
 * the arrays, memory-mapped by the control plane, are dense.
 */
enum accel_leaf {
	ACCEL_LEAVES_PER_ENTRY = 16,
	ACCEL_LEAF_EXT = 1 << 30,
	ACCEL_LEAF_ROUTE = 1 << 29,
	ACCEL_LEAF_TYPE_SHIFT = 24,
	ACCEL_LEAF_TYPE_MASK = 0xf,
	ACCEL_LEAF_ID_MASK = (1 << 24) - 1,
	/* In a node pointer: the node is DIRECT or SEGMENTED, else COMPACT
	 * (see below). */
	ACCEL_LEAF_DIRECT = 1 << 24,
	ACCEL_LEAF_SEGMENTED = 1 << 25,
};

/*
 * Routes of both families: multibit tries with leaf pushing (see fib.h). A
 * root of 2^16 leaves indexed by the first 16 bits of the address, then
 * nodes of 256 leaves, one per further byte: at most 3 reads for IPv4
 * (16-8-8), ACCEL_TRIE6_LEVELS for IPv6, five for a /48 destination.
 *
 * A node lives in the node array's 64-byte lines in one of three forms:
 * - DIRECT: 16 lines, leaf i in word i;
 * - SEGMENTED: 4 lines, line k for leaves 64k..64k+63: words 0-7 hold a
 *   4-bit code per leaf (leaf i: bits 4 * (i % 8) of word (i % 64) / 8),
 *   words 8-15 a palette of 8 leaves; code c < 8 is palette word c, code
 *   15 no route. One line per leaf read, for nodes whose every 64 leaves
 *   hold at most 8 distinct leaves besides none: most dense nodes of a
 *   full table, which would take 16 lines DIRECT or cost a second read
 *   as COMPACT;
 * - COMPACT: its runs of equal leaves, in 1 line (up to ACCEL_COMPACT_SMALL
 *   runs) or 4 (up to ACCEL_COMPACT_LARGE). Words 0-7: a bitmap of 256
 *   bits, bit i set where a run starts (bit i % 64 of the 64-bit word
 *   i / 64, low word first); word 8: byte k counts the bits set in the
 *   64-bit words before word k; word ACCEL_COMPACT_ENTRIES + r: run r's
 *   leaf. Leaf i is the entry of the run holding it: rank(i) - 1, rank(i)
 *   the bits set up to and including bit i.
 * Most nodes hold a handful of runs: the full tables take about a seventh
 * of the lines DIRECT nodes would (IPv4 a fifth, IPv6 a tenth, with the
 * benchmark's eight next hops).
 */
enum accel_trie {
	ACCEL_ROOT_LEAVES = 1 << 16,
	ACCEL_NODE_LEAVES = 256,
	ACCEL_COMPACT_COUNTS = 8,
	ACCEL_COMPACT_ENTRIES = 9,
	ACCEL_COMPACT_SMALL = ACCEL_LEAVES_PER_ENTRY - ACCEL_COMPACT_ENTRIES,
	ACCEL_COMPACT_LARGE = 4 * ACCEL_LEAVES_PER_ENTRY - ACCEL_COMPACT_ENTRIES,
	ACCEL_SEG_LEAVES = 64, /* per line */
	ACCEL_SEG_PALETTE = 8, /* its first word; the codes' words before it */
	ACCEL_SEG_SLOTS = 8,
	ACCEL_SEG_NONE = 15,
	/* The full IPv4 table (902k prefixes, about 25,900 nodes) needs
	 * about 80,000 lines (with the benchmark's eight next hops). */
	ACCEL_LINES4 = 1 << 18,
	/* The full IPv6 table (160k prefixes, about 38,000 nodes) needs
	 * about 62,000. */
	ACCEL_LINES6 = 1 << 17,
	ACCEL_TRIE6_LEVELS = 15, /* 16 + 14 * 8 = 128 bits */
};

struct accel_leaves {
	__u32 leaf[ACCEL_LEAVES_PER_ENTRY];
};

struct accel_route4_key {
	__u32 prefixlen;
	__u32 addr; /* network byte order */
};

struct accel_route6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct accel_route {
	__u32 type; /* enum accel_route_type */
	__u32 nh_id;
};

enum accel_nh_flags {
	ACCEL_NH_GATEWAY = 1 << 0, /* gw holds the next hop address */
	ACCEL_NH_GW6 = 1 << 1,	   /* gw is IPv6 (else IPv4 in gw[0..4]) */
	/* mac holds the gateway's MAC, as neigh4/neigh6 have it. A gateway
	 * next hop without it has no usable neighbour in the mirror. */
	ACCEL_NH_MAC = 1 << 2,
	/* out holds the egress interface's entry as iface_versions has it:
	 * the interface is accel's. */
	ACCEL_NH_EGRESS = 1 << 3,
};


/*
 * One path of a multipath route. The kernel picks the first path whose
 * upper bound is >= the flow's hash (fib_select_multipath,
 * fib6_select_path, nexthop_select_path_hthr); the bounds are the
 * cumulative weights scaled to 2^31, computed exactly as the kernel does.
 */
struct accel_path {
	__u32 nh_id;
	__u32 upper_bound;
};

enum accel_group_flags {
	/* A blackhole nexthop object: drop, as for a blackhole route. */
	ACCEL_GROUP_BLACKHOLE = 1 << 0,
};

/* count 0 (and not blackhole): the mirror cannot resolve the group
 * (resilient, unknown object...): bpf_fib_lookup decides. One path needs
 * no hash. */
struct accel_nh_group {
	__u32 count;
	__u32 flags;
	struct accel_path paths[ACCEL_MAX_PATHS];
};

struct accel_neigh4_key {
	__u32 ifindex;
	__u32 addr; /* network byte order */
};

struct accel_neigh6_key {
	__u32 ifindex;
	__u8 addr[16];
};

struct accel_neigh {
	__u8 mac[6];
	__u16 pad;
};

enum accel_if_flags {
	ACCEL_IF_UP = 1 << 0,	      /* admin up, carrier, running: may transmit */
	ACCEL_IF_FWD4 = 1 << 1,	      /* IPv4 forwarding enabled on it */
	ACCEL_IF_FWD6 = 1 << 2,	      /* IPv6 forwarding enabled on it */
	ACCEL_IF_RPF_STRICT = 1 << 3, /* rp_filter = 1 */
	ACCEL_IF_RPF_LOOSE = 1 << 4,  /* rp_filter = 2 */
	/* An `ip rule iif IFACE` (before main) selects packets arriving here:
	 * bpf_fib_lookup decides for them. */
	ACCEL_IF_RULES4 = 1 << 5,
	ACCEL_IF_RULES6 = 1 << 6,
	/* No IPv4 address on it: fib_validate_source() rejects a source whose
	 * route does not go back through it, even with loose rp_filter. */
	ACCEL_IF_NO_ADDR4 = 1 << 7,
	/* accel runs on it through TC, not XDP: the TC program decides all
	 * that arrives, and an XDP program cannot redirect to it (it has no
	 * XDP program, and may have no ndo_xdp_xmit: a bridge, a tunnel). */
	ACCEL_IF_TC = 1 << 8,
	/* An XDP interface with the TC program beside it: what the XDP
	 * program cannot finish (an ACCEL_IF_TC egress, an unresolved
	 * neighbour) it hands to TC (ACCEL_HANDOFF_MARK in the metadata),
	 * and TC decides nothing else here. On a kernel that refuses XDP
	 * metadata, TC decides again every frame XDP passed (handoff_meta,
	 * forward.h). */
	ACCEL_IF_TC_BESIDE = 1 << 9,
	/* A qdisc someone configured (any but the kernel's default, whose
	 * handle is 0:), or tc egress filters (clsact, tcx), act on what
	 * leaves it: an XDP redirect would pass them by (it goes to the
	 * driver, not through dev_queue_xmit()), so XDP does not send to it.
	 * The TC program's redirect does go through them. */
	ACCEL_IF_EGRESS_TC = 1 << 10,
	/* tc ingress filters other than accel's (clsact, ingress qdisc, tcx)
	 * act on what arrives here: they run after XDP and before the IP
	 * layer, so accel forwards nothing that arrives here and the kernel
	 * runs them first. */
	ACCEL_IF_INGRESS_TC = 1 << 11,
};

/* The XDP metadata that hands a frame to the TC program beside it. */
enum accel_handoff {
	ACCEL_HANDOFF_MARK = 0xacce1100,
};

/* One entry per interface accel is attached to. */
struct accel_iface {
	__u8 mac[6];
	__u16 slot; /* index into the per-CPU stats array and tx_ports */
	__u32 mtu;  /* device MTU: the IPv4 forwarding limit */
	__u32 flags;
	__u32 mtu6; /* conf/<if>/mtu: the IPv6 forwarding limit */
};

/* A next hop as the datapath reads it, through nh_index (maps.h): after
 * the route, one read gives the egress interface, its entry and the
 * gateway's MAC. */
struct accel_nexthop {
	__u32 ifindex;
	__u32 flags; /* enum accel_nh_flags */
	__u8 gw[16];
	__u8 mac[6];
	__u16 pad;
	struct accel_iface out;
};

enum accel_cfg_flags {
	/* Non-default ip rules: only bpf_fib_lookup knows which table
	 * applies. */
	ACCEL_CFG_POLICY4 = 1 << 0,
	ACCEL_CFG_POLICY6 = 1 << 1,
	/* Custom rules or custom local routes: the kernel validates every
	 * source with a full reverse route lookup (fib_validate_source). */
	ACCEL_CFG_SRC_FULL4 = 1 << 2,
	/* Operator chose --mode fib: never consult the mirror. */
	ACCEL_CFG_FIB_ONLY = 1 << 3,
	/* The kernel's multipath hash can be reproduced (the hash seed is
	 * set, the policy is L3 or L4): multipath routes are forwarded from
	 * the mirror. Otherwise they go to bpf_fib_lookup. */
	ACCEL_CFG_MP_HASH4 = 1 << 4,
	ACCEL_CFG_MP_HASH6 = 1 << 5,
	/* fib_multipath_hash_policy = 1: hash the 5-tuple, not just L3. */
	ACCEL_CFG_MP_L4_4 = 1 << 6,
	ACCEL_CFG_MP_L4_6 = 1 << 7,
	/* Rules whose only selector is a source prefix (before the main
	 * table): packets from src_rules4/6 go to bpf_fib_lookup, the rest
	 * see only the default rules and may use the mirror. */
	ACCEL_CFG_SRC_RULES4 = 1 << 8,
	ACCEL_CFG_SRC_RULES6 = 1 << 9,
	/* local4 has no room for every local IPv4 address: a source missing
	 * from it may still be the router's own, so every source is checked
	 * with the kernel's full reverse lookup (bpf_fib_lookup), which
	 * refuses local ones. */
	ACCEL_CFG_LOCAL4_PARTIAL = 1 << 10,
	/* IPsec: the namespace has XFRM policies for forwarded packets (a
	 * main policy in direction FWD or OUT) or a default policy for fwd or
	 * out that is not accept. ip_forward()/ip6_forward() then check the
	 * FWD policies (xfrm4/6_policy_check) and route through the OUT ones
	 * (xfrm4/6_route_forward), which neither the mirror nor
	 * bpf_fib_lookup sees: every packet to forward goes to the kernel.
	 * Honoured with or without a lease. */
	ACCEL_CFG_XFRM = 1 << 11,
	/* fib_multipath_hash_policy 2 (inner headers) or 3 (custom fields,
	 * which may name inner ones): with the skb, the kernel's forwarding
	 * path hashes a tunnelled packet's inner headers (the flow dissector
	 * enters GRE, IPIP...), bpf_fib_lookup without one the outer: such
	 * packets go to the kernel instead of bpf_fib_lookup. */
	ACCEL_CFG_MP_INNER4 = 1 << 12,
	ACCEL_CFG_MP_INNER6 = 1 << 13,
	/* net.ipv4.ip_forward_update_priority: ip_forward() sets the packet's
	 * priority from its TOS (rt_tos2priority()); the TC program does the
	 * same to what it forwards (an XDP frame has no priority). */
	ACCEL_CFG_UPDATE_PRIO4 = 1 << 14,
	/* fib_multipath_hash_policy 1 for IPv6: the kernel's flow dissector
	 * walks extension headers to the ports it hashes, bpf_fib_lookup gets
	 * the first header's number and no ports: packets with extension
	 * headers go to the kernel instead of bpf_fib_lookup. */
	ACCEL_CFG_MP_EXT6 = 1 << 15,
	/* Set by the datapath itself, never written: the mirror's lease has
	 * lapsed. Implies FIB_ONLY, and source validation by reverse
	 * bpf_fib_lookup in strict mode. */
	ACCEL_CFG_NO_LEASE = 1 << 16,
	/* Netfilter chains on the forwarding path (nftables prerouting,
	 * forward, postrouting, ingress or egress, or legacy iptables
	 * tables) appeared while accel runs: NF_INET_PRE_ROUTING comes right
	 * after ip_rcv_core()'s checks, so from there on every packet goes to
	 * the kernel, which runs them. Honoured with or without a lease. */
	ACCEL_CFG_NETFILTER = 1 << 17,
	/* Some of those run at the netdev ingress hook (netdev or inet
	 * ingress chains, flowtables), before ip_rcv_core() and after tc
	 * ingress (nf_ingress() in __netif_receive_skb_core()): every frame
	 * goes to the kernel, even one it would then drop. */
	ACCEL_CFG_NF_INGRESS = 1 << 18,
};

/*
 * Written by the control plane, which renews two deadlines (host
 * CLOCK_MONOTONIC, coarse: the clock of bpf_ktime_get_coarse_ns, whatever
 * time namespace accel runs in):
 * - lease_until_ns: the mirror may take forwarding decisions. Renewed only
 *   by a control plane that has applied everything the kernel told it, set
 *   to 0 the moment it knows the mirror is stale (lost events, a resync).
 *   Without it, packets are forwarded through bpf_fib_lookup, the kernel's
 *   own lookup, with the strictest source check.
 * - alive_until_ns: a control plane is running at all. Without it every
 *   packet goes to the kernel, as if accel were not there.
 */
struct accel_config {
	__u64 lease_until_ns;
	__u64 alive_until_ns;
	__u32 flags;
	/* net.ipv4.fib_multipath_hash_seed (both families use it). */
	__u32 mp_seed;
};

/* What the mirror forwarded through one next hop (per CPU, indexed by
 * next-hop id, like nh_index): ECMP balance and per-gateway traffic for
 * the metrics. Packets forwarded after bpf_fib_lookup have no next hop id
 * and are not here. */
struct accel_nh_stats {
	__u64 packets;
	__u64 bytes;
};

/* Drops of one blackhole prefix (per CPU), and the prefix itself, so that
 * `accel stats` can name it. */
struct accel_blackhole {
	__u64 packets;
	__u64 bytes;
};

struct accel_blackhole_prefix {
	__u32 family; /* AF_INET, AF_INET6; 0: slot unused */
	__u32 prefixlen;
	__u8 addr[16];
};

/* Per-CPU counters: one array of these per interface slot. */
enum accel_stat {
	ACCEL_STAT_FWD_MIRROR = 0, /* redirected from the mirror */
	ACCEL_STAT_FWD_FIB,	   /* redirected after bpf_fib_lookup */
	ACCEL_STAT_DROP_BLACKHOLE, /* blackhole route */
	ACCEL_STAT_PASS_NON_IP,	   /* ARP, other ethertypes */
	ACCEL_STAT_PASS_MALFORMED, /* truncated or invalid header, bad csum */
	ACCEL_STAT_PASS_NOT_FOR_US, /* destination MAC is not the interface's */
	ACCEL_STAT_PASS_FWD_DISABLED, /* forwarding off on the ingress iface */
	ACCEL_STAT_PASS_TTL,	   /* TTL / hop limit <= 1 */
	ACCEL_STAT_PASS_OPTIONS,   /* IPv4 options, IPv6 hop-by-hop */
	ACCEL_STAT_PASS_SPECIAL_ADDR, /* multicast, loopback, martian... */
	ACCEL_STAT_PASS_LOCAL,	   /* local, broadcast, anycast route (in
				      * --mode fib also no route at all) */
	ACCEL_STAT_PASS_SRC_CHECK, /* source validation (local src, rp_filter) */
	ACCEL_STAT_PASS_ICMP_ERROR, /* kernel hashes ICMP errors on inner hdr */
	ACCEL_STAT_PASS_NO_ROUTE,  /* no route; unreachable or prohibit route */
	ACCEL_STAT_PASS_NO_NEIGH,  /* neighbour unresolved */
	ACCEL_STAT_PASS_MTU,	   /* larger than the egress (or route) MTU */
	ACCEL_STAT_PASS_EGRESS,	   /* egress not accel's, down, or = ingress */
	ACCEL_STAT_PASS_FIB_OTHER, /* other bpf_fib_lookup refusals */
	ACCEL_STAT_PASS_INACTIVE,  /* no live control plane (alive_until_ns passed) */
	ACCEL_STAT_PASS_MP_HASH,   /* multipath hash needs the kernel's flow
				      * dissector (IPv6 extension headers) */
	/* Dropped where the kernel's fib_validate_source() rejects the source
	 * with rp_filter on the ingress (-EXDEV, its IPReversePathFilter): no
	 * usable route back to it (none, or a blackhole, unreachable or
	 * prohibit route: source RTBH, RFC 5635), or not through the ingress
	 * where that is required. */
	ACCEL_STAT_DROP_RPFILTER,
	/* Headers ip_rcv_core()/ip6_rcv_core() drop silently, counted as the
	 * kernel's InHdrErrors: too short for its IP header, wrong version,
	 * IHL < 5, a bad IPv4 header checksum (also InCsumErrors), an IPv4
	 * total length below the header's; IPv6 from or to ::1, from a
	 * multicast address, or to a multicast one of scope 0 or 1. */
	ACCEL_STAT_DROP_HDR_ERRORS,
	/* The IP length says more than the frame holds (InTruncatedPkts). */
	ACCEL_STAT_DROP_TRUNCATED,
	/* IPv4 from a multicast, limited-broadcast or 0.0.0.0/8 address to a
	 * unicast one: ip_route_input_slow() drops it before any lookup (the
	 * kernel's in_martian_src). */
	ACCEL_STAT_DROP_MARTIAN_SRC,
	/* TC only: forwarded through bpf_redirect_neigh, the kernel resolving
	 * the next hop's neighbour (the XDP program passes these packets, as
	 * ACCEL_STAT_PASS_NO_NEIGH). */
	ACCEL_STAT_FWD_NEIGH,
	/* XDP only: handed to the TC program beside it, which forwards it
	 * (and counts that outcome too). */
	ACCEL_STAT_HANDOFF_TC,
	/* IPv6 neighbour discovery to forward: with proxy_ndp the kernel may
	 * answer it itself (ip6_forward_proxy_check()). */
	ACCEL_STAT_PASS_NDISC,
	/* Would have been forwarded, but IPsec policies are in force
	 * (ACCEL_CFG_XFRM): the kernel checks and transforms it. */
	ACCEL_STAT_PASS_XFRM,
	/* Arrived on an interface with tc ingress filters other than accel's
	 * (ACCEL_IF_INGRESS_TC): they act on it before the kernel's IP layer
	 * does. */
	ACCEL_STAT_PASS_TC_FILTERS,
	/* Past ip_rcv_core()'s checks while netfilter chains are on the
	 * forwarding path (ACCEL_CFG_NETFILTER): the kernel runs them. */
	ACCEL_STAT_PASS_NETFILTER,
	ACCEL_STAT_MAX,
};

struct accel_stats {
	__u64 packets[ACCEL_STAT_MAX];
	__u64 fwd_bytes;
	/* Packets that arrived while the mirror's lease had lapsed (whatever
	 * their outcome above): bpf_fib_lookup decided instead of the mirror. */
	__u64 no_lease;
	__u64 pass_bytes; /* frames passed to the kernel, as they arrived */
	__u64 drop_bytes; /* frames dropped */
	/* Scratch, not a counter: the length of the frame this CPU is
	 * handling, which count() adds to pass_bytes or drop_bytes (one XDP
	 * run at a time per CPU). */
	__u64 frame_len;
};

/* The structures of bounded size, as the capacity map lists them. */
enum accel_structure {
	ACCEL_CAP_IPV4_TRIE = 0, /* IPv4 trie node lines */
	ACCEL_CAP_IPV6_TRIE,	   /* IPv6 trie node lines */
	ACCEL_CAP_NEXTHOPS,	   /* next-hop ids */
	ACCEL_CAP_NH_GROUPS,	   /* multipath / nexthop-object groups */
	ACCEL_CAP_NEIGH4,
	ACCEL_CAP_NEIGH6,
	ACCEL_CAP_LOCAL4,	   /* local IPv4 addresses */
	ACCEL_CAP_BLACKHOLES,	   /* blackhole drop-counter slots */
	ACCEL_CAP_SRC_RULES4,
	ACCEL_CAP_SRC_RULES6,
	ACCEL_CAP_MAX,
};

/* How full one structure is, written by the control plane for `accel
 * stats --capacity` (the datapath never reads it). degraded: routes or
 * entries the structure has no room for, left to bpf_fib_lookup (or, for
 * blackholes, counted in the shared slot 0); regions: the /24s or trie
 * ranges those routes make bpf_fib_lookup answer for. */
struct accel_capacity {
	__u64 capacity;
	__u64 used;
	__u64 degraded;
	__u64 regions;
};

#endif /* ACCEL_H */
