//! TCP routing (Traefik's `tcp` routers, services, middlewares and transports) and the
//! entrypoints' PROXY protocol reception. `TcpTable` is built once per snapshot on the control
//! thread and shared read-only by the workers; `conn` decides what an accepted connection is
//! (TCP route, or HTTP with what was read), `proxy` moves its bytes. Nothing here serves HTTP.

pub mod conn;
pub mod proxy;
pub mod router;
pub mod sockmap;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir_proto::net::Cidr;
use weir_proto::snapshot::{ServersTransport, Snapshot};
use weir_proto::tcp::{TcpMiddlewareKind, TcpRouterTls, TcpServiceKind};

use router::{CompiledTcpExpr, ConnInfo};

/// Why the TCP part of a snapshot cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TcpTableError {
    /// A router names a service, middleware or transport the snapshot does not define.
    #[error("TCP router or service {owner}: {what} {name} is not defined")]
    Missing {
        /// Who refers to it.
        owner: String,
        /// What kind of thing is missing.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// A rule regex that does not compile, a bad CIDR, a transport that does not build.
    #[error("TCP {owner}: {reason}")]
    Invalid {
        /// Who is wrong.
        owner: String,
        /// Why.
        reason: String,
    },
}

/// Everything TCP of one generation.
#[derive(Debug, Default)]
pub struct TcpTable {
    /// Per entrypoint (only those with TCP routers or PROXY protocol).
    pub entrypoints: HashMap<String, TcpEntryPoint>,
    services: Vec<Service>,
}

/// One entrypoint's TCP routers and PROXY protocol trust.
#[derive(Debug, Default)]
pub struct TcpEntryPoint {
    /// Routers for TLS connections, highest priority first.
    pub tls_routers: Vec<TcpRoute>,
    /// Routers for cleartext connections (only `HostSNI(`*`)` rules), highest priority first.
    pub plain_routers: Vec<TcpRoute>,
    /// PROXY protocol reception, when configured.
    pub proxy: Option<ProxyTrust>,
}

impl TcpEntryPoint {
    /// The first TLS router matching the connection.
    pub fn match_tls(&self, c: &ConnInfo<'_>) -> Option<&TcpRoute> {
        self.tls_routers.iter().find(|r| r.expr.matches(c))
    }

    /// The first cleartext router matching the connection.
    pub fn match_plain(&self, c: &ConnInfo<'_>) -> Option<&TcpRoute> {
        self.plain_routers.iter().find(|r| r.expr.matches(c))
    }
}

/// Which peers may send a PROXY header.
#[derive(Debug)]
pub struct ProxyTrust {
    insecure: bool,
    trusted: Vec<Cidr>,
}

impl ProxyTrust {
    /// Whether the header from `peer` is read.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.insecure || self.trusted.iter().any(|c| c.contains(peer))
    }
}

/// A compiled TCP router.
#[derive(Debug)]
pub struct TcpRoute {
    /// Router name.
    pub name: String,
    /// The rule.
    pub expr: CompiledTcpExpr,
    /// Priority.
    pub priority: i64,
    /// Service id.
    pub service: usize,
    /// TLS settings (`None`: cleartext router).
    pub tls: Option<TcpRouterTls>,
    /// Middlewares, in order.
    pub middlewares: Vec<Arc<Middleware>>,
}

/// A compiled MiddlewareTCP.
#[derive(Debug)]
pub enum Middleware {
    /// Simultaneous connections per client IP, counted across workers without locks: one
    /// atomic counter per hash slot of the IP (IPs sharing a slot share the limit; with
    /// [`IN_FLIGHT_SLOTS`] slots that needs many simultaneous clients).
    InFlightConn {
        /// Limit.
        amount: u64,
        /// Open connections by slot.
        open: Box<[AtomicU32]>,
    },
    /// Allowed client ranges.
    IpAllowList(Vec<Cidr>),
}

