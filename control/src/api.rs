//! Traefik's internal provider and runtime model for the API: adds the internal routers,
//! services and middlewares (`api@internal`, `dashboard@internal`, `ping@internal`,
//! `prometheus@internal`) to the snapshot, and renders every router, service, middleware and
//! entrypoint with its status and errors — disabled routers included, which the snapshot's
//! routing tables leave out — as the JSON the data plane's `/api` serves. No IO.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{json, Map, Value};
use weir_proto::api::{InternalService, INTERNAL_ENTRYPOINT};
use weir_proto::middleware::{Middleware, MiddlewareKind, RedirectRegex, StripPrefix};
use weir_proto::rule::default_priority;
use weir_proto::snapshot::{Router, Service, ServiceKind};
use weir_proto::Snapshot;

use crate::config::{ApiOptions, PingOptions, StaticConfig};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

/// Traefik's provider name of CRD objects (names without `@` in the snapshot).
const CRD_PROVIDER: &str = "kubernetescrd";
/// Go's `math.MaxInt`: internal routers sit above every user router.
const MAX_PRIORITY: i64 = i64::MAX;
const DASHBOARD_REDIRECT: &str = "dashboard_redirect@internal";
const DASHBOARD_STRIP: &str = "dashboard_stripprefix@internal";

/// What the API and the internal provider need from the static configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiSettings {
    /// `--api.*`.
    pub api: Option<ApiOptions>,
    /// `--ping.*`.
    pub ping: Option<PingOptions>,
    /// `--metrics.prometheus`: `(entryPoint, manualRouting)`.
    pub prometheus: Option<(String, bool)>,
    /// `--accessLog` is on (overview `features.accessLog`).
    pub access_log: bool,
    /// Provider names for the overview (`KubernetesCRD`, ...).
    pub providers: Vec<String>,
    /// Static entrypoint representations by name (`/api/entrypoints`).
    pub entrypoints: BTreeMap<String, Value>,
}

impl ApiSettings {
    /// Derives the settings from the static configuration.
    pub fn from_config(config: &StaticConfig) -> ApiSettings {
        let mut entrypoints = BTreeMap::new();
        for ep in &config.entrypoints {
            let mut forwarded = Map::new();
            if ep.forwarded_headers.insecure {
                forwarded.insert("insecure".into(), Value::Bool(true));
            }
            if !ep.forwarded_headers.trusted_ips.is_empty() {
                forwarded.insert("trustedIPs".into(), json!(ep.forwarded_headers.trusted_ips));
            }
            let snap = ep.to_snapshot();
            entrypoints.insert(
                ep.name.clone(),
                json!({
                    "address": address(&ep.address, ""),
                    "transport": transport(),
                    "forwardedHeaders": forwarded,
                    "http": {},
                    "http2": {"maxConcurrentStreams": snap.http2_max_concurrent_streams},
                    "udp": {"timeout": "3s"},
                    "name": ep.name,
                }),
            );
        }
        for ep in &config.udp_entrypoints {
            entrypoints.insert(
                ep.name.clone(),
                json!({
                    "address": address(&ep.address, "/udp"),
                    "transport": transport(),
                    "forwardedHeaders": {},
                    "http": {},
                    "http2": {},
                    "udp": {"timeout": go_duration_ms(ep.timeout.as_millis() as u64)},
                    "name": ep.name,
                }),
            );
        }
        let mut providers = vec!["KubernetesCRD".to_string()];
        if config.ingress.enabled {
            providers.push("KubernetesIngress".into());
        }
        ApiSettings {
            api: config.api.api.clone(),
            ping: config.api.ping.clone(),
            prometheus: config
                .observability
                .metrics
                .as_ref()
                .map(|m| (m.entry_point.clone(), m.manual_routing)),
            access_log: config.observability.access_log.is_some(),
            providers,
            entrypoints,
        }
    }

    /// Whether `service` exists in Traefik's internal provider with this configuration.
    fn internal_enabled(&self, service: InternalService) -> bool {
        match service {
            InternalService::Api => self.api.is_some(),
            InternalService::Dashboard => self.api.as_ref().is_some_and(|a| a.dashboard),
            InternalService::Ping => self.ping.is_some(),
            InternalService::Prometheus => self.prometheus.is_some(),
        }
    }
}

