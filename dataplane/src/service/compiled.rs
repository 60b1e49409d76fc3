//! Services as the data plane serves them, compiled once per snapshot on the control thread:
//! children resolved to ids, sticky-cookie values hashed, ExternalName hosts resolved,
//! servers transports built, health flags attached. Building rejects a snapshot whose
//! services do not fit together (missing child, missing transport, cycle).

use foldhash::{HashMap, HashMapExt};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::HeaderValue;
use weir_proto::snapshot::{self as s, Scheme, ServiceKind, Snapshot, StickyCookie};

use super::sticky;
use crate::http::transport::Transport;
use crate::table::{ServiceId, TableError};

/// One backend server.
#[derive(Debug)]
pub struct Server {
    /// Address to connect to; `None` when its host name did not resolve (502 on use).
    pub resolved: Option<SocketAddr>,
    /// Address as written in the snapshot (port kept for unresolved names).
    pub address: SocketAddr,
    /// Relative weight.
    pub weight: u32,
    /// URL as Traefik reports it.
    pub url: String,
    /// How to speak to it.
    pub scheme: Scheme,
    /// `host:port` of the URL: the `Host` sent when `passHostHeader` is false.
    pub authority: HeaderValue,
    /// Host part of the URL (TLS server name unless the transport sets one).
    pub host: String,
    /// Terminating: only existing sticky sessions reach it.
    pub fenced: bool,
    /// Traefik's sticky value: the first 16 hex digits of sha256(url).
    pub sticky_value: String,
    /// Health, written by the health checker, read at pick time.
    pub health: Arc<AtomicBool>,
}

impl Server {
    /// Whether the health checker (if any) considers it up.
    pub fn healthy(&self) -> bool {
        self.health.load(Ordering::Relaxed)
    }
}

/// A compiled sticky cookie.
#[derive(Debug)]
pub struct Sticky {
    /// The configuration (name and attributes).
    pub cookie: StickyCookie,
}

/// Traefik's servers load balancer.
#[derive(Debug)]
pub struct LoadBalancer {
    /// Servers; empty means 503.
    pub servers: Vec<Server>,
    /// Forward the client's Host header.
    pub pass_host_header: bool,
    /// Sticky sessions.
    pub sticky: Option<Sticky>,
    /// How servers are reached.
    pub transport: Arc<Transport>,
    /// Active health check (also tells whether servers' flags can go down).
    pub health_check: Option<s::HealthCheck>,
    /// How a server is chosen.
    pub strategy: s::Strategy,
}

/// A compiled service.
#[derive(Debug)]
pub enum Service {
    /// Balances over servers (shared with the next table when its definition is unchanged,
    /// see [`compile_reusing`]).
    LoadBalancer(Arc<LoadBalancer>),
    /// Weighted round robin over child services.
    Weighted {
        /// Children and weights.
        children: Vec<(ServiceId, u32)>,
        /// Sticky cookie over the children (TraefikService weighted).
        sticky: Option<Sticky>,
        /// Sticky value of each child: sha256(child name) prefix.
        values: Vec<String>,
    },
    /// Main service plus mirrors.
    Mirroring {
        /// Service that answers the client.
        main: ServiceId,
        /// Mirrors and their percentages.
        mirrors: Vec<(ServiceId, u32)>,
        /// Copy the body to mirrors.
        mirror_body: bool,
        /// Largest mirrored body; negative is unlimited.
        max_body_size: i64,
    },
    /// `noop@internal`: 418.
    Noop,
    /// Traefik's other internal services, answered by `crate::admin`.
    Internal(weir_proto::api::InternalService),
}

impl Service {
    /// Weights of the candidates this service balances over (for per-worker state).
    pub fn weights(&self) -> Vec<u32> {
        match self {
            Service::LoadBalancer(lb) => lb.servers.iter().map(|s| s.weight).collect(),
            Service::Weighted { children, .. } => children.iter().map(|c| c.1).collect(),
            Service::Mirroring { mirrors, .. } => mirrors.iter().map(|m| m.1).collect(),
            Service::Noop | Service::Internal(_) => Vec::new(),
        }
    }
}

/// A server the health checker must watch.
#[derive(Debug, Clone)]
pub struct HealthTarget {
    /// Stable identity: service name and server URL.
    pub key: (String, String),
    /// Where to connect.
    pub address: Option<SocketAddr>,
    /// Server URL parts.
    pub scheme: Scheme,
    /// Host of the server URL.
    pub host: String,
    /// The check.
    pub check: s::HealthCheck,
    /// The transport of its load balancer.
    pub transport: Arc<Transport>,
    /// The flag the workers read.
    pub flag: Arc<AtomicBool>,
}

