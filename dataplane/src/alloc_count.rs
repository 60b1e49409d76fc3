//! Allocation counting for measurement builds only (`--features alloc-count`): a global
//! allocator that counts every allocation, and a thread that writes the running total to the
//! file named by `$WEIR_ALLOC_COUNT_FILE` every 50 ms, so `bench/alloc-count` can take the
//! difference over a known number of requests. Never part of a release build.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; the new size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Starts the reporting thread when `$WEIR_ALLOC_COUNT_FILE` is set.
pub fn start_reporting() {
    let Some(path) = std::env::var_os("WEIR_ALLOC_COUNT_FILE") else { return };
    std::thread::spawn(move || {
        let tmp = std::path::PathBuf::from(format!("{}.tmp", path.to_string_lossy()));
        loop {
            let line = format!("{}\n", allocations());
            if std::fs::write(&tmp, line).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
}
