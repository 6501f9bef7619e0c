#!/usr/bin/env python3
"""Multi-destination traffic helpers for tests/daemons.sh (run inside a netns).

Subcommands:
  send     UDP datagrams "TAG SEQ SENDTIME" round-robin over a list of
           destinations (one family), from one socket (one source port), so
           each destination is one flow; --src binds a source address
  sink     receive UDP on both families, log "TAG SEQ SENDTIME RECVTIME IFINDEX"
           per datagram (IFINDEX: the interface it came in on, from PKTINFO)
  summary  per tag: distinct datagrams, per-ingress-ifindex counts, optional
           send-time window
  follow   analyse a route change seen at kernel time T: last datagram still
           arriving on OLD, first on NEW, longest silence
  gaps     loss over a window: sent (from the sender's summary), received,
           longest run of consecutive missing sequence numbers
  perprefix  per destination prefix: datagrams that still took a route after
           the kernel had deleted or moved it (times from `ip -ts -o monitor route`)
  routes   count kernel routes (ip -j route show on stdin) with nhid and N paths
"""
import argparse
import json
import select
import socket
import sys
import time

IP_PKTINFO = 8
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50


def cmd_send(a):
    with open(a.dsts) as f:
        dsts = [l.strip() for l in f if l.strip()]
    fam = socket.AF_INET6 if ":" in dsts[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if a.src or a.sport:
        s.bind((a.src or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), a.sport))
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    start = time.time()
    deadline = start + a.duration if a.duration else None
    seq = 0
    errors = 0
    n = len(dsts)
    stopped = []
    import signal
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    while not stopped:
        if a.count and seq >= a.count:
            break
        now = time.time()
        if deadline is not None and now >= deadline:
            break
        if interval:
            d = start + seq * interval - now
            if d > 0.0005:
                time.sleep(d)
        payload = f"{a.tag} {seq} {time.time():.6f} ".encode() + b"x" * 16
        try:
            s.sendto(payload, (dsts[seq % n], a.port))
        except OSError:
            errors += 1
        seq += 1
    print(f"sent {seq} errors {errors} first {start:.6f} last {time.time():.6f}", flush=True)


def cmd_sink(a):
    s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    for s in (s4, s6):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
        except OSError:
            pass
        s.setblocking(False)
    s4.bind(("0.0.0.0", a.port))
    s6.bind(("::", a.port))
    out = open(a.log, "a", buffering=1 << 16)
    if a.ready:
        open(a.ready, "w").close()
    import signal

    def stop(*_):
        out.flush()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    last_flush = time.time()
    while True:
        r, _, _ = select.select([s4, s6], [], [], 0.05)
        for s in r:
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(2048, 256)
                except BlockingIOError:
                    break
                now = time.time()
                ifindex = 0
                for lvl, typ, val in anc:
                    if (lvl, typ) == (socket.IPPROTO_IP, IP_PKTINFO):
                        ifindex = int.from_bytes(val[0:4], sys.byteorder)
                    elif (lvl, typ) == (socket.IPPROTO_IPV6, IPV6_PKTINFO):
                        ifindex = int.from_bytes(val[16:20], sys.byteorder)
                p = data.split(b" ", 3)
                if len(p) < 3:
                    continue
                try:
                    out.write(f"{p[0].decode()} {int(p[1])} {float(p[2]):.6f} {now:.6f} {ifindex}\n")
                except (ValueError, UnicodeDecodeError):
                    continue
        if time.time() - last_flush > 0.05:
            out.flush()
            last_flush = time.time()


def read_log(path, tag):
    """[(seq, sendtime, recvtime, ifindex)] of a tag, first arrival per seq."""
    rows = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 5 and p[0] == tag:
                    seq = int(p[1])
                    if seq not in rows:
                        rows[seq] = (seq, float(p[2]), float(p[3]), int(p[4]))
    except FileNotFoundError:
        pass
    return sorted(rows.values())


def cmd_summary(a):
    rows = read_log(a.log, a.tag)
    if a.after is not None:
        rows = [r for r in rows if r[1] >= a.after]
    if a.before is not None:
        rows = [r for r in rows if r[1] < a.before]
    per = {}
    for r in rows:
        per[r[3]] = per.get(r[3], 0) + 1
    print(json.dumps({"received": len(rows), "per_ifindex": {str(k): v for k, v in sorted(per.items())}}))


