#!/usr/bin/env python3
"""Traffic and analysis helpers for the namespace labs (scripts/lab.sh,
tests/e2e.sh, tests/hostile.sh, tests/daemons.sh); traffic commands run
inside a netns via nsenter.

Traffic:
  send     UDP datagrams "TAG SEQ SENDTIME" to one address (--dst) or
           round-robin over a file of addresses (--dsts), one family
  sink     receive UDP on both families, log "TAG SEQ SENDTIME RECVTIME
           IFINDEX" per datagram (IFINDEX: the interface it came in on)
Single-destination analysis (scripts/lab.sh's sinks, one log per host):
  count    distinct sequence numbers of a tag in sink logs
  switch   a route change from sink logs (see cmd_switch)
  stale    datagrams delivered on the old path after a change (cmd_stale)
  gap      a delete/add-back of a route from sink logs (see cmd_gap)
Multi-destination analysis (tests/daemons.sh's one sink, by ingress):
  summary  per tag: distinct datagrams, per-ingress-ifindex counts
  follow   a route change seen at kernel time T (see cmd_follow)
  gaps     loss over a window: longest run of missing sequence numbers
  perprefix  per destination prefix, from `ip -ts -o monitor route` times
  paths    the same flows sent twice took the same ECMP member
  late     datagrams of some tags that arrived via one interface after T
Parsing and generating:
  rx       rx packets of an interface from `ip -s -j link show` on stdin
  stats    sum fields of `accel stats --json` on stdin
  snmp     forwarding counters from /proc/net/snmp and /proc/net/snmp6
  tcx      programs on the TC ingress (tcx) of interfaces of this netns
  srcdrops the kernel's source-check drops: IPReversePathFilter (this
           namespace's /proc/net/netstat) and in_martian_src (rt_cache)
  hdrdrops the kernel's header drops: InHdrErrors InTruncatedPkts
           Ip6InHdrErrors Ip6InTruncatedPkts in_martian_src
  rawsend  malformed or martian frames through an AF_PACKET socket
  routes   count kernel routes (ip -j route show on stdin) with nhid and paths
  json     a dotted path of a JSON document on stdin ("none" if absent)
  bgp-up   exit 0 when `show bgp summary json` (FRR) has N Established peers
  route-batch  an `ip -batch` file of /25 routes, one in each /24
  bird-routes  BIRD static route files for tests/daemons.sh
  withdraw     a stream around a withdrawal and re-announcement
  counters     the non-zero counters of an interface in `accel stats --json`
HTTP (tests/monitoring.sh):
  http     GET a URL (optionally with an Accept header): the body on stdout,
           "STATUS CONTENT-TYPE" on stderr; exit 1 unless 200
  prom     the value of a Prometheus instant query (sum of the series;
           "none" when there are none)
Control socket clients (tests/hostile.sh):
  ctl-idle N S  hold N silent connections for S seconds
  ctl-ask      connect, optionally send a line, print the reply
"""
import argparse
import ipaddress
import json
import select
import signal
import socket
import struct
import sys
import time

IP_PKTINFO = 8
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50


def cmd_send(a):
    if a.dsts:
        with open(a.dsts) as f:
            dsts = [l.strip() for l in f if l.strip()]
    else:
        dsts = [a.dst]
    fam = socket.AF_INET6 if ":" in dsts[0] else socket.AF_INET
    # --flows N: N sockets (N source ports), used in turn.
    socks = [socket.socket(fam, socket.SOCK_DGRAM) for _ in range(max(1, a.flows))]
    for s in socks:
        if a.src or a.sport:
            s.bind((a.src or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), a.sport))
        if a.ttl:
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
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    while not stopped:
        if a.count and seq >= a.count:
            break
        if deadline is not None and time.time() >= deadline:
            break
        if interval:
            d = start + seq * interval - time.time()
            if d > 0:
                time.sleep(d)
        payload = f"{a.tag} {seq} {time.time():.6f} ".encode() + pad
        try:
            socks[seq % len(socks)].sendto(payload, (dsts[seq % len(dsts)], a.port))
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
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        s.setblocking(False)
    s4.bind(("0.0.0.0", a.port))
    s6.bind(("::", a.port))
    out = open(a.log, "a", buffering=1 << 16)

    def stop(*_):
        out.flush()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    if a.ready:
        open(a.ready, "w").close()
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
        # Readers poll the log: never more than one select round behind.
        out.flush()


