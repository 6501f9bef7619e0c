#!/usr/bin/env python3
"""Helpers for scripts/bench/bgp.sh (FRR + BIRD, full table, with and without accel).

Subcommands:
  table     write BIRD's static routes (routes4.conf, routes6.conf) from the real
            table (gz, CRLF) or from `accel-bench gen-table`, optionally a seeded sample of
            N prefixes; prints "N4 N6"
  count     kernel route counts of the current network namespace: "V4 V6"
            (/proc/net/fib_triestat "Main: Prefixes", /proc/net/rt6_stats
            fib_rt_entries; neither dumps the table)
  phase     one timed phase: CPU snapshot of the named processes, t0, run the
            trigger (birdc enable/disable), poll the kernel counts until they
            reach the targets (the IPv4 count, a trie walk, read once the
            ip_fib_alias slab count says the routes stopped: see Tracker),
            settle, CPU snapshot; appends a JSON record
  cpu       CPU time (ns) of processes, all threads
  waitlog   wait for regular expressions in a log file (from a byte offset);
            prints the CLOCK_REALTIME time each first appeared
  report    the results tables from the records (phases, restarts) and, for
            accel runs, the lag from the listener's and accel's trace files
  selftest  check the trace/listener parsers and the lag analysis on synthetic
            files
"""
import argparse
import bisect
import gzip
import ipaddress
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time

BGP_PROTO = "186"   # RTPROT_BGP (FRR's bgpd routes in the kernel)
MAIN_TABLE = "254"


# ---------------------------------------------------------------- table
def cmd_table(a):
    if a.gz and os.path.exists(a.gz):
        with gzip.open(a.gz, "rt") as f:
            lines = [l.strip() for l in f]
    else:
        out = subprocess.run([a.gen, "gen-table", "--seed", "1"], check=True, capture_output=True, text=True).stdout
        lines = [l.strip() for l in out.splitlines()]
    seen = set()
    v4, v6 = [], []
    for l in lines:
        if not l:
            continue
        n = ipaddress.ip_network(l, strict=False)
        if n in seen:
            continue
        seen.add(n)
        (v6 if n.version == 6 else v4).append(str(n))
    if a.limit and a.limit < len(v4) + len(v6):
        rng = random.Random(a.seed)
        n4 = round(a.limit * len(v4) / (len(v4) + len(v6)))
        v4 = rng.sample(v4, n4)
        v6 = rng.sample(v6, a.limit - n4)
    for name, pfx in (("routes4.conf", v4), ("routes6.conf", v6)):
        with open(os.path.join(a.out, name), "w") as f:
            f.writelines(f"route {p} blackhole;\n" for p in pfx)
    print(len(v4), len(v6))


# ---------------------------------------------------------------- counts
def count4():
    with open("/proc/net/fib_triestat") as f:
        main = False
        for line in f:
            if line.startswith("Main:"):
                main = True
            elif main and "Prefixes:" in line:
                return int(line.split()[1])
    raise RuntimeError("no Main: Prefixes in /proc/net/fib_triestat")


