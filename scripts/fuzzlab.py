#!/usr/bin/env python3
"""Mutated frames through the namespace lab, for tests/fuzz_lab.sh.

Subcommands:
  send     build COUNT frames from SEED (valid, then mutated) and send them
           on an interface with AF_PACKET; the same seed gives the same frames
  capture  record every frame arriving on an interface until SIGTERM
  compare  compare two capture directories as multisets of frames

The frames aim at the lab's routes (scripts/lab.sh): the services behind
dst1 and dst2, the router itself, unroutable and blackholed destinations;
mutations cover TTL 0/1, bad checksums, IPv4 options, lengths, fragments,
hop-by-hop and other extension headers, odd MACs and EtherTypes, and sizes
around the egress MTU.
"""
import argparse
import collections
import os
import random
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 3
PACKET_OUTGOING = 4


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def udp(rng, size):
    body = bytes(rng.getrandbits(8) for _ in range(max(0, size)))
    return struct.pack("!HHHH", rng.randrange(1024, 65535), 5555, 8 + len(body), 0) + body


def icmp(rng, typ, size):
    body = bytes(rng.getrandbits(8) for _ in range(max(0, size)))
    m = struct.pack("!BBHHH", typ, 0, 0, rng.getrandbits(16), 1) + body
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def ipv4(rng, src, dst, a):
    proto = rng.choice([17, 17, 1, 47])
    size = rng.choice([18, 100, 1000, a.mtu - 28 - 20, a.mtu - 28, a.mtu - 27, 1472])
    payload = udp(rng, size) if proto == 17 else icmp(rng, rng.choice([8, 8, 3, 11]), size)
    if proto == 47:
        payload = bytes(rng.getrandbits(8) for _ in range(size))
    options = b""
    if rng.random() < 0.08:
        options = bytes([7, 7, 4, 0, 0, 0, 0, 0])  # record route + end
    frag = rng.choice([0x4000, 0x4000, 0, 0x2000 | rng.randrange(0, 100), rng.randrange(1, 100)])
    ttl = rng.choice([0, 1, 2, 64, 64, 64])
    ihl = (20 + len(options)) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), rng.getrandbits(16),
                    frag, ttl, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return 0x0800, h + payload


def ipv6(rng, src, dst, a):
    upper = rng.choice([17, 17, 58])
    size = rng.choice([18, 100, 1000, a.mtu - 48, a.mtu - 47, 1452])
    payload = udp(rng, size) if upper == 17 else icmp(rng, rng.choice([128, 128, 1, 3]), size)
    nxt = upper
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        kind = rng.choice([0, 43, 44, 60])
        if kind == 44:
            ext = struct.pack("!BBHI", nxt, 0, rng.choice([0, 8, 1]), rng.getrandbits(32))
        else:
            ext = bytes([nxt, 0]) + bytes([1, 4, 0, 0, 0, 0])  # PadN
        payload, nxt = ext + payload, kind
    w0 = (6 << 28) | rng.getrandbits(20)
    h = struct.pack("!IHBB16s16s", w0, len(payload), nxt, rng.choice([0, 1, 2, 64, 64, 64]),
                    socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
    return 0x86DD, h + payload


def mutate(rng, f):
    f = bytearray(f)
    kind = rng.randrange(6)
    if kind == 0:
        del f[rng.randrange(14, len(f)):]
    elif kind == 1:
        i = rng.randrange(14, min(len(f), 60))
        f[i] ^= 1 << rng.randrange(8)
    elif kind == 2 and len(f) > 18:
        f[16:18] = struct.pack("!H", rng.getrandbits(16))  # IPv4 tot_len / IPv6 flow label
    elif kind == 3 and len(f) > 20:
        f[18:20] = struct.pack("!H", rng.getrandbits(16))  # IPv6 payload length / IPv4 id
    elif kind == 4:
        f += bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 30)))
    else:
        f[0:6] = rng.choice([b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x05", b"\x33\x33\x00\x00\x00\x01",
                             bytes([f[0] | 1]) + f[1:6], b"\x02\x00\x00\x00\x00\x99"])
    return bytes(f)


