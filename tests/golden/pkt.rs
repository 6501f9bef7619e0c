//! The one packet builder (the accel-packet crate), under the name the
//! golden and fuzz tests use.
pub use accel_packet::*;