/// A listening address as Traefik users write it: `:8000` for every interface.
fn address(addr: &std::net::SocketAddr, suffix: &str) -> String {
    if addr.ip().is_unspecified() {
        format!(":{}{suffix}", addr.port())
    } else {
        format!("{addr}{suffix}")
    }
}

/// Traefik's default entrypoint transport, as its API prints it.
fn transport() -> Value {
    json!({
        "lifeCycle": {"graceTimeOut": "10s"},
        "respondingTimeouts": {"readTimeout": "1m0s", "idleTimeout": "3m0s"},
    })
}

/// A duration as Go's `time.Duration.String` prints whole milliseconds (`100ms`, `3s`, `1m0s`).
fn go_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// Adds Traefik's internal routers, services and middlewares to `snapshot`, and disables
/// routers that reference an internal service this configuration does not provide.
pub fn add_internal(settings: &ApiSettings, snapshot: &mut Snapshot, problems: &mut Vec<Problem>) {
    let traefik_ep_exists = snapshot.entrypoints.iter().any(|e| e.name == INTERNAL_ENTRYPOINT);
    let mut routers: Vec<Router> = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    let mut middlewares: Vec<Middleware> = Vec::new();
    let router = |name: &str, ep: &str, rule: &str, priority: i64, service: &str, mws: Vec<String>| {
        weir_proto::rule::parse(rule).ok().map(|expr| Router {
            name: name.into(),
            entrypoints: vec![ep.into()],
            rule: rule.into(),
            expr,
            priority,
            service: service.into(),
            tls: false,
            middlewares: mws,
        })
    };
    if let Some(api) = &settings.api {
        services.push(internal(InternalService::Api));
        if api.dashboard {
            services.push(internal(InternalService::Dashboard));
        }
        if api.insecure && traefik_ep_exists {
            let base = api.base_path.trim_end_matches('/');
            routers.extend(router(
                "api@internal",
                INTERNAL_ENTRYPOINT,
                &format!("PathPrefix(`{base}/api`)"),
                MAX_PRIORITY - 1,
                "api@internal",
                vec![],
            ));
            if api.dashboard {
                routers.extend(router(
                    "dashboard@internal",
                    INTERNAL_ENTRYPOINT,
                    &format!("PathPrefix(`{base}/`)"),
                    MAX_PRIORITY - 2,
                    "dashboard@internal",
                    vec![DASHBOARD_REDIRECT.into(), DASHBOARD_STRIP.into()],
                ));
                middlewares.push(Middleware {
                    name: DASHBOARD_REDIRECT.into(),
                    kind: MiddlewareKind::RedirectRegex(RedirectRegex {
                        regex: format!(
                            r"^(http:\/\/(\[[\w:.]+\]|[\w\._-]+)(:\d+)?){}\/$",
                            regex_escape(base)
                        ),
                        replacement: format!("${{1}}{base}/dashboard/"),
                        permanent: true,
                    }),
                });
                middlewares.push(Middleware {
                    name: DASHBOARD_STRIP.into(),
                    kind: MiddlewareKind::StripPrefix(StripPrefix {
                        prefixes: vec![format!("{base}/dashboard/"), format!("{base}/dashboard")],
                        force_slash: false,
                    }),
                });
            }
        }
    }
    if let Some(ping) = &settings.ping {
        services.push(internal(InternalService::Ping));
        if !ping.manual_routing {
            routers.extend(router(
                "ping@internal",
                &ping.entry_point,
                "PathPrefix(`/ping`)",
                MAX_PRIORITY,
                "ping@internal",
                vec![],
            ));
        }
    }
    if let Some((ep, manual)) = &settings.prometheus {
        services.push(internal(InternalService::Prometheus));
        if !manual {
            routers.extend(router(
                "prometheus@internal",
                ep,
                "PathPrefix(`/metrics`)",
                MAX_PRIORITY,
                "prometheus@internal",
                vec![],
            ));
        }
    }
    // Routers (user or internal) on an entrypoint that does not exist are disabled.
    let entrypoints: BTreeSet<&str> = snapshot.entrypoints.iter().map(|e| e.name.as_str()).collect();
    routers.retain(|r| {
        let ok = r.entrypoints.iter().all(|e| entrypoints.contains(e.as_str()));
        if !ok {
            problems
                .push(internal_problem(&r.name, format!("entryPoint {:?} doesn't exist", r.entrypoints[0])));
        }
        ok
    });
    // User routers may name internal services (`kind: TraefikService, name: api@internal`);
    // Traefik knows them only when their feature is on.
    let mut removed = Vec::new();
    snapshot.routers.retain(|r| match InternalService::from_name(&r.service) {
        Some(s) if !settings.internal_enabled(s) => {
            removed.push((r.name.clone(), format!("the service \"{}\" does not exist", r.service)));
            false
        }
        _ => true,
    });
    for (name, message) in removed {
        problems.push(Problem {
            severity: Severity::Error,
            subject: Subject::Object { kind: "Router".into(), namespace: String::new(), name },
            message,
        });
    }
    for s in services {
        if let Some(existing) = snapshot.services.iter_mut().find(|x| x.name == s.name) {
            *existing = Arc::new(s);
        } else {
            snapshot.services.push(Arc::new(s));
        }
    }
    snapshot.services.retain(|s| match &s.kind {
        ServiceKind::Internal(kind) => settings.internal_enabled(*kind),
        _ => true,
    });
    // The lists come sorted from the compiler; sorting again only when something was added
    // saves three passes over 10,000 routes on every change.
    sort_by_name(&mut snapshot.services, |s| &s.name);
    snapshot.routers.extend(routers.into_iter().map(Arc::new));
    sort_by_name(&mut snapshot.routers, |r| &r.name);
    snapshot.middlewares.extend(middlewares.into_iter().map(Arc::new));
    sort_by_name(&mut snapshot.middlewares, |m| &m.name);
}

