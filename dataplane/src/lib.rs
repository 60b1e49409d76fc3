//! weir-dataplane as a library: the binary `weir-dataplane` is a thin `main` over it, and
//! benches, examples and tests reach the sans-IO cores (routing, load balancing) through it.
//! Links neither a tokio runtime nor kube.
#![forbid(unsafe_code)]

pub mod args;
pub mod control;
pub mod health;
pub mod http;
pub mod lb;
pub mod middleware;
pub mod router;
pub mod service;
pub mod table;
pub mod tls;
pub mod worker;
