//! The runtime routing table, built once per snapshot off the hot path and shared read-only
//! by every worker (`Arc<Table>`). Building validates the snapshot: a snapshot whose pieces do
//! not fit together is rejected whole and the previous table keeps serving.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use weir_proto::net::Cidr;
use weir_proto::snapshot::Snapshot;

use crate::router::{CompiledExpr, IndexedRouter, RequestInfo, RouterIndex};

/// Index of a service in [`Table::services`].
pub type ServiceId = usize;

/// Why a snapshot cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// A router names a service the snapshot does not define.
    #[error("router {router}: service {service} is not defined")]
    MissingService {
        /// Router name.
        router: String,
        /// Missing service name.
        service: String,
    },
    /// A weighted service names a child the snapshot does not define.
    #[error("service {parent}: child service {child} is not defined")]
    MissingChild {
        /// Parent service.
        parent: String,
        /// Missing child.
        child: String,
    },
    /// Weighted services refer to each other in a loop.
    #[error("service {0}: weighted services form a cycle")]
    Cycle(String),
    /// Two entrypoints share a name or an address.
    #[error("entrypoint {0}: duplicate name or address")]
    DuplicateEntryPoint(String),
    /// A rule the data plane cannot compile.
    #[error("router {router}: {source}")]
    Rule {
        /// Router name.
        router: String,
        /// Why.
        source: crate::router::CompileError,
    },
    /// A middleware the data plane cannot build.
    #[error(transparent)]
    Middleware(crate::middleware::MiddlewareError),
    /// A router names a middleware the snapshot does not define.
    #[error("router {router}: middleware {middleware} is not defined")]
    MissingMiddleware {
        /// Router name.
        router: String,
        /// Missing middleware name.
        middleware: String,
    },
    /// A servers transport that cannot be built (bad CA or client certificate), or that a
    /// load balancer names but the snapshot does not define.
    #[error("serversTransport {name}: {reason}")]
    Transport {
        /// Transport name.
        name: String,
        /// Why.
        reason: String,
    },
    /// TLS cannot be served at all.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsTableError),
    /// The TCP routers, services, middlewares or transports do not fit together.
    #[error(transparent)]
    Tcp(#[from] crate::tcp::TcpTableError),
    /// A trusted IP that does not parse.
    #[error("entrypoint {entrypoint}: {source}")]
    TrustedIp {
        /// Entrypoint name.
        entrypoint: String,
        /// Parse error.
        source: weir_proto::net::CidrError,
    },
}

pub use crate::service::compiled::{Server, Service};

/// An entrypoint's routers (sorted) and forwarded-header trust.
#[derive(Debug)]
pub struct EntryPointTable {
    /// Trust every peer's forwarded headers.
    pub trust_all: bool,
    /// Peers whose forwarded headers are kept.
    pub trusted: Vec<Cidr>,
    /// Routers for cleartext requests, indexed.
    pub http: RouterIndex<ServiceId>,
    /// Routers for requests that arrived over TLS, indexed.
    pub https: RouterIndex<ServiceId>,
    /// `http2.maxConcurrentStreams`.
    pub http2_max_concurrent_streams: u32,
    /// Transport options and request limits (timeouts, keep-alive, header size, ...).
    pub options: std::sync::Arc<weir_proto::entrypoint::EntryPointOptions>,
}

impl EntryPointTable {
    /// The router that handles the request, if any, from the TLS or the cleartext table.
    pub fn route(&self, req: &RequestInfo<'_>, tls: bool) -> Option<&IndexedRouter<ServiceId>> {
        if tls {
            self.https.route(req)
        } else {
            self.http.route(req)
        }
    }

    /// Whether forwarded headers from `peer` are kept.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        self.trust_all || self.trusted.iter().any(|c| c.contains(peer))
    }
}

/// The table served, for building the next one: with which services' definitions are
/// unchanged, what can be shared.
pub struct Reuse<'a> {
    /// The table served.
    pub table: &'a Table,
    /// Whether a service of the next snapshot is defined as the served one of that name.
    pub unchanged: &'a dyn Fn(&weir_proto::snapshot::Service) -> bool,
}

