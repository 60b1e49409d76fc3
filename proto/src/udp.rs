//! The UDP part of the snapshot (Traefik's `udp` dynamic configuration): UDP entrypoints with
//! their session timeout, UDP routers (no rule: at most one per entrypoint serves) and UDP
//! services (load balancers over `ip:port` servers, weighted sets of those). Plain data.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Traefik's default `entryPoints.<name>.udp.timeout`: 3 seconds.
pub const DEFAULT_UDP_TIMEOUT_MS: u64 = 3_000;

/// Everything UDP in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Udp {
    /// UDP entrypoints (`--entryPoints.<name>.address=:port/udp`), sorted by name.
    pub entrypoints: Vec<UdpEntryPoint>,
    /// UDP routers, sorted by name.
    pub routers: Vec<UdpRouter>,
    /// UDP services, sorted by name.
    pub services: Vec<UdpService>,
}

/// A UDP entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpEntryPoint {
    /// Entrypoint name.
    pub name: String,
    /// Address to receive datagrams on.
    pub address: SocketAddr,
    /// Idle time after which a client's session (flow) is forgotten, in milliseconds.
    pub timeout_ms: u64,
}

/// A UDP router: every datagram of its entrypoints goes to its service. Traefik serves one
/// router per entrypoint (the first by name); the control plane reports the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpRouter {
    /// Router name (`<ns>-<ingressRouteUDP>-<route index>`).
    pub name: String,
    /// Entrypoints it serves.
    pub entrypoints: Vec<String>,
    /// The service new sessions go to.
    pub service: String,
}

/// A UDP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpService {
    /// Service name.
    pub name: String,
    /// What it balances over.
    pub kind: UdpServiceKind,
}

/// The kinds of UDP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UdpServiceKind {
    /// Round robin over servers, one choice per new session.
    LoadBalancer(Vec<SocketAddr>),
    /// Weighted round robin over other UDP services (by name), one choice per new session.
    Weighted(Vec<UdpWeighted>),
}

/// One child of a weighted UDP service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpWeighted {
    /// Name of the child service.
    pub service: String,
    /// Its weight (Traefik default 1; 0 is never picked).
    pub weight: u32,
}