/// Counter slots of an `inFlightConn` middleware.
pub const IN_FLIGHT_SLOTS: usize = 16_384;

/// Holds one in-flight connection; released on drop.
pub struct InFlightSlot {
    middleware: Arc<Middleware>,
    slot: usize,
}

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        if let Middleware::InFlightConn { open, .. } = &*self.middleware {
            open[self.slot].fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A middleware's answer to a new connection.
pub enum Admission {
    /// Go on (holding the slot, if any, for the connection's lifetime).
    Admitted(Option<InFlightSlot>),
    /// Close the connection (Traefik closes it without a word).
    Refused,
}

fn slot_of(ip: IpAddr) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ip.hash(&mut h);
    (h.finish() as usize) % IN_FLIGHT_SLOTS
}

impl Middleware {
    /// Admits or refuses a connection from `ip`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        match &**self {
            Middleware::IpAllowList(ranges) => {
                if ranges.iter().any(|c| c.contains(ip)) {
                    Admission::Admitted(None)
                } else {
                    Admission::Refused
                }
            }
            Middleware::InFlightConn { amount, open } => {
                let slot = slot_of(ip);
                let limit = u32::try_from(*amount).unwrap_or(u32::MAX);
                let taken = open[slot]
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1));
                match taken {
                    Ok(_) => Admission::Admitted(Some(InFlightSlot { middleware: Arc::clone(self), slot })),
                    Err(_) => Admission::Refused,
                }
            }
        }
    }
}

/// A compiled servers transport.
#[derive(Debug)]
pub struct Transport {
    /// Connect timeout.
    pub dial_timeout: Duration,
    /// TCP keep-alive period (`None`: off).
    pub keep_alive: Option<Duration>,
    /// Once one direction ended, the other is cut after this (`None`: never).
    pub termination_delay: Option<Duration>,
    /// PROXY protocol version sent first.
    pub proxy_protocol: Option<u8>,
    /// TLS to servers marked `tls`, and the name to send.
    pub tls: Option<(Arc<rustls::ClientConfig>, Option<String>)>,
}

#[derive(Debug)]
enum Service {
    LoadBalancer {
        servers: Vec<weir_proto::tcp::TcpServer>,
        transport: Arc<Transport>,
        proxy_protocol: Option<u8>,
        termination_delay: Option<Option<Duration>>,
        next: AtomicUsize,
    },
    Weighted {
        children: Vec<(usize, u32)>,
        total: u64,
        next: AtomicUsize,
    },
}

/// Where one connection goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address.
    pub address: SocketAddr,
    /// Dial with TLS.
    pub tls: bool,
    /// The transport.
    pub transport: Arc<Transport>,
    /// PROXY protocol version to send.
    pub proxy_protocol: Option<u8>,
    /// Delay before cutting the other direction.
    pub termination_delay: Option<Duration>,
}