/// Everything a worker needs to serve one generation. The pieces an endpoints delta cannot
/// change (routers, middlewares, TLS) are behind `Arc`s, so [`Table::with_servers`] shares them.
#[derive(Debug)]
pub struct Table {
    /// Entrypoints, by name.
    pub entrypoints: Arc<HashMap<String, EntryPointTable>>,
    /// Services by id.
    pub services: Vec<Service>,
    /// Service names by id (stable across generations: per-worker state is keyed by them).
    pub service_names: Vec<String>,
    /// Servers the health checker watches for this table.
    pub health_targets: Vec<crate::service::compiled::HealthTarget>,
    /// Compiled middlewares; router chains hold positions in it.
    pub middlewares: Arc<Vec<crate::middleware::Compiled>>,
    /// Middleware chains (positions in `middlewares`, outermost first) of the routers that
    /// have one, by router name.
    pub chains: Arc<crate::middleware::Chains>,
    /// TLS configurations and SNI mapping (shared with the previous table when unchanged).
    pub tls: std::sync::Arc<crate::tls::TlsTable>,
    /// TCP routers, services and PROXY protocol reception.
    pub tcp: Arc<crate::tcp::TcpTable>,
    /// Metrics and access-log settings.
    pub observability: Arc<weir_proto::observability::Observability>,
    /// The API's runtime model and the internal services' settings (`crate::admin`).
    pub admin: Arc<crate::admin::AdminState>,
}

impl Table {
    /// Builds and validates the table for a snapshot.
    pub fn build(snapshot: &Snapshot) -> Result<Table, TableError> {
        Table::build_after(snapshot, None)
    }

    /// [`Table::build`], sharing with the table served what did not change (compiled load
    /// balancers, see `service::compiled::compile_reusing`).
    pub fn build_after(snapshot: &Snapshot, previous: Option<Reuse<'_>>) -> Result<Table, TableError> {
        let ids: HashMap<&str, ServiceId> =
            snapshot.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        // Health flags persist across tables by (service, server URL): see `health`.
        let compiled = crate::service::compiled::compile_reusing(
            snapshot,
            previous.map(|r| crate::service::compiled::Previous {
                names: &r.table.service_names,
                services: &r.table.services,
                unchanged: r.unchanged,
            }),
            &mut crate::health::flag,
        )?;
        let services = compiled.services;

        let mut entrypoints = HashMap::new();
        let mut addresses = std::collections::HashSet::new();
        for ep in &snapshot.entrypoints {
            if !addresses.insert(ep.address) || entrypoints.contains_key(&ep.name) {
                return Err(TableError::DuplicateEntryPoint(ep.name.clone()));
            }
            let trusted = ep
                .forwarded_headers
                .trusted_ips
                .iter()
                .map(|s| Cidr::parse(s))
                .collect::<Result<_, _>>()
                .map_err(|source| TableError::TrustedIp { entrypoint: ep.name.clone(), source })?;
            entrypoints.insert(
                ep.name.clone(),
                EntryPointTable {
                    trust_all: ep.forwarded_headers.insecure,
                    trusted,
                    http: RouterIndex::default(),
                    https: RouterIndex::default(),
                    http2_max_concurrent_streams: ep.http2_max_concurrent_streams,
                    options: std::sync::Arc::new(ep.options.clone()),
                },
            );
        }
        let mut per_ep: HashMap<(&str, bool), Vec<IndexedRouter<ServiceId>>> = HashMap::new();
        for r in &snapshot.routers {
            let service = *ids.get(r.service.as_str()).ok_or_else(|| TableError::MissingService {
                router: r.name.clone(),
                service: r.service.clone(),
            })?;
            for ep in &r.entrypoints {
                // A router on an entrypoint that does not exist is simply not served there.
                if entrypoints.contains_key(ep) {
                    let expr = CompiledExpr::compile(&r.expr)
                        .map_err(|source| TableError::Rule { router: r.name.clone(), source })?;
                    per_ep.entry((ep.as_str(), r.tls)).or_default().push(IndexedRouter {
                        name: r.name.clone(),
                        priority: r.priority,
                        expr,
                        target: service,
                    });
                }
            }
        }
        for ((ep, tls), routers) in per_ep {
            if let Some(t) = entrypoints.get_mut(ep) {
                *(if tls { &mut t.https } else { &mut t.http }) = RouterIndex::new(routers);
            }
        }
        let (middlewares, chains) = middleware_chains(snapshot)?;
        Ok(Table {
            entrypoints: Arc::new(entrypoints),
            services,
            service_names: snapshot.services.iter().map(|s| s.name.clone()).collect(),
            health_targets: compiled.health_targets,
            middlewares: Arc::new(middlewares),
            chains: Arc::new(chains),
            tls: crate::tls::TlsTable::build(&snapshot.tls)?,
            tcp: Arc::new(crate::tcp::TcpTable::build(snapshot)?),
            observability: Arc::new(snapshot.observability.clone()),
            admin: Arc::new(crate::admin::AdminState::build(&snapshot.api)),
        })
    }

