//! The immutable routing snapshot the control plane compiles and the data plane serves.
//! Plain data only: no behaviour beyond encoding, so both planes agree on its meaning.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::rule::Expr;

/// One complete, immutable routing configuration, identified by its generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Snapshot {
    /// Monotonic generation number assigned by the control plane.
    pub generation: u64,
    /// Entrypoints (listeners) to serve.
    pub entrypoints: Vec<EntryPoint>,
    /// HTTP routers, in no particular order (the data plane sorts by priority). Each is shared
    /// (`Arc`) so that a compile that keeps most of the previous configuration, and a data plane
    /// that applies a delta, copy pointers rather than routers (10,000 routes: W8).
    pub routers: Vec<Arc<Router>>,
    /// HTTP services, referenced by name from routers and from each other (shared, as routers).
    pub services: Vec<Arc<Service>>,
    /// HTTP servers transports (Traefik's `serversTransport`), referenced by name from load
    /// balancers; a load balancer that names none uses the built-in default.
    pub servers_transports: Vec<ServersTransport>,
    /// HTTP middlewares, referenced by name from routers (chains already expanded).
    pub middlewares: Vec<Arc<crate::middleware::Middleware>>,
    /// TLS certificates, options and per-entrypoint SNI mapping.
    pub tls: crate::tls::Tls,
    /// UDP entrypoints, routers and services.
    pub udp: crate::udp::Udp,
    /// TCP routers, services, middlewares, transports and entrypoint PROXY protocol.
    pub tcp: crate::tcp::Tcp,
    /// Metrics and access-log settings (static configuration).
    pub observability: crate::observability::Observability,
    /// Traefik's API, dashboard and ping (internal services and the runtime model).
    pub api: crate::api::Api,
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
    /// `http2.maxConcurrentStreams` (Traefik default 250).
    pub http2_max_concurrent_streams: u32,
    /// Transport options and request limits (timeouts, keep-alive, header size, ...).
    #[serde(default)]
    pub options: crate::entrypoint::EntryPointOptions,
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
    /// Middleware names, applied in order (first = outermost), chains already expanded.
    pub middlewares: Vec<String>,
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
    /// Sends each request to a main service and copies of some to mirrors.
    Mirroring(Mirroring),
    /// Weighted round robin over other services with a sticky cookie.
    StickyWeighted {
        /// The children.
        services: Vec<WeightedService>,
        /// The cookie that pins a client to a child.
        cookie: StickyCookie,
    },
    /// Traefik's `noop@internal`: answers 418 with an empty body.
    Noop,
    /// One of Traefik's other internal services (`api@internal`, `ping@internal`, ...).
    Internal(crate::api::InternalService),
}

/// Traefik's servers load balancer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancer {
    /// Backend servers; may be empty (then requests get 503).
    pub servers: Vec<Server>,
    /// Forward the client's Host header (Traefik default: true).
    pub pass_host_header: bool,
    /// Sticky sessions by cookie.
    pub sticky: Option<StickyCookie>,
    /// Active health check of the servers.
    pub health_check: Option<HealthCheck>,
    /// Name of the servers transport to use; `None` is the default transport.
    pub servers_transport: Option<String>,
    /// `responseForwarding.flushInterval` in milliseconds (Traefik default 100; negative means
    /// flush after every write).
    pub flush_interval_ms: i64,
    /// How a server is chosen (Traefik's `strategy`, default `wrr`).
    #[serde(default)]
    pub strategy: Strategy,
}

/// Traefik's load-balancer strategies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Smooth weighted round robin (`wrr`, also `RoundRobin`).
    #[default]
    Wrr,
    /// Power of two random choices on requests in flight (`p2c`).
    P2c,
    /// Highest random weight by client IP (`hrw`).
    Hrw,
    /// Least time to first byte, weighted, with load (`leasttime`).
    LeastTime,
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
    /// How to speak to the server.
    pub scheme: Scheme,
    /// A host name to resolve (ExternalName services); `address` then carries only the port.
    pub hostname: Option<String>,
    /// Terminating but still serving: reached only by existing sticky sessions (Traefik's
    /// "fenced" servers).
    pub fenced: bool,
}

/// A child of a weighted service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightedService {
    /// Name of the child service.
    pub service: String,
    /// Relative weight; 0 is never picked.
    pub weight: u32,
}

/// How a server is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Scheme {
    /// HTTP/1.1 in clear text.
    #[default]
    Http,
    /// TLS (HTTP/1.1, or HTTP/2 when negotiated by ALPN).
    Https,
    /// HTTP/2 in clear text (prior knowledge).
    H2c,
}

impl Scheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::H2c => "h2c",
        }
    }
}