def frames(a):
    rng = random.Random(a.seed)
    dst4 = ["198.51.100.7", "198.51.100.200", "203.0.113.7", "10.11.2.2", "10.11.1.1",
            "192.0.2.9", "8.8.8.8", "10.11.2.255", "224.0.0.9", "127.0.0.1"]
    dst6 = ["2001:db8:100::7", "2001:db8:100::ff", "2001:db8:200::7", "fd00:11:2::2", "fd00:11:1::1",
            "2001:db8:dead::9", "2a00:1450::1", "ff02::1", "fe80::99", "::1"]
    src4 = ["10.11.1.2"] * 6 + ["10.11.1.1", "0.0.0.0", "224.0.0.1", "10.11.2.2"]
    src6 = ["fd00:11:1::2"] * 6 + ["fd00:11:1::1", "::", "ff02::1", "fe80::1"]
    for _ in range(a.count):
        if rng.random() < 0.5:
            t, l3 = ipv4(rng, rng.choice(src4), rng.choice(dst4), a)
        else:
            t, l3 = ipv6(rng, rng.choice(src6), rng.choice(dst6), a)
        if rng.random() < 0.04:
            t = rng.choice([0x0806, 0x8100, 0x88B5])
        f = mac(a.dst_mac) + mac(a.src_mac) + struct.pack("!H", t) + l3
        if rng.random() < 0.3:
            f = mutate(rng, f)
        yield f[:1514]


def cmd_send(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    sent = errors = 0
    for f in frames(a):
        try:
            s.send(f)
            sent += 1
        except OSError:
            errors += 1
        time.sleep(a.gap)
    print(f"sent {sent} errors {errors}")


def cmd_capture(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0))
    s.settimeout(0.2)
    out = open(a.out, "w")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    open(a.ready, "w").close()
    while not stop:
        try:
            data, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] != PACKET_OUTGOING and relevant(data):
            out.write(normalise(data).hex() + "\n")
            out.flush()


# The lab hosts' own addresses: packets they originate (ICMP errors, echo
# replies) carry an IPv4 id or IPv6 flow label of the kernel's choosing.
HOSTS = {"10.11.1.1", "10.11.2.1", "10.11.3.1", "10.11.2.2", "10.11.3.2", "198.51.100.1",
         "203.0.113.1", "fd00:11:1::1", "fd00:11:2::1", "fd00:11:3::1", "fd00:11:2::2",
         "fd00:11:3::2", "2001:db8:100::1", "2001:db8:200::1"}


def icmp6_type(f):
    """The ICMPv6 type of an IPv6 frame (behind a hop-by-hop header, as
    MLD reports are), or None."""
    nxt, off = f[20], 54
    if nxt == 0 and len(f) >= off + 8:
        nxt, off = f[off], off + 8 * (f[off + 1] + 1)
    return f[off] if nxt == 58 and len(f) > off else None


def relevant(f):
    """Test traffic and the ICMP errors it causes; not ARP, ND, MLD or
    router solicitations the interfaces send on their own."""
    t = struct.unpack("!H", f[12:14])[0]
    if t == 0x0806:
        return False
    if t == 0x86DD and len(f) >= 54 and icmp6_type(f) in range(130, 144):
        return False
    return True


def normalise(f):
    """Zero the id (and header checksum) or flow label of the hosts' own
    packets, different in every run."""
    t = struct.unpack("!H", f[12:14])[0]
    f = bytearray(f)
    if t == 0x0800 and len(f) >= 34 and socket.inet_ntoa(bytes(f[26:30])) in HOSTS:
        f[18:20] = b"\0\0"
        f[24:26] = b"\0\0"
    if t == 0x86DD and len(f) >= 54 and socket.inet_ntop(socket.AF_INET6, bytes(f[22:38])) in HOSTS:
        f[15] &= 0xF0
        f[16:18] = b"\0\0"
    return bytes(f)


def load(d):
    c = collections.Counter()
    for name in sorted(os.listdir(d)):
        if name.endswith(".cap"):
            for line in open(os.path.join(d, name)):
                c[(name, line.strip())] += 1
    return c


def cmd_compare(a):
    k, x = load(a.kernel), load(a.accel)
    only_k, only_x = k - x, x - k
    print(f"kernel run {sum(k.values())} frames, accel run {sum(x.values())} frames; "
          f"only kernel {sum(only_k.values())}, only accel {sum(only_x.values())}")
    for label, c in (("only with the kernel", only_k), ("only with accel", only_x)):
        for (where, hexf), n in sorted(c.items())[:10]:
            print(f"  {label}: {where} x{n}: {hexf[:160]}")
    sys.exit(0 if not only_k and not only_x and k else 1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--iface", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--count", type=int, default=300)
    s.add_argument("--dst-mac", required=True)
    s.add_argument("--src-mac", required=True)
    s.add_argument("--mtu", type=int, default=1400, help="the egress MTU to probe around")
    s.add_argument("--gap", type=float, default=0.002, help="seconds between frames")
    c = sub.add_parser("capture")
    c.add_argument("--iface", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--ready", required=True)
    m = sub.add_parser("compare")
    m.add_argument("kernel")
    m.add_argument("accel")
    a = p.parse_args()
    {"send": cmd_send, "capture": cmd_capture, "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    main()