    /// The table for `snapshot`, which differs from the one this table was built from only in
    /// the servers of load balancers (an applied endpoints delta): services are compiled again
    /// (cheap: no regexes, transports come from their cache), routers, middlewares and TLS are
    /// shared with this table. Service ids stay the same because the service list does.
    /// Load balancers for which `unchanged` holds are shared too.
    pub fn with_servers(
        &self,
        snapshot: &Snapshot,
        unchanged: &dyn Fn(&weir_proto::snapshot::Service) -> bool,
    ) -> Result<Table, TableError> {
        let previous = crate::service::compiled::Previous {
            names: &self.service_names,
            services: &self.services,
            unchanged,
        };
        let compiled =
            crate::service::compiled::compile_reusing(snapshot, Some(previous), &mut crate::health::flag)?;
        Ok(Table {
            entrypoints: Arc::clone(&self.entrypoints),
            services: compiled.services,
            service_names: self.service_names.clone(),
            health_targets: compiled.health_targets,
            middlewares: Arc::clone(&self.middlewares),
            chains: Arc::clone(&self.chains),
            tls: Arc::clone(&self.tls),
            tcp: Arc::clone(&self.tcp),
            observability: Arc::clone(&self.observability),
            // The model is the snapshot's; live server status comes from the services.
            admin: Arc::clone(&self.admin),
        })
    }
}

/// Compiles the snapshot's middlewares and each router's chain.
fn middleware_chains(
    snapshot: &Snapshot,
) -> Result<(Vec<crate::middleware::Compiled>, crate::middleware::Chains), TableError> {
    let service_id = |name: &str| snapshot.services.iter().position(|s| s.name == name);
    let compiled =
        crate::middleware::compile(&snapshot.middlewares, &service_id).map_err(TableError::Middleware)?;
    let ids: HashMap<&str, usize> =
        snapshot.middlewares.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
    let mut chains = HashMap::new();
    for r in snapshot.routers.iter().filter(|r| !r.middlewares.is_empty()) {
        let chain = r
            .middlewares
            .iter()
            .map(|m| {
                ids.get(m.as_str()).copied().ok_or_else(|| TableError::MissingMiddleware {
                    router: r.name.clone(),
                    middleware: m.clone(),
                })
            })
            .collect::<Result<Box<[usize]>, _>>()?;
        chains.insert(r.name.clone(), chain);
    }
    Ok((compiled, chains))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::snapshot::{
        self as s, EntryPoint, ForwardedHeaders, LoadBalancer, ServiceKind, WeightedService,
    };

    fn snapshot() -> Snapshot {
        let router = |name: &str, rule: &str, priority: i64| s::Router {
            name: name.into(),
            entrypoints: vec!["web".into()],
            rule: rule.into(),
            expr: weir_proto::rule::parse(rule).expect("valid rule"),
            priority,
            service: "lb".into(),
            tls: false,
            middlewares: vec![],
        };
        Snapshot {
            generation: 1,
            entrypoints: vec![EntryPoint {
                name: "web".into(),
                address: "127.0.0.1:1".parse().expect("addr"),
                forwarded_headers: ForwardedHeaders::default(),
                http2_max_concurrent_streams: 250,
                options: Default::default(),
            }],
            routers: vec![
                router("low", "PathPrefix(`/`)", 1).into(),
                router("high", "PathPrefix(`/api`)", 100).into(),
            ],
            services: vec![std::sync::Arc::new(s::Service {
                name: "lb".into(),
                kind: ServiceKind::LoadBalancer(LoadBalancer {
                    servers: vec![],
                    pass_host_header: true,
                    sticky: None,
                    health_check: None,
                    servers_transport: None,
                    flush_interval_ms: 100,
                    strategy: Default::default(),
                }),
            })],
            ..Default::default()
        }
    }

    #[test]
    fn routes_by_priority() {
        let t = Table::build(&snapshot()).expect("valid");
        let ep = &t.entrypoints["web"];
        let headers = http::HeaderMap::new();
        let route = |path| {
            let req = RequestInfo {
                host: "h",
                path,
                method: &http::Method::GET,
                headers: &headers,
                query: None,
                client_ip: [127, 0, 0, 1].into(),
            };
            ep.route(&req, false).map(|r| r.name.as_str())
        };
        assert_eq!(route("/api/x"), Some("high"));
        assert_eq!(route("/other"), Some("low"));
    }

    #[test]
    fn rejects_inconsistent_snapshots() {
        let mut missing = snapshot();
        std::sync::Arc::make_mut(&mut missing.routers[0]).service = "nope".into();
        let mut cycle = snapshot();
        for (name, child) in [("a", "b"), ("b", "a")] {
            cycle.services.push(std::sync::Arc::new(s::Service {
                name: name.into(),
                kind: ServiceKind::Weighted(vec![WeightedService { service: child.into(), weight: 1 }]),
            }));
        }
        let mut dup = snapshot();
        let mut ep = dup.entrypoints[0].clone();
        ep.name = "other".into();
        dup.entrypoints.push(ep);
        let mut bad_ip = snapshot();
        bad_ip.entrypoints[0].forwarded_headers.trusted_ips = vec!["nope".into()];
        let cases = [
            ("missing service", missing, "not defined"),
            ("cycle", cycle, "cycle"),
            ("duplicate address", dup, "duplicate"),
            ("bad trusted ip", bad_ip, "not an IP"),
        ];
        for (name, snap, want) in cases {
            let err = Table::build(&snap).expect_err(name).to_string();
            assert!(err.contains(want), "case {name}: {err}");
        }
    }
}