fn delay(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

impl TcpTable {
    /// Builds the TCP table of a snapshot.
    pub fn build(snapshot: &Snapshot) -> Result<TcpTable, TcpTableError> {
        let tcp = &snapshot.tcp;
        let invalid = |owner: &str, reason: String| TcpTableError::Invalid { owner: owner.into(), reason };
        let missing = |owner: &str, what, name: &str| TcpTableError::Missing {
            owner: owner.into(),
            what,
            name: name.into(),
        };

        let mut transports: HashMap<&str, Arc<Transport>> = HashMap::new();
        for t in &tcp.servers_transports {
            let tls = match &t.tls {
                None => None,
                Some(tls) => {
                    let as_http = ServersTransport {
                        name: t.name.clone(),
                        server_name: tls.server_name.clone(),
                        insecure_skip_verify: tls.insecure_skip_verify,
                        root_cas: tls.root_cas.clone(),
                        certificates: tls.certificates.clone(),
                        peer_cert_uri: tls.peer_cert_uri.clone(),
                        ..ServersTransport::default()
                    };
                    let built = crate::http::transport::Transport::build(&as_http)
                        .map_err(|e| invalid(&format!("serversTransport {}", t.name), e))?;
                    Some((built.http1_tls(), tls.server_name.clone()))
                }
            };
            transports.insert(
                t.name.as_str(),
                Arc::new(Transport {
                    dial_timeout: Duration::from_millis(t.dial_timeout_ms.max(1)),
                    keep_alive: (t.dial_keep_alive_ms > 0)
                        .then(|| Duration::from_millis(t.dial_keep_alive_ms)),
                    termination_delay: delay(t.termination_delay_ms),
                    proxy_protocol: t.proxy_protocol,
                    tls,
                }),
            );
        }
        let ids: HashMap<&str, usize> =
            tcp.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let mut services = Vec::with_capacity(tcp.services.len());
        for s in &tcp.services {
            services.push(match &s.kind {
                TcpServiceKind::LoadBalancer(lb) => {
                    let mut transport = transports
                        .get(lb.servers_transport.as_str())
                        .cloned()
                        .ok_or_else(|| missing(&s.name, "serversTransport", &lb.servers_transport))?;
                    if transport.tls.is_none() && lb.servers.iter().any(|srv| srv.tls) {
                        // `tls: true` on a service whose transport has no TLS section: system roots.
                        let built = crate::http::transport::Transport::build(&ServersTransport::default())
                            .map_err(|e| invalid(&s.name, e))?;
                        let mut t =
                            Transport { tls: Some((built.http1_tls(), None)), ..clone_transport(&transport) };
                        t.proxy_protocol = transport.proxy_protocol;
                        transport = Arc::new(t);
                    }
                    Service::LoadBalancer {
                        servers: lb.servers.clone(),
                        transport,
                        proxy_protocol: lb.proxy_protocol,
                        termination_delay: lb.termination_delay_ms.map(delay),
                        next: AtomicUsize::new(0),
                    }
                }
                TcpServiceKind::Weighted(children) => {
                    let mut out = Vec::with_capacity(children.len());
                    for c in children {
                        let id = *ids
                            .get(c.service.as_str())
                            .ok_or_else(|| missing(&s.name, "service", &c.service))?;
                        out.push((id, c.weight));
                    }
                    let total = out.iter().map(|(_, w)| u64::from(*w)).sum();
                    Service::Weighted { children: out, total, next: AtomicUsize::new(0) }
                }
            });
        }
        let mut middlewares: HashMap<&str, Arc<Middleware>> = HashMap::new();
        for m in &tcp.middlewares {
            let compiled = match &m.kind {
                TcpMiddlewareKind::InFlightConn { amount } => Middleware::InFlightConn {
                    amount: *amount,
                    open: (0..IN_FLIGHT_SLOTS).map(|_| AtomicU32::new(0)).collect(),
                },
                TcpMiddlewareKind::IpAllowList { source_range } => Middleware::IpAllowList(
                    source_range
                        .iter()
                        .map(|r| Cidr::parse(r).map_err(|e| invalid(&m.name, e.to_string())))
                        .collect::<Result<_, _>>()?,
                ),
            };
            middlewares.insert(m.name.as_str(), Arc::new(compiled));
        }

        let mut entrypoints: HashMap<String, TcpEntryPoint> = HashMap::new();
        for p in &tcp.proxy_protocol {
            let trusted = p
                .trusted_ips
                .iter()
                .map(|s| {
                    Cidr::parse(s)
                        .map_err(|e| invalid(&format!("entrypoint {}", p.entrypoint), e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            entrypoints.entry(p.entrypoint.clone()).or_default().proxy =
                Some(ProxyTrust { insecure: p.insecure, trusted });
        }
        let known: std::collections::HashSet<&str> =
            snapshot.entrypoints.iter().map(|e| e.name.as_str()).collect();
        for r in &tcp.routers {
            let service =
                *ids.get(r.service.as_str()).ok_or_else(|| missing(&r.name, "service", &r.service))?;
            let chain = r
                .middlewares
                .iter()
                .map(|m| {
                    middlewares.get(m.as_str()).cloned().ok_or_else(|| missing(&r.name, "middleware", m))
                })
                .collect::<Result<Vec<_>, _>>()?;
            for ep in r.entrypoints.iter().filter(|ep| known.contains(ep.as_str())) {
                let expr = CompiledTcpExpr::compile(&r.expr).map_err(|e| invalid(&r.name, e.to_string()))?;
                let route = TcpRoute {
                    name: r.name.clone(),
                    expr,
                    priority: r.priority,
                    service,
                    tls: r.tls.clone(),
                    middlewares: chain.clone(),
                };
                let table = entrypoints.entry(ep.clone()).or_default();
                if route.tls.is_some() {
                    table.tls_routers.push(route);
                } else {
                    table.plain_routers.push(route);
                }
            }
        }
        for t in entrypoints.values_mut() {
            // Traefik: highest priority first; ties broken by name here, for determinism.
            for list in [&mut t.tls_routers, &mut t.plain_routers] {
                list.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
            }
        }
        Ok(TcpTable { entrypoints, services })
    }

    /// Picks the server for a new connection to service `id` (round robin, weighted over
    /// children); `None` when there is none.
    pub fn pick(&self, id: usize) -> Option<Target> {
        let mut id = id;
        // Weighted services nest at most as deep as there are services.
        for _ in 0..=self.services.len() {
            match self.services.get(id)? {
                Service::LoadBalancer { servers, transport, proxy_protocol, termination_delay, next } => {
                    if servers.is_empty() {
                        return None;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed) % servers.len();
                    let s = &servers[i];
                    return Some(Target {
                        address: s.address,
                        tls: s.tls,
                        transport: Arc::clone(transport),
                        proxy_protocol: proxy_protocol.or(transport.proxy_protocol),
                        termination_delay: termination_delay.unwrap_or(transport.termination_delay),
                    });
                }
                Service::Weighted { children, total, next } => {
                    if *total == 0 {
                        return None;
                    }
                    let mut at = (next.fetch_add(1, Ordering::Relaxed) as u64) % total;
                    let mut chosen = None;
                    for (child, w) in children {
                        if at < u64::from(*w) {
                            chosen = Some(*child);
                            break;
                        }
                        at -= u64::from(*w);
                    }
                    id = chosen?;
                }
            }
        }
        None
    }
}

fn clone_transport(t: &Transport) -> Transport {
    Transport {
        dial_timeout: t.dial_timeout,
        keep_alive: t.keep_alive,
        termination_delay: t.termination_delay,
        proxy_protocol: t.proxy_protocol,
        tls: t.tls.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::snapshot::{EntryPoint, ForwardedHeaders};
    use weir_proto::tcp::{
        Tcp, TcpLoadBalancer, TcpRouter, TcpServer, TcpServersTransport, TcpService, TcpWeighted,
    };

    fn lb(name: &str, addrs: &[&str]) -> TcpService {
        TcpService {
            name: name.into(),
            kind: TcpServiceKind::LoadBalancer(TcpLoadBalancer {
                servers: addrs
                    .iter()
                    .map(|a| TcpServer { address: a.parse().expect("addr"), tls: false })
                    .collect(),
                servers_transport: "default@internal".into(),
                proxy_protocol: None,
                termination_delay_ms: None,
            }),
        }
    }

    fn snapshot() -> Snapshot {
        let router = |name: &str, rule: &str, priority: i64, tls: bool| TcpRouter {
            name: name.into(),
            entrypoints: vec!["tcp".into()],
            rule: rule.into(),
            expr: weir_proto::rule::parse_tcp(rule).expect("rule"),
            priority,
            service: "w".into(),
            tls: tls.then(|| TcpRouterTls { passthrough: true, option: "default".into() }),
            middlewares: vec![],
        };
        Snapshot {
            entrypoints: vec![EntryPoint {
                name: "tcp".into(),
                address: "127.0.0.1:1".parse().expect("addr"),
                forwarded_headers: ForwardedHeaders::default(),
                http2_max_concurrent_streams: 250,
                options: Default::default(),
            }],
            tcp: Tcp {
                routers: vec![
                    router("all", "HostSNI(`*`)", -1, false),
                    router("a", "HostSNI(`a`)", 12, true),
                    router("star-tls", "HostSNI(`*`)", -1, true),
                ],
                services: vec![
                    lb("one", &["10.0.0.1:1"]),
                    lb("two", &["10.0.0.2:1", "10.0.0.3:1"]),
                    TcpService {
                        name: "w".into(),
                        kind: TcpServiceKind::Weighted(vec![
                            TcpWeighted { service: "one".into(), weight: 1 },
                            TcpWeighted { service: "two".into(), weight: 2 },
                        ]),
                    },
                ],
                servers_transports: vec![TcpServersTransport::default()],
                ..Tcp::default()
            },
            ..Snapshot::default()
        }
    }

    #[test]
    fn routes_and_balances() {
        let t = TcpTable::build(&snapshot()).expect("valid");
        let ep = &t.entrypoints["tcp"];
        let info = |sni| ConnInfo { sni, alpn: &[], client_ip: [127, 0, 0, 1].into() };
        assert_eq!(ep.match_tls(&info(Some("a"))).map(|r| r.name.as_str()), Some("a"));
        assert_eq!(ep.match_tls(&info(Some("b"))).map(|r| r.name.as_str()), Some("star-tls"));
        assert_eq!(ep.match_plain(&info(None)).map(|r| r.name.as_str()), Some("all"));
        let service = ep.plain_routers[0].service;
        let picks: Vec<String> =
            (0..6).map(|_| t.pick(service).expect("server").address.to_string()).collect();
        let count = |a: &str| picks.iter().filter(|p| *p == a).count();
        assert_eq!((count("10.0.0.1:1"), count("10.0.0.2:1") + count("10.0.0.3:1")), (2, 4), "{picks:?}");
    }

    #[test]
    fn refuses_dangling_names() {
        let mut s = snapshot();
        s.tcp.routers[0].service = "nope".into();
        assert!(TcpTable::build(&s).expect_err("missing service").to_string().contains("nope"));
        let mut s = snapshot();
        s.tcp.routers[0].middlewares = vec!["mw".into()];
        assert!(TcpTable::build(&s).expect_err("missing middleware").to_string().contains("mw"));
    }

    #[test]
    fn middlewares_admit() {
        let limit = Arc::new(Middleware::InFlightConn {
            amount: 2,
            open: (0..IN_FLIGHT_SLOTS).map(|_| AtomicU32::new(0)).collect(),
        });
        let admitted = |a: &Admission| matches!(a, Admission::Admitted(_));
        let ip: IpAddr = [10, 0, 0, 1].into();
        let first = limit.admit(ip);
        let second = limit.admit(ip);
        assert!(admitted(&first) && admitted(&second), "two admitted");
        assert!(!admitted(&limit.admit(ip)), "third refused while two are open");
        let other: IpAddr = [10, 0, 0, 2].into();
        if slot_of(other) != slot_of(ip) {
            assert!(admitted(&limit.admit(other)), "another IP admitted");
        }
        drop(first);
        assert!(admitted(&limit.admit(ip)), "admitted again once one closed");
        drop(second);
        let allow = Arc::new(Middleware::IpAllowList(vec![Cidr::parse("10.0.0.0/8").expect("cidr")]));
        assert!(admitted(&allow.admit(ip)));
        assert!(!admitted(&allow.admit([11, 0, 0, 1].into())));
    }
}
