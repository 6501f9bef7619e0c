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

const LINE: usize = 64;

/// Starts bringing every cache line of `items` in.
#[inline]
pub fn all<T>(items: &[T]) {
    for p in lines_of(items) {
        line(p);
    }
}

/// An address in each cache line `items` lies in, from the first byte's
/// line to the last byte's.
fn lines_of<T>(items: &[T]) -> impl Iterator<Item = *const u8> {
    let start = items.as_ptr().cast::<u8>();
    let bytes = std::mem::size_of_val(items);
    let first = start.wrapping_sub(start as usize % LINE);
    let count = match bytes {
        0 => 0,
        _ => (start as usize + bytes - 1) / LINE - start as usize / LINE + 1,
    };
    (0..count).map(move |i| first.wrapping_add(i * LINE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(64))]
    struct Lines([u8; 4 * LINE]);

    fn lines(from: usize, to: usize) -> Vec<usize> {
        let buf = Lines([0; 4 * LINE]);
        let base = buf.0.as_ptr() as usize;
        lines_of(&buf.0[from..to])
            .map(|p| p as usize - base)
            .collect()
    }

    #[test]
    fn every_line_a_slice_touches_once() {
        assert_eq!(lines(0, 0), Vec::<usize>::new());
        assert_eq!(lines(0, 1), [0]);
        assert_eq!(lines(0, LINE), [0]);
        assert_eq!(lines(0, LINE + 1), [0, LINE]);
        assert_eq!(lines(63, 65), [0, LINE]);
        // An event (104 bytes) lying across three lines.
        assert_eq!(lines(60, 164), [0, LINE, 2 * LINE]);
        assert_eq!(lines(LINE, 4 * LINE), [LINE, 2 * LINE, 3 * LINE]);
    }

    #[test]
    fn empty_and_zero_sized() {
        assert_eq!(lines_of::<u64>(&[]).count(), 0);
        assert_eq!(lines_of(&[(); 5]).count(), 0);
        all(&[(); 5]);
        all::<u64>(&[]);
    }
}