#[cfg(test)]
mod profile {
    use super::*;
    use weir_proto::snapshot::{self as s, EntryPoint, ForwardedHeaders, LoadBalancer, ServiceKind};

    /// `routes` routers, each with its own load balancer of one server, as the scale benches
    /// write them (one IngressRoute, Service and EndpointSlice per route).
    pub(crate) fn scale_snapshot(routes: usize) -> Snapshot {
        let mut snapshot = Snapshot {
            generation: 1,
            entrypoints: vec![EntryPoint {
                name: "web".into(),
                address: "127.0.0.1:1".parse().expect("addr"),
                forwarded_headers: ForwardedHeaders::default(),
                http2_max_concurrent_streams: 250,
                options: Default::default(),
            }],
            ..Default::default()
        };
        for i in 0..routes {
            let rule = format!("Host(`r{i}.scale.test`)");
            let service = format!("apps-svc-{i}-80");
            snapshot.routers.push(std::sync::Arc::new(s::Router {
                name: format!("apps-route-{i}-abcdef0123456789@kubernetescrd"),
                entrypoints: vec!["web".into()],
                expr: weir_proto::rule::parse(&rule).expect("valid rule"),
                rule,
                priority: 30,
                service: service.clone(),
                tls: false,
                middlewares: vec![],
            }));
            snapshot.services.push(std::sync::Arc::new(s::Service {
                name: service,
                kind: ServiceKind::LoadBalancer(LoadBalancer {
                    servers: vec![s::Server {
                        url: format!("http://10.0.{}.{}:8080", i / 250 % 250, i % 250 + 1),
                        address: format!("10.0.{}.{}:8080", i / 250 % 250, i % 250 + 1)
                            .parse()
                            .expect("addr"),
                        weight: 1,
                        scheme: s::Scheme::Http,
                        hostname: None,
                        fenced: false,
                    }],
                    pass_host_header: true,
                    sticky: None,
                    health_check: None,
                    servers_transport: None,
                    flush_interval_ms: 100,
                    strategy: Default::default(),
                }),
            }));
        }
        snapshot.routers.sort_by(|a, b| a.name.cmp(&b.name));
        snapshot.services.sort_by(|a, b| a.name.cmp(&b.name));
        snapshot
    }

