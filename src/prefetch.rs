//! Asking the processor for a cache line ahead of its use.
//!
//! A load brought in to warm a cache (`std::hint::black_box`) holds its
//! place in the reorder buffer until its line arrives, so a warming loop
//! overlaps only the misses of the few iterations that fit in that
//! buffer. A prefetch retires at once: a loop of them puts every line of
//! a batch in flight together.

/// Starts bringing the cache line at `p` into every cache level. Any
/// address will do: a prefetch never faults and changes nothing the
/// program can see.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it cannot fault, whatever the address,
    // and reads nothing into the program's state.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
