//! The bounded structures of the datapath: how big they are
//! ([`limits`]), how full ([`figures`]), and what accel says when one runs
//! out ([`alert`], [`monitor`]).
//!
//! An exhausted structure never stops accel: the routes or entries without
//! room are written so that the datapath asks bpf_fib_lookup (the kernel's
//! own lookup) for them, and they move back into the mirror once room frees
//! up, or once accel has grown the structure ([`growth`]).

pub mod alert;
pub mod figures;
pub mod growth;
pub mod limits;
pub mod monitor;

pub use figures::{Figures, Structure, Usage};
pub use limits::{Limits, LimitsError};
pub use monitor::Monitor;
