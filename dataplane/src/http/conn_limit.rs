//! The per-worker connection cap (`--weir.maxConnectionsPerWorker`, passed to the data plane
//! as `--max-connections-per-worker`): each worker serves at most that many client connections
//! at once; a connection accepted beyond it is closed at once, before any byte is read, so a
//! flood of idle connections cannot exhaust a worker's memory or file descriptors. The count
//! is the worker's own (no atomics); the limit is set once at start.

use std::cell::Cell;
use std::sync::OnceLock;

/// Default cap: high enough never to bite a real deployment on its own.
pub const DEFAULT: usize = 65_536;

static LIMIT: OnceLock<usize> = OnceLock::new();

thread_local! {
    static OPEN: Cell<usize> = const { Cell::new(0) };
}

/// Sets the cap for every worker (the first call wins; before workers start).
pub fn set_limit(n: usize) {
    let _ = LIMIT.set(n.max(1));
}

/// The cap in force.
pub fn limit() -> usize {
    LIMIT.get().copied().unwrap_or(DEFAULT)
}

/// A place held by one open connection on this worker; released when dropped.
#[derive(Debug)]
pub struct Slot(());

impl Slot {
    /// Takes a place under `limit`, or `None` when the worker is full.
    pub fn take(limit: usize) -> Option<Slot> {
        OPEN.with(|open| {
            let n = open.get();
            (n < limit).then(|| {
                open.set(n + 1);
                Slot(())
            })
        })
    }

    /// Connections open on this worker.
    pub fn open() -> usize {
        OPEN.with(Cell::get)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.with(|open| open.set(open.get().saturating_sub(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_taken_and_given_back() {
        // Each test thread has its own count, as each worker does.
        std::thread::spawn(|| {
            let first = Slot::take(2).expect("room");
            let second = Slot::take(2).expect("room");
            assert!(Slot::take(2).is_none(), "full at the cap");
            assert_eq!(Slot::open(), 2);
            drop(first);
            let third = Slot::take(2).expect("a place was freed");
            drop((second, third));
            assert_eq!(Slot::open(), 0);
        })
        .join()
        .expect("test thread");
    }
}