def slab4():
    """IPv4 routes of every table and namespace, nearly: the active objects
    of the kernel's ip_fib_alias cache (one per route; within a few hundred
    while routes come, and behind by what awaits an RCU grace period while
    they go). Reading it costs microseconds, where count4's read walks the
    whole trie without giving up the CPU: 50-120 ms at full table on this
    VM, a stall of one of its two CPUs (FRR's and accel's threads on it
    wait) per read. None when the cache is not listed on its own (merged
    with another of its size)."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("ip_fib_alias "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def count6():
    with open("/proc/net/rt6_stats") as f:
        return int(f.read().split()[3], 16)


def cmd_count(a):
    print(count4(), count6())


# ---------------------------------------------------------------- CPU
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ns(pid):
    """CPU time of a process in ns: the sum of its threads' schedstat (ns
    resolution; live threads only), or utime+stime from /proc/PID/stat (tick
    resolution, includes threads that have exited), whichever is larger."""
    if not pid:
        return None
    try:
        tot = 0
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    tot += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        ticks = int(st[11]) + int(st[12])
        return max(tot, ticks * 1_000_000_000 // CLK_TCK)
    except (FileNotFoundError, ProcessLookupError):
        return None


def parse_pids(s):
    out = {}
    for kv in (s or "").split(","):
        if "=" in kv:
            k, v = kv.split("=", 1)
            if v.strip():
                out[k] = int(v)
    return out


def snapshot(pids):
    return {k: cpu_ns(p) for k, p in pids.items()}


def cmd_cpu(a):
    for p in a.pids:
        print(p, cpu_ns(int(p)))


# ---------------------------------------------------------------- phase
class Tracker:
    """Polls one family's kernel route count until it equals the target;
    the completion time is interpolated between the last two samples.

    With a `proxy` (a cheap approximate count of the same routes, and of
    others that do not change meanwhile), the exact count is read only
    when the routes have stopped coming, so that the read (a trie walk
    that holds a CPU) delays none of them: the proxy is within NEAR of its
    own target and has not moved for QUIET seconds, and `busy` (other
    routes still coming: the other family's) is false. Bounds: NEAR_WAIT
    seconds after the proxy came within NEAR while it keeps moving, STILL
    seconds after it came within NEAR while `busy`, STILL seconds of a
    proxy that stands still anywhere (it may be off by more than NEAR),
    and LONG seconds after the last exact read whatever the proxy does
    (routes changing elsewhere move it too): a wrong proxy delays the end
    of a phase, it cannot hang it. The completion time is then the last
    time before the read that the proxy came closer to its target than
    ever, when that came after the exact read before: for a withdrawal,
    the last RCU-deferred free of a route, a grace period after the last
    deletion (milliseconds)."""

    NEAR = 25_000
    QUIET = 0.3
    NEAR_WAIT = 3.0
    STILL = 5.0
    LONG = 30.0

    def __init__(self, name, fn, t0, base, target, proxy=None, proxy_base=None, busy=None,
                 clock=time.time):
        self.name, self.fn, self.target, self.clock = name, fn, target, clock
        self.prev = (t0, base)
        self.last = (t0, base)
        self.done = None if base != target else t0
        self.seen = self.done
        self.polls = 0
        self.exact_at = []
        self.proxy_polls = 0
        self.cost = 0.0
        self.last_change = t0
        # The proxy's base is read with the count's, before the change.
        self.proxy = None if proxy_base is None else proxy
        self.proxy_last, self.proxy_moved, self.proxy_closer = proxy_base, t0, t0
        self.near_since = None
        self.busy = busy or (lambda: False)
        if self.proxy is not None:
            self.proxy_target = proxy_base + (target - base)
            self.proxy_best = abs(target - base)

    def poll(self):
        """Reads the proxy or the count; returns what the read cost."""
        if self.proxy is not None:
            s = self.clock()
            n = self.proxy()
            self.proxy_polls += 1
            if self.proxy_waits(s, n):
                return self.clock() - s
        return self.poll_exact()

    def proxy_waits(self, s, n):
        """Notes the proxy's reading `n` at `s`; whether the exact read
        should wait."""
        if n != self.proxy_last:
            self.proxy_last, self.proxy_moved = n, s
            # Progress: closer to the target than ever (routes changing
            # elsewhere move it both ways).
            if n is not None and abs(n - self.proxy_target) < self.proxy_best:
                self.proxy_best = abs(n - self.proxy_target)
                self.proxy_closer = self.last_change = s
        if s - self.last[0] >= self.LONG or n is None:
            return False
        far = abs(n - self.proxy_target) > self.NEAR
        if far:
            self.near_since = None
            return s - self.proxy_moved < self.STILL
        self.near_since = self.near_since or s
        waited = s - self.near_since
        if s - self.proxy_moved < self.QUIET and waited < self.NEAR_WAIT:
            return True
        return self.busy() and waited < self.STILL

    def poll_exact(self):
        s = self.clock()
        self.exact_at.append(s)
        n = self.fn()
        e = self.clock()
        self.polls += 1
        self.cost = max(self.cost, e - s)
        t = (s + e) / 2
        # With a proxy, the count changed when the proxy last came closer
        # to its target (if that was after the exact read before).
        moved = self.proxy_closer if self.proxy is not None and self.last[0] < self.proxy_closer <= t else None
        if n != self.last[1]:
            self.prev, self.last, self.last_change = self.last, (t, n), moved or t
        else:
            self.last = (t, n)
        if self.done is None and n == self.target:
            (tp, np_), (tc, nc) = self.prev, self.last
            if moved is not None and nc != np_:
                self.done = moved
            elif nc != np_ and tp <= tc:
                frac = (self.target - np_) / (nc - np_)
                self.done = tp + (tc - tp) * min(1.0, max(0.0, frac))
            else:
                self.done = tc
            self.seen = e
        return e - s

    def stalled(self, now, stall):
        """Whether the count has not moved for `stall` seconds; a tracker
        with a proxy reads the exact count first (the proxy may be off)."""
        if self.done is not None:
            return True
        if self.proxy is not None and self.last[0] < self.proxy_closer:
            self.poll_exact()
            if self.done is not None:
                return True
        return now - self.last_change > stall


def cmd_phase(a):
    pids = parse_pids(a.pids)
    meta = dict(kv.split("=", 1) for kv in a.meta)
    b4, b6, p4 = count4(), count6(), slab4()
    t4, t6 = b4 + a.delta4, b6 + a.delta6
    if a.absolute:
        t4, t6 = a.delta4, a.delta6
    idle = {}
    if a.idle > 0:  # CPU the processes spend idle, per second, just before the phase
        c, ti = snapshot(pids), time.time()
        time.sleep(a.idle)
        c2, dt = snapshot(pids), time.time() - ti
        idle = {k: (None if c[k] is None or c2.get(k) is None else (c2[k] - c[k]) / dt) for k in c}
    cpu0 = snapshot(pids)
    t0 = time.time()
    trig = subprocess.run(a.trigger, capture_output=True, text=True)
    t_trig = time.time()
    v6 = Tracker("v6", count6, t0, b6, t6)
    trackers = [Tracker("v4", count4, t0, b4, t4, proxy=slab4, proxy_base=p4, busy=lambda: v6.done is None), v6]
    next_poll = {tr.name: t_trig for tr in trackers}
    status = "ok"
    while any(tr.done is None for tr in trackers):
        now = time.time()
        if now - t0 > a.timeout:
            status = "timeout"
            break
        for tr in trackers:
            if tr.done is None and now >= next_poll[tr.name]:
                cost = tr.poll()
                next_poll[tr.name] = time.time() + max(a.poll_min, a.poll_factor * cost)
        if a.stall and any(tr.done is None for tr in trackers) and time.time() - t0 > a.stall \
                and all(tr.done is not None or time.time() - tr.last_change > a.stall for tr in trackers) \
                and all(tr.stalled(time.time(), a.stall) for tr in trackers) \
                and any(tr.done is None for tr in trackers):
            for tr in trackers:
                if tr.done is None:
                    tr.done, tr.seen = tr.last_change, time.time()
            status = "stalled"
            break
        pending = [next_poll[tr.name] for tr in trackers if tr.done is None]
        if pending:
            time.sleep(max(0.0, min(pending) - time.time()))
    t_done = max(tr.done for tr in trackers if tr.done is not None) if all(tr.done for tr in trackers) else None
    t_seen = max(tr.seen for tr in trackers if tr.seen is not None) if all(tr.seen for tr in trackers) else None
    time.sleep(a.settle)
    cpu1 = snapshot(pids)
    t_end = time.time()
    rec = dict(meta, type="phase", status=status, t0=t0, t_trigger=t_trig, t_done=t_done, t_seen=t_seen,
               t_end=t_end, seconds=None if t_done is None else t_done - t0,
               base=[b4, b6], target=[t4, t6], final=[trackers[0].last[1], trackers[1].last[1]],
               done=[None if tr.done is None else tr.done - t0 for tr in trackers],
               polls=[tr.polls for tr in trackers], proxy_polls=[tr.proxy_polls for tr in trackers],
               exact_at=[round(t - t0, 3) for t in trackers[0].exact_at],
               poll_cost=[round(tr.cost, 4) for tr in trackers],
               trigger_rc=trig.returncode, trigger_out=(trig.stdout + trig.stderr).strip()[-300:],
               cpu={k: (None if cpu0[k] is None or cpu1.get(k) is None else cpu1[k] - cpu0[k]) for k in cpu0},
               idle_cpu_per_s=idle)
    with open(a.record, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps({k: rec[k] for k in ("status", "seconds", "base", "target", "final", "done", "polls",
                                            "poll_cost", "cpu")}))
    sys.exit(0 if status in ("ok", "stalled") else 1)


# ---------------------------------------------------------------- waitlog
def cmd_waitlog(a):
    pats = dict(p.split("=", 1) for p in a.pattern)
    found = {k: None for k in pats}
    rx = {k: re.compile(v) for k, v in pats.items()}
    deadline = time.time() + a.timeout
    buf = ""
    pos = a.offset
    if a.ready_file:  # the caller starts the process once this file exists
        open(a.ready_file, "w").close()
    while time.time() < deadline and any(v is None for v in found.values()):
        try:
            with open(a.log, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        now = time.time()
        if data:
            pos += len(data)
            buf += data.decode(errors="replace")
            lines = buf.split("\n")
            buf = lines.pop()
            for line in lines:
                for k, r in rx.items():
                    if found[k] is None and r.search(line):
                        found[k] = now
        pid = a.pid
        if not pid and a.pid_file:
            try:
                with open(a.pid_file) as f:
                    pid = int(f.read().strip() or 0)
            except (FileNotFoundError, ValueError):
                pid = 0
        if pid and not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(a.interval)
    if a.until_ok and all(v is not None for v in found.values()):
        # Then run a command until it exits 0 (accel sync --check).
        found["ok"] = found["ok_run"] = None
        tries = 0
        while time.time() < deadline:
            tries += 1
            s = time.time()
            r = subprocess.run(a.until_ok, capture_output=True, text=True)
            e = time.time()
            if r.returncode == 0:
                found["ok"], found["ok_run"] = e, e - s
                break
            found["ok_last"] = (r.stdout + r.stderr).strip()[:300]
            time.sleep(0.1)
        found["ok_tries"] = tries
    print(json.dumps(found))


# ---------------------------------------------------------------- parsing
def read_listener(path, t_from, t_to):
    """Listener lines within [t_from, t_to]: returns (route events {(prefix,
    kind): [t...]} for BGP routes of the main table, number of route + nexthop
    messages of any kind, overruns)."""
    ev = {}
    n = 0
    overruns = 0
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 2:
                continue
            try:
                t = float(p[0])
            except ValueError:
                continue
            if t < t_from or t > t_to:
                continue
            k = p[1]
            if k == "OVERRUN":
                overruns += 1
                continue
            n += 1
            if k in ("A", "D") and len(p) >= 5 and p[3] == BGP_PROTO and p[4] == MAIN_TABLE:
                ev.setdefault((p[2], "add" if k == "A" else "del"), []).append(t)
    return ev, n, overruns


def read_trace(path, t_from, t_to):
    """accel's ACCEL_TRACE_ROUTES lines '<sec.nsec> <add|del> <prefix> ...'
    within [t_from, t_to): {(prefix, kind): [t...]}, number of malformed lines."""
    ev = {}
    bad = 0
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 3 or p[1] not in ("add", "del"):
                bad += 1
                continue
            try:
                t = float(p[0])
            except ValueError:
                bad += 1
                continue
            if t_from <= t < t_to:
                ev.setdefault((p[2], p[1]), []).append(t)
    return ev, bad


def canon(prefix):
    try:
        return str(ipaddress.ip_network(prefix, strict=False))
    except ValueError:
        return prefix


def lag_pairs(lev, tev, kind):
    """Per kernel event of KIND (listener), the time the kernel sent it and
    the time accel applied the same change (trace): events of one prefix are
    paired in order. Returns ([(t_kernel, t_applied)], unmatched kernel
    events, trace events with no kernel event)."""
    # Normalise the trace's prefixes only when they do not match as written.
    missing = [k for k in tev if k not in lev]
    if missing:
        for k in missing:
            c = (canon(k[0]), k[1])
            if c != k:
                tev.setdefault(c, []).extend(tev.pop(k))
        lmiss = [k for k in lev if k not in tev]
        for k in lmiss:
            c = (canon(k[0]), k[1])
            if c != k:
                lev.setdefault(c, []).extend(lev.pop(k))
    out = []
    unmatched = 0
    for key, ts in lev.items():
        if key[1] != kind:
            continue
        ta = sorted(tev.get(key, ()))
        ts = sorted(ts)
        for i, t in enumerate(ts):
            if i < len(ta):
                out.append((t, ta[i]))
            else:
                unmatched += 1
    extra = sum(max(0, len(v) - len(lev.get(k, ()))) for k, v in tev.items() if k[1] == kind)
    return out, unmatched, extra


def lags(lev, tev, kind):
    """As lag_pairs, with the sorted lags in s instead of the pairs."""
    pairs, unmatched, extra = lag_pairs(lev, tev, kind)
    return sorted(b - a for a, b in pairs), unmatched, extra


def read_stalls(path):
    """stall-probe lines '<sec.usec at the wake-up> cpuN <ms late>': the
    stalls as sorted [(start, end)] in s, whichever CPU; None without a
    file."""
    if not path or not os.path.exists(path):
        return None
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            try:
                end, gap = float(p[0]), float(p[2]) / 1e3
            except (IndexError, ValueError):
                continue
            out.append((end - gap, end))
    out.sort()
    return out


class Stalls:
    """The CPU stalls of a run, searchable by time. Which CPU accel's threads
    were on is not known, so a lag less the longest stall of either CPU
    within it is a lower bound of the lag accel could have avoided."""

    def __init__(self, stalls):
        self.s = stalls
        self.starts = [a for a, _ in stalls]
        self.longest = max((b - a for a, b in stalls), default=0.0)

    def within(self, a, b):
        """The longest part of one stall inside [a, b], in s."""
        i = bisect.bisect_left(self.starts, a - self.longest)
        best = 0.0
        while i < len(self.s) and self.s[i][0] < b:
            s, e = self.s[i]
            best = max(best, min(e, b) - max(s, a))
            i += 1
        return best

    def between(self, a, b):
        """The stalls that began within [a, b]: their count and the longest."""
        lo, hi = bisect.bisect_left(self.starts, a), bisect.bisect_right(self.starts, b)
        return hi - lo, max((e - s for s, e in self.s[lo:hi]), default=0.0)


def beyond_stalls(pairs, stalls):
    """Sorted lags less the longest CPU stall inside each (never below 0)."""
    return sorted(max(0.0, (b - a) - stalls.within(a, b)) for a, b in pairs)


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = max(0, min(len(sorted_vals) - 1, int(-(-q * len(sorted_vals) // 100)) - 1))
    return sorted_vals[i]


# ---------------------------------------------------------------- report
def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x, nd=2, unit=""):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def spread(v, nd=2):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.{nd}f}"
    return f"{statistics.median(v):.{nd}f} ({min(v):.{nd}f}-{max(v):.{nd}f})"


def spread_pct(v):
    v = [x for x in (v or []) if x is not None]
    if not v:
        return "-"
    m = f"{statistics.median(v):+.1f}%"
    return m if len(v) == 1 else f"{m} ({min(v):+.1f}..{max(v):+.1f})"


def load_records(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    return recs


class LagData:
    """What the listener's and accel's per-event records say, over every
    run: route events per phase, the lag per prefix, and the same less the
    CPU stalls within it."""

    def __init__(self, phases, stalls):
        self.lag = {"install": ([], 0, 0, 0), "withdraw": ([], 0, 0, 0)}
        self.beyond = {"install": [], "withdraw": []}
        self.events = {}
        self.overruns = 0
        self.trace_bad = {}
        self.per_run = []
        runs = {}
        for r in phases:
            runs.setdefault((int(r["round"]), r["mode"]), []).append(r)
        for (rnd, mode), rs in sorted(runs.items()):
            rs.sort(key=lambda r: r["t0"])
            for i, r in enumerate(rs):
                t_next = rs[i + 1]["t0"] if i + 1 < len(rs) else None
                self.add_phase(rnd, mode, r, t_next, stalls)

    def add_phase(self, rnd, mode, r, t_next, stalls):
        lf = r.get("listener")
        if not lf or not os.path.exists(lf):
            return
        lev, n, ov = read_listener(lf, r["t0"], r["t_end"])
        self.events[(rnd, mode, r["phase"])] = n
        self.overruns += ov
        tf = r.get("trace")
        if mode != "accel" or not tf or not os.path.exists(tf):
            return
        t_to = t_next if t_next is not None else float(r.get("t_stop", r["t_end"] + 3600))
        tev, bad = read_trace(tf, r["t0"], t_to)
        self.trace_bad[tf] = bad
        kind = "add" if r["phase"] == "install" else "del"
        pairs, um, ex = lag_pairs(lev, tev, kind)
        ls = sorted(b - a for a, b in pairs)
        extra = None
        if stalls is not None:
            extra = (beyond_stalls(pairs, stalls), stalls.between(r["t0"], r["t_end"]))
            self.beyond[r["phase"]] += extra[0]
        self.per_run.append((rnd, r["phase"], ls, um, extra))
        acc = self.lag[r["phase"]]
        self.lag[r["phase"]] = (acc[0] + ls, acc[1] + um, acc[2] + ex, acc[3] + 1)

    def events_of(self, rnd, mode, ph):
        n = self.events.get((rnd, mode, ph))
        if n is None and mode.startswith("accel"):  # no listener in this run: the listener run's count
            n = self.events.get((rnd, "listener", ph), self.events.get((rnd, "accel", ph)))
        return n


def per_event(r, n):
    """accel's CPU per route event in us: all of its CPU over the phase,
    and the same less what it spends idle (lease renewals) over as long."""
    c = r.get("cpu", {}).get("accel")
    if not n or c is None:
        return None, None
    idle = (r.get("idle_cpu_per_s") or {}).get("accel")
    busy = None if idle is None else max(0.0, c - idle * (r["t_end"] - r["t0"])) / 1e3 / n
    return c / 1e3 / n, busy


def raw_table(w, by, rounds, modes, data):
    """The figures of every phase; returns each mode's slowdowns against
    FRR alone, by (mode, phase)."""
    w("### Raw figures per round")
    w("")
    w("| round | mode | phase | seconds | vs none | zebra CPU s | bgpd CPU s | bird CPU s | listener CPU s | accel CPU s | route+nh events | accel us/event | idle-corrected | status |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    slow = {}
    for rnd in rounds:
        for mode in modes:
            for ph in ("install", "withdraw"):
                r = by.get((rnd, mode, ph))
                if not r:
                    continue
                base = by.get((rnd, "none", ph))
                rel = None
                if base and base.get("seconds") and r.get("seconds"):
                    rel = 100.0 * (r["seconds"] / base["seconds"] - 1)
                    slow.setdefault((mode, ph), []).append(rel)
                cpu = r.get("cpu", {})
                c = lambda k: None if cpu.get(k) is None else cpu[k] / 1e9
                n = data.events_of(rnd, mode, ph)
                per, per_busy = per_event(r, n) if mode.startswith("accel") else (None, None)
                w(f"| {rnd} | {mode} | {ph} | {fmt(r.get('seconds'), 2)} | {spread_pct([rel]) if mode != 'none' else '-'} | "
                  f"{fmt(c('zebra'))} | {fmt(c('bgpd'))} | {fmt(c('bird'))} | {fmt(c('listener'), 3)} | {fmt(c('accel'), 3)} | "
                  f"{n if n is not None else '-'} | {fmt(per, 2)} | {fmt(per_busy, 2)} | {r.get('status')} |")
    w("")
    return slow


def summary_table(w, by, rounds, modes, slow, data):
    w("### Summary (median over rounds, min-max in brackets)")
    w("")
    w("| mode | install s | install vs none | withdraw s | withdraw vs none | zebra CPU s (inst / wd) | bgpd CPU s (inst / wd) | accel CPU us per route event (inst / wd) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")

    def cpu_s(mode, ph, who):
        return fmt(med([by[(rnd, mode, ph)]["cpu"].get(who) / 1e9 if by[(rnd, mode, ph)]["cpu"].get(who) is not None else None
                        for rnd in rounds if (rnd, mode, ph) in by]))

    for mode in modes:
        cells = [mode]
        for ph in ("install", "withdraw"):
            secs = [by[(rnd, mode, ph)].get("seconds") for rnd in rounds if (rnd, mode, ph) in by]
            cells.append(spread(secs))
            cells.append(spread_pct(slow.get((mode, ph))) if mode != "none" else "-")
        zc, bc, pe = [], [], []
        for ph in ("install", "withdraw"):
            zc.append(cpu_s(mode, ph, "zebra"))
            bc.append(cpu_s(mode, ph, "bgpd"))
            if mode.startswith("accel"):
                pe.append(spread([per_event(by[(rnd, mode, ph)], data.events_of(rnd, mode, ph))[0]
                                  for rnd in rounds if (rnd, mode, ph) in by]))
        cells += [" / ".join(zc), " / ".join(bc), " / ".join(pe) if pe else "-"]
        w("| " + " | ".join(cells) + " |")
    w("")
    w("'vs none': per round, the mode's time over the same round's FRR-alone time, minus 1.")
    w("accel CPU per route event: accel's CPU time (all threads) from the birdc command to SETTLE s after the kernel")
    w("held the target count, over the route and nexthop messages the listener received meanwhile; idle-corrected:")
    w("less accel's idle CPU rate (measured for 1 s just before the phase) over the same time.")
    w("")


def listener_points(by, rounds, mode, ph):
    """Per round, MODE's slowdown over FRR alone minus the listener's, in
    points (issue 9: accel may cost FRR no more than a bare listener)."""
    out = []
    for rnd in rounds:
        base, lis, m = (by.get((rnd, x, ph)) for x in ("none", "listener", mode))
        if base and lis and m and base.get("seconds") and lis.get("seconds") and m.get("seconds"):
            out.append(100.0 * (m["seconds"] - lis["seconds"]) / base["seconds"])
    return out


def listener_section(w, by, rounds, modes):
    """accel's cost to FRR against the listener's, where a run has both."""
    rows = []
    for mode in (m for m in modes if m.startswith("accel")):
        cells = [listener_points(by, rounds, mode, ph) for ph in ("install", "withdraw")]
        if any(cells):
            rows.append((mode, cells))
    if not rows:
        return
    w("### Against the bare listener (issue 9: accel costs FRR no more than a listener, +5 points)")
    w("")
    w("| mode | install: points over the listener | withdraw: points over the listener | rounds within +5 (inst / wd) |")
    w("|---|---:|---:|---:|")
    for mode, cells in rows:
        within = " / ".join(f"{sum(1 for x in c if x <= 5.0)} of {len(c)}" for c in cells)
        w(f"| {mode} | {spread_pct(cells[0]).replace('%', '')} | {spread_pct(cells[1]).replace('%', '')} | {within} |")
    w("")
    w("Per round: (the mode's time - the listener's time) / FRR alone's time, in points of FRR alone;")
    w("median (min..max). The rounds' own spread (FRR alone from round to round) is the noise to read it against.")
    w("")


def lag_section(w, data, stalls):
    if not any(v[3] for v in data.lag.values()):
        w("### Lag: not measured (no accel trace: this accel does not write ACCEL_TRACE_ROUTES, or no mode accel)")
        return
    w("### Lag: kernel event (listener receive time) to accel applying it (ACCEL_TRACE_ROUTES), per prefix")
    w("")
    w("| phase | runs | kernel events | matched | unmatched | p50 ms | p90 ms | p99 ms | max ms |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for ph, name in (("withdraw", "withdrawal"), ("install", "re-announcement")):
        ls, um, ex, nruns = data.lag[ph]
        ls = sorted(ls)  # the runs' sorted lists, one after the other
        ms = lambda q: fmt(None if not ls else pct(ls, q) * 1e3, 2)
        w(f"| {name} | {nruns} | {len(ls) + um} | {len(ls)} | {um} | {ms(50)} | {ms(90)} | {ms(99)} | "
          f"{fmt(None if not ls else ls[-1] * 1e3, 2)} |")
    w("")
    if stalls is not None:
        w("The same less the longest CPU stall within each route's lag (stall-probe.c: a SCHED_FIFO probe pinned")
        w("to each CPU that could not run for over 2 ms; no process on that CPU could, accel included). Which CPU")
        w("accel was on is not recorded, so this is a lower bound of the lag accel could have avoided:")
        w("")
        w("| phase | p50 ms | p90 ms | p99 ms | max ms |")
        w("|---|---:|---:|---:|---:|")
        for ph, name in (("withdraw", "withdrawal"), ("install", "re-announcement")):
            bs = sorted(data.beyond[ph])
            ms = lambda q: fmt(None if not bs else pct(bs, q) * 1e3, 2)
            w(f"| {name} | {ms(50)} | {ms(90)} | {ms(99)} | {fmt(bs[-1] * 1e3 if bs else None, 2)} |")
        w("")
    for rnd, ph, ls, um, extra in data.per_run:
        line = (f"- round {rnd}, {ph}: {len(ls)} matched, {um} unmatched; p50 {fmt(pct(ls, 50) * 1e3 if ls else None)} ms, "
                f"p99 {fmt(pct(ls, 99) * 1e3 if ls else None)} ms, max {fmt(ls[-1] * 1e3 if ls else None)} ms")
        if extra is not None:
            bs, (n, longest) = extra
            line += (f"; less the CPU stalls p99 {fmt(pct(bs, 99) * 1e3 if bs else None)} ms, "
                     f"max {fmt(bs[-1] * 1e3 if bs else None)} ms; {n} CPU stalls over 2 ms in the phase, "
                     f"the longest {longest * 1e3:.1f} ms")
        w(line)
    w("")
    if sum(data.trace_bad.values()):
        w(f"({sum(data.trace_bad.values())} trace lines not of the form '<sec.nsec> <add|del> <prefix>' were skipped)")


def restart_section(w, restarts):
    w("### accel restart with the table installed")
    w("")
    w("| measure (from the start of the new process) | starts | median s | max s |")
    w("|---|---:|---:|---:|")
    for key, label in (("ready", "ready (`accel running on`)"), ("live", "mirror live (`mirror live`)"),
                       ("check", "first `accel sync --check` exit 0"), ("stop", "stop (SIGTERM to exit)"),
                       ("check_run", "one `accel sync --check` run (the last)")):
        v = [r.get(key) for r in restarts if r.get(key) is not None]
        w(f"| {label} | {len(v)} | {fmt(med(v), 3)} | {fmt(max(v) if v else None, 3)} |")
    w("")
    for r in restarts:
        w(f"- start {r.get('n')}: " + ", ".join(f"{k} {fmt(r.get(k), 3)} s" for k in ("ready", "live", "check", "check_run", "stop"))
          + (f"; sync --check tries {r['tries']}" if r.get("tries") is not None else "")
          + (f"; {r['note']}" if r.get("note") else ""))


def cmd_report(a):
    recs = load_records(a.records)
    phases = [r for r in recs if r.get("type") == "phase" and r.get("round", "").isdigit()]
    restarts = [r for r in recs if r.get("type") == "restart"]
    modes = [m for m in ("none", "listener", "accel", "accel-alone") if any(r["mode"] == m for r in phases)]
    rounds = sorted({int(r["round"]) for r in phases})
    by = {(int(r["round"]), r["mode"], r["phase"]): r for r in phases}
    found = read_stalls(getattr(a, "stalls", None))
    stalls = None if found is None else Stalls(found)
    data = LagData(phases, stalls)

    out = []
    w = out.append
    slow = raw_table(w, by, rounds, modes, data)
    summary_table(w, by, rounds, modes, slow, data)
    listener_section(w, by, rounds, modes)
    lag_section(w, data, stalls)
    w("")
    w(f"Listener receive-buffer overruns during the phases: {data.overruns}")
    w("")
    if restarts:
        restart_section(w, restarts)
    print("\n".join(out))


# ---------------------------------------------------------------- selftest
def cmd_selftest(a):
    import tempfile
    d = tempfile.mkdtemp()
    rng = random.Random(7)
    lf, tf = os.path.join(d, "l"), os.path.join(d, "t")
    t0 = 1_700_000_000.0
    prefixes = [f"10.{i // 256}.{i % 256}.0/24" for i in range(1000)] + [f"2001:db8:{i:x}::/48" for i in range(200)]
    want_add, want_del = [], []
    with open(lf, "w") as L, open(tf, "w") as T:
        T.write("garbage line\n")
        for i, p in enumerate(prefixes):          # install: kernel at t0 + i ms, accel 0.5-3 ms later
            tk = t0 + i * 1e-3
            lag = 0.5e-3 + rng.random() * 2.5e-3
            want_add.append(lag)
            L.write(f"{tk:.9f} A {p} 186 254\n")
            L.write(f"{tk:.9f} NA {i}\n")
            # accel writes IPv6 in its own (uncompressed) spelling to test normalisation
            tp = p if ":" not in p else p.replace("2001:db8:", "2001:0db8:")
            T.write(f"{tk + lag:.9f} add {tp}\n")
        L.write(f"{t0 + 0.5:.9f} A 192.0.2.0/24 2 254\n")  # kernel route: not BGP, ignored
        t1 = t0 + 10
        for i, p in enumerate(prefixes):
            tk = t1 + i * 1e-3
            lag = 1e-3 if i != 5 else 0.040           # one slow withdrawal: 40 ms
            if i == 7:
                L.write(f"{tk:.9f} D {p} 186 254\n")  # accel never applies this one
                continue
            want_del.append(lag)
            L.write(f"{tk:.9f} D {p} 186 254\n")
            T.write(f"{tk + lag:.9f} del {p} extra-field\n")
        L.write(f"{t1 + 2:.9f} OVERRUN\n")
    ev, n, ov = read_listener(lf, t0, t0 + 5)
    assert n == 2 * len(prefixes) + 1, n
    assert ov == 0
    tev, bad = read_trace(tf, t0, t1)
    assert bad == 1, bad
    ls, um, ex = lags(ev, tev, "add")
    assert um == 0 and ex == 0 and len(ls) == len(prefixes), (um, ex, len(ls))
    assert abs(max(ls) - max(want_add)) < 1e-6 and abs(pct(ls, 50) - sorted(want_add)[len(want_add) // 2 - 1]) < 1e-3
    ev, n, ov = read_listener(lf, t1, t1 + 5)
    assert ov == 1
    tev, _ = read_trace(tf, t1, t1 + 100)
    ls, um, ex = lags(ev, tev, "del")
    assert um == 1 and len(ls) == len(prefixes) - 1, (um, len(ls))
    assert abs(ls[-1] - 0.040) < 1e-6 and abs(pct(ls, 50) - 1e-3) < 1e-6
    # A record set through the report.
    rec = os.path.join(d, "rec")
    with open(rec, "w") as f:
        for mode, sec in (("none", 2.0), ("listener", 2.04), ("accel", 2.06)):
            for ph, t in (("install", t0), ("withdraw", t1)):
                f.write(json.dumps({"type": "phase", "round": "1", "mode": mode, "phase": ph, "status": "ok",
                                    "t0": t, "t_end": t + 5, "seconds": sec,
                                    "cpu": {"zebra": 1e9, "bgpd": 5e8, "accel": 2.4e6 if mode == "accel" else None},
                                    "listener": lf if mode != "none" else "",
                                    "trace": tf if mode == "accel" else ""}) + "\n")
        f.write(json.dumps({"type": "restart", "n": 1, "ready": 0.8, "live": 1.1, "check": 3.0, "stop": 0.2}) + "\n")
    # A CPU stall of 38 ms inside the slow withdrawal (5 ms after t1, 40 ms),
    # and one elsewhere: the withdrawal's lag less the stalls is 2 ms at most.
    sf = os.path.join(d, "stalls")
    with open(sf, "w") as f:
        f.write(f"{t1 + 0.005 + 0.039:.6f} cpu1 38.000\n{t1 + 3:.6f} cpu0 5.000\nnot a line\n")
    st = Stalls(read_stalls(sf))
    assert abs(st.within(t1 + 0.005, t1 + 0.045) - 0.038) < 1e-6 and st.within(t1 + 1, t1 + 2) == 0.0
    assert st.between(t1, t1 + 5)[0] == 2 and abs(st.between(t1, t1 + 5)[1] - 0.038) < 1e-6
    a2 = argparse.Namespace(records=rec, stalls=sf)
    import io
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cmd_report(a2)
    txt = buf.getvalue()
    assert "| accel | 2.06 | +3.0% |" in txt, txt
    assert "| accel | +1.0 | +1.0 | 1 of 1 / 1 of 1 |" in txt, txt
    assert "| withdrawal | 1 | 1200 | 1199 | 1 | 1.00 | 1.00 | 1.00 | 40.00 |" in txt, txt
    assert "| withdrawal | 1.00 | 1.00 | 1.00 | 2.00 |" in txt, txt
    assert "2 CPU stalls over 2 ms in the phase, the longest 38.0 ms" in txt, txt
    assert "| 1 | accel | install | 2.06 | +3.0% |" in txt and "| 2401 | 1.00 | - |" in txt, txt
    # With a proxy, the exact count is read once the routes stopped, and
    # the phase ends when the proxy last came closer to its target than ever.
    clock = {"t": 1000.0}
    state, exact_reads = {"n": 0, "other": 0}, []

    def fake_exact():
        exact_reads.append(state["n"])
        return state["n"]

    def tracker(busy=None):
        exact_reads.clear()
        return Tracker("v4", fake_exact, clock["t"], 0, 100_000, proxy=lambda: state["n"] + state["other"] + 500,
                       proxy_base=500, busy=busy, clock=lambda: clock["t"])

    def run(tr, until, step=0.05, add=0, flicker=False):
        while clock["t"] < until and tr.done is None:
            clock["t"] += step
            state["n"] = min(100_000, state["n"] + add)
            if flicker:
                state["other"] ^= 1  # one route elsewhere, on and off
            tr.poll()

    state["n"] = 0
    tr = tracker()
    run(tr, 1005.0, add=1000)  # all in at 1005.0
    assert state["n"] == 100_000 and not exact_reads, exact_reads
    last_in = tr.proxy_closer
    run(tr, 1010.0)
    assert tr.done == last_in and exact_reads == [100_000], (tr.done, last_in, exact_reads)
    # Routes elsewhere keep the proxy moving: the read waits NEAR_WAIT at most,
    # and the end is still when it last came closer than ever.
    state.update(n=0, other=0)
    clock["t"] = 2000.0
    tr = tracker()
    run(tr, 2005.0, add=1000, flicker=True)
    last_in = tr.proxy_closer
    run(tr, 2010.0, flicker=True)
    assert tr.done is not None and abs(tr.done - last_in) <= 0.05 and exact_reads == [100_000], (tr.done, last_in, exact_reads)
    # A proxy off by more than NEAR, flickering: one read at LONG, not a hang.
    state.update(n=100_000, other=0)
    clock["t"] = 3000.0
    tr = tracker()
    tr.proxy_target += 3 * Tracker.NEAR
    run(tr, 3100.0, flicker=True)
    assert tr.done is not None and tr.done <= 3000.0 + Tracker.LONG + 0.1 and exact_reads == [100_000], (tr.done, exact_reads)
    # The phase loop on this namespace's own (idle) tables: a target that is
    # already there is reached at once; one that never comes stalls.
    for d4, stall, want in (("0", "1", "ok"), ("5", "1", "stalled")):
        out = subprocess.run([sys.executable, __file__, "phase", "--delta4", d4, "--delta6", "0", "--settle", "0",
                              "--stall", stall, "--timeout", "10", "--record", rec, "--", "true"],
                             capture_output=True, text=True)
        got = json.loads(out.stdout)["status"]
        assert got == want, (d4, got, out.stdout, out.stderr)
    print(txt)
    print("selftest: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("table")
    s.add_argument("--gz")
    s.add_argument("--gen", required=True)
    s.add_argument("--limit", type=int, default=0)
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_table)
    s = sub.add_parser("count")
    s.set_defaults(fn=cmd_count)
    s = sub.add_parser("cpu")
    s.add_argument("pids", nargs="+")
    s.set_defaults(fn=cmd_cpu)
    s = sub.add_parser("phase")
    s.add_argument("--delta4", type=int, required=True, help="routes the phase adds (negative: removes)")
    s.add_argument("--delta6", type=int, required=True)
    s.add_argument("--absolute", action="store_true", help="--delta4/--delta6 are the target counts")
    s.add_argument("--pids", default="", help="name=pid,... whose CPU time is measured")
    s.add_argument("--settle", type=float, default=2.0)
    s.add_argument("--timeout", type=float, default=900)
    s.add_argument("--stall", type=float, default=0, help="stop when no count moved for this long")
    s.add_argument("--poll-min", type=float, default=0.05)
    s.add_argument("--poll-factor", type=float, default=8.0,
                   help="poll a family at most once per FACTOR x the cost of one read of its count")
    s.add_argument("--idle", type=float, default=0,
                   help="first measure the processes' idle CPU over this many seconds")
    s.add_argument("--record", required=True)
    s.add_argument("--meta", action="append", default=[])
    s.add_argument("trigger", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_phase)
    s = sub.add_parser("waitlog")
    s.add_argument("--log", required=True)
    s.add_argument("--offset", type=int, default=0)
    s.add_argument("--pattern", action="append", default=[])
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--interval", type=float, default=0.005)
    s.add_argument("--pid", type=int, help="stop waiting when this process is gone")
    s.add_argument("--pid-file", help="the same, the pid read from this file once it appears")
    s.add_argument("--ready-file", help="created once the watch has started")
    s.add_argument("until_ok", nargs=argparse.REMAINDER,
                   help="-- CMD...: once every pattern was seen, run CMD until it exits 0")
    s.set_defaults(fn=cmd_waitlog)
    s = sub.add_parser("report")
    s.add_argument("--records", required=True)
    s.add_argument("--stalls", help="stall-probe output: the lag is also given less the CPU stalls within it")
    s.set_defaults(fn=cmd_report)
    s = sub.add_parser("selftest")
    s.set_defaults(fn=cmd_selftest)
    a = ap.parse_args()
    for k in ("trigger", "until_ok"):
        v = getattr(a, k, None)
        if v and v[0] == "--":
            setattr(a, k, v[1:])
    a.fn(a)


if __name__ == "__main__":
    main()