def read_log(path, tag):
    """[(seq, sendtime, recvtime, ifindex)] of a tag in a sink log, every
    arrival."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 5 and p[0] == tag:
                    rows.append((int(p[1]), float(p[2]), float(p[3]), int(p[4])))
    except FileNotFoundError:
        pass
    return rows


def first_arrivals(path, tag):
    """read_log, the first arrival of each sequence number, in order."""
    rows = {}
    for r in read_log(path, tag):
        rows.setdefault(r[0], r)
    return sorted(rows.values())


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


def cmd_tcx(a):
    """Programs attached to the tcx ingress of each named interface,
    summed: BPF_PROG_QUERY with no id buffer returns just the count
    (bpftool 7.1 cannot tell tcx links of this netns from others')."""
    import ctypes
    import os
    libc = ctypes.CDLL(None, use_errno=True)
    bpf_prog_query, bpf_tcx_ingress, sys_bpf = 16, 46, 321  # x86_64
    total, ids = 0, []
    for name in a.ifaces:
        try:
            ifindex = socket.if_nametoindex(name)
        except OSError:
            continue
        # union bpf_attr, query: target_ifindex, attach_type, query_flags,
        # attach_flags, prog_ids (u64), count, pad, then more u64s.
        attr = (ctypes.c_uint32 * 32)()
        buf = (ctypes.c_uint32 * 64)()
        attr[0], attr[1] = ifindex, bpf_tcx_ingress
        addr = ctypes.addressof(buf)
        attr[4], attr[5], attr[6] = addr & 0xffffffff, addr >> 32, len(buf)
        if libc.syscall(sys_bpf, bpf_prog_query, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
            raise SystemExit(f"BPF_PROG_QUERY on {name}: {os.strerror(ctypes.get_errno())}")
        total += attr[6]
        ids += [buf[i] for i in range(min(attr[6], len(buf)))]
    print(" ".join(f"prog/tcx id {i}" for i in sorted(ids)) if a.ids else total)


def martian_src():
    """in_martian_src of /proc/net/stat/rt_cache, summed over CPUs."""
    total = 0
    with open("/proc/net/stat/rt_cache") as f:
        col = f.readline().split().index("in_martian_src")
        for l in f:
            total += int(l.split()[col], 16)
    return total


def cmd_srcdrops(a):
    rpf = 0
    with open("/proc/net/netstat") as f:
        lines = [l.split() for l in f]
    for head, vals in zip(lines[::2], lines[1::2]):
        if "IPReversePathFilter" in head:
            rpf = int(vals[head.index("IPReversePathFilter")])
    print(rpf, martian_src())


def raw_frame(kind, dst_mac, src_mac):
    """One frame of a kind the kernel drops silently (ip_rcv_core,
    ip6_rcv_core, or ip_route_input_slow's martian-source check)."""
    # Imported here: tests/hostile.sh runs this file alone, as nobody.
    import fuzzlab  # the IP checksum, beside this file
    udp = struct.pack("!HHHH", 4000, 5555, 16, 0) + b"martian!"
    if kind.endswith("6"):
        src, dst = "2001:db8:1::2", "2001:db8:100::1"
        plen = len(udp)
        if kind == "loop6":
            src = "::1"
        elif kind == "mcsrc6":
            src = "ff02::5"
        elif kind == "truncated6":
            plen += 100
        hdr = struct.pack("!IHBB", 6 << 28, plen, 17, 64)
        hdr += socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
        return dst_mac + src_mac + b"\x86\xdd" + hdr + udp
    src, dst = "10.11.1.2", "198.51.100.1"
    if kind == "martian4":
        src = "224.1.2.3"
    elif kind == "zeronet4":
        src = "0.1.2.3"
    tot = 20 + len(udp) + (100 if kind == "truncated4" else 0)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, 1, 0, 64, 17, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    csum = fuzzlab.csum(hdr) ^ (0x5555 if kind == "badcsum4" else 0)
    hdr = hdr[:10] + struct.pack("!H", csum) + hdr[12:]
    return dst_mac + src_mac + b"\x08\x00" + hdr + udp


def cmd_rawsend(a):
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    f = raw_frame(a.kind, mac(a.dst_mac), mac(a.src_mac))
    for _ in range(a.count):
        s.send(f)
        time.sleep(0.0002)


def cmd_hdrdrops(a):
    with open("/proc/net/snmp") as f:
        ip = [l.split() for l in f if l.startswith("Ip:")]
    with open("/proc/net/netstat") as f:
        ext = [l.split() for l in f if l.startswith("IpExt:")]
    v6 = {}
    with open("/proc/net/snmp6") as f:
        for l in f:
            k, v = l.split()
            v6[k] = int(v)
    print(int(ip[1][ip[0].index("InHdrErrors")]), int(ext[1][ext[0].index("InTruncatedPkts")]),
          v6["Ip6InHdrErrors"], v6["Ip6InTruncatedPkts"], martian_src())


def cmd_summary(a):
    rows = first_arrivals(a.log, a.tag)
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
    rows = first_arrivals(a.log, a.tag)
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
    rows = first_arrivals(a.log, a.tag)
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
    rows = {r[0]: r for r in first_arrivals(a.log, a.tag)}
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
        for seq, _, _, ifindex in first_arrivals(a.log, tag):
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


def cmd_late(a):
    late = []
    for r_tag in a.tags:
        for seq, st, rt, ifx in read_log(a.log, r_tag):
            if ifx == a.ifindex and st >= a.t:
                late.append((st, f"{r_tag}#{seq} {round((st - a.t) * 1000, 1)}/{round((rt - a.t) * 1000, 1)}"))
    late = [s for _, s in sorted(late)]
    if not late:
        print("none")
    else:
        print(f"{len(late)}: " + ", ".join(late[:10]) + (" ..." if len(late) > 10 else ""))


def cmd_json(a):
    v = json.load(sys.stdin)
    for k in a.path.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    print("none" if v is None else v)


def cmd_bgp_up(a):
    d = json.loads(a.summary)
    n = sum(1 for af in ("ipv4Unicast", "ipv6Unicast")
            for p in d.get(af, {}).get("peers", {}).values() if p.get("state") == "Established")
    sys.exit(0 if n == a.want else 1)


def cmd_route_batch(a):
    with open(a.file, "w") as f:
        for k in range(a.count):
            f.write(f"route {a.verb} {a.net}.{64 + k // 256}.{k % 256}.0/25 via {a.gw}\n")


def cmd_withdraw(a):
    """A stream around a withdrawal at [td0 (configure), td1 (first route
    gone), td2 (all gone)] and the announcement at [ta0, ta1 (first back),
    ta2 (all back)]."""
    rows = {r[0]: (r[1], r[2]) for r in first_arrivals(a.log, a.tag)}
    td0, td2, ta0, ta1, ta2 = a.td0, a.td2, a.ta0, a.ta1, a.ta2
    before = [st for st, rt in rows.values() if st < td0]
    during = [(st, rt) for st, rt in rows.values() if td0 <= st < ta0]
    last_send = max((st for st, rt in during), default=None)
    after = [rt for st, rt in rows.values() if st >= ta0]
    print(json.dumps({
        "delivered_before": len(before),
        "delivered_sent_while_withdrawing": len(during),
        "delivered_sent_after_all_gone+50ms": sum(1 for st, rt in during if st > td2 + 0.05),
        "kernel_withdraw_ms": round((td2 - td0) * 1000),
        "kernel_announce_ms": round((ta2 - ta0) * 1000),
        "last_delivered_send_vs_all_gone_ms": None if last_send is None else round((last_send - td2) * 1000, 1),
        "first_recv_vs_first_back_ms": round((min(after) - ta1) * 1000, 1) if after else None,
        "first_recv_vs_all_back_ms": round((min(after) - ta2) * 1000, 1) if after else None,
        "delivered_after_announce": len(after),
    }))


def cmd_counters(a):
    """The non-zero counters of one interface in `accel stats --json` on
    stdin, as k=v."""
    for i in json.load(sys.stdin):
        if i["iface"] == a.iface:
            print(" ".join(f"{k}={v}" for k, v in i["counters"].items() if v))


def cmd_bird_routes(a):
    """BIRD static routes: N4 IPv4 /24s from 100.64.0.0, NNH in
    100.120.0.0/16, N6 IPv6 /48s from 2001:db8:1000::; --skip-withdraw
    leaves out the withdraw blocks 100.70.0.0/16 and 2001:db8:1100::/40."""
    with open(f"{a.dir}/routes4.conf.tmp", "w") as f:
        for i in range(a.n4):
            x, y = 64 + i // 256, i % 256
            if a.skip_withdraw and x == 70:
                continue
            f.write(f"route 100.{x}.{y}.0/24 blackhole;\n")
        for i in range(a.nnh):
            f.write(f"route 100.120.{i}.0/24 blackhole;\n")
    with open(f"{a.dir}/routes6.conf.tmp", "w") as f:
        for i in range(a.n6):
            h = 0x1000 + i
            if a.skip_withdraw and h >> 8 == 0x11:
                continue
            f.write(f"route 2001:db8:{h:x}::/48 blackhole;\n")


def cmd_ctl_idle(a):
    """Holds N silent connections to a control socket for S seconds."""
    socks = []
    for _ in range(a.n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(a.socket)
        socks.append(s)
    time.sleep(a.seconds)


def cmd_ctl_ask(a):
    """Connects to a control socket, sends --send (if any) and prints the
    first reply bytes; a refused connection raises (PermissionError)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(a.socket)
    if a.send:
        s.sendall(a.send.encode() + b"\n")
    print(s.recv(300).decode().strip())


def cmd_http(a):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(a.url, headers={"Accept": a.accept} if a.accept else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            sys.stderr.write(f"{r.status} {r.headers.get('Content-Type')}\n")
            sys.stdout.write(r.read().decode())
    except urllib.error.HTTPError as e:
        sys.stderr.write(f"{e.code} {e.headers.get('Content-Type')}\n")
        sys.stdout.write(e.read().decode())
        sys.exit(1)


def cmd_prom(a):
    import urllib.parse
    import urllib.request
    url = f"{a.server}/api/v1/query?" + urllib.parse.urlencode({"query": a.query})
    with urllib.request.urlopen(url, timeout=10) as r:
        d = json.load(r)
    res = d.get("data", {}).get("result", [])
    if not res:
        print("none")
        return
    total = sum(float(x["value"][1]) for x in res)
    print(int(total) if total == int(total) else total)


def add_traffic(sub):
    """The traffic a test sends and receives."""
    s = sub.add_parser("send")
    d = s.add_mutually_exclusive_group(required=True)
    d.add_argument("--dst")
    d.add_argument("--dsts", help="file with one address per line, used in turn")
    s.add_argument("--src")
    s.add_argument("--sport", type=int, default=0,
                   help="fixed source port (IPv6 auto flow labels hash it)")
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


def add_analysis(sub):
    """What a test's logs say: per tag, per prefix, per path, around a change."""
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
    s = sub.add_parser("late")
    s.add_argument("--t", type=float, required=True)
    s.add_argument("--ifindex", type=int, required=True)
    s.add_argument("log")
    s.add_argument("tags", nargs="+")
    s.set_defaults(fn=cmd_late)
    s = sub.add_parser("withdraw")
    s.add_argument("--tag", required=True)
    for n in ("td0", "td2", "ta0", "ta1", "ta2"):
        s.add_argument("--" + n, type=float, required=True)
    s.add_argument("log")
    s.set_defaults(fn=cmd_withdraw)


def add_probes(sub):
    """Looks at the router: HTTP, Prometheus, interface and accel counters, programs, crafted frames."""
    s = sub.add_parser("http")
    s.add_argument("--accept")
    s.add_argument("url")
    s.set_defaults(fn=cmd_http)
    s = sub.add_parser("prom")
    s.add_argument("--server", default="http://127.0.0.1:9090")
    s.add_argument("query")
    s.set_defaults(fn=cmd_prom)
    s = sub.add_parser("rx")
    s.set_defaults(fn=cmd_rx)
    s = sub.add_parser("stats")
    s.add_argument("--iface")
    s.add_argument("fields", nargs="+")
    s.set_defaults(fn=cmd_stats)
    s = sub.add_parser("snmp")
    s.set_defaults(fn=cmd_snmp)
    s = sub.add_parser("tcx")
    s.add_argument("--ids", action="store_true", help="the programs' ids, not their count")
    s.add_argument("ifaces", nargs="+")
    s.set_defaults(fn=cmd_tcx)
    s = sub.add_parser("rawsend")
    s.add_argument("--iface", required=True)
    s.add_argument("--dst-mac", required=True)
    s.add_argument("--src-mac", required=True)
    s.add_argument("--kind", required=True,
                   choices=["badcsum4", "truncated4", "martian4", "zeronet4", "loop6", "mcsrc6", "truncated6"])
    s.add_argument("--count", type=int, default=100)
    s.set_defaults(fn=cmd_rawsend)
    s = sub.add_parser("hdrdrops")
    s.set_defaults(fn=cmd_hdrdrops)
    s = sub.add_parser("srcdrops")
    s.set_defaults(fn=cmd_srcdrops)
    s = sub.add_parser("routes")
    s.add_argument("--type")
    s.set_defaults(fn=cmd_routes)
    s = sub.add_parser("json")
    s.add_argument("path")
    s.set_defaults(fn=cmd_json)
    s = sub.add_parser("counters")
    s.add_argument("iface")
    s.set_defaults(fn=cmd_counters)


def add_daemons(sub):
    """Routing daemons and accel's control socket."""
    s = sub.add_parser("bgp-up")
    s.add_argument("--want", type=int, required=True)
    s.add_argument("summary")
    s.set_defaults(fn=cmd_bgp_up)
    s = sub.add_parser("route-batch")
    s.add_argument("file")
    s.add_argument("verb")
    s.add_argument("count", type=int)
    s.add_argument("gw")
    s.add_argument("--net", type=int, default=100, help="first octet")
    s.set_defaults(fn=cmd_route_batch)
    s = sub.add_parser("bird-routes")
    s.add_argument("--skip-withdraw", action="store_true")
    s.add_argument("dir")
    for n in ("n4", "n6", "nnh"):
        s.add_argument(n, type=int)
    s.set_defaults(fn=cmd_bird_routes)
    s = sub.add_parser("ctl-idle")
    s.add_argument("socket")
    s.add_argument("n", type=int)
    s.add_argument("seconds", type=float)
    s.set_defaults(fn=cmd_ctl_idle)
    s = sub.add_parser("ctl-ask")
    s.add_argument("--send")
    s.add_argument("socket")
    s.set_defaults(fn=cmd_ctl_ask)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    add_traffic(sub)
    add_analysis(sub)
    add_probes(sub)
    add_daemons(sub)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
