//! HTTP serving and proxying over hyper: the per-request handler (`proxy`), Traefik's
//! forwarded-header rules (`forwarded`), hop-by-hop header handling (`hop`), the canned
//! responses Traefik sends (`responses`) and the per-worker upstream pool (`pool`); the
//! connection server (`server`: TLS or cleartext, HTTP/1.1 or HTTP/2) and `Upgrade`
//! pass-through (`upgrade`).

pub mod body;
pub mod conn_limit;
pub mod forwarded;
pub mod head_check;
pub mod hop;
pub mod limits;
pub mod path;
pub mod pool;
pub mod proxy;
pub mod responses;
pub mod rewind;
pub mod server;
pub mod transport;
pub mod upgrade;

pub use body::Body;
