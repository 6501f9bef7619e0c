#!/usr/bin/env python3
"""Writes a synthetic routing table, one prefix per line, with the prefix-length
mix of ../shared/data/bgp-full-table.txt.gz (901,899 IPv4 and 160,147 IPv6
prefixes), for fresh clones where that file is absent. Seeded: the same table
every time. Addresses are random global unicast (IPv4 1-223 minus private,
loopback, CGN and link-local; IPv6 2000::/3)."""
import ipaddress
import random
import sys

V4 = {8: 16, 9: 13, 10: 38, 11: 103, 12: 299, 13: 581, 14: 1203, 15: 2100,
      16: 13490, 17: 8235, 18: 13798, 19: 24870, 20: 42611, 21: 50750,
      22: 108623, 23: 96510, 24: 537698, 25: 20, 26: 3, 27: 11, 28: 18, 29: 17,
      30: 3, 31: 3, 32: 886}
V6 = {16: 1, 19: 1, 20: 16, 21: 3, 22: 7, 23: 8, 24: 30, 25: 8, 26: 15, 27: 20,
      28: 193, 29: 4371, 30: 650, 31: 284, 32: 22548, 33: 2926, 34: 2603,
      35: 1043, 36: 5996, 37: 880, 38: 1617, 39: 1377, 40: 13418, 41: 903,
      42: 2301, 43: 1001, 44: 14365, 45: 1553, 46: 3039, 47: 3153, 48: 75488,
      49: 11, 50: 3, 52: 1, 55: 1, 56: 24, 58: 20, 60: 2, 64: 184, 112: 2,
      122: 1, 124: 4, 125: 9, 126: 19, 127: 42, 128: 6}
BAD4 = [(int(n.network_address), int(n.broadcast_address)) for n in
        map(ipaddress.ip_network,
            ("10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
             "172.16.0.0/12", "192.168.0.0/16", "0.0.0.0/8"))]


def main():
    rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    out = sys.stdout
    for length, n in sorted(V4.items()):
        seen = set()
        while len(seen) < n:
            a = rng.randrange(1 << 24, 224 << 24) >> (32 - length) << (32 - length)
            last = a | ((1 << (32 - length)) - 1)
            if a in seen or any(a <= hi and lo <= last for lo, hi in BAD4):
                continue
            seen.add(a)
            out.write(f"{ipaddress.IPv4Address(a)}/{length}\n")
    for length, n in sorted(V6.items()):
        seen = set()
        while len(seen) < n:
            a = (1 << 125) | rng.getrandbits(125)
            a = a >> (128 - length) << (128 - length)
            if a in seen:
                continue
            seen.add(a)
            out.write(f"{ipaddress.IPv6Address(a)}/{length}\n")


if __name__ == "__main__":
    main()
