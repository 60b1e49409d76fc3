//! weir-dataplane as a library: the binary `weir-dataplane` is a thin `main` over it, and
//! benches, examples and tests reach the sans-IO cores (routing, load balancing) through it.
//! Links neither a tokio runtime nor kube.
// `deny`, not `forbid`: two modules allow it, the counting allocator of measurement builds
// (alloc_count.rs) and the UDP batch system calls (udp/batch.rs).
#![deny(unsafe_code)]

#[cfg(feature = "alloc-count")]
pub mod alloc_count;

pub mod access_log;
pub mod admin;
pub mod args;
pub mod control;
pub mod handover;
pub mod health;
pub mod http;
pub mod lb;
pub mod metrics;
pub mod middleware;
pub mod observe;
pub mod router;
pub mod service;
pub mod shutdown;
pub mod steering;
pub mod table;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod worker;
