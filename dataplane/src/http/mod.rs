//! HTTP serving and proxying over hyper: the per-request handler (`proxy`), Traefik's
//! forwarded-header rules (`forwarded`), hop-by-hop header handling (`hop`), the canned
//! responses Traefik sends (`responses`) and the per-worker upstream pool (`pool`).

pub mod forwarded;
pub mod hop;
pub mod path;
pub mod pool;
pub mod proxy;
pub mod responses;

/// Body of every response weir sends: the backend's, streamed, or a canned one.
pub type Body = http_body_util::Either<hyper::body::Incoming, http_body_util::Full<bytes::Bytes>>;
