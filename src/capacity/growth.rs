//! Growing a full structure online.
//!
//! The maps' sizes are fixed when the BPF object is loaded. When a
//! structure has had no room for some routes or entries for a while (they
//! are forwarded through bpf_fib_lookup meanwhile, see [`super`]), `accel
//! run` upgrades in place to itself with that structure doubled (the route
//! structures to what the routes need if that is more): the
//! successor builds maps of the new sizes with a full resync and swaps its
//! program into each link atomically, as on SIGUSR2 (handover.rs), so that
//! the datapath forwards from a complete mirror throughout. The sizes
//! reach the successor through `ACCEL_CAPACITY`, and from it every later
//! upgrade; a restart starts from the defaults again.
//!
//! This module only decides: when, and to what sizes.

use std::time::{Duration, Instant};

use super::{Figures, Limits, Structure};

/// After a growth that did not happen (refused, or the successor failed),
/// the next try waits this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// Whether a structure grows, and its current and largest size.
fn bounds(l: &Limits, s: Structure) -> Option<(u32, u32)> {
    // Leaf-encoded numbers must fit a leaf's 24-bit id.
    const LEAF: u32 = 1 << 24;
    // Hash maps sized by entry count: far beyond any router's need.
    const HASH: u32 = 1 << 22;
    Some(match s {
        Structure::Ipv4Trie => (l.ipv4_trie, LEAF),
        Structure::Ipv6Trie => (l.ipv6_trie, LEAF),
        Structure::Nexthops => (l.nexthops, LEAF),
        Structure::NhGroups => (l.nh_groups, LEAF),
        Structure::Neigh4 | Structure::Neigh6 => (l.neighbours, HASH),
        Structure::Blackholes => (l.blackholes, HASH),
        // Few by nature; their lack of room is a configuration's oddity.
        Structure::Local4 | Structure::SrcRules4 | Structure::SrcRules6 => return None,
    })
}

fn set(l: &mut Limits, s: Structure, v: u32) {
    match s {
        Structure::Ipv4Trie => l.ipv4_trie = v,
        Structure::Ipv6Trie => l.ipv6_trie = v,
        Structure::Nexthops => l.nexthops = v,
        Structure::NhGroups => l.nh_groups = v,
        Structure::Neigh4 | Structure::Neigh6 => l.neighbours = v,
        Structure::Blackholes => l.blackholes = v,
        Structure::Local4 | Structure::SrcRules4 | Structure::SrcRules6 => {}
    }
}

/// `limits` with every degraded structure that can grow doubled (up to its
/// largest size); `None` when nothing is degraded or nothing can grow.
pub fn grown(limits: &Limits, figures: &Figures) -> Option<Limits> {
    let mut out = *limits;
    for (s, _) in figures.iter().filter(|(_, u)| u.is_degraded()) {
        if let Some((now, max)) = bounds(limits, s) {
            set(&mut out, s, now.saturating_mul(2).min(max));
        }
    }
    (out != *limits).then_some(out)
}

/// `to` with the route structures raised to what the mirrored routes need
/// (`ipv4_trie`, `ipv6_trie`: counted over every rule), plus an eighth
/// for the table's growth: when a doubling is not enough, one upgrade
/// instead of one per doubling. Never lowered, never beyond a leaf's id.
pub fn covering(mut to: Limits, ipv4_trie: usize, ipv6_trie: usize) -> Limits {
    // Whole chunks of 16 lines (trie/lines.rs).
    let with_room = |n: usize| ((n as u64 + n as u64 / 8).next_multiple_of(16)).min(1 << 24) as u32;
    to.ipv4_trie = to.ipv4_trie.max(with_room(ipv4_trie));
    to.ipv6_trie = to.ipv6_trie.max(with_room(ipv6_trie));
    to
}

/// When to grow: a structure short of room for `after` without a break,
/// and not again soon after a try that did not happen.
#[derive(Debug)]
pub struct Growth {
    after: Option<Duration>,
    short_since: Option<Instant>,
    not_before: Option<Instant>,
}

impl Growth {
    /// `after`: how long a shortage lasts before growing; `None`: never.
    pub fn new(after: Option<Duration>) -> Growth {
        Growth {
            after,
            short_since: None,
            not_before: None,
        }
    }

    /// The limits to grow to, once a shortage has lasted long enough.
    pub fn due(&mut self, limits: &Limits, figures: &Figures, now: Instant) -> Option<Limits> {
        let after = self.after?;
        let Some(to) = grown(limits, figures) else {
            self.short_since = None;
            return None;
        };
        let since = *self.short_since.get_or_insert(now);
        let ready = self.not_before.is_none_or(|t| now >= t);
        (ready && now.duration_since(since) >= after).then_some(to)
    }