/// Traefik's `sticky.cookie`, with the name already derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickyCookie {
    /// Cookie name (sanitised, or derived from the service name when none was given).
    pub name: String,
    /// `Secure` attribute.
    pub secure: bool,
    /// `HttpOnly` attribute.
    pub http_only: bool,
    /// `SameSite` attribute: `None`, `Lax`, `Strict`; `None` writes no attribute.
    pub same_site: Option<String>,
    /// `Max-Age`: positive writes it, negative writes `Max-Age=0`, 0 writes nothing.
    pub max_age: i64,
    /// `Path` attribute (Traefik default `/`).
    pub path: Option<String>,
    /// `Domain` attribute.
    pub domain: Option<String>,
}

/// Traefik's mirroring service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirroring {
    /// The service whose response the client gets.
    pub service: String,
    /// Mirrors and the share of requests each receives.
    pub mirrors: Vec<MirrorService>,
    /// Whether mirrors receive the request body (Traefik default true).
    pub mirror_body: bool,
    /// Bodies larger than this are not mirrored; negative means unlimited.
    pub max_body_size: i64,
}

/// One mirror of a [`Mirroring`] service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorService {
    /// Name of the mirror service.
    pub service: String,
    /// Percentage of requests copied to it (0–100).
    pub percent: u32,
}

/// Traefik's `healthCheck` of a load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `grpc` mode (gRPC health protocol) instead of plain HTTP.
    pub grpc: bool,
    /// Scheme override (`http`/`https`).
    pub scheme: Option<String>,
    /// Request path (with optional query).
    pub path: String,
    /// Request method (Traefik default `GET`).
    pub method: String,
    /// Expected status; 0 accepts any 2xx or 3xx.
    pub status: u16,
    /// Port override; 0 keeps the server's.
    pub port: u16,
    /// `Host` header override.
    pub hostname: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Follow redirects (Traefik default true).
    pub follow_redirects: bool,
    /// Interval between checks of a healthy server, ms (Traefik default 30 s).
    pub interval_ms: u64,
    /// Interval between checks of an unhealthy server, ms (default: `interval_ms`).
    pub unhealthy_interval_ms: u64,
    /// Timeout of one check, ms (Traefik default 5 s).
    pub timeout_ms: u64,
}

/// Traefik's `ServersTransport`: how load balancers that name it reach their servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServersTransport {
    /// Name (`<ns>-<name>`, or `default@internal`).
    pub name: String,
    /// SNI and verification name sent to TLS servers.
    pub server_name: Option<String>,
    /// Skip verification of TLS servers' certificates.
    pub insecure_skip_verify: bool,
    /// PEM bundles of CAs to trust instead of the system's.
    pub root_cas: Vec<String>,
    /// Client certificates for mTLS: (certificate chain PEM, private key PEM).
    pub certificates: Vec<(String, String)>,
    /// Idle keep-alive connections kept per server; negative disables reuse.
    pub max_idle_conns_per_host: i64,
    /// TCP connect timeout, ms (Traefik default 30 s).
    pub dial_timeout_ms: u64,
    /// Time allowed for the response head after the request was sent, ms; 0 is none.
    pub response_header_timeout_ms: u64,
    /// Idle pooled connections are closed after this, ms (Traefik default 90 s); 0 is never.
    pub idle_conn_timeout_ms: u64,
    /// Never negotiate HTTP/2 with TLS servers.
    pub disable_http2: bool,
    /// HTTP/2 connections with no frame received for this long are pinged, ms; 0 is never
    /// (Traefik's `readIdleTimeout`).
    pub read_idle_timeout_ms: u64,
    /// An unanswered HTTP/2 ping closes the connection after this, ms (Traefik default 15 s).
    pub ping_timeout_ms: u64,
    /// When set, the server's chain is verified against the roots and its certificate must
    /// carry this URI among its SANs; the host name is not checked (Traefik's `peerCertURI`).
    pub peer_cert_uri: Option<String>,
}

impl Default for ServersTransport {
    fn default() -> Self {
        ServersTransport {
            name: DEFAULT_SERVERS_TRANSPORT.into(),
            server_name: None,
            insecure_skip_verify: false,
            root_cas: Vec::new(),
            certificates: Vec::new(),
            max_idle_conns_per_host: 200,
            dial_timeout_ms: 30_000,
            response_header_timeout_ms: 0,
            idle_conn_timeout_ms: 90_000,
            disable_http2: false,
            read_idle_timeout_ms: 0,
            ping_timeout_ms: 15_000,
            peer_cert_uri: None,
        }
    }
}

/// Name of the transport used by load balancers that name none.
pub const DEFAULT_SERVERS_TRANSPORT: &str = "default@internal";
