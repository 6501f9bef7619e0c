#!/usr/bin/env python3
"""Lines the IPv4 trie's nodes would take in candidate layouts (issue 12).

    scripts/bench/node_forms.py [TABLE.txt.gz]    # default: the real full table

Builds the 16-8-8 leaf-pushed IPv4 trie of the table as the forwarding
benchmark installs it (the next hops of scripts/bench/fwlab.sh: eight
gateways, round robin in the table's order), counts each node's runs of
equal leaves, and prints the 64-byte lines every layout needs:

- today's (accel.h): COMPACT in 1 line up to 7 runs, else SEGMENTED (4
  lines: 64 4-bit codes and a palette of 8 leaves each) where every 64
  leaves hold at most 8 distinct leaves besides none, else COMPACT in 4
  lines up to 55 runs, else DIRECT (16 lines of 32-bit leaves);
- before SEGMENTED: COMPACT in 1 line up to 7 runs, 4 up to 55, else
  DIRECT;
- 16-bit entries (an index into a table of distinct leaves) in today's
  forms: 1 line up to 14 runs, 4 up to 110, else DIRECT in 8 lines; a
  leaf past a 4-line node's first line still costs a second read;
- 16-bit entries in one line per read: 1 line up to 14 runs, else 4 lines
  of one 64-leaf segment each (a 64-bit bitmap and 28 entries) when no
  segment has more than 28 runs, else DIRECT in 8 lines;
- 32-bit entries in one line per read: 1 line up to 7 runs, else 4
  segment lines (14 entries each) when every segment fits, else DIRECT.
"""
import gzip
import ipaddress
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = os.path.join(HERE, "../../../shared/data/bgp-full-table.txt.gz")
GATEWAYS = 8


def prefixes(path):
    """(address, length, next hop) of the table's IPv4 prefixes."""
    out = []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        for line in f:
            word = line.split()[0] if line.split() else ""
            if "/" not in word or ":" in word:
                continue
            n = ipaddress.ip_network(word, strict=False)
            out.append((int(n.network_address), n.prefixlen, len(out) % GATEWAYS + 1))
    return out


def nodes(pre):
    """The leaves of every node: /16 nodes (for /17-/24) and /24 nodes."""
    pre = sorted(pre, key=lambda p: p[1])  # shorter first: longer paint over
    root, n16, n24 = {}, {}, {}
    for a, l, nh in pre:
        if l <= 16:
            for k in range(a >> 16, (a >> 16) + (1 << (16 - l))):
                root[k] = nh
        elif l <= 24:
            k = a >> 16
            node = n16.setdefault(k, [root.get(k, 0)] * 256)
            lo = (a >> 8) & 0xFF
            node[lo:lo + (1 << (24 - l))] = [nh] * (1 << (24 - l))
        else:
            k = a >> 8
            if k not in n24:
                up = n16.get(k >> 8)
                n24[k] = [up[k & 0xFF] if up else root.get(k >> 8, 0)] * 256
            lo = a & 0xFF
            n24[k][lo:lo + (1 << (32 - l))] = [nh] * (1 << (32 - l))
    for k in n24:  # each /24 node is a pointer leaf of its /16 node
        n16.setdefault(k >> 8, [root.get(k >> 8, 0)] * 256)[k & 0xFF] = ("node", k)
    return list(n16.values()) + list(n24.values())


def runs(leaves):
    return 1 + sum(1 for i in range(1, len(leaves)) if leaves[i] != leaves[i - 1])


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    all_nodes = nodes(prefixes(path))
    layouts = {
        "today (COMPACT 1, SEGMENTED 4, COMPACT 4, DIRECT 16)": lambda r, seg, pal: (
            1 if r <= 7 else 4 if pal <= 8 or r <= 55 else 16
        ),
        "before SEGMENTED (1/4/16 lines)": lambda r, seg, pal: 1 if r <= 7 else 4 if r <= 55 else 16,
        "16-bit entries, 1/4/8 lines (second reads)": lambda r, seg, pal: 1 if r <= 14 else 4 if r <= 110 else 8,
        "16-bit entries, one line per read": lambda r, seg, pal: 1 if r <= 14 else 4 if seg <= 28 else 8,
        "32-bit entries, one line per read": lambda r, seg, pal: 1 if r <= 7 else 4 if seg <= 14 else 16,
    }
    print(f"{len(all_nodes)} IPv4 nodes from {path}")
    for name, lines_of in layouts.items():
        total = 0
        for leaves in all_nodes:
            seg = max(runs(leaves[s * 64:(s + 1) * 64]) for s in range(4))
            pal = max(len(set(x for x in leaves[s * 64:(s + 1) * 64] if x != 0)) for s in range(4))
            total += lines_of(runs(leaves), seg, pal)
        print(f"{name:52} {total:8} lines  {total * 64 / 2**20:6.2f} MiB")


if __name__ == "__main__":
    main()
