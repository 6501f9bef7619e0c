#!/usr/bin/env python3
"""Traffic and parsing helpers for scripts/lab.sh (run inside a netns via nsenter).

Subcommands:
  send    UDP datagrams "TAG SEQ SENDTIME" to an address (IPv4 or IPv6)
  sink    receive UDP on both families, log "TAG SEQ SENDTIME RECVTIME" per datagram
  count   distinct sequence numbers of a tag in sink logs
  switch  analyse a route change from sink logs (see cmd_switch)
  gap     analyse a delete/add-back of a route from sink logs (see cmd_gap)
  rx      rx packets of an interface from `ip -s -j link show` on stdin
  stats   sum fields of `accel stats --json` on stdin
  snmp    forwarding counters from /proc/net/snmp and /proc/net/snmp6
"""
import argparse
import json
import os
import signal
import socket
import sys
import time


def cmd_send(a):
    fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
    # --flows N: N sockets (N source ports), used in turn.
    socks = [socket.socket(fam, socket.SOCK_DGRAM) for _ in range(max(1, a.flows))]
    if a.ttl:
        for s in socks:
            if fam == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
            else:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, a.ttl)
    pad = b"x" * max(0, a.size)
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    start = time.time()
    deadline = start + a.duration if a.duration else None
    seq = 0
    errors = 0
    while True:
        if a.count and seq >= a.count:
            break
        if deadline is not None and time.time() >= deadline:
            break
        if interval:
            nxt = start + seq * interval
            d = nxt - time.time()
            if d > 0:
                time.sleep(d)
        payload = f"{a.tag} {seq} {time.time():.6f} ".encode() + pad
        try:
            socks[seq % len(socks)].sendto(payload, (a.dst, a.port))
        except OSError:
            errors += 1
        seq += 1
    print(f"sent {seq} errors {errors} first {start:.6f} last {time.time():.6f}")


