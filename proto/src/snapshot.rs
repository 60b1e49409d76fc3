//! The immutable routing snapshot the control plane compiles and the data plane serves.
//! Plain data only: no behaviour beyond encoding, so both planes agree on its meaning.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use crate::rule::Expr;

/// One complete, immutable routing configuration, identified by its generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    /// Monotonic generation number assigned by the control plane.
    pub generation: u64,
    /// Entrypoints (listeners) to serve.
    pub entrypoints: Vec<EntryPoint>,
    /// HTTP routers, in no particular order (the data plane sorts by priority).
    pub routers: Vec<Router>,
    /// HTTP services, referenced by name from routers and from each other.
    pub services: Vec<Service>,
}

/// Errors when encoding or decoding a snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes are not a valid snapshot encoding.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// The snapshot could not be encoded.
    #[error("snapshot does not encode: {0}")]
    Encode(String),
}

impl Snapshot {
    /// Encodes the snapshot to bytes (postcard).
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        postcard::to_stdvec(self).map_err(|e| SnapshotError::Encode(e.to_string()))
    }

    /// Decodes a snapshot from bytes produced by [`Snapshot::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        postcard::from_bytes(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))
    }
}

/// A network entrypoint, as Traefik's `entryPoints.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPoint {
    /// Entrypoint name (`web`, `websecure`, ...).
    pub name: String,
    /// Address to listen on.
    pub address: SocketAddr,
    /// Which peers may set `X-Forwarded-*` headers.
    pub forwarded_headers: ForwardedHeaders,
}

/// Traefik's `entryPoints.<name>.forwardedHeaders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ForwardedHeaders {
    /// Trust forwarded headers from every peer.
    pub insecure: bool,
    /// Peers (IPs or CIDRs) whose forwarded headers are kept.
    pub trusted_ips: Vec<String>,
}

/// An HTTP router: a rule on some entrypoints leading to a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Router {
    /// Router name as Traefik builds it (`ns-ingressroute-hash`).
    pub name: String,
    /// Entrypoints the router is attached to.
    pub entrypoints: Vec<String>,
    /// The rule as written, for reporting.
    pub rule: String,
    /// The parsed rule.
    pub expr: Expr,
    /// Priority; higher is tried first.
    pub priority: i64,
    /// Name of the service that handles matching requests.
    pub service: String,
    /// TLS router: serves only requests that arrived over TLS (Traefik keeps TLS and
    /// cleartext routers of an entrypoint in separate tables).
    pub tls: bool,
}

/// An HTTP service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Service name (`ns-svc-port`, or a router-named weighted service).
    pub name: String,
    /// What kind of service it is.
    pub kind: ServiceKind,
}

/// The kinds of HTTP service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceKind {
    /// Balances over servers (endpoints).
    LoadBalancer(LoadBalancer),
    /// Weighted round robin over other services.
    Weighted(Vec<WeightedService>),
}

/// Traefik's servers load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// Backend servers; may be empty (then requests get 503).
    pub servers: Vec<Server>,
    /// Forward the client's Host header (Traefik default: true).
    pub pass_host_header: bool,
}

/// One backend server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// The server's URL as Traefik reports it (`http://10.0.0.1:80`).
    pub url: String,
    /// Address to connect to.
    pub address: SocketAddr,
    /// Relative weight inside the load balancer.
    pub weight: u32,
}

/// A child of a weighted service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedService {
    /// Name of the child service.
    pub service: String,
    /// Relative weight; 0 is never picked.
    pub weight: u32,
}
