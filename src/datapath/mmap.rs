//! A BPF array created with BPF_F_MMAPABLE, seen from userspace as a plain
//! array of u32 leaves: full-table updates become memory writes instead of
//! one syscall per entry.

use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use libbpf_rs::MapHandle;

use super::leaves::LeafStore;

pub struct MmapLeaves {
    base: NonNull<AtomicU32>,
    leaves: usize,
    bytes: usize,
}

impl MmapLeaves {
    /// Maps `leaves` u32 leaves of an mmapable array whose value size is a
    /// multiple of 8 (so that entries are contiguous).
    pub fn map(map: &MapHandle, leaves: usize) -> std::io::Result<Self> {
        let bytes = leaves * 4;
        // SAFETY: mapping a BPF array fd as the kernel allows; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(MmapLeaves {
            base: NonNull::new(p.cast()).expect("mmap never returns NULL on success"),
            leaves,
            bytes,
        })
    }

    fn at(&self, i: usize) -> &AtomicU32 {
        assert!(i < self.leaves, "leaf {i} outside the map");
        // SAFETY: in bounds of a live mapping of u32-aligned memory.
        unsafe { &*self.base.as_ptr().add(i) }
    }
}

impl LeafStore for MmapLeaves {
    fn get(&self, i: usize) -> u32 {
        self.at(i).load(Ordering::Relaxed)
    }

    fn set(&mut self, i: usize, leaf: u32) {
        self.at(i).store(leaf, Ordering::Relaxed);
    }

    fn publish(&self) {
        fence(Ordering::Release);
    }

    fn prefetch(&self, i: usize) {
        crate::prefetch::line(self.at(i));
    }
}

impl Drop for MmapLeaves {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what map() mapped.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
    }
}
