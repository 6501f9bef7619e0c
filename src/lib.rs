//! accel: an XDP route accelerator that forwards exactly as the kernel would,
//! from a live mirror of the kernel's FIB.

pub mod alerts;
pub mod bpf;
pub mod capacity;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod fast_hash;
pub mod handover;
pub mod lease;
pub mod lookup;
pub mod metrics;
pub mod metrics_server;
pub mod mirror;
pub mod model;
pub mod netfilter;
pub mod netlink;
pub mod prefetch;
pub mod presence;
pub mod realtime;
pub mod route_trace;
pub mod runtime;
pub mod slots;
pub mod stats;
pub mod status;
pub mod sysctl;
pub mod top;
pub mod trusted_path;
pub mod upgrade;

/// The version and the commit it was built from (`accel --version`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ACCEL_COMMIT"), ")");

/// One line of an error and its causes ("a: b: c"), for logs and replies
/// that must say everything on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s += &format!(": {c}");
        cause = c.source();
    }
    s
}

/// A whole number from 1 up, as an environment setting holds it (spaces
/// around it allowed).
pub fn parse_positive(v: &str) -> Option<u64> {
    v.trim().parse().ok().filter(|n| *n > 0)
}
