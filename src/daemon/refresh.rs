//! Starting afresh before the mirror's interned next hops outgrow it.
//!
//! The mirror stores a route's next hop as an index into a table of
//! interned values (mirror/code.rs): next hops, multipath path lists,
//! nexthop-object ids. The table never forgets a value, since codes stored
//! for a million prefixes must keep their meaning. Routing daemons keep
//! making new values for as long as they run: zebra gives a nexthop group
//! a new id whenever it makes one again (after its 180 s keep-around), so
//! every IGP change under recursive BGP routes, every ECMP member that
//! comes and goes, adds ids. About 22 bytes each, for good.
//!
//! So once an instance has interned `step` values more than it held when
//! its mirror first went live, it upgrades in place to itself (the SIGUSR2
//! handover): the successor builds its mirror from a dump, interning only
//! what the kernel's routes use now, and takes over every link without a
//! gap. Like a growth (capacity/growth.rs), it needs memory for a second
//! instance for a moment, and waits before trying again when it could not
//! happen.
//!
//! This module only decides when.

use std::time::{Duration, Instant};

/// Values interned beyond the first live mirror's before starting afresh:
/// about 22 MiB of nexthop-object ids; months of a busy full-table
/// router's churn.
pub const DEFAULT_STEP: usize = 1 << 20;

/// Overrides [`DEFAULT_STEP`] (tests: a handful of objects).
pub const ENV: &str = "ACCEL_REFRESH_STEP";

/// After a refresh that did not happen (refused, or the successor
/// failed), the next try waits this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{ENV}: {0:?} is not a number of values from 1 up")]
pub struct StepError(String);

/// [`ENV`]'s step, or the default.
pub fn step_from_env() -> Result<usize, StepError> {
    match std::env::var(ENV) {
        Ok(v) => parse_step(&v),
        Err(_) => Ok(DEFAULT_STEP),
    }
}

fn parse_step(v: &str) -> Result<usize, StepError> {
    crate::parse_positive(v)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| StepError(v.to_string()))
}

#[derive(Debug)]
pub struct Refresh {
    step: usize,
    /// What the table held when the mirror first went live.
    baseline: Option<usize>,
    not_before: Option<Instant>,
    /// The table refused a value (said once).
    full_said: bool,
}

impl Refresh {
    pub fn new(step: usize) -> Refresh {
        Refresh {
            step,
            baseline: None,
            not_before: None,
            full_said: false,
        }
    }

    /// Whether to start afresh, the table holding `interned` values;
    /// `live`: the mirror has been built (before, the table is still
    /// filling with what the kernel's routes use).
    pub fn due(&mut self, interned: usize, live: bool, now: Instant) -> bool {
        if !live {
            return false;
        }
        let base = *self.baseline.get_or_insert(interned);
        let ready = self.not_before.is_none_or(|t| now >= t);
        ready && interned >= base.saturating_add(self.step)
    }

    /// Whether the table has just begun to refuse values (`refused` so
    /// far): to be said once.
    pub fn newly_full(&mut self, refused: u64) -> bool {
        let news = refused > 0 && !self.full_said;
        self.full_said |= news;
        news
    }

    /// The refresh was tried and did not happen: wait before the next.
    pub fn failed(&mut self, now: Instant) {
        self.not_before = Some(now + RETRY_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_once_the_table_grew_by_a_step_since_the_mirror_went_live() {
        let t0 = Instant::now();
        let mut r = Refresh::new(100);
        assert!(!r.due(5_000, false, t0), "the first dump fills it");
        assert!(
            !r.due(40, true, t0),
            "the baseline: what a live mirror holds"
        );
        assert!(!r.due(139, true, t0));
        assert!(r.due(140, true, t0));
    }

    #[test]
    fn a_refresh_that_did_not_happen_waits_before_the_next_try() {
        let t0 = Instant::now();
        let mut r = Refresh::new(10);
        assert!(!r.due(0, true, t0));
        assert!(r.due(10, true, t0));
        r.failed(t0);
        assert!(!r.due(50, true, t0 + RETRY_AFTER / 2));
        assert!(r.due(50, true, t0 + RETRY_AFTER));
    }

    #[test]
    fn a_full_table_is_news_once() {
        let mut r = Refresh::new(10);
        assert!(!r.newly_full(0));
        assert!(r.newly_full(1));
        assert!(!r.newly_full(5));
    }

    #[test]
    fn the_step_from_the_environment_is_a_positive_count() {
        assert_eq!(parse_step(" 64 "), Ok(64));
        for bad in ["0", "-1", "many", ""] {
            assert_eq!(parse_step(bad), Err(StepError(bad.to_string())));
        }
    }
}
