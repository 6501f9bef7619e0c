//! The bounded structures of the datapath: how big they are ([`limits`])
//! and how full ([`figures`]).
//!
//! An exhausted structure never stops accel: the routes or entries without
//! room are written so that the datapath asks bpf_fib_lookup (the kernel's
//! own lookup) for them, and they move back into the mirror once room frees
//! up.

pub mod figures;
pub mod limits;

pub use figures::{Figures, Structure, Usage};
pub use limits::{Limits, LimitsError};
