//! The generated skeleton of the XDP datapath and byte views of its types.

#[allow(
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/accel.skel.rs"));
}
pub use skel::*;

/// Plain-old-data shared with the datapath: `#[repr(C)]`, `Copy`, and
/// without implicit padding (the header spells every pad out).
///
/// # Safety
/// Implement only for the skeleton's generated map key and value types.
pub unsafe trait Pod: Copy + Default {}

unsafe impl Pod for types::accel_route4_key {}
unsafe impl Pod for types::accel_route6_key {}
unsafe impl Pod for types::accel_route {}
unsafe impl Pod for types::accel_nexthop {}
unsafe impl Pod for types::accel_nh_group {}
unsafe impl Pod for types::accel_blackhole {}
unsafe impl Pod for types::accel_blackhole_prefix {}
unsafe impl Pod for types::accel_neigh4_key {}
unsafe impl Pod for types::accel_neigh6_key {}
unsafe impl Pod for types::accel_neigh {}
unsafe impl Pod for types::accel_iface {}
unsafe impl Pod for types::accel_config {}
unsafe impl Pod for types::accel_stats {}
unsafe impl Pod for types::accel_leaves {}
unsafe impl Pod for types::accel_capacity {}
unsafe impl Pod for u32 {}
unsafe impl Pod for u8 {}

pub fn bytes_of<T: Pod>(v: &T) -> &[u8] {
    // SAFETY: Pod types are repr(C) without padding, so every byte is
    // initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Reads a `T` from a map value; `None` if the size does not match.
pub fn from_bytes<T: Pod>(b: &[u8]) -> Option<T> {
    if b.len() != std::mem::size_of::<T>() {
        return None;
    }
    let mut v = T::default();
    // SAFETY: sizes match and any bit pattern is a valid Pod value.
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), (&mut v as *mut T).cast::<u8>(), b.len()) };
    Some(v)
}