/// Sorts `list` by name (stable) unless it already is.
fn sort_by_name<T>(list: &mut [T], name: impl Fn(&T) -> &str) {
    if !list.is_sorted_by(|a, b| name(a) <= name(b)) {
        list.sort_by(|a, b| name(a).cmp(name(b)));
    }
}

fn internal(kind: InternalService) -> Service {
    Service { name: kind.name().into(), kind: ServiceKind::Internal(kind) }
}

fn internal_problem(router: &str, message: String) -> Problem {
    Problem {
        severity: Severity::Error,
        subject: Subject::Object { kind: "Router".into(), namespace: String::new(), name: router.into() },
        message,
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_alphanumeric() && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `name@provider`: snapshot names of CRD objects carry no provider.
pub fn qualified(name: &str) -> String {
    if name.contains('@') {
        name.to_string()
    } else {
        format!("{name}@{CRD_PROVIDER}")
    }
}

fn provider_of(qualified: &str) -> &str {
    qualified.split_once('@').map_or(CRD_PROVIDER, |(_, p)| p)
}

/// Status and errors collected for one object.
#[derive(Default)]
struct Health {
    errors: Vec<String>,
    warning: bool,
    disabled: bool,
}

impl Health {
    fn status(&self) -> &'static str {
        if self.disabled {
            "disabled"
        } else if self.warning {
            "warning"
        } else {
            "enabled"
        }
    }
}

/// The snapshot's API section: settings plus the rendered runtime model.
pub fn snapshot_api(
    settings: &ApiSettings,
    snapshot: &Snapshot,
    problems: &[Problem],
    store: &ObjectStore,
) -> weir_proto::api::Api {
    let Some(api) = &settings.api else {
        return weir_proto::api::Api {
            ping_terminating_status: settings.ping.as_ref().map_or(503, |p| p.terminating_status_code),
            ..Default::default()
        };
    };
    weir_proto::api::Api {
        enabled: true,
        dashboard: api.dashboard,
        base_path: api.base_path.trim_end_matches('/').to_string(),
        ping_terminating_status: settings.ping.as_ref().map_or(503, |p| p.terminating_status_code),
        runtime_json: render(settings, snapshot, problems, store),
    }
}

/// Renders the runtime model (`weir_proto::api::Api::runtime_json`).
pub fn render(
    settings: &ApiSettings,
    snapshot: &Snapshot,
    problems: &[Problem],
    store: &ObjectStore,
) -> String {
    if settings.api.is_none() {
        return String::new();
    }
    let mut routers: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut router_health: BTreeMap<String, Health> = BTreeMap::new();
    let mut middleware_health: BTreeMap<String, Health> = BTreeMap::new();
    let mut service_health: BTreeMap<String, Health> = BTreeMap::new();
    let mut tcp_health: BTreeMap<String, Health> = BTreeMap::new();
    let mut udp_health: BTreeMap<String, Health> = BTreeMap::new();
    let tls_options: BTreeMap<&str, &str> = snapshot
        .tls
        .entrypoints
        .iter()
        .flat_map(|e| e.routers.iter().map(|r| (r.router.as_str(), r.option.as_str())))
        .collect();

    for r in &snapshot.routers {
        let mut m = Map::new();
        m.insert("entryPoints".into(), json!(r.entrypoints));
        if !r.middlewares.is_empty() {
            m.insert("middlewares".into(), json!(r.middlewares));
        }
        m.insert("service".into(), json!(r.service));
        m.insert("rule".into(), json!(r.rule));
        // Traefik shows the priority as configured: the computed default is not written.
        if r.priority != default_priority(&r.rule) {
            m.insert("priority".into(), json!(r.priority));
        }
        if r.tls {
            let option = tls_options.get(r.name.as_str()).copied().unwrap_or("default");
            m.insert("tls".into(), json!({"options": option}));
        }
        m.insert("using".into(), json!(r.entrypoints));
        routers.insert(qualified(&r.name), m);
    }

    // Problems: routes disabled or warned about, and objects.
    for p in problems {
        let error = p.severity == Severity::Error;
        match &p.subject {
            Subject::Route { kind, router, .. } if kind == "IngressRouteTCP" || kind == "IngressRouteUDP" => {
                let tcp = kind == "IngressRouteTCP";
                let q = qualified(router);
                let h = if tcp { &mut tcp_health } else { &mut udp_health };
                let h = h.entry(q).or_default();
                h.errors.push(p.message.clone());
                h.warning |= p.severity == Severity::Warning;
                h.disabled |= error;
            }
            Subject::Route { kind, namespace, name, route, router } => {
                let q = qualified(router);
                let h = router_health.entry(q.clone()).or_default();
                h.errors.push(p.message.clone());
                if p.severity == Severity::Warning {
                    h.warning = true;
                }
                if error {
                    h.disabled = true;
                    routers.entry(q).or_insert_with(|| disabled_router(store, kind, namespace, name, *route));
                }
            }
            Subject::Object { kind, namespace, name } if kind == "Router" && namespace.is_empty() => {
                let q = qualified(name);
                let h = router_health.entry(q.clone()).or_default();
                h.errors.push(p.message.clone());
                h.disabled = true;
                routers.entry(q).or_insert_with(|| {
                    let mut m = Map::new();
                    m.insert("service".into(), Value::String(String::new()));
                    m
                });
            }
            Subject::Object { kind, namespace, name }
                if kind == "Middleware" && p.severity >= Severity::Warning =>
            {
                let q = qualified(&weir_proto_name(namespace, name));
                let h = middleware_health.entry(q).or_default();
                h.errors.push(p.message.clone());
                h.warning |= p.severity == Severity::Warning;
                h.disabled |= error;
            }
            Subject::Object { kind, namespace, name }
                if kind == "TraefikService" && p.severity >= Severity::Warning =>
            {
                let q = qualified(&weir_proto_name(namespace, name));
                let h = service_health.entry(q).or_default();
                h.errors.push(p.message.clone());
                h.warning |= p.severity == Severity::Warning;
                h.disabled |= error;
            }
            _ => {}
        }
    }

    // usedBy: routers that name a service or middleware directly (Traefik's PopulateUsedBy).
    let mut service_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut middleware_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &snapshot.routers {
        let q = qualified(&r.name);
        service_users.entry(qualified(&r.service)).or_default().insert(q.clone());
        for m in &r.middlewares {
            middleware_users.entry(qualified(m)).or_default().insert(q.clone());
        }
    }

    let mut out_routers = Map::new();
    for (name, mut m) in routers {
        let h = router_health.remove(&name).unwrap_or_default();
        if !h.errors.is_empty() {
            m.insert("error".into(), json!(h.errors));
        }
        m.insert("status".into(), json!(h.status()));
        m.insert("provider".into(), json!(provider_of(&name)));
        m.insert("name".into(), json!(name));
        out_routers.insert(name, Value::Object(m));
    }

    let mut out_services = Map::new();
    for s in &snapshot.services {
        let q = qualified(&s.name);
        let mut m = Map::new();
        let h = service_health.remove(&q).unwrap_or_default();
        match &s.kind {
            ServiceKind::LoadBalancer(lb) => {
                // `servers` and `serverStatus` are filled in by the data plane from its live
                // table (endpoint deltas, health checks), so endpoint churn leaves this model
                // unchanged and keeps the publisher's endpoint-delta path.
                let mut lbm = Map::new();
                lbm.insert("strategy".into(), json!("wrr"));
                lbm.insert("passHostHeader".into(), json!(lb.pass_host_header));
                lbm.insert(
                    "responseForwarding".into(),
                    json!({"flushInterval": if lb.flush_interval_ms < 0 { format!("{}ms", lb.flush_interval_ms) } else { go_duration_ms(lb.flush_interval_ms as u64) }}),
                );
                if let Some(st) = &lb.servers_transport {
                    lbm.insert("serversTransport".into(), json!(st));
                }
                if let Some(c) = &lb.sticky {
                    lbm.insert("sticky".into(), json!({"cookie": cookie(c)}));
                }
                if let Some(hc) = &lb.health_check {
                    lbm.insert("healthCheck".into(), json!({"path": hc.path, "interval": go_duration_ms(hc.interval_ms), "timeout": go_duration_ms(hc.timeout_ms)}));
                }
                m.insert("loadBalancer".into(), Value::Object(lbm));
                m.insert("type".into(), json!("loadbalancer"));
            }
            ServiceKind::Weighted(children) => {
                m.insert("weighted".into(), json!({"services": weighted(children)}));
                m.insert("type".into(), json!("weighted"));
            }
            ServiceKind::StickyWeighted { services, cookie: c } => {
                m.insert(
                    "weighted".into(),
                    json!({"services": weighted(services), "sticky": {"cookie": cookie(c)}}),
                );
                m.insert("type".into(), json!("weighted"));
            }
            ServiceKind::Mirroring(mr) => {
                let mirrors: Vec<Value> =
                    mr.mirrors.iter().map(|x| json!({"name": x.service, "percent": x.percent})).collect();
                m.insert(
                    "mirroring".into(),
                    json!({"service": mr.service, "mirrorBody": mr.mirror_body, "maxBodySize": mr.max_body_size, "mirrors": mirrors}),
                );
                m.insert("type".into(), json!("mirroring"));
            }
            ServiceKind::Noop | ServiceKind::Internal(_) => {}
        }
        if !h.errors.is_empty() {
            m.insert("error".into(), json!(h.errors));
        }
        m.insert("status".into(), json!(h.status()));
        if let Some(users) = service_users.get(&q) {
            m.insert("usedBy".into(), json!(users));
        }
        m.insert("provider".into(), json!(provider_of(&q)));
        m.insert("name".into(), json!(q));
        out_services.insert(q, Value::Object(m));
    }
    // Traefik's internal provider always defines `noop@internal`.
    out_services
        .entry("noop@internal")
        .or_insert_with(|| json!({"status": "enabled", "provider": "internal", "name": "noop@internal"}));

    let mut out_middlewares = Map::new();
    for mw in &snapshot.middlewares {
        let q = qualified(&mw.name);
        let h = middleware_health.remove(&q).unwrap_or_default();
        let type_name = mw.kind.type_name();
        let mut m = Map::new();
        m.insert(lower_camel(type_name), middleware_config(&mw.kind));
        if !h.errors.is_empty() {
            m.insert("error".into(), json!(h.errors));
        }
        m.insert("status".into(), json!(h.status()));
        if let Some(users) = middleware_users.get(&q) {
            m.insert("usedBy".into(), json!(users));
        }
        m.insert("provider".into(), json!(provider_of(&q)));
        m.insert("name".into(), json!(q));
        m.insert("type".into(), json!(type_name.to_ascii_lowercase()));
        out_middlewares.insert(q, Value::Object(m));
    }
    // Middlewares whose problems disabled them never reach the snapshot: list them too.
    for (q, h) in middleware_health {
        if out_middlewares.contains_key(&q) {
            continue;
        }
        out_middlewares.insert(
            q.clone(),
            json!({"error": h.errors, "status": h.status(), "provider": provider_of(&q), "name": q}),
        );
    }

    let (mut udp_routers, udp_services) = udp(snapshot);
    let (mut tcp_routers, tcp_services, tcp_middlewares) = tcp(snapshot);
    apply_health(&mut tcp_routers, tcp_health);
    apply_health(&mut udp_routers, udp_health);
    // Sections are moved in (`json!` would serialize, i.e. deep-copy, them).
    let mut model = Map::new();
    for (key, section) in [
        ("routers", out_routers),
        ("services", out_services),
        ("middlewares", out_middlewares),
        ("tcpRouters", tcp_routers),
        ("tcpServices", tcp_services),
        ("tcpMiddlewares", tcp_middlewares),
        ("udpRouters", udp_routers),
        ("udpServices", udp_services),
    ] {
        model.insert(key.into(), Value::Object(section));
    }
    model.insert("entryPoints".into(), json!(settings.entrypoints));
    model.insert(
        "features".into(),
        json!({
            "tracing": "",
            "metrics": if settings.prometheus.is_some() { "Prometheus" } else { "" },
            "accessLog": settings.access_log,
            "hub": false,
        }),
    );
    model.insert("providers".into(), json!(settings.providers));
    serde_json::to_string(&model).unwrap_or_default()
}

/// Traefik's name of a CRD object: `<ns>-<name>`, normalized.
fn weir_proto_name(namespace: &str, name: &str) -> String {
    crate::translate::names::normalize(&format!("{namespace}-{name}"))
}

fn weighted(children: &[weir_proto::snapshot::WeightedService]) -> Vec<Value> {
    children.iter().map(|c| json!({"name": c.service, "weight": c.weight})).collect()
}

fn cookie(c: &weir_proto::snapshot::StickyCookie) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    m.insert("secure".into(), json!(c.secure));
    m.insert("httpOnly".into(), json!(c.http_only));
    if let Some(s) = &c.same_site {
        m.insert("sameSite".into(), json!(s));
    }
    if c.max_age != 0 {
        m.insert("maxAge".into(), json!(c.max_age));
    }
    if let Some(p) = &c.path {
        m.insert("path".into(), json!(p));
    }
    Value::Object(m)
}