/// Compiled services and what the health checker needs.
pub struct Compiled {
    /// Services by id (snapshot order).
    pub services: Vec<Service>,
    /// Servers to health-check.
    pub health_targets: Vec<HealthTarget>,
}

/// Compiles the snapshot's services. `health_flag` hands out the (persistent) flag of a
/// health-checked server.
pub fn compile(
    snapshot: &Snapshot,
    health_flag: &mut dyn FnMut(&str, &str) -> Arc<AtomicBool>,
) -> Result<Compiled, TableError> {
    compile_reusing(snapshot, None, health_flag)
}

/// The services served before, and which definitions did not change since.
pub struct Previous<'a> {
    /// Names of the previous services, by id.
    pub names: &'a [String],
    /// The previous services, by id.
    pub services: &'a [Service],
    /// Whether a service of the new snapshot is defined exactly as the previous service of
    /// that name was.
    pub unchanged: &'a dyn Fn(&s::Service) -> bool,
}

/// [`compile`], reusing the compiled load balancer of every service whose definition (and
/// servers transport) did not change since `previous`. At 10,000 services a full compile
/// costs ~35 ms (per server: the sticky hash, address strings, header values); a change to
/// one route should not pay it. ExternalName servers are compiled again (their host names
/// are resolved at every apply).
pub fn compile_reusing(
    snapshot: &Snapshot,
    previous: Option<Previous<'_>>,
    health_flag: &mut dyn FnMut(&str, &str) -> Arc<AtomicBool>,
) -> Result<Compiled, TableError> {
    // The previous service of a name: at the same position when the list did not move there
    // (the usual case for one change among 10,000), else by name (built once, on first need).
    let mut by_name: Option<HashMap<&str, &Service>> = None;
    let mut old = |i: usize, name: &str| -> Option<&Service> {
        let p = previous.as_ref()?;
        if p.names.get(i).is_some_and(|n| n == name) {
            return p.services.get(i);
        }
        by_name
            .get_or_insert_with(|| p.names.iter().map(String::as_str).zip(p.services).collect())
            .get(name)
            .copied()
    };
    let unchanged = |svc: &s::Service| previous.as_ref().is_some_and(|p| (p.unchanged)(svc));
    let ids: HashMap<&str, ServiceId> =
        snapshot.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let mut transports: HashMap<&str, Arc<Transport>> = HashMap::new();
    let default = transport(&s::ServersTransport::default())?;
    for t in &snapshot.servers_transports {
        transports.insert(t.name.as_str(), transport(t)?);
    }
    let child = |parent: &str, name: &str| {
        ids.get(name)
            .copied()
            .ok_or_else(|| TableError::MissingChild { parent: parent.to_string(), child: name.to_string() })
    };
    // Servers without a health check are always up: they share one flag nobody writes.
    let always_up = Arc::new(AtomicBool::new(true));
    let mut services = Vec::with_capacity(snapshot.services.len());
    let mut health_targets = Vec::new();
    for (i, svc) in snapshot.services.iter().enumerate() {
        services.push(match &svc.kind {
            ServiceKind::LoadBalancer(lb) => {
                let transport = match &lb.servers_transport {
                    None => Arc::clone(&default),
                    Some(name) => transports.get(name.as_str()).cloned().ok_or_else(|| {
                        TableError::Transport { name: name.clone(), reason: "not defined".into() }
                    })?,
                };
                let kept = match old(i, &svc.name) {
                    Some(Service::LoadBalancer(compiled))
                        if unchanged(svc)
                            && Arc::ptr_eq(&compiled.transport, &transport)
                            && lb.servers.iter().all(|v| v.hostname.is_none()) =>
                    {
                        Some(Arc::clone(compiled))
                    }
                    _ => None,
                };
                let compiled = match kept {
                    Some(compiled) => compiled,
                    None => {
                        let servers = lb
                            .servers
                            .iter()
                            .map(|v| {
                                let flag = match &lb.health_check {
                                    Some(_) => health_flag(&svc.name, &v.url),
                                    None => Arc::clone(&always_up),
                                };
                                server(v, flag)
                            })
                            .collect();
                        Arc::new(LoadBalancer {
                            servers,
                            pass_host_header: lb.pass_host_header,
                            sticky: lb.sticky.clone().map(|cookie| Sticky { cookie }),
                            transport: Arc::clone(&transport),
                            health_check: lb.health_check.clone(),
                            strategy: lb.strategy,
                        })
                    }
                };
                if let Some(check) = &lb.health_check {
                    for server in &compiled.servers {
                        health_targets.push(HealthTarget {
                            key: (svc.name.clone(), server.url.clone()),
                            address: server.resolved,
                            scheme: server.scheme,
                            host: server.host.clone(),
                            check: check.clone(),
                            transport: Arc::clone(&transport),
                            flag: Arc::clone(&server.health),
                        });
                    }
                }
                Service::LoadBalancer(compiled)
            }
            ServiceKind::Weighted(children) => Service::Weighted {
                children: children
                    .iter()
                    .map(|c| child(&svc.name, &c.service).map(|id| (id, c.weight)))
                    .collect::<Result<_, _>>()?,
                sticky: None,
                values: children.iter().map(|c| sticky::value(&c.service)).collect(),
            },
            ServiceKind::StickyWeighted { services: children, cookie } => Service::Weighted {
                children: children
                    .iter()
                    .map(|c| child(&svc.name, &c.service).map(|id| (id, c.weight)))
                    .collect::<Result<_, _>>()?,
                sticky: Some(Sticky { cookie: cookie.clone() }),
                values: children.iter().map(|c| sticky::value(&c.service)).collect(),
            },
            ServiceKind::Mirroring(m) => Service::Mirroring {
                main: child(&svc.name, &m.service)?,
                mirrors: m
                    .mirrors
                    .iter()
                    .map(|c| child(&svc.name, &c.service).map(|id| (id, c.percent.min(100))))
                    .collect::<Result<_, _>>()?,
                mirror_body: m.mirror_body,
                max_body_size: m.max_body_size,
            },
            ServiceKind::Noop => Service::Noop,
            ServiceKind::Internal(kind) => Service::Internal(*kind),
        });
    }
    check_acyclic(&services, &snapshot.services)?;
    Ok(Compiled { services, health_targets })
}

