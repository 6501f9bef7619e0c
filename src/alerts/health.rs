//! `accel health`: one line and a Nagios-style exit code from what the
//! running daemon reports (or fails to).

use std::time::Duration;

use serde::Serialize;

use super::{Active, Severity};
use crate::status::Status;

/// A status older than this means the event loop stopped publishing.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// Nagios / monit plugin states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Ok,
    Warning,
    Critical,
}

impl State {
    pub fn exit_code(self) -> i32 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
        }
    }

    fn word(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Warning => "WARNING",
            State::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub state: State,
    pub summary: String,
    pub alerts: Vec<Active>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.state.word(), self.summary)
    }
}

/// The report for a daemon that could not be asked.
pub fn unreachable(why: &str) -> Report {
    Report {
        state: State::Critical,
        summary: format!("accel is not running or does not answer: {why}"),
        alerts: vec![],
    }
}

/// The report for `s`, read at `now_ms`.
pub fn report(s: &Status, now_ms: u64) -> Report {
    let age = s.age(now_ms);
    if age > STALE_AFTER {
        return Report {
            state: State::Critical,
            summary: format!(
                "accel's event loop has not reported for {age:.0?}: route changes are not applied"
            ),
            alerts: s.alerts.clone(),
        };
    }
    let state = match s.alerts.iter().map(|a| a.severity).max() {
        None => State::Ok,
        Some(Severity::Warning) => State::Warning,
        Some(Severity::Critical) => State::Critical,
    };
    let summary = if s.alerts.is_empty() {
        let mut names: Vec<&str> = s.interfaces.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        format!(
            "forwarding on {} from a mirror of {} IPv4 + {} IPv6 routes, lease {}",
            names.join(", "),
            s.mirror.routes_v4,
            s.mirror.routes_v6,
            if s.lease_live { "live" } else { "lapsed" }
        )
    } else {
        let parts: Vec<String> = s
            .alerts
            .iter()
            .map(|a| format!("{}: {}", a.condition.name(), a.detail))
            .collect();
        parts.join("; ")
    };
    Report {
        state,
        summary,
        alerts: s.alerts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Condition;

    fn status(alerts: Vec<Active>) -> Status {
        Status {
            published_unix_ms: 1_000_000,
            alerts,
            ..Default::default()
        }
    }

    fn alert(condition: Condition, severity: Severity) -> Active {
        Active {
            condition,
            severity,
            since_unix_ms: 0,
            detail: "x".into(),
        }
    }

    #[test]
    fn the_worst_alert_decides_the_exit_code() {
        let r = report(&status(vec![]), 1_000_500);
        assert_eq!((r.state, r.state.exit_code()), (State::Ok, 0));
        assert!(r.to_string().starts_with("OK: forwarding on"));
        let r = report(
            &status(vec![alert(Condition::Drift, Severity::Warning)]),
            1_000_500,
        );
        assert_eq!(r.state.exit_code(), 1);
        assert_eq!(r.to_string(), "WARNING: drift: x");
        let both = vec![
            alert(Condition::Drift, Severity::Warning),
            alert(Condition::Detached, Severity::Critical),
        ];
        assert_eq!(report(&status(both), 1_000_500).state.exit_code(), 2);
    }

    #[test]
    fn a_silent_event_loop_is_critical() {
        let r = report(&status(vec![]), 1_000_000 + 60_000);
        assert_eq!(r.state, State::Critical);
        assert!(
            r.summary.contains("has not reported for 60s"),
            "{}",
            r.summary
        );
        assert_eq!(unreachable("x").state.exit_code(), 2);
    }
}
