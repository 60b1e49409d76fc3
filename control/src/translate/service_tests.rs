//! Table-driven tests of service resolution as Traefik's CRD provider does it: nativeLB,
//! ExternalName, terminating endpoints, schemes, sticky cookies, health checks, servers
//! transports, and TraefikServices (weighted to any depth, mirroring, cycles, noop@internal).

use std::collections::BTreeMap;
use std::path::Path;

use weir_proto::rule::Syntax;
use weir_proto::snapshot::{Scheme, Service, ServiceKind};

use super::*;
use crate::source::manifests::parse_file;

const FIXTURES: &str = "
apiVersion: v1
kind: Service
metadata: {name: app}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80}, {name: https-api, port: 8443}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, labels: {kubernetes.io/service-name: app}}
ports: [{name: http, port: 8080}, {name: https-api, port: 9443}]
endpoints:
- {addresses: [10.0.0.1]}
- {addresses: [10.0.0.2], conditions: {serving: true, terminating: true}}
- {addresses: [10.0.0.3], conditions: {serving: false, terminating: true}}
---
apiVersion: v1
kind: Service
metadata: {name: other}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other-1, labels: {kubernetes.io/service-name: other}}
ports: [{port: 80}]
endpoints: [{addresses: [10.0.1.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: backend.example.com, ports: [{port: 8080}]}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: outer}
spec:
  weighted:
    services:
    - {name: app, port: 80, weight: 3}
    - {name: inner, kind: TraefikService, weight: 1}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: inner}
spec:
  weighted:
    services:
    - {name: other, port: 80}
    - {name: noop@internal, kind: TraefikService, weight: 0}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: loop-a}
spec: {weighted: {services: [{name: loop-b, kind: TraefikService}]}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: loop-b}
spec: {weighted: {services: [{name: loop-a, kind: TraefikService}]}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: mirror}
spec:
  mirroring:
    name: app
    port: 80
    mirrors: [{name: other, port: 80, percent: 10}]
    maxBodySize: 1024
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: bad-percent}
spec: {mirroring: {name: app, port: 80, mirrors: [{name: other, port: 80, percent: 101}]}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: broken-child}
spec: {weighted: {services: [{name: nowhere, port: 80}]}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: sticky}
spec: {weighted: {services: [{name: app, port: 80}], sticky: {cookie: {httpOnly: true}}}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: empty}
spec: {}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {name: tight}
spec: {serverName: api.internal, forwardingTimeouts: {responseHeaderTimeout: 1s, dialTimeout: 2, readIdleTimeout: 30s}}
";

fn store() -> ObjectStore {
    let mut problems = Vec::new();
    let mut store = ObjectStore::new();
    for o in parse_file(Path::new("fixtures.yaml"), FIXTURES, &mut problems) {
        store.insert(o);
    }
    assert!(problems.is_empty(), "fixture problems: {problems:?}");
    store
}

/// Translates one route with these `services` entries; the router's service and every
/// service, or the route's error.
fn run(
    services: &str,
    tune: impl Fn(&mut ServiceOptions),
) -> Result<(String, BTreeMap<String, Service>), String> {
    let mut store = store();
    let ir = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: web}}\nspec:\n  routes:\n  - match: Path(`/`)\n    services: {services}\n"
    );
    let mut problems = Vec::new();
    for o in parse_file(Path::new("ir.yaml"), &ir, &mut problems) {
        store.insert(o);
    }
    assert!(problems.is_empty(), "{problems:?}");
    let mut services = ServiceOptions::default();
    tune(&mut services);
    let options = TranslateOptions {
        entrypoints: vec!["web".into()],
        default_entrypoints: vec!["web".into()],
        services,
        default_rule_syntax: Syntax::V3,
        ..Default::default()
    };
    let out = translate(&store, &options);
    let errors: Vec<String> = out
        .problems
        .iter()
        .filter(|p| p.severity == crate::status::Severity::Error)
        .map(|p| p.message.clone())
        .collect();
    match out.routers.values().next() {
        Some(r) => {
            Ok((r.service.clone(), out.services.into_iter().map(|(k, v)| (k, Service::clone(&v))).collect()))
        }
        None => Err(errors.join("; ")),
    }
}

