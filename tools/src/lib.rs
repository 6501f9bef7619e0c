//! accel's benchmark and traffic tools, apart from the product: the pure
//! parts of `accel-trafgen` live here so that they can be unit-tested.

pub mod ceiling;
pub mod dir24;
pub mod events;
pub mod net;
mod prefix_bits;
pub mod stages;
pub mod trafgen;
