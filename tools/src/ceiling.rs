//! The ceiling forwarder's skeleton (`src/bpf/ceiling.bpf.c`).

accel::skeleton!("ceiling.skel.rs");
pub use skel::*;
