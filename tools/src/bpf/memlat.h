/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by memlat.bpf.c and accel-bench memlat (through the skeleton). */
#ifndef ACCEL_MEMLAT_H
#define ACCEL_MEMLAT_H

enum memlat_sizes {
	/* Lines of the large array: 32 MiB. */
	MEMLAT_LINES = 1 << 19,
	/* Lines per small array: with its header, a kmalloc of at most
	 * 32 KiB (bpf_map_area_alloc() takes vmalloc beyond). */
	MEMLAT_INNER = 496,
	MEMLAT_OUTER = 1024,
	/* Dependent reads per test run. */
	MEMLAT_CHAIN = 8,
};

/* A cache line whose first word is the index of the next one to read. */
struct memlat_line {
	__u32 next;
	__u32 pad[15];
};

#endif