/// The route's router as the IngressRoute wrote it, for a router that never reached the
/// snapshot.
fn disabled_router(
    store: &ObjectStore,
    kind: &str,
    namespace: &str,
    name: &str,
    index: usize,
) -> Map<String, Value> {
    let mut m = Map::new();
    let route = (kind == "IngressRoute")
        .then(|| {
            store
                .ingress_routes()
                .find(|ir| ir.metadata.namespace() == namespace && ir.metadata.name == name)
                .and_then(|ir| ir.spec.routes.get(index).map(|r| (ir, r)))
        })
        .flatten();
    if let Some((ir, route)) = route {
        if !ir.spec.entry_points.is_empty() {
            m.insert("entryPoints".into(), json!(ir.spec.entry_points));
        }
        let mws: Vec<String> = route
            .middlewares
            .iter()
            .map(|r| {
                if r.name.contains('@') {
                    r.name.clone()
                } else {
                    weir_proto_name(r.namespace.as_deref().unwrap_or(namespace), &r.name)
                }
            })
            .collect();
        if !mws.is_empty() {
            m.insert("middlewares".into(), json!(mws));
        }
        let service = match route.services.as_slice() {
            [one] if one.name.contains('@') => one.name.clone(),
            [one] if one.kind.as_deref() == Some("TraefikService") => {
                weir_proto_name(one.namespace.as_deref().unwrap_or(namespace), &one.name)
            }
            [one] => match &one.port {
                Some(port) => crate::translate::names::service_name(
                    one.namespace.as_deref().unwrap_or(namespace),
                    &one.name,
                    port,
                ),
                None => weir_proto_name(one.namespace.as_deref().unwrap_or(namespace), &one.name),
            },
            _ => crate::translate::names::router_name(namespace, name, &route.match_),
        };
        m.insert("service".into(), json!(service));
        m.insert("rule".into(), json!(route.match_));
        if let Some(p) = route.priority.filter(|p| *p != 0) {
            m.insert("priority".into(), json!(p));
        }
        if let Some(s) = route.syntax.as_deref().filter(|s| !s.is_empty()) {
            m.insert("ruleSyntax".into(), json!(s));
        }
        if ir.spec.tls.is_some() {
            m.insert("tls".into(), json!({"options": "default"}));
        }
    }
    m
}

