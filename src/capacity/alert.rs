//! When to tell the operator that a structure ran out of room, and that it
//! has room again.
//!
//! One alert when a structure starts degrading, one when it stops. A
//! structure that flaps (fills and empties again and again around its
//! limit) alerts at most once per [`REALERT`]: episodes in between are
//! counted and the count comes with the next alert, and an episode that
//! was held back is reported once the interval is over if it lasts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Figures, Structure, Usage};

/// The least time between two exhaustion alerts of one structure.
pub const REALERT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Exhausted {
        structure: Structure,
        usage: Usage,
        /// Earlier episodes, since the previous alert, that came and went
        /// unreported.
        unreported: u32,
    },
    Recovered {
        structure: Structure,
        usage: Usage,
    },
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Alert::Exhausted {
                structure: s,
                usage: u,
                unreported,
            } => {
                write!(
                    f,
                    "capacity: {} exhausted ({} of {} in use): {}",
                    s.what(),
                    u.used,
                    u.capacity,
                    s.effect(u)
                )?;
                // Ids are handed out again only after a grace period
                // (slots.rs): a burst of changes can hold them all.
                if s.is_ids() && u.used < u.capacity {
                    write!(
                        f,
                        "; the other {} are not in use but not free yet (ids given back \
                         are reused only after {:?})",
                        u.capacity - u.used,
                        crate::slots::GRACE
                    )?;
                }
                if *unreported > 0 {
                    write!(f, " ({unreported} more since the last alert)")?;
                }
                Ok(())
            }
            Alert::Recovered {
                structure: s,
                usage: u,
            } => write!(
                f,
                "capacity: {} recovered ({} of {} in use): everything is mirrored again",
                s.what(),
                u.used,
                u.capacity
            ),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    degraded: bool,
    /// The current episode was reported.
    reported: bool,
    last_alert: Option<Instant>,
    unreported: u32,
}

#[derive(Debug, Default)]
pub struct Alerts {
    states: BTreeMap<Structure, State>,
}

impl Alerts {
    /// The alerts due for figures seen at `now`.
    pub fn observe(&mut self, figures: &Figures, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        for (structure, usage) in figures.iter() {
            let st = self.states.entry(structure).or_default();
            let degraded = usage.is_degraded();
            let ended = !degraded && st.degraded;
            st.degraded = degraded;
            if !degraded {
                if std::mem::take(&mut st.reported) {
                    out.push(Alert::Recovered { structure, usage });
                } else if ended {
                    st.unreported += 1;
                }
                continue;
            }
            if st.reported {
                continue;
            }
            let due = st
                .last_alert
                .is_none_or(|t| now.duration_since(t) >= REALERT);
            if due {
                out.push(Alert::Exhausted {
                    structure,
                    usage,
                    unreported: std::mem::take(&mut st.unreported),
                });
                st.reported = true;
                st.last_alert = Some(now);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(degraded: usize) -> Figures {
        let mut f = Figures::default();
        f.set(
            Structure::Ipv4Trie,
            Usage::new(4, 4).degraded(degraded, degraded.min(2)),
        );
        f.set(Structure::Nexthops, Usage::new(15, 2));
        f
    }

    #[test]
    fn one_alert_per_episode_and_one_on_recovery() {
        let mut a = Alerts::default();
        let t0 = Instant::now();
        assert_eq!(a.observe(&figures(0), t0), vec![]);
        let start = a.observe(&figures(3), t0);
        assert_eq!(start.len(), 1);
        assert_eq!(
            start[0].to_string(),
            "capacity: IPv4 trie lines exhausted (4 of 4 in use): 3 routes in 2 address \
             ranges: those ranges are forwarded through bpf_fib_lookup"
        );
        // Worse, but the same episode.
        assert_eq!(a.observe(&figures(9), t0 + REALERT * 3), vec![]);
        let end = a.observe(&figures(0), t0 + REALERT * 3);
        assert!(matches!(
            end[..],
            [Alert::Recovered {
                structure: Structure::Ipv4Trie,
                ..
            }]
        ));
        assert!(end[0].to_string().ends_with("everything is mirrored again"));
    }

    /// Ids in their grace period are neither in use nor free: a burst of
    /// changes exhausts the ids with few in use, and the alert says why.
    #[test]
    fn ids_exhausted_with_few_in_use_name_the_grace_period() {
        let mut a = Alerts::default();
        let mut f = Figures::default();
        f.set(Structure::NhGroups, Usage::new(8191, 3).degraded(1, 0));
        let start = a.observe(&f, Instant::now());
        assert_eq!(
            start[0].to_string(),
            "capacity: multipath/nexthop-object group ids exhausted (3 of 8191 in use): 1 \
             multipath or nexthop-object routes without a group are forwarded through \
             bpf_fib_lookup; the other 8188 are not in use but not free yet (ids given back \
             are reused only after 200ms)"
        );
    }

    #[test]
    fn flapping_alerts_at_most_once_per_interval() {
        let mut a = Alerts::default();
        let t0 = Instant::now();
        assert_eq!(a.observe(&figures(1), t0).len(), 1);
        assert_eq!(a.observe(&figures(0), t0).len(), 1, "recovered");
        let s = Duration::from_secs(1);
        // Two more episodes within the interval: held back, and their
        // ends too.
        for i in 1..=2 {
            assert_eq!(a.observe(&figures(1), t0 + s * i), vec![]);
            assert_eq!(a.observe(&figures(0), t0 + s * i), vec![]);
        }
        // A third that lasts: reported once the interval is over, with
        // the count of those held back.
        assert_eq!(a.observe(&figures(2), t0 + s * 3), vec![]);
        let late = a.observe(&figures(2), t0 + REALERT);
        assert!(matches!(late[..], [Alert::Exhausted { unreported: 2, .. }]));
        assert!(late[0]
            .to_string()
            .ends_with("(2 more since the last alert)"));
        assert_eq!(a.observe(&figures(0), t0 + REALERT).len(), 1);
    }
}
