//! Middleware state held for the whole data plane, not per worker (issue 6 item 4): the
//! RateLimit buckets, the InFlightReq counts and the CircuitBreaker windows that Traefik keeps
//! once per process. One [`SharedLimits`] is created by `main` and handed to every worker; it
//! outlives snapshots, keyed by middleware name (and source), so a new snapshot keeps the state
//! of the middlewares it keeps.
//!
//! The maps are `papaya` hash maps: lock-free reads and inserts (epoch-based reclamation), so a
//! worker never waits on another on the request path. dashmap would take a shard lock (a
//! spinning `RwLock`) on every lookup, and a fixed table of hashed slots would have to store the
//! whole key next to the counter, which cannot be claimed in one atomic step. The values are
//! plain atomics updated with CAS loops; see each middleware for the protocol.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use super::circuit_breaker;
use super::in_flight;

/// Counters of the instance, shared by every worker.
#[derive(Debug)]
pub struct SharedLimits {
    /// The origin of the nanosecond clocks stored in atomics.
    pub base: Instant,
    /// RateLimit: theoretical arrival time (ns since `base`) by `name\0source`.
    pub buckets: papaya::HashMap<String, AtomicU64>,
    /// When a full bucket sweep may run next (ns since `base`).
    pub next_sweep: AtomicU64,
    /// InFlightReq: requests in progress by `name\0source`.
    pub in_flight: in_flight::Counts,
    /// CircuitBreaker: one breaker by middleware name.
    pub breakers: circuit_breaker::Breakers,
}

impl Default for SharedLimits {
    fn default() -> Self {
        SharedLimits {
            base: Instant::now(),
            buckets: papaya::HashMap::new(),
            next_sweep: AtomicU64::new(0),
            in_flight: in_flight::Counts::default(),
            breakers: circuit_breaker::Breakers::new(),
        }
    }
}

impl SharedLimits {
    /// `now` in nanoseconds since `base` (0 before it).
    pub fn nanos(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The key of a (middleware, source) pair: Kubernetes names never hold a NUL.
pub fn key(name: &str, source: &str) -> String {
    let mut k = String::with_capacity(name.len() + 1 + source.len());
    k.push_str(name);
    k.push('\0');
    k.push_str(source);
    k
}