/// Status and errors of TCP/UDP routers; disabled ones that never reached the snapshot are
/// listed by name with their errors.
fn apply_health(routers: &mut Map<String, Value>, health: BTreeMap<String, Health>) {
    for (q, h) in health {
        let entry =
            routers.entry(q.clone()).or_insert_with(|| json!({"provider": provider_of(&q), "name": q}));
        if let Value::Object(m) = entry {
            m.insert("error".into(), json!(h.errors));
            m.insert("status".into(), json!(h.status()));
        }
    }
}

type Section = Map<String, Value>;

fn tcp(snapshot: &Snapshot) -> (Section, Section, Section) {
    use weir_proto::tcp::{TcpMiddlewareKind, TcpServiceKind};
    let mut routers = Map::new();
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut mw_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &snapshot.tcp.routers {
        let q = qualified(&r.name);
        users.entry(qualified(&r.service)).or_default().insert(q.clone());
        let mut m = Map::new();
        m.insert("entryPoints".into(), json!(r.entrypoints));
        if !r.middlewares.is_empty() {
            m.insert("middlewares".into(), json!(r.middlewares));
            for mw in &r.middlewares {
                mw_users.entry(qualified(mw)).or_default().insert(q.clone());
            }
        }
        m.insert("service".into(), json!(r.service));
        m.insert("rule".into(), json!(r.rule));
        if r.priority != 0 && r.priority != default_priority(&r.rule) {
            m.insert("priority".into(), json!(r.priority));
        }
        if let Some(tls) = &r.tls {
            let mut t = Map::new();
            if tls.passthrough {
                t.insert("passthrough".into(), json!(true));
            }
            t.insert(
                "options".into(),
                json!(if tls.option.is_empty() { "default" } else { tls.option.as_str() }),
            );
            m.insert("tls".into(), Value::Object(t));
        }
        m.insert("status".into(), json!("enabled"));
        m.insert("using".into(), json!(r.entrypoints));
        m.insert("provider".into(), json!(provider_of(&q)));
        m.insert("name".into(), json!(q));
        routers.insert(q, Value::Object(m));
    }
    let mut services = Map::new();
    for s in &snapshot.tcp.services {
        let q = qualified(&s.name);
        let mut m = Map::new();
        match &s.kind {
            TcpServiceKind::LoadBalancer(lb) => {
                let servers: Vec<Value> = lb
                    .servers
                    .iter()
                    .map(|sv| {
                        if sv.tls {
                            json!({"address": sv.address.to_string(), "tls": true})
                        } else {
                            json!({"address": sv.address.to_string()})
                        }
                    })
                    .collect();
                let mut lbm = Map::new();
                lbm.insert("servers".into(), Value::Array(servers));
                if !lb.servers_transport.is_empty()
                    && lb.servers_transport != weir_proto::snapshot::DEFAULT_SERVERS_TRANSPORT
                {
                    lbm.insert("serversTransport".into(), json!(lb.servers_transport));
                }
                m.insert("loadBalancer".into(), Value::Object(lbm));
                m.insert("type".into(), json!("loadbalancer"));
            }
            TcpServiceKind::Weighted(children) => {
                let children: Vec<Value> =
                    children.iter().map(|c| json!({"name": c.service, "weight": c.weight})).collect();
                m.insert("weighted".into(), json!({"services": children}));
                m.insert("type".into(), json!("weighted"));
            }
        }
        m.insert("status".into(), json!("enabled"));
        if let Some(u) = users.get(&q) {
            m.insert("usedBy".into(), json!(u));
        }
        m.insert("provider".into(), json!(provider_of(&q)));
        m.insert("name".into(), json!(q));
        services.insert(q, Value::Object(m));
    }
    let mut middlewares = Map::new();
    for mw in &snapshot.tcp.middlewares {
        let q = qualified(&mw.name);
        let (key, config) = match &mw.kind {
            TcpMiddlewareKind::InFlightConn { amount } => ("inFlightConn", json!({"amount": amount})),
            TcpMiddlewareKind::IpAllowList { source_range } => {
                ("ipAllowList", json!({"sourceRange": source_range}))
            }
        };
        let mut m = Map::new();
        m.insert(key.into(), config);
        m.insert("status".into(), json!("enabled"));
        if let Some(u) = mw_users.get(&q) {
            m.insert("usedBy".into(), json!(u));
        }
        m.insert("provider".into(), json!(provider_of(&q)));
        m.insert("name".into(), json!(q));
        m.insert("type".into(), json!(key.to_ascii_lowercase()));
        middlewares.insert(q, Value::Object(m));
    }
    (routers, services, middlewares)
}

