//! Load-balancing decisions. Sans-IO: state is owned by the caller (one per worker and service).
//! `wrr` is Traefik's default; `p2c`, `hrw` and `leasttime` are the other strategies a
//! Service load balancer may name; `rng` feeds the random ones.

pub mod hrw;
pub mod leasttime;
pub mod p2c;
pub mod rng;
pub mod wrr;

/// The client address a request came from (hrw hashes it); set by the request handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);