    /// A growth was tried and did not happen: wait before the next.
    pub fn failed(&mut self, now: Instant) {
        self.not_before = Some(now + RETRY_AFTER);
    }
}

/// Whether the machine has room for a successor beside this instance: it
/// will need about as much memory as this one (maps and mirror), which
/// stays until the successor takes over. Twice that, so that the growth
/// never takes the router's last memory. Sizes in KiB, from
/// /proc/meminfo's MemAvailable and this process's VmRSS.
pub fn room_for_successor(available_kib: u64, own_rss_kib: u64) -> bool {
    available_kib >= own_rss_kib.saturating_mul(2)
}

/// MemAvailable and this process's VmRSS, in KiB.
pub fn memory_kib() -> std::io::Result<(u64, u64)> {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
            .ok_or_else(|| std::io::Error::other(format!("no {name} line")))
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    Ok((field(&meminfo, "MemAvailable:")?, field(&status, "VmRSS:")?))
}

#[cfg(test)]
mod tests {
    use super::super::Usage;
    use super::*;

    fn short(s: Structure, cap: usize) -> Figures {
        let mut f = Figures::default();
        f.set(s, Usage::new(cap, cap).degraded(10, 2));
        f.set(Structure::Nexthops, Usage::new(100, 3));
        f
    }

    #[test]
    fn doubles_what_is_short_of_room_and_nothing_else() {
        let l = Limits::parse("ipv6_trie=100").unwrap();
        let g = grown(&l, &short(Structure::Ipv6Trie, 100)).unwrap();
        assert_eq!(g.ipv6_trie, 200);
        assert_eq!(
            Limits {
                ipv6_trie: 100,
                ..g
            },
            l
        );
        // Both neighbour tables share one size.
        let g = grown(&l, &short(Structure::Neigh6, l.neighbours as usize)).unwrap();
        assert_eq!(g.neighbours, 2 * l.neighbours);
        // Nothing short, or nothing that grows: no growth.
        assert_eq!(grown(&l, &Figures::default()), None);
        assert_eq!(grown(&l, &short(Structure::SrcRules4, 1024)), None);
        // At the leaf's limit already.
        let top = Limits::parse("ipv4_trie=16777216").unwrap();
        assert_eq!(grown(&top, &short(Structure::Ipv4Trie, 1 << 24)), None);
    }

    #[test]
    fn covers_what_the_routes_need_when_doubling_falls_short() {
        let l = Limits::parse("ipv6_trie=100").unwrap();
        let doubled = grown(&l, &short(Structure::Ipv6Trie, 100)).unwrap();
        // Doubling suffices: unchanged.
        assert_eq!(covering(doubled, 10, 150), doubled);
        // It does not: what the routes need and an eighth, in chunks.
        let c = covering(doubled, 10, 800);
        assert_eq!(c.ipv6_trie, 912, "in whole chunks of 16 lines");
        assert_eq!(c.ipv4_trie, doubled.ipv4_trie);
        // Capped at what a leaf can address.
        assert_eq!(covering(doubled, 1 << 24, 0).ipv4_trie, 1 << 24);
    }

    #[test]
    fn waits_for_a_lasting_shortage_and_backs_off_after_a_failure() {
        let l = Limits::parse("ipv6_trie=100").unwrap();
        let f = short(Structure::Ipv6Trie, 100);
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut g = Growth::new(Some(30 * s));
        assert_eq!(g.due(&l, &f, t0), None);
        assert_eq!(g.due(&l, &f, t0 + 29 * s), None);
        // A moment with room again restarts the wait.
        assert_eq!(g.due(&l, &Figures::default(), t0 + 29 * s), None);
        assert_eq!(g.due(&l, &f, t0 + 40 * s), None);
        let to = g.due(&l, &f, t0 + 70 * s).expect("short for 30 s");
        assert_eq!(to.ipv6_trie, 200);
        g.failed(t0 + 70 * s);
        assert_eq!(g.due(&l, &f, t0 + 71 * s), None);
        assert!(g.due(&l, &f, t0 + 70 * s + RETRY_AFTER).is_some());
        // Off: never.
        assert_eq!(Growth::new(None).due(&l, &f, t0 + 3600 * s), None);
    }

    #[test]
    fn a_successor_needs_twice_this_instance_free() {
        assert!(room_for_successor(2_000_000, 1_000_000));
        assert!(!room_for_successor(1_999_999, 1_000_000));
        let (avail, rss) = memory_kib().expect("/proc readable");
        assert!(avail > 0 && rss > 0);
    }
}
