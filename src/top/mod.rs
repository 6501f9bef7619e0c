//! `accel top`: per interface the packets and bits a second forwarded,
//! passed and dropped with the top reasons, the busiest next hops and
//! blackhole prefixes, and a health line; refreshed in place until `q` or
//! Ctrl-C, or printed once (`--once`). Fits 80x24: every line is cut to
//! the terminal's width and the lists to its height.

use std::time::Duration;

use crate::metrics::Sample;
use crate::status::Status;

pub mod term;

/// Two samples of the datapath and what the daemon said.
pub struct Frame<'a> {
    pub before: &'a Sample,
    pub after: &'a Sample,
    pub over: Duration,
    pub status: Option<&'a Status>,
}

/// 1234 -> "1.2k", 1234567 -> "1.2M".
pub fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

impl Frame<'_> {
    fn rate(&self, after: u64, before: u64) -> f64 {
        after.saturating_sub(before) as f64 / self.over.as_secs_f64().max(1e-3)
    }

    fn header(&self) -> String {
        match self.status {
            Some(s) => format!(
                "accel {} | {} | lease {} | {} IPv4 + {} IPv6 routes | {} alert(s)",
                s.version,
                s.mode,
                if s.lease_live { "live" } else { "LAPSED" },
                human(s.mirror.routes_v4 as f64),
                human(s.mirror.routes_v6 as f64),
                s.alerts.len()
            ),
            None => "accel | the daemon does not answer: datapath counters only".into(),
        }
    }

    /// One line per interface, with its top pass/drop reasons.
    fn interfaces(&self, out: &mut Vec<String>) {
        out.push(format!(
            "{:<10} {:>7} {:>8} {:>7} {:>7}  top pass/drop reasons (pps)",
            "INTERFACE", "FWD pps", "FWD bps", "PASS", "DROP"
        ));
        for a in &self.after.ifaces {
            let b = self.before.ifaces.iter().find(|b| b.ifindex == a.ifindex);
            let prev = |f: fn(&crate::stats::IfaceStats) -> u64| b.map_or(0, f);
            let mut reasons: Vec<(&str, f64)> = a
                .counters
                .iter()
                .filter(|(n, _)| !n.starts_with("fwd_"))
                .map(|(n, v)| {
                    let was = b.and_then(|b| b.counters.get(n)).copied().unwrap_or(0);
                    (*n, self.rate(*v, was))
                })
                .filter(|(_, r)| *r >= 0.5)
                .collect();
            reasons.sort_by(|x, y| y.1.total_cmp(&x.1));
            let top: Vec<String> = reasons
                .iter()
                .take(3)
                .map(|(n, r)| {
                    let short = n.strip_prefix("pass_").or(n.strip_prefix("drop_"));
                    format!("{} {}", short.unwrap_or(n), human(*r))
                })
                .collect();
            out.push(format!(
                "{:<10} {:>7} {:>8} {:>7} {:>7}  {}",
                a.iface,
                human(self.rate(a.forwarded, prev(|s| s.forwarded))),
                human(8.0 * self.rate(a.forwarded_bytes, prev(|s| s.forwarded_bytes))),
                human(self.rate(a.passed, prev(|s| s.passed))),
                human(self.rate(a.dropped, prev(|s| s.dropped))),
                top.join(", ")
            ));
        }
    }

    fn nexthops(&self, out: &mut Vec<String>, max: usize) {
        let mut v: Vec<(String, f64, f64)> = self
            .after
            .nexthops
            .iter()
            .map(|a| {
                let b = self
                    .before
                    .nexthops
                    .iter()
                    .find(|b| b.gateway == a.gateway && b.interface == a.interface);
                let gw = if a.gateway.is_empty() {
                    "(direct)"
                } else {
                    &a.gateway
                };
                (
                    format!("{gw} on {}", a.interface),
                    self.rate(a.packets, b.map_or(0, |b| b.packets)),
                    8.0 * self.rate(a.bytes, b.map_or(0, |b| b.bytes)),
                )
            })
            .filter(|(_, p, _)| *p >= 0.5)
            .collect();
        v.sort_by(|x, y| y.1.total_cmp(&x.1));
        out.push(format!("{:<40} {:>8} {:>9}", "NEXT HOP", "pps", "bps"));
        if v.is_empty() {
            out.push("  (none forwarding from the mirror)".into());
        }
        for (name, p, b) in v.into_iter().take(max) {
            out.push(format!("{name:<40} {:>8} {:>9}", human(p), human(b)));
        }
    }

    fn blackholes(&self, out: &mut Vec<String>, max: usize) {
        let mut v: Vec<(&str, f64)> = self
            .after
            .blackholes
            .iter()
            .map(|a| {
                let b = self.before.blackholes.iter().find(|b| b.prefix == a.prefix);
                (
                    a.prefix.as_str(),
                    self.rate(a.packets, b.map_or(0, |b| b.packets)),
                )
            })
            .filter(|(_, r)| *r >= 0.5)
            .collect();
        v.sort_by(|x, y| y.1.total_cmp(&x.1));
        if v.is_empty() {
            return;
        }
        out.push(format!("{:<40} {:>8}", "BLACKHOLE (dropped)", "pps"));
        for (p, r) in v.into_iter().take(max) {
            out.push(format!("{p:<40} {:>8}", human(r)));
        }
    }

    /// The frame's lines, at most `height`, each at most `width` columns.
    pub fn render(&self, width: usize, height: usize) -> Vec<String> {
        let mut out = vec![self.header()];
        if let Some(s) = self.status {
            for a in s.alerts.iter().take(3) {
                out.push(format!(
                    "! {} ({}): {}",
                    a.condition.name(),
                    a.severity.name(),
                    a.detail
                ));
            }
        }
        out.push(String::new());
        self.interfaces(&mut out);
        out.push(String::new());
        // What is left of the screen, shared by the two lists.
        let room = height.saturating_sub(out.len() + 4).max(2);
        self.nexthops(&mut out, room.div_ceil(2));
        out.push(String::new());
        self.blackholes(&mut out, room / 2);
        out.truncate(height);
        out.iter()
            .map(|l| l.chars().take(width).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests;