fn udp(snapshot: &Snapshot) -> (Map<String, Value>, Map<String, Value>) {
    let mut routers = Map::new();
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &snapshot.udp.routers {
        let q = qualified(&r.name);
        users.entry(qualified(&r.service)).or_default().insert(q.clone());
        routers.insert(
            q.clone(),
            json!({"entryPoints": r.entrypoints, "service": r.service, "status": "enabled", "using": r.entrypoints, "name": q, "provider": provider_of(&q)}),
        );
    }
    let mut services = Map::new();
    for s in &snapshot.udp.services {
        let q = qualified(&s.name);
        let mut m = Map::new();
        match &s.kind {
            weir_proto::udp::UdpServiceKind::LoadBalancer(servers) => {
                let servers: Vec<Value> = servers.iter().map(|a| json!({"address": a.to_string()})).collect();
                m.insert("loadBalancer".into(), json!({"servers": servers}));
                m.insert("type".into(), json!("loadbalancer"));
            }
            weir_proto::udp::UdpServiceKind::Weighted(children) => {
                let children: Vec<Value> =
                    children.iter().map(|c| json!({"name": c.service, "weight": c.weight})).collect();
                m.insert("weighted".into(), json!({"services": children}));
                m.insert("type".into(), json!("weighted"));
            }
        }
        m.insert("status".into(), json!("enabled"));
        if let Some(u) = users.get(&q) {
            m.insert("usedBy".into(), json!(u));
        }
        m.insert("provider".into(), json!(provider_of(&q)));
        m.insert("name".into(), json!(q));
        services.insert(q, Value::Object(m));
    }
    (routers, services)
}

/// `StripPrefix` → `stripPrefix`, `IPAllowList` → `ipAllowList`, `PassTLSClientCert` →
/// `passTLSClientCert`, as Traefik's JSON keys are written.
fn lower_camel(type_name: &str) -> String {
    match type_name {
        "IPAllowList" => "ipAllowList".into(),
        "PassTLSClientCert" => "passTLSClientCert".into(),
        "GrpcWeb" => "grpcWeb".into(),
        other => {
            let mut c = other.chars();
            match c.next() {
                Some(first) => first.to_ascii_lowercase().to_string() + c.as_str(),
                None => String::new(),
            }
        }
    }
}

/// A middleware's configuration with Traefik's camelCase keys (weir's resolved form: secrets
/// read, defaults applied).
fn middleware_config(kind: &MiddlewareKind) -> Value {
    match serde_json::to_value(kind) {
        Ok(Value::Object(outer)) => outer.into_iter().next().map_or(json!({}), |(_, v)| camel_keys(v)),
        _ => json!({}),
    }
}

fn camel_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (snake_to_camel(&k), camel_keys(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

fn snake_to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