def cmd_follow(a):
    """Traffic must follow a kernel route change completed at T (seen by polling).

    old_last_send_ms: send time of the last datagram that still arrived on OLD,
      relative to T (<= 0: nothing took the old path after the kernel changed)
    new_first_recv_ms: arrival of the first datagram on NEW, relative to T
      (NEW may be "none": the route was withdrawn; then only OLD matters)
    lag_ms: the larger of the two, clamped at 0
    max_gap_ms: longest send-time stretch around T with nothing delivered at all
    """
    rows = read_log(a.log, a.tag)
    old = [r for r in rows if r[3] == a.old]
    new = [r for r in rows if a.new is not None and r[3] == a.new]
    res = {"received": len(rows), "on_old": len(old), "on_new": len(new)}
    if a.t_first is not None:
        res["kernel_change_ms"] = round((a.t - a.t_first) * 1000, 1)
    lag = 0.0
    # Only datagrams sent after the change started matter for "old".
    old_after = [r for r in old if r[1] >= (a.t_first if a.t_first is not None else a.t) - 0.05]
    if old:
        last_old = max(r[1] for r in old)
        res["old_last_send_ms"] = round((last_old - a.t) * 1000, 1)
        lag = max(lag, last_old - a.t)
    res["old_sent_after_change"] = len([r for r in old if r[1] > a.t])
    if a.new is not None:
        cand = [r for r in new if r[1] >= (a.t_first if a.t_first is not None else a.t) - 0.5]
        if cand:
            first_new = min(r[2] for r in cand)
            res["new_first_recv_ms"] = round((first_new - a.t) * 1000, 1)
            lag = max(lag, first_new - a.t)
        else:
            res["new_first_recv_ms"] = None
            lag = float("inf")
        res["new_sent_after_change"] = len([r for r in new if r[1] > a.t])
    del old_after
    res["lag_ms"] = None if lag == float("inf") else round(max(lag, 0.0) * 1000, 1)
    t0 = a.t_first if a.t_first is not None else a.t
    win = sorted(r[1] for r in rows if t0 - 0.3 <= r[1] <= a.t + 0.5)
    gaps = [y - x for x, y in zip(win, win[1:])]
    res["max_gap_ms"] = round(max(gaps, default=float("nan")) * 1000, 1) if gaps else None
    print(json.dumps(res))


def cmd_gaps(a):
    rows = read_log(a.log, a.tag)
    seqs = sorted(r[0] for r in rows)
    got = set(seqs)
    longest = cur = 0
    lost_at = None
    for s in range(a.sent):
        if s in got:
            cur = 0
        else:
            cur += 1
            if cur > longest:
                longest = cur
                lost_at = s
    per = {}
    for r in rows:
        per[r[3]] = per.get(r[3], 0) + 1
    res = {
        "sent": a.sent,
        "received": len(got),
        "lost": a.sent - len([s for s in got if s < a.sent]),
        "longest_loss_run": longest,
        "per_ifindex": {str(k): v for k, v in sorted(per.items())},
    }
    if a.rate and longest:
        res["longest_loss_ms"] = round(longest / a.rate * 1000, 1)
    print(json.dumps(res))


def read_monitor(path):
    """[(time, deleted, prefix, line)] from `ip -ts -o monitor route`."""
    import datetime
    ev = []
    with open(path) as f:
        for line in f:
            if not line.startswith("["):
                continue
            ts, _, rest = line[1:].partition("] ")
            try:
                t = datetime.datetime.fromisoformat(ts).timestamp()
            except ValueError:
                continue
            p = rest.split()
            deleted = bool(p) and p[0] == "Deleted"
            if deleted:
                p = p[1:]
            while p and p[0] in ("unicast", "blackhole", "unreachable", "prohibit"):
                p = p[1:]
            if p:
                ev.append((t, deleted, p[0], rest))
    return ev


