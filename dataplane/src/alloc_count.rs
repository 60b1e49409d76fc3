//! Allocation counting for measurement builds only (`--features alloc-count`): a global
//! allocator that counts every allocation, and a thread that writes the running total to the
//! file named by `$WEIR_ALLOC_COUNT_FILE` every 50 ms, so `bench/alloc-count` can take the
//! difference over a known number of requests. With `$WEIR_ALLOC_SAMPLE=N` it also records the
//! call stack of one allocation in N and writes the tally per stack to `$WEIR_ALLOC_SITES_FILE`
//! (`bench/alloc-count --sites N`), which says where the allocations come from. Never part of a
//! release build.
#![allow(unsafe_code)]
// The sampled stacks are shared by every thread behind a lock: this is a measurement build, and
// only one allocation in N (sampling mode only) takes it.
#![allow(clippy::disallowed_types)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The system allocator, counting.
pub struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Record the stack of one allocation in this many (0: never).
static SAMPLE_EVERY: AtomicU64 = AtomicU64::new(0);
/// Stack (summarised, one line) → sampled allocations.
static SITES: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

thread_local! {
    /// Set while this thread records a stack or reports: the allocations that does are the
    /// measurement's own, neither counted nor recorded (and recording cannot recurse).
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

fn busy() -> bool {
    BUSY.try_with(Cell::get).unwrap_or(true)
}

/// Counts one allocation and, in sampling mode, maybe records where it came from.
fn count() {
    if busy() {
        return;
    }
    let n = ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    let every = SAMPLE_EVERY.load(Ordering::Relaxed);
    if every != 0 && n.is_multiple_of(every) {
        record();
    }
}

fn record() {
    BUSY.with(|b| b.set(true));
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    let site = summarise(&trace);
    if let Ok(mut sites) = SITES.lock() {
        *sites.get_or_insert_with(HashMap::new).entry(site).or_default() += 1;
    }
    BUSY.with(|b| b.set(false));
}

/// Frames that are the allocator's plumbing or generic library glue, not the caller's choice.
fn plumbing(frame: &str) -> bool {
    const PREFIXES: [&str; 12] = [
        "std::",
        "<std::",
        "alloc::",
        "<alloc::",
        "core::",
        "<core::",
        "__rust",
        "weir_dataplane::alloc_count",
        "<weir_dataplane::alloc_count",
        "<T as ",
        "hashbrown::raw::alloc",
        "<hashbrown::raw::alloc",
    ];
    PREFIXES.iter().any(|p| frame.starts_with(p))
}

/// One line per stack: the first ten frames outside the plumbing, innermost first, without
/// symbol hashes.
fn summarise(trace: &str) -> String {
    let frames = trace.lines().filter_map(|l| {
        let (num, name) = l.trim_start().split_once(": ")?;
        num.bytes().all(|b| b.is_ascii_digit()).then_some(name)
    });
    let mut out: Vec<&str> = Vec::new();
    for f in frames {
        let f = match f.rsplit_once("::h") {
            Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
            _ => f,
        };
        if plumbing(f) {
            continue;
        }
        out.push(f);
        if out.len() == 10 {
            break;
        }
    }
    out.join(" <- ")
}

// SAFETY: every call is passed unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as for `dealloc`; the new size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Starts the reporting thread when `$WEIR_ALLOC_COUNT_FILE` is set (and stack sampling when
/// `$WEIR_ALLOC_SAMPLE` and `$WEIR_ALLOC_SITES_FILE` are).
pub fn start_reporting() {
    let Some(path) = std::env::var_os("WEIR_ALLOC_COUNT_FILE") else { return };
    let sites_path = std::env::var_os("WEIR_ALLOC_SITES_FILE");
    if let (Some(n), Some(_)) = (std::env::var("WEIR_ALLOC_SAMPLE").ok(), &sites_path) {
        SAMPLE_EVERY.store(n.trim().parse().unwrap_or(0), Ordering::Relaxed);
    }
    std::thread::spawn(move || {
        BUSY.with(|b| b.set(true));
        let tmp = std::path::PathBuf::from(format!("{}.tmp", path.to_string_lossy()));
        loop {
            let line = format!("{}\n", allocations());
            if std::fs::write(&tmp, line).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
                return;
            }
            if let Some(sites_path) = &sites_path {
                let text = SITES.lock().map(|s| sites_text(s.as_ref())).unwrap_or_default();
                let tmp = std::path::PathBuf::from(format!("{}.tmp", sites_path.to_string_lossy()));
                if std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, sites_path)).is_err() {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
}

/// `count<TAB>stack` lines, most frequent first.
fn sites_text(sites: Option<&HashMap<String, u64>>) -> String {
    let mut rows: Vec<(&String, &u64)> = sites.map(|s| s.iter().collect()).unwrap_or_default();
    rows.sort_by(|a, b| b.1.cmp(a.1));
    rows.iter().map(|(site, n)| format!("{n}\t{site}\n")).collect()
}
