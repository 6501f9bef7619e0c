//! Fuzzing the XDP datapath through BPF_PROG_TEST_RUN: random worlds (a
//! mirror written with the daemon's `Change`s, kernel routes and
//! neighbours in a private namespace) and random, mutated frames, each
//! outcome judged by the invariants of `fuzz/oracle.rs`.
//!
//! Needs root; as another user it says so and passes. Bounded by time:
//!
//!   ACCEL_FUZZ_SECS=N    run for N seconds (default 10)
//!   ACCEL_FUZZ_FRAMES=N  stop after N frames (default: no limit)
//!   ACCEL_FUZZ_SEED=N    the seed (default: from the clock; printed)
//!   ACCEL_FUZZ_OUT=DIR   where failing frames go (default: the target
//!                        dir's tmp/fuzz-failures)
//!
//! The same seed and frame limit replay the same worlds and frames. See
//! docs/fuzzing.md.

#[allow(dead_code)]
#[path = "golden/lab.rs"]
mod lab;
#[allow(dead_code)]
#[path = "golden/pkt.rs"]
mod pkt;

#[path = "fuzz/addrs.rs"]
mod addrs;
#[path = "fuzz/frames.rs"]
mod frames;
#[path = "fuzz/kernel_rx.rs"]
mod kernel_rx;
#[path = "fuzz/model.rs"]
mod model;
#[path = "fuzz/oracle.rs"]
mod oracle;
#[path = "fuzz/report.rs"]
mod report;
#[path = "fuzz/rng.rs"]
mod rng;
#[path = "fuzz/run.rs"]
mod run;
#[path = "fuzz/world.rs"]
mod world;

#[test]
fn fuzz_datapath() {
    if !lab::is_root() {
        return;
    }
    let budget = run::Budget::from_env();
    let totals = run::fuzz(&budget);
    println!("{totals}");
    assert!(
        totals.failures.is_empty(),
        "{} invariant violations (seed {}), by kind, with the frames written:\n{}",
        totals.violations(),
        budget.seed,
        totals.failure_list()
    );
}
