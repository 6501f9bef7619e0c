//! The bounded structures of the datapath: how big they are ([`limits`]).

pub mod limits;

pub use limits::{Limits, LimitsError};
