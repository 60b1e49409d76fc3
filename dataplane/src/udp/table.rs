//! The UDP routing table built from a snapshot's `udp` part: for each UDP entrypoint, its
//! address, timeout and the service tree of the router serving it; plus the per-worker
//! balancer that picks a backend for each new session (weighted round robin over services,
//! round robin over servers, as Traefik's UDP `WRRLoadBalancer` does per session).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use weir_proto::udp::{Udp, UdpServiceKind};

use crate::lb::wrr::Wrr;

/// Deepest service nesting accepted (the CRD provider builds 2 levels).
const MAX_DEPTH: usize = 8;

/// What a UDP router balances over, with service names resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTree {
    /// Round robin over these servers.
    Servers(Vec<SocketAddr>),
    /// Weighted round robin over children.
    Weighted(Vec<(u32, ServiceTree)>),
}

/// One UDP entrypoint as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpEntry {
    /// Entrypoint name.
    pub name: String,
    /// Bound address.
    pub address: SocketAddr,
    /// Session idle timeout.
    pub timeout: Duration,
    /// Router name and what it balances over; `None` while no router serves the entrypoint
    /// (datagrams are dropped, as Traefik does).
    pub route: Option<(String, Arc<ServiceTree>)>,
}

/// Every UDP entrypoint of a snapshot, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpTable {
    /// Entrypoints by name.
    pub entrypoints: HashMap<String, UdpEntry>,
}

/// Why a snapshot's UDP part cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpTableError {
    /// A router or weighted service names a service the snapshot does not have.
    #[error("UDP service {0} does not exist")]
    MissingService(String),
    /// Weighted services nest deeper than anything the control plane builds (or loop).
    #[error("UDP service {0} nests too deep")]
    TooDeep(String),
}

impl UdpTable {
    /// Builds the table; a router naming a missing service rejects the snapshot (the control
    /// plane never publishes one).
    pub fn build(udp: &Udp) -> Result<UdpTable, UdpTableError> {
        let services: HashMap<&str, &UdpServiceKind> =
            udp.services.iter().map(|s| (s.name.as_str(), &s.kind)).collect();
        let mut entrypoints = HashMap::new();
        for ep in &udp.entrypoints {
            // The control plane leaves one router per entrypoint; the first by name wins here too.
            let route = match udp.routers.iter().find(|r| r.entrypoints.contains(&ep.name)) {
                Some(r) => Some((r.name.clone(), Arc::new(tree(&services, &r.service, 0)?))),
                None => None,
            };
            let entry = UdpEntry {
                name: ep.name.clone(),
                address: ep.address,
                timeout: Duration::from_millis(ep.timeout_ms.max(1)),
                route,
            };
            entrypoints.insert(ep.name.clone(), entry);
        }
        Ok(UdpTable { entrypoints })
    }
}

fn tree(
    services: &HashMap<&str, &UdpServiceKind>,
    name: &str,
    depth: usize,
) -> Result<ServiceTree, UdpTableError> {
    if depth > MAX_DEPTH {
        return Err(UdpTableError::TooDeep(name.into()));
    }
    match services.get(name) {
        None => Err(UdpTableError::MissingService(name.into())),
        Some(UdpServiceKind::LoadBalancer(servers)) => Ok(ServiceTree::Servers(servers.clone())),
        Some(UdpServiceKind::Weighted(children)) => children
            .iter()
            .map(|c| Ok((c.weight, tree(services, &c.service, depth + 1)?)))
            .collect::<Result<_, _>>()
            .map(ServiceTree::Weighted),
    }
}

/// Per-worker choice of a backend for new sessions over one [`ServiceTree`].
#[derive(Debug)]
pub enum Balancer {
    /// Round robin over servers.
    Servers {
        /// The servers.
        servers: Vec<SocketAddr>,
        /// Next index.
        next: usize,
    },
    /// Weighted round robin over children.
    Weighted {
        /// Smooth WRR state.
        wrr: Wrr,
        /// The children.
        children: Vec<Balancer>,
    },
}