def cmd_sink(a):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.bind(("::", a.port))
    out = open(a.log, "a", buffering=1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.ready:
        open(a.ready, "w").close()
    while True:
        data, _ = s.recvfrom(65536)
        now = time.time()
        parts = data.split(b" ", 3)
        if len(parts) < 3:
            continue
        try:
            out.write(f"{parts[0].decode()} {int(parts[1])} {float(parts[2]):.6f} {now:.6f}\n")
        except (ValueError, UnicodeDecodeError):
            continue


def read_log(path, tag):
    """[(seq, sendtime, recvtime)] of a tag in a sink log."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 4 and p[0] == tag:
                    rows.append((int(p[1]), float(p[2]), float(p[3])))
    except FileNotFoundError:
        pass
    return rows


def cmd_count(a):
    seqs = set()
    for path in a.logs:
        seqs.update(r[0] for r in read_log(path, a.tag))
    print(len(seqs))


def cmd_switch(a):
    """Traffic moves from OLD to NEW when the route changes at [t0, t1].

    latency = the later of: the send time of the last datagram still delivered
    to OLD, and the arrival time of the first datagram at NEW, both measured
    from t1 (when `ip route` returned; negative means before it returned).
    max_loss_gap_ms = the longest stretch of send times around the change with
    no datagram delivered anywhere.
    """
    old = read_log(a.old, a.tag)
    new = read_log(a.new, a.tag)
    before = sum(1 for r in old if r[1] < a.t0)
    last_old_send = max((r[1] for r in old), default=None)
    first_new_recv = min((r[2] for r in new), default=None)
    new_after = [r for r in new if r[1] >= a.t1]
    # Datagrams sent after the change (with a 100 ms grace) that reached NEW.
    sent_late = [r for r in new if r[1] >= a.t1 + 0.1]
    res = {
        "old_before_change": before,
        "old_total": len(old),
        "new_total": len(new),
        "new_sent_after_change": len(new_after),
        "new_sent_100ms_after": len(sent_late),
    }
    # Longest silence: the largest send-time distance between consecutive
    # delivered datagrams (delivered anywhere) around the change, so that a
    # window of loss (neither OLD nor NEW) counts too.
    window = sorted(r[1] for r in old + new if a.t0 - 0.2 <= r[1] <= a.t1 + 0.5)
    gaps = [b - c for c, b in zip(window, window[1:])]
    res["max_loss_gap_ms"] = round(max(gaps, default=float("inf")) * 1000, 2)
    if last_old_send is None or first_new_recv is None:
        res["latency_ms"] = None
    else:
        lat = max(last_old_send - a.t1, first_new_recv - a.t1)
        res["last_old_send_ms"] = round((last_old_send - a.t1) * 1000, 2)
        res["first_new_recv_ms"] = round((first_new_recv - a.t1) * 1000, 2)
        res["latency_ms"] = round(max(lat, 0.0) * 1000, 2)
        res["change_cmd_ms"] = round((a.t1 - a.t0) * 1000, 2)
    print(json.dumps(res))


def cmd_stale(a):
    """Datagrams delivered to OLD although sent after the route change made
    them belong elsewhere (`ip route` returned at t1): how many, and how
    long after t1 the last of them was sent. With --resume, how many of
    them were sent after that moment (a daemon's SIGCONT)."""
    late = [r for r in read_log(a.old, a.tag) if r[1] >= a.t1]
    res = {
        "stale": len(late),
        "stale_window_ms": round(max((r[1] - a.t1 for r in late), default=0.0) * 1000, 1),
    }
    if a.resume is not None:
        res["stale_after_resume"] = sum(1 for r in late if r[1] >= a.resume)
    print(json.dumps(res))


def cmd_gap(a):
    """A route is deleted at [d0, d1] and added back at [a0, a1] towards NEW.

    leak = datagrams sent between d1 + 100 ms and a0 that arrived anywhere;
    resume_ms = arrival time of the first datagram sent after a0, minus a1.
    """
    rows = []
    for path in a.logs:
        rows += read_log(path, a.tag)
    new = read_log(a.new, a.tag)
    leak = [r for r in rows if a.d1 + 0.1 <= r[1] < a.a0]
    before = sum(1 for r in rows if r[1] < a.d0)
    after = [r for r in new if r[1] >= a.a0]
    res = {
        "delivered_before_delete": before,
        "leaked_while_deleted": len(leak),
        "delivered_after_add": len(after),
    }
    last_before = max((r[1] for r in rows if r[1] < a.a0), default=None)
    if last_before is not None:
        res["last_delivered_send_after_delete_ms"] = round((last_before - a.d1) * 1000, 2)
    if after:
        res["resume_ms"] = round(max(0.0, min(r[2] for r in after) - a.a1) * 1000, 2)
    else:
        res["resume_ms"] = None
    print(json.dumps(res))


def cmd_rx(a):
    data = json.load(sys.stdin)
    print(data[0]["stats64"]["rx"]["packets"])


def cmd_stats(a):
    data = json.load(sys.stdin)
    total = 0
    for i in data:
        if a.iface and i["iface"] != a.iface:
            continue
        for f in a.fields:
            total += i["counters"].get(f, 0) if f not in i else i[f]
    print(total)


def cmd_snmp(a):
    v4 = v6 = 0
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Ip:")]
        v4 = int(lines[1][lines[0].index("ForwDatagrams")])
    with open("/proc/net/snmp6") as f:
        for l in f:
            p = l.split()
            if p and p[0] == "Ip6OutForwDatagrams":
                v6 = int(p[1])
    print(v4, v6)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, default=5555)
    s.add_argument("--count", type=int, default=0)
    s.add_argument("--duration", type=float, default=0)
    s.add_argument("--rate", type=float, default=0, help="datagrams per second; 0 = flat out")
    s.add_argument("--tag", default="t")
    s.add_argument("--ttl", type=int, default=0)
    s.add_argument("--size", type=int, default=16)
    s.add_argument("--flows", type=int, default=1, help="source ports to rotate over")
    s.set_defaults(fn=cmd_send)
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, default=5555)
    s.add_argument("--log", required=True)
    s.add_argument("--ready")
    s.set_defaults(fn=cmd_sink)
    s = sub.add_parser("count")
    s.add_argument("--tag", required=True)
    s.add_argument("logs", nargs="+")
    s.set_defaults(fn=cmd_count)
    s = sub.add_parser("switch")
    for n in ("old", "new", "tag"):
        s.add_argument("--" + n, required=True)
    for n in ("t0", "t1"):
        s.add_argument("--" + n, type=float, required=True)
    s.set_defaults(fn=cmd_switch)
    s = sub.add_parser("stale")
    s.add_argument("--old", required=True)
    s.add_argument("--tag", required=True)
    s.add_argument("--t1", type=float, required=True)
    s.add_argument("--resume", type=float)
    s.set_defaults(fn=cmd_stale)
    s = sub.add_parser("gap")
    s.add_argument("--new", required=True)
    s.add_argument("--tag", required=True)
    for n in ("d0", "d1", "a0", "a1"):
        s.add_argument("--" + n, type=float, required=True)
    s.add_argument("logs", nargs="+")
    s.set_defaults(fn=cmd_gap)
    s = sub.add_parser("rx")
    s.set_defaults(fn=cmd_rx)
    s = sub.add_parser("stats")
    s.add_argument("--iface")
    s.add_argument("fields", nargs="+")
    s.set_defaults(fn=cmd_stats)
    s = sub.add_parser("snmp")
    s.set_defaults(fn=cmd_snmp)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