    /// Phase timings of applying a snapshot at scale in the data plane (`cargo test --release
    /// -p weir-dataplane --lib profile_apply -- --ignored --nocapture`; `WEIR_PROFILE_ROUTES`).
    #[test]
    #[ignore]
    fn profile_apply() {
        use std::time::Instant;
        let routes: usize =
            std::env::var("WEIR_PROFILE_ROUTES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let snapshot = scale_snapshot(routes);
        let mut best = [std::time::Duration::MAX; 8];
        for _ in 0..5 {
            let t = Instant::now();
            let bytes = snapshot.encode().expect("encode");
            let encode = t.elapsed();
            let t = Instant::now();
            let decoded = Snapshot::decode(&bytes).expect("decode");
            let decode = t.elapsed();
            let t = Instant::now();
            let compiled =
                crate::service::compiled::compile(&decoded, &mut crate::health::flag).expect("services");
            let services = t.elapsed();
            drop(compiled);
            let t = Instant::now();
            let exprs: Vec<_> =
                decoded.routers.iter().map(|r| CompiledExpr::compile(&r.expr).expect("expr")).collect();
            let exprs_t = t.elapsed();
            let t = Instant::now();
            let index = RouterIndex::new(
                decoded
                    .routers
                    .iter()
                    .zip(exprs)
                    .enumerate()
                    .map(|(i, (r, expr))| IndexedRouter {
                        name: r.name.clone(),
                        priority: r.priority,
                        expr,
                        target: i,
                    })
                    .collect(),
            );
            let index_t = t.elapsed();
            drop(index);
            let t = Instant::now();
            let table = Table::build(&decoded).expect("table");
            let build = t.elapsed();
            let t = Instant::now();
            let with_servers = table.with_servers(&decoded, &|_| false).expect("table");
            let with_servers_t = t.elapsed();
            let t = Instant::now();
            let reused = Table::build_after(&decoded, Some(Reuse { table: &table, unchanged: &|_| true }))
                .expect("table");
            let reused_t = t.elapsed();
            let t = Instant::now();
            let balancers = crate::service::state::Balancers::new(
                &reused,
                Some((&table, &crate::service::state::Balancers::new(&table, None))),
            );
            let balancers_t = t.elapsed();
            drop((reused, balancers));
            eprintln!("build_after (all services unchanged) {reused_t:?}, balancers (incl. one from scratch) {balancers_t:?}");
            let t = Instant::now();
            drop((table, with_servers, decoded));
            let drop_t = t.elapsed();
            for (b, d) in best.iter_mut().zip([
                encode,
                decode,
                services,
                exprs_t,
                index_t,
                build,
                with_servers_t,
                drop_t,
            ]) {
                *b = (*b).min(d);
            }
        }
        eprintln!(
            "apply at {routes} routes (fastest of 5): encode {:?}, decode {:?}, services compile {:?}, \
             rule compile {:?}, router index {:?}, whole Table::build {:?}, with_servers {:?}, drop {:?}",
            best[0], best[1], best[2], best[3], best[4], best[5], best[6], best[7]
        );
        // `WEIR_PROFILE_LOOP=N`: N rebuilds after a one-router change (as a configuration delta
        // makes them), for perf.
        let loops: usize = std::env::var("WEIR_PROFILE_LOOP").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        if loops > 0 {
            let mut table = Table::build(&snapshot).expect("table");
            let mut balancers = crate::service::state::Balancers::new(&table, None);
            let mut next = snapshot.clone();
            let mut times = Vec::new();
            for n in 0..loops {
                let i = (n * 7919) % routes;
                let router = Arc::make_mut(&mut next.routers[i]);
                router.rule = format!("Host(`loop{n}.scale.test`)");
                router.expr = weir_proto::rule::parse(&router.rule).expect("valid rule");
                let t = Instant::now();
                let built = Table::build_after(&next, Some(Reuse { table: &table, unchanged: &|_| true }))
                    .expect("table");
                let b = crate::service::state::Balancers::new(&built, Some((&table, &balancers)));
                times.push(t.elapsed());
                (table, balancers) = (built, b);
            }
            times.sort();
            eprintln!(
                "one router changed: build_after + balancers, median {:?} of {loops}",
                times[loops / 2]
            );
        }
    }
}
