use super::*;
use crate::capacity::{Structure, Usage};

fn obs(now: Instant, traffic: Traffic, capacity: &Figures) -> Observation<'_> {
    Observation {
        now,
        traffic,
        lease_live: true,
        resyncs: 0,
        overruns: 0,
        capacity,
        drift: 0,
        detached: vec![],
    }
}

fn names(w: &Watch) -> Vec<Condition> {
    w.active().iter().map(|a| a.condition).collect()
}

#[test]
fn a_share_not_accelerated_starts_and_ends_with_hysteresis() {
    let f = Figures::default();
    let mut w = Watch::new(Thresholds::default());
    let t0 = Instant::now();
    let mut traffic = Traffic::default();
    for s in 0..=5 {
        traffic.transit = s * 1000;
        traffic.not_accelerated = s * 500;
        w.observe(&obs(t0 + Duration::from_secs(s), traffic, &f));
    }
    assert_eq!(names(&w), vec![Condition::NotAccelerating]);
    assert!(w.active()[0].detail.starts_with("50% of 1000 transit"));
    // Healthy again: the condition stays for CLEAR_AFTER, then ends.
    let mut s = 6;
    while s < 200 {
        traffic.transit += 100_000;
        w.observe(&obs(t0 + Duration::from_secs(s), traffic, &f));
        if names(&w).is_empty() {
            break;
        }
        s += 1;
    }
    assert!(names(&w).is_empty(), "never ended");
    // Last over the threshold at 5 s.
    assert_eq!(s, 5 + CLEAR_AFTER.as_secs(), "ended after {s} s");
}

#[test]
fn little_traffic_is_not_judged() {
    let f = Figures::default();
    let mut w = Watch::new(Thresholds::default());
    let t0 = Instant::now();
    for s in 0..5 {
        let traffic = Traffic {
            transit: s * 10,
            not_accelerated: s * 10,
            ..Default::default()
        };
        w.observe(&obs(t0 + Duration::from_secs(s), traffic, &f));
    }
    assert!(names(&w).is_empty());
}

#[test]
fn state_conditions_and_their_severity() {
    let mut f = Figures::default();
    f.set(Structure::Nexthops, Usage::new(100, 85));
    let mut w = Watch::new(Thresholds::default());
    let t0 = Instant::now();
    let mut o = obs(t0, Traffic::default(), &f);
    o.drift = 3;
    o.lease_live = false;
    o.detached = vec!["eth1".into()];
    w.observe(&o);
    // The lease gets its grace period.
    assert_eq!(
        names(&w),
        vec![Condition::Detached, Condition::Drift, Condition::Capacity]
    );
    o.now = t0 + Duration::from_secs(11);
    w.observe(&o);
    let active = w.active();
    assert_eq!(active[0].severity, Severity::Critical);
    assert!(active.iter().any(|a| a.condition == Condition::LeaseLapsed));
    let cap = active
        .iter()
        .find(|a| a.condition == Condition::Capacity)
        .unwrap();
    assert_eq!(cap.severity, Severity::Warning);
    assert!(cap.detail.contains("85% full"), "{}", cap.detail);
}

#[test]
fn storms_rates_and_overruns() {
    let f = Figures::default();
    let mut w = Watch::new(Thresholds::default());
    let t0 = Instant::now();
    for s in 0..=10u64 {
        let mut o = obs(
            t0 + Duration::from_secs(s),
            Traffic {
                no_neigh: s * 5000,
                blackhole: s * 200_000,
                ..Default::default()
            },
            &f,
        );
        o.resyncs = s;
        o.overruns = s / 5;
        w.observe(&o);
    }
    assert_eq!(
        names(&w),
        vec![
            Condition::ResyncStorm,
            Condition::Overruns,
            Condition::UnresolvedNeighbours,
            Condition::BlackholeDrops
        ]
    );
}