thread_local! {
    /// Transports of the previous table, by name, with the configuration they were built from:
    /// an unchanged transport keeps its `Arc`, so pooled connections made with it stay usable
    /// across snapshots (the pool reuses a connection only with the very same transport).
    static TRANSPORTS: std::cell::RefCell<HashMap<String, (s::ServersTransport, Arc<Transport>)>> =
        std::cell::RefCell::default();
}

fn transport(config: &s::ServersTransport) -> Result<Arc<Transport>, TableError> {
    TRANSPORTS.with_borrow_mut(|cache| {
        if let Some((old, built)) = cache.get(&config.name) {
            if old == config {
                return Ok(Arc::clone(built));
            }
        }
        let built = Arc::new(
            Transport::build(config)
                .map_err(|reason| TableError::Transport { name: config.name.clone(), reason })?,
        );
        cache.insert(config.name.clone(), (config.clone(), Arc::clone(&built)));
        Ok(built)
    })
}

fn server(v: &s::Server, health: Arc<AtomicBool>) -> Server {
    let host = match &v.hostname {
        Some(h) => h.clone(),
        None => v.address.ip().to_string(),
    };
    // The data plane resolves ExternalName hosts here, on the control thread, when the
    // snapshot applies (see docs/architecture.md): the request path never blocks on DNS.
    let resolved = match &v.hostname {
        None => Some(v.address),
        Some(h) => match (h.as_str(), v.address.port()).to_socket_addrs() {
            Ok(mut addrs) => {
                let all: Vec<SocketAddr> = addrs.by_ref().collect();
                all.iter().find(|a| a.is_ipv4()).or(all.first()).copied()
            }
            Err(e) => {
                tracing::warn!(host = %h, "cannot resolve server host: {e}");
                None
            }
        },
    };
    let authority = match &v.hostname {
        Some(h) => format!("{h}:{}", v.address.port()),
        None => v.address.to_string(),
    };
    Server {
        resolved,
        address: v.address,
        weight: v.weight,
        url: v.url.clone(),
        scheme: v.scheme,
        authority: HeaderValue::from_str(&authority).unwrap_or(HeaderValue::from_static("")),
        host,
        fenced: v.fenced,
        sticky_value: sticky::value(&v.url),
        health,
    }
}

fn check_acyclic(services: &[Service], defs: &[Arc<s::Service>]) -> Result<(), TableError> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    fn visit(id: ServiceId, services: &[Service], state: &mut [u8]) -> Result<(), ServiceId> {
        match state[id] {
            1 => return Err(id),
            2 => return Ok(()),
            _ => {}
        }
        state[id] = 1;
        match &services[id] {
            Service::Weighted { children, .. } => {
                for (child, _) in children {
                    visit(*child, services, state)?;
                }
            }
            Service::Mirroring { main, mirrors, .. } => {
                visit(*main, services, state)?;
                for (child, _) in mirrors {
                    visit(*child, services, state)?;
                }
            }
            Service::LoadBalancer(_) | Service::Noop | Service::Internal(_) => {}
        }
        state[id] = 2;
        Ok(())
    }
    let mut state = vec![0u8; services.len()];
    for id in 0..services.len() {
        visit(id, services, &mut state).map_err(|bad| TableError::Cycle(defs[bad].name.clone()))?;
    }
    Ok(())
}
