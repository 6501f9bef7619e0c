//! accel's benchmark and traffic tools, apart from the product: the pure
//! parts of `accel-trafgen` live here so that they can be unit-tested.

pub mod ceiling;
pub mod events;
pub mod memlat;
pub mod net;
pub mod stages;
pub mod table_growth;
pub mod trafgen;
