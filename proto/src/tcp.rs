//! The TCP part of the snapshot (Traefik's `tcp` dynamic configuration): TCP routers (rules on
//! the ClientHello's SNI/ALPN and the client address, TLS passthrough or termination), TCP
//! services (load balancers over `ip:port` servers, weighted sets of those), TCP middlewares,
//! TCP servers transports, and the entrypoints' PROXY protocol reception. Plain data.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

use crate::rule::TcpExpr;

/// Everything TCP in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tcp {
    /// TCP routers, sorted by name.
    pub routers: Vec<TcpRouter>,
    /// TCP services, sorted by name.
    pub services: Vec<TcpService>,
    /// TCP middlewares, sorted by name.
    pub middlewares: Vec<TcpMiddleware>,
    /// TCP servers transports, sorted by name (`default@internal` always present when any
    /// service exists).
    pub servers_transports: Vec<TcpServersTransport>,
    /// Per entrypoint: PROXY protocol reception (`entryPoints.<ep>.proxyProtocol`).
    pub proxy_protocol: Vec<EntryPointProxyProtocol>,
}

/// `entryPoints.<name>.proxyProtocol`: which peers may open a connection with a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EntryPointProxyProtocol {
    /// Entrypoint name.
    pub entrypoint: String,
    /// Accept the header from every peer.
    pub insecure: bool,
    /// Peers (IPs or CIDRs) whose header is read; from others the connection is served as is.
    pub trusted_ips: Vec<String>,
}

/// A TCP router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpRouter {
    /// Router name (`<ns>-<ingressRouteTCP>-<hash>`).
    pub name: String,
    /// Entrypoints it is attached to.
    pub entrypoints: Vec<String>,
    /// The rule as written.
    pub rule: String,
    /// The parsed rule.
    pub expr: TcpExpr,
    /// Priority; higher is tried first.
    pub priority: i64,
    /// Service that receives the connection.
    pub service: String,
    /// TLS: `None` for a cleartext router (it only sees connections that are not TLS, and only
    /// `HostSNI(`*`)` can match those).
    pub tls: Option<TcpRouterTls>,
    /// MiddlewareTCP names, in order.
    pub middlewares: Vec<String>,
}

/// TLS settings of a TCP router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpRouterTls {
    /// Forward the TLS bytes untouched (routing on the ClientHello only).
    pub passthrough: bool,
    /// TLS option used to terminate (`default` or `<ns>-<name>`); unused with passthrough.
    pub option: String,
}

/// A TCP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpService {
    /// Service name.
    pub name: String,
    /// What it balances over.
    pub kind: TcpServiceKind,
}

/// The kinds of TCP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpServiceKind {
    /// Round robin over servers, one choice per connection.
    LoadBalancer(TcpLoadBalancer),
    /// Weighted round robin over other TCP services (by name).
    Weighted(Vec<TcpWeighted>),
}

/// Traefik's TCP servers load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpLoadBalancer {
    /// Servers; empty means every connection is closed.
    pub servers: Vec<TcpServer>,
    /// Servers transport name (`default@internal` when none is named).
    pub servers_transport: String,
    /// PROXY protocol version sent to the servers (the deprecated per-service field; the
    /// transport's setting applies when this is `None`).
    pub proxy_protocol: Option<u8>,
    /// Deprecated per-service `terminationDelay`, ms (overrides the transport's).
    pub termination_delay_ms: Option<i64>,
}

/// One TCP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpServer {
    /// Address to connect to.
    pub address: SocketAddr,
    /// Dial it with TLS (`services[n].tls`).
    pub tls: bool,
}

/// One child of a weighted TCP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpWeighted {
    /// Child service name.
    pub service: String,
    /// Weight (0 is never picked).
    pub weight: u32,
}

/// A MiddlewareTCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpMiddleware {
    /// `<ns>-<name>`.
    pub name: String,
    /// What it does.
    pub kind: TcpMiddlewareKind,
}

/// The kinds of MiddlewareTCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpMiddlewareKind {
    /// `inFlightConn.amount`: simultaneous connections per client IP.
    InFlightConn {
        /// Maximum simultaneous connections from one IP.
        amount: u64,
    },
    /// `ipAllowList.sourceRange` (or the deprecated `ipWhiteList`): other clients are closed.
    IpAllowList {
        /// Allowed IPs or CIDRs.
        source_range: Vec<String>,
    },
}

/// Traefik's ServersTransportTCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpServersTransport {
    /// `<ns>-<name>` or `default@internal`.
    pub name: String,
    /// Connect timeout, ms (Traefik default 30 s).
    pub dial_timeout_ms: u64,
    /// TCP keep-alive period, ms (Traefik default 15 s); 0 disables.
    pub dial_keep_alive_ms: u64,
    /// After one side closes its write half, the other direction is closed after this, ms
    /// (Traefik default 100 ms); negative never closes it.
    pub termination_delay_ms: i64,
    /// PROXY protocol version (1 or 2) sent first to the servers.
    pub proxy_protocol: Option<u8>,
    /// TLS to the servers of services marked `tls`.
    pub tls: Option<TcpTransportTls>,
}

impl Default for TcpServersTransport {
    fn default() -> Self {
        TcpServersTransport {
            name: crate::snapshot::DEFAULT_SERVERS_TRANSPORT.into(),
            dial_timeout_ms: 30_000,
            dial_keep_alive_ms: 15_000,
            termination_delay_ms: 100,
            proxy_protocol: None,
            tls: None,
        }
    }
}

/// `ServersTransportTCP.tls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TcpTransportTls {
    /// SNI and verification name.
    pub server_name: Option<String>,
    /// Skip verification.
    pub insecure_skip_verify: bool,
    /// PEM CA bundles.
    pub root_cas: Vec<String>,
    /// Client certificates: (chain PEM, key PEM).
    pub certificates: Vec<(String, String)>,
    /// Required URI SAN of the server certificate.
    pub peer_cert_uri: Option<String>,
}