def cmd_perprefix(a):
    """Per prefix, from the kernel's own event times.

    withdraw: del_t = the prefix's deletion, add_t = its re-announcement.
      leaked = datagrams sent after del_t + grace and before add_t that arrived;
      lag_ms = largest (send time - del_t) among datagrams that arrived after
      del_t (sent before add_t); lost_after_add = datagrams sent more than
      --settle s after add_t that never arrived.
    move: chg_t = first event for the prefix naming the new gateway.
      lag_ms = largest (send - chg_t) among datagrams that arrived on OLD;
      lost_after_move = datagrams sent more than --settle s after chg_t that
      never arrived; on_new_after = arrivals on NEW sent after chg_t.
    """
    import ipaddress
    with open(a.dsts) as f:
        dsts = [l.strip() for l in f if l.strip()]
    n = len(dsts)
    pfx = [str(ipaddress.ip_network(f"{d}/{a.plen}", strict=False)) for d in dsts]
    ev = [e for e in read_monitor(a.monitor) if e[0] >= a.t0]
    first_t = {}
    for t, deleted, p, rest in ev:
        if a.mode == "withdraw":
            if deleted and ("del", p) not in first_t:
                first_t[("del", p)] = t
            elif not deleted and ("del", p) in first_t and ("add", p) not in first_t:
                first_t[("add", p)] = t
        else:
            if not deleted and f"via {a.gw} " in rest + " " and ("chg", p) not in first_t:
                first_t[("chg", p)] = t
    rows = {r[0]: r for r in read_log(a.log, a.tag)}
    sent = a.sent
    res = {"prefixes": len(set(pfx))}
    lag = None
    if a.mode == "withdraw":
        have = [p for p in set(pfx) if ("del", p) in first_t]
        res["prefixes_deleted"] = len(have)
        res["prefixes_readded"] = sum(1 for p in set(pfx) if ("add", p) in first_t)
        leaked = 0
        lost_after = 0
        for seq in range(sent):
            p = pfx[seq % n]
            d = first_t.get(("del", p))
            ad = first_t.get(("add", p), float("inf"))
            r = rows.get(seq)
            st = r[1] if r else a.first + seq / a.rate
            if d is None:
                continue
            # `ip monitor` stamps an event when it reads it, a few ms after
            # the kernel applied it: datagrams sent just before the stamped
            # re-add may rightly have found the route back already.
            if r and d <= st < ad - a.slack:
                lag = st - d if lag is None else max(lag, st - d)
                if st > d + a.grace:
                    leaked += 1
            if not r and st > ad + a.settle and st < a.first + sent / a.rate - 0.1:
                lost_after += 1
        res["leaked"] = leaked
        res["lost_after_add"] = lost_after
        dels = [first_t[("del", p)] for p in have]
        adds = [first_t[k] for k in first_t if k[0] == "add"]
        if dels:
            res["kernel_delete_span_ms"] = round((max(dels) - min(dels)) * 1000, 1)
        if adds:
            res["kernel_add_span_ms"] = round((max(adds) - min(adds)) * 1000, 1)
    else:
        have = [p for p in set(pfx) if ("chg", p) in first_t]
        res["prefixes_moved"] = len(have)
        lost_after = 0
        on_new = 0
        late_old = 0
        for seq in range(sent):
            p = pfx[seq % n]
            c = first_t.get(("chg", p))
            r = rows.get(seq)
            st = r[1] if r else a.first + seq / a.rate
            if c is None:
                continue
            if r and st >= c and r[3] == a.old:
                lag = st - c if lag is None else max(lag, st - c)
                if st > c + a.grace:
                    late_old += 1
            if r and st >= c and r[3] == a.new:
                on_new += 1
            if not r and st > c + a.settle and st < a.first + sent / a.rate - 0.1:
                lost_after += 1
        res["on_old_after_change"] = late_old
        res["on_new_after_change"] = on_new
        res["lost_after_move"] = lost_after
        chg = [first_t[("chg", p)] for p in have]
        if chg:
            res["kernel_change_span_ms"] = round((max(chg) - min(chg)) * 1000, 1)
    res["lag_ms"] = None if lag is None else round(max(lag, 0.0) * 1000, 1)
    print(json.dumps(res))


