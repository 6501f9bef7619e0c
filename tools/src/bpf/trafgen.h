/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared between trafgen.bpf.c (a traffic generator driven by
 * BPF_PROG_RUN with live frames, and a counting sink) and accel-trafgen.
 * Rust sees these through the trafgen skeleton's generated types.
 */
#ifndef TRAFGEN_H
#define TRAFGEN_H

enum trafgen_limits {
	/* Room for the largest frame template (bytes, without FCS). */
	TRAFGEN_FRAME_MAX = 128,
	/* Default size of the destination array; resized at load time. */
	TRAFGEN_DESTS_DEFAULT = 1 << 20,
};

enum trafgen_pick {
	TRAFGEN_PICK_SEQ = 0,	 /* dests[counter % n_dests], per CPU */
	TRAFGEN_PICK_RANDOM = 1, /* dests[bpf_get_prandom_u32() % n_dests] */
};

/* One destination address; IPv4 uses addr[0..4] (network byte order). */
struct trafgen_dst {
	__u8 addr[16];
	/* The route's gateway, by index, written into the frame (IPv4 ID,
	 * IPv6 flow label): the ceiling forwarder's egress, handed to it. */
	__u32 tag;
};

/*
 * Generator configuration, written by accel-trafgen before load. It lives
 * in a plain global (.bss), never `const volatile`: clang may fold a copy
 * from a const volatile template to zeros.
 */
struct trafgen_cfg {
	/* Ethernet + IPv4/IPv6 + UDP frame, destination address zero, IPv4
	 * header checksum zero, UDP checksum zero. */
	__u8 frame[TRAFGEN_FRAME_MAX];
	__u32 frame_len; /* multiple of 4, <= TRAFGEN_FRAME_MAX */
	__u32 family;	 /* 4 or 6 */
	__u32 n_dests;	 /* valid entries in dests */
	__u32 pick;	 /* enum trafgen_pick */
	/* Unfolded one's-complement sums of the template with the
	 * destination address zero: the IPv4 header (checksum field zero)
	 * and, for IPv6, the UDP pseudo-header + header + payload. The
	 * program adds the destination and folds. */
	__u32 ip_csum_base;
	__u32 udp_csum_base;
};

/* Sink configuration: UDP to this destination port is counted and dropped;
 * everything else (ARP, ND, other traffic) goes to the kernel. */
struct trafgen_sink_cfg {
	__u16 udp_dport; /* host byte order */
	__u16 pad;
	__u32 pad2;
};

/* Per-CPU counters. */
struct trafgen_stats {
	__u64 sent;	    /* frames the generator built */
	__u64 sink_pkts;    /* test frames the sink dropped */
	__u64 sink_bytes;   /* their bytes (without FCS) */
	__u64 sink_passed;  /* other frames the sink passed to the kernel */
};

#endif /* TRAFGEN_H */