fn lb(services: &BTreeMap<String, Service>, name: &str) -> weir_proto::snapshot::LoadBalancer {
    match &services.get(name).unwrap_or_else(|| panic!("{name} in {services:?}")).kind {
        ServiceKind::LoadBalancer(lb) => lb.clone(),
        other => panic!("{name} is {other:?}"),
    }
}

fn urls(lb: &weir_proto::snapshot::LoadBalancer) -> Vec<(String, bool)> {
    lb.servers.iter().map(|s| (s.url.clone(), s.fenced)).collect()
}

#[test]
fn kubernetes_services() {
    let none = |_: &mut ServiceOptions| {};
    let fenced = run("[{name: app, port: 80}]", none).expect("endpoints");
    assert_eq!(fenced.0, "default-app-80");
    assert_eq!(
        urls(&lb(&fenced.1, "default-app-80")),
        [("http://10.0.0.1:8080".to_string(), false), ("http://10.0.0.2:8080".to_string(), true)],
        "serving+terminating kept fenced, not serving dropped"
    );

    type Case =
        (&'static str, &'static str, fn(&mut ServiceOptions), Result<Vec<&'static str>, &'static str>);
    let cases: [Case; 12] = [
        (
            "nativeLB on the ref",
            "[{name: app, port: 80, nativeLB: true}]",
            |_| {},
            Ok(vec!["http://10.96.0.10:80"]),
        ),
        (
            "nativeLB by default",
            "[{name: app, port: 80}]",
            |o| o.native_lb_by_default = true,
            Ok(vec!["http://10.96.0.10:80"]),
        ),
        (
            "ref overrides nativeLBByDefault",
            "[{name: app, port: 80, nativeLB: false}]",
            |o| o.native_lb_by_default = true,
            Ok(vec!["http://10.0.0.1:8080", "http://10.0.0.2:8080"]),
        ),
        (
            "nativeLB on a headless service",
            "[{name: headless, port: 80, nativeLB: true}]",
            |_| {},
            Err("has none (headless)"),
        ),
        (
            "ExternalName refused by default",
            "[{name: ext, port: 8080}]",
            |_| {},
            Err("ExternalName services are not allowed"),
        ),
        (
            "ExternalName allowed",
            "[{name: ext, port: 8080}]",
            |o| o.allow_external_name_services = true,
            Ok(vec!["http://backend.example.com:8080"]),
        ),
        (
            "ExternalName on an undeclared int port",
            "[{name: ext, port: 9090}]",
            |o| o.allow_external_name_services = true,
            Ok(vec!["http://backend.example.com:9090"]),
        ),
        (
            "https inferred from the port name",
            "[{name: app, port: https-api}]",
            |_| {},
            Ok(vec!["https://10.0.0.1:9443", "https://10.0.0.2:9443"]),
        ),
        ("h2c scheme", "[{name: other, port: 80, scheme: h2c}]", |_| {}, Ok(vec!["h2c://10.0.1.1:80"])),
        (
            "health check refused on a ClusterIP service",
            "[{name: app, port: 80, healthCheck: {path: /health}}]",
            |_| {},
            Err("healthCheck allowed only for ExternalName"),
        ),
        (
            "unknown strategy",
            "[{name: app, port: 80, strategy: random}]",
            |_| {},
            Err("unsupported load-balancer strategy \"random\""),
        ),
        (
            "missing servers transport",
            "[{name: app, port: 80, serversTransport: nope}]",
            |_| {},
            Err("serversTransport `nope`: not found"),
        ),
    ];
    for (name, services, tune, want) in cases {
        let got = run(services, tune);
        match (want, got) {
            (Ok(want), Ok((svc, all))) => {
                let got: Vec<String> = lb(&all, &svc).servers.iter().map(|s| s.url.clone()).collect();
                assert_eq!(got, want, "case {name}");
            }
            (Err(want), Err(got)) => assert!(got.contains(want), "case {name}: {got}"),
            (want, got) => panic!("case {name}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn load_balancer_options() {
    let (svc, all) = run(
        "[{name: app, port: 80, passHostHeader: false, serversTransport: tight, responseForwarding: {flushInterval: -1ms}, sticky: {cookie: {sameSite: lax, secure: true}}}]",
        |_| {},
    )
    .expect("valid");
    let balancer = lb(&all, &svc);
    assert!(!balancer.pass_host_header);
    assert_eq!(balancer.servers_transport.as_deref(), Some("default-tight"));
    assert_eq!(balancer.flush_interval_ms, -1);
    let cookie = balancer.sticky.expect("sticky");
    // Derived from sha1("_TRAEFIK_BACKEND_default-app-80@kubernetescrd").
    assert_eq!(cookie.name, service::cookie_name(None, "default-app-80@kubernetescrd"));
    assert!(cookie.name.starts_with('_') && cookie.name.len() == 6);
    assert_eq!(
        (cookie.same_site.as_deref(), cookie.secure, cookie.path.as_deref()),
        (Some("Lax"), true, Some("/"))
    );

    let (svc, all) = run(
        "[{name: ext, port: 8080, healthCheck: {path: /health, interval: 10s, timeout: 3, headers: {X-Check: '1'}}}]",
        |o| o.allow_external_name_services = true,
    )
    .expect("valid");
    let hc = lb(&all, &svc).health_check.expect("health check");
    assert_eq!(
        (hc.path.as_str(), hc.interval_ms, hc.unhealthy_interval_ms, hc.timeout_ms),
        ("/health", 10_000, 10_000, 3_000)
    );
    assert_eq!((hc.method.as_str(), hc.follow_redirects, hc.status), ("GET", true, 0));
    assert_eq!(hc.headers, [("X-Check".to_string(), "1".to_string())]);
    assert_eq!(lb(&all, &svc).servers[0].hostname.as_deref(), Some("backend.example.com"));
    assert_eq!(lb(&all, &svc).servers[0].scheme, Scheme::Http);
}

#[test]
fn servers_transports_are_translated() {
    let mut problems = Vec::new();
    let all = serverstransport::translate_all(&store(), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let t = &all[0];
    assert_eq!(t.name, "default-tight");
    assert_eq!(
        (t.server_name.as_deref(), t.response_header_timeout_ms, t.dial_timeout_ms),
        (Some("api.internal"), 1_000, 2_000)
    );
    assert_eq!((t.idle_conn_timeout_ms, t.max_idle_conns_per_host), (90_000, 200));
    // HTTP/2 health pings: readIdleTimeout as written, pingTimeout at Traefik's 15 s default.
    assert_eq!((t.read_idle_timeout_ms, t.ping_timeout_ms), (30_000, 15_000));
}

#[test]
fn traefik_services() {
    type Case = (&'static str, &'static str, Result<&'static str, &'static str>);
    let cases: [Case; 9] = [
        ("nested weighted", "[{name: outer, kind: TraefikService}]", Ok("default-outer")),
        (
            "provider-qualified name",
            "[{name: outer@kubernetescrd, kind: TraefikService}]",
            Ok("default-outer"),
        ),
        ("noop", "[{name: noop@internal, kind: TraefikService}]", Ok("noop@internal")),
        ("mirroring", "[{name: mirror, kind: TraefikService}]", Ok("default-mirror")),
        ("sticky weighted", "[{name: sticky, kind: TraefikService}]", Ok("default-sticky")),
        (
            "cycle",
            "[{name: loop-a, kind: TraefikService}]",
            Err("cycle: default-loop-a -> default-loop-b -> default-loop-a"),
        ),
        ("missing", "[{name: ghost, kind: TraefikService}]", Err("TraefikService default/ghost not found")),
        (
            "broken child",
            "[{name: broken-child, kind: TraefikService}]",
            Err("TraefikService default/broken-child: service default/nowhere not found"),
        ),
        (
            "percent above 100",
            "[{name: bad-percent, kind: TraefikService}]",
            Err("percent must be between 0 and 100"),
        ),
    ];
    for (name, services, want) in cases {
        match (want, run(services, |_| {})) {
            (Ok(want), Ok((svc, _))) => assert_eq!(svc, want, "case {name}"),
            (Err(want), Err(got)) => assert!(got.contains(want), "case {name}: {got}"),
            (want, got) => panic!("case {name}: want {want:?}, got {got:?}"),
        }
    }
    assert!(run("[{name: empty, kind: TraefikService}]", |_| {})
        .unwrap_err()
        .contains("unspecified service type"));

    let (_, all) = run("[{name: outer, kind: TraefikService}]", |_| {}).expect("valid");
    let names: Vec<&str> = all.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["default-app-80", "default-inner", "default-other-80", "default-outer", "noop@internal"]
    );
    match &all["default-outer"].kind {
        ServiceKind::Weighted(c) => {
            let got: Vec<(&str, u32)> = c.iter().map(|c| (c.service.as_str(), c.weight)).collect();
            assert_eq!(got, [("default-app-80", 3), ("default-inner", 1)]);
        }
        other => panic!("{other:?}"),
    }
    let (_, all) = run("[{name: mirror, kind: TraefikService}]", |_| {}).expect("valid");
    match &all["default-mirror"].kind {
        ServiceKind::Mirroring(m) => {
            assert_eq!((m.service.as_str(), m.mirror_body, m.max_body_size), ("default-app-80", true, 1024));
            assert_eq!((m.mirrors[0].service.as_str(), m.mirrors[0].percent), ("default-other-80", 10));
        }
        other => panic!("{other:?}"),
    }
    let (_, all) = run("[{name: sticky, kind: TraefikService}]", |_| {}).expect("valid");
    match &all["default-sticky"].kind {
        ServiceKind::StickyWeighted { cookie, .. } => {
            assert_eq!(cookie.name, service::cookie_name(None, "default-sticky@kubernetescrd"));
            assert!(cookie.http_only);
        }
        other => panic!("{other:?}"),
    }
    // Several references (of any kind) on one route: a weighted service named like the router.
    let (svc, all) = run("[{name: outer, kind: TraefikService, weight: 2}, {name: other, port: 80}]", |_| {})
        .expect("valid");
    assert!(svc.starts_with("default-web-"), "{svc}");
    assert!(matches!(&all[&svc].kind, ServiceKind::Weighted(c) if c.len() == 2 && c[0].weight == 2));
}

#[test]
fn strategies_translate() {
    use weir_proto::snapshot::Strategy;
    let cases = [
        ("default", "[{name: app, port: 80}]", Strategy::Wrr),
        ("wrr", "[{name: app, port: 80, strategy: wrr}]", Strategy::Wrr),
        ("v2 RoundRobin", "[{name: app, port: 80, strategy: RoundRobin}]", Strategy::Wrr),
        ("p2c", "[{name: app, port: 80, strategy: p2c}]", Strategy::P2c),
        ("hrw", "[{name: app, port: 80, strategy: hrw}]", Strategy::Hrw),
        ("leasttime", "[{name: app, port: 80, strategy: leasttime}]", Strategy::LeastTime),
    ];
    for (name, services, want) in cases {
        let (svc, all) = run(services, |_| {}).unwrap_or_else(|e| panic!("case {name}: {e:?}"));
        assert_eq!(lb(&all, &svc).strategy, want, "case {name}");
    }
}