def cmd_paths(a):
    """Per destination (seq modulo the number of destinations), the
    ifindex two tags arrived on: the same flows forwarded twice must take
    the same ECMP member."""
    def by_dst(tag):
        out = {}
        for seq, _, _, ifindex in read_log(a.log, tag):
            out.setdefault(seq % a.n, ifindex)
        return out
    x, y = by_dst(a.a), by_dst(a.b)
    common = sorted(set(x) & set(y))
    wrong = [d for d in common if x[d] != y[d]]
    print(json.dumps({"destinations": a.n, "compared": len(common), "mismatched": len(wrong),
                      "first_mismatches": [[d, x[d], y[d]] for d in wrong[:5]]}))


def cmd_routes(a):
    data = json.load(sys.stdin)
    total = with_nhid = multi = 0
    paths = {}
    for r in data:
        if a.type and r.get("type", "unicast") != a.type:
            continue
        total += 1
        if "nhid" in r:
            with_nhid += 1
        n = len(r.get("nexthops", [])) or 1
        paths[n] = paths.get(n, 0) + 1
        if n >= 2:
            multi += 1
    print(json.dumps({"routes": total, "with_nhid": with_nhid, "multipath": multi,
                      "paths": {str(k): v for k, v in sorted(paths.items())}}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--dsts", required=True, help="file with one address per line")
    s.add_argument("--src")
    s.add_argument("--sport", type=int, default=0,
                   help="fixed source port (IPv6 auto flow labels hash it)")
    s.add_argument("--port", type=int, default=5555)
    s.add_argument("--count", type=int, default=0)
    s.add_argument("--duration", type=float, default=0)
    s.add_argument("--rate", type=float, default=0)
    s.add_argument("--tag", default="t")
    s.set_defaults(fn=cmd_send)
    s = sub.add_parser("sink")
    s.add_argument("--port", type=int, default=5555)
    s.add_argument("--log", required=True)
    s.add_argument("--ready")
    s.set_defaults(fn=cmd_sink)
    s = sub.add_parser("summary")
    s.add_argument("--tag", required=True)
    s.add_argument("--after", type=float)
    s.add_argument("--before", type=float)
    s.add_argument("log")
    s.set_defaults(fn=cmd_summary)
    s = sub.add_parser("follow")
    s.add_argument("--tag", required=True)
    s.add_argument("--t", type=float, required=True, help="kernel change complete")
    s.add_argument("--t-first", type=float, help="kernel change first seen")
    s.add_argument("--old", type=int, required=True, help="ifindex of the old path")
    s.add_argument("--new", type=int, help="ifindex of the new path (none: withdrawn)")
    s.add_argument("log")
    s.set_defaults(fn=cmd_follow)
    s = sub.add_parser("gaps")
    s.add_argument("--tag", required=True)
    s.add_argument("--sent", type=int, required=True)
    s.add_argument("--rate", type=float, default=0)
    s.add_argument("log")
    s.set_defaults(fn=cmd_gaps)
    s = sub.add_parser("perprefix")
    s.add_argument("--mode", choices=["withdraw", "move"], required=True)
    s.add_argument("--tag", required=True)
    s.add_argument("--dsts", required=True)
    s.add_argument("--monitor", required=True)
    s.add_argument("--plen", type=int, required=True)
    s.add_argument("--t0", type=float, required=True, help="ignore kernel events before")
    s.add_argument("--first", type=float, required=True, help="sender's start time")
    s.add_argument("--rate", type=float, required=True)
    s.add_argument("--sent", type=int, required=True)
    s.add_argument("--grace", type=float, default=0.0)
    s.add_argument("--settle", type=float, default=1.0)
    s.add_argument("--slack", type=float, default=0.05, help="event stamping delay allowance")
    s.add_argument("--gw")
    s.add_argument("--old", type=int)
    s.add_argument("--new", type=int)
    s.add_argument("log")
    s.set_defaults(fn=cmd_perprefix)
    s = sub.add_parser("paths")
    s.add_argument("--a", required=True, help="tag of the first run")
    s.add_argument("--b", required=True, help="tag of the second run")
    s.add_argument("--n", type=int, required=True, help="number of destinations")
    s.add_argument("log")
    s.set_defaults(fn=cmd_paths)
    s = sub.add_parser("routes")
    s.add_argument("--type")
    s.set_defaults(fn=cmd_routes)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