impl Balancer {
    /// Fresh state over `tree`.
    pub fn new(tree: &ServiceTree) -> Balancer {
        match tree {
            ServiceTree::Servers(servers) => Balancer::Servers { servers: servers.clone(), next: 0 },
            ServiceTree::Weighted(children) => Balancer::Weighted {
                wrr: Wrr::new(children.iter().map(|(w, _)| *w)),
                children: children.iter().map(|(_, t)| Balancer::new(t)).collect(),
            },
        }
    }

    /// The backend of the next new session; `None` when there is no server to pick (empty
    /// load balancers, every weight 0).
    pub fn pick(&mut self) -> Option<SocketAddr> {
        match self {
            Balancer::Servers { servers, next } => {
                let s = *servers.get(*next % servers.len().max(1))?;
                *next = (*next + 1) % servers.len();
                Some(s)
            }
            Balancer::Weighted { wrr, children } => {
                // A child without servers is skipped, so the others share its turns.
                let empty: Vec<bool> = children.iter().map(Balancer::is_empty).collect();
                let i = wrr.pick_where(|i| !empty[i])?;
                children[i].pick()
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Balancer::Servers { servers, .. } => servers.is_empty(),
            Balancer::Weighted { children, .. } => children.iter().all(Balancer::is_empty),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::udp::{UdpEntryPoint, UdpRouter, UdpService, UdpWeighted};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    fn lb(name: &str, ports: &[u16]) -> UdpService {
        UdpService {
            name: name.into(),
            kind: UdpServiceKind::LoadBalancer(ports.iter().map(|p| addr(*p)).collect()),
        }
    }

    fn weighted(name: &str, children: &[(&str, u32)]) -> UdpService {
        UdpService {
            name: name.into(),
            kind: UdpServiceKind::Weighted(
                children.iter().map(|(s, w)| UdpWeighted { service: (*s).into(), weight: *w }).collect(),
            ),
        }
    }

    fn udp(services: Vec<UdpService>) -> Udp {
        Udp {
            entrypoints: vec![UdpEntryPoint { name: "dns".into(), address: addr(53), timeout_ms: 3000 }],
            routers: vec![UdpRouter {
                name: "r".into(),
                entrypoints: vec!["dns".into()],
                service: "top".into(),
            }],
            services,
        }
    }

    #[test]
    fn picks() {
        type Case = (&'static str, Vec<UdpService>, Vec<Option<u16>>);
        let cases: Vec<Case> = vec![
            (
                "round robin over servers",
                vec![lb("top", &[1, 2, 3])],
                vec![Some(1), Some(2), Some(3), Some(1)],
            ),
            ("empty load balancer drops", vec![lb("top", &[])], vec![None, None]),
            (
                "weights 3:1 over two services",
                vec![weighted("top", &[("a", 3), ("b", 1)]), lb("a", &[1]), lb("b", &[2])],
                vec![Some(1), Some(1), Some(2), Some(1), Some(1), Some(1), Some(2), Some(1)],
            ),
            (
                "weight 0 never picked",
                vec![weighted("top", &[("a", 0), ("b", 1)]), lb("a", &[1]), lb("b", &[2])],
                vec![Some(2), Some(2)],
            ),
            (
                "an empty child gives its turns to the others",
                vec![weighted("top", &[("a", 1), ("b", 1)]), lb("a", &[]), lb("b", &[2, 3])],
                vec![Some(2), Some(3), Some(2)],
            ),
        ];
        for (name, services, want) in cases {
            let table = UdpTable::build(&udp(services)).expect(name);
            let (_, tree) = table.entrypoints["dns"].route.clone().expect(name);
            let mut b = Balancer::new(&tree);
            let got: Vec<Option<u16>> = want.iter().map(|_| b.pick().map(|a| a.port())).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn bad_snapshots() {
        let missing = UdpTable::build(&udp(vec![weighted("top", &[("nope", 1)])]));
        assert_eq!(missing, Err(UdpTableError::MissingService("nope".into())));
        let looped = UdpTable::build(&udp(vec![weighted("top", &[("top", 1)])]));
        assert!(matches!(looped, Err(UdpTableError::TooDeep(_))), "{looped:?}");
        let unrouted = Udp { routers: vec![], ..udp(vec![]) };
        let table = UdpTable::build(&unrouted).expect("no router is fine");
        assert_eq!(table.entrypoints["dns"].route, None);
    }
}
