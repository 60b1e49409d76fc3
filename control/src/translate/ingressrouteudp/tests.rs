//! Table-driven IngressRouteUDP translation: one row per case, each with its own manifests,
//! asserting the UDP routers and services produced and the problems reported.

use std::path::Path;

use super::*;
use crate::source::manifests::parse_file;

const BACKENDS: &str = "
apiVersion: v1
kind: Service
metadata: {name: dns}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: dns, port: 53, protocol: UDP}
  - {name: other, port: 5353, protocol: UDP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-a, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, port: 1053, protocol: UDP}, {name: dns-tcp, port: 2053, protocol: TCP}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
- {addresses: [10.0.0.3], conditions: {serving: true, terminating: true}}
- {addresses: [10.0.0.4], conditions: {serving: false}}
---
apiVersion: v1
kind: Service
metadata: {name: game}
spec: {ports: [{port: 7777, protocol: UDP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: game-a, labels: {kubernetes.io/service-name: game}}
addressType: IPv4
ports: [{port: 7000, protocol: UDP}]
endpoints:
- addresses: [10.0.1.1]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {ports: [{port: 9, protocol: UDP}]}
---
apiVersion: v1
kind: Service
metadata: {name: game, namespace: other}
spec: {ports: [{port: 7777, protocol: UDP}]}
";

fn options() -> TranslateOptions {
    TranslateOptions {
        entrypoints: vec!["web".into()],
        default_entrypoints: vec!["web".into()],
        udp_entrypoints: vec!["dns".into(), "game".into()],
        ..Default::default()
    }
}

fn udp_route(name: &str, spec: &str) -> String {
    let spec = spec.lines().map(|l| format!("  {l}\n")).collect::<String>();
    format!("---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteUDP\nmetadata: {{name: {name}}}\nspec:\n{spec}")
}

fn translate_with(routes: &str) -> Translation {
    let mut problems = Vec::new();
    let mut store = ObjectStore::new();
    for text in [BACKENDS, routes] {
        for o in parse_file(Path::new("test.yaml"), text, &mut problems) {
            store.insert(o);
        }
    }
    assert!(problems.is_empty(), "fixture problems: {problems:?}");
    let mut out = Translation::default();
    translate_all(&store, &options(), &mut out);
    out
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().expect("test address")).collect()
}

fn lb(name: &str, servers: &[&str]) -> UdpService {
    UdpService { name: name.into(), kind: UdpServiceKind::LoadBalancer(addrs(servers)) }
}

fn router(name: &str, entrypoints: &[&str]) -> UdpRouter {
    UdpRouter {
        name: name.into(),
        entrypoints: entrypoints.iter().map(|e| e.to_string()).collect(),
        service: name.into(),
    }
}

struct Case {
    name: &'static str,
    routes: String,
    routers: Vec<UdpRouter>,
    services: Vec<UdpService>,
    /// Substrings of the problems expected, with their severity (in any order).
    problems: Vec<(Severity, &'static str)>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "one service: serving endpoints of the named port, terminating left out",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: [{name: dns, port: 53}]}]"),
            routers: vec![router("default-r-0", &["dns"])],
            services: vec![lb("default-r-0", &["10.0.0.1:1053", "10.0.0.2:1053"])],
            problems: vec![],
        },
        Case {
            name: "port by name",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: [{name: dns, port: dns-tcp}]}]"),
            routers: vec![router("default-r-0", &["dns"])],
            services: vec![lb("default-r-0", &["10.0.0.1:2053", "10.0.0.2:2053"])],
            problems: vec![],
        },
        Case {
            name: "no entryPoints: every UDP entrypoint",
            routes: udp_route("r", "routes: [{services: [{name: game, port: 7777}]}]"),
            routers: vec![router("default-r-0", &["dns", "game"])],
            services: vec![lb("default-r-0", &["10.0.1.1:7000"])],
            problems: vec![],
        },
        Case {
            name: "nativeLB: the ClusterIP and service port",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: [{name: dns, port: 53, nativeLB: true}]}]"),
            routers: vec![router("default-r-0", &["dns"])],
            services: vec![lb("default-r-0", &["10.96.0.10:53"])],
            problems: vec![],
        },
        Case {
            name: "two services: weighted over named load balancers",
            routes: udp_route(
                "r",
                "entryPoints: [dns]\nroutes:\n- services:\n  - {name: dns, port: 53, weight: 3}\n  - {name: game, port: 7777}",
            ),
            routers: vec![router("default-r-0", &["dns"])],
            services: vec![
                UdpService {
                    name: "default-r-0".into(),
                    kind: UdpServiceKind::Weighted(vec![
                        UdpWeighted { service: "default-r-0-dns-53".into(), weight: 3 },
                        UdpWeighted { service: "default-r-0-game-7777".into(), weight: 1 },
                    ]),
                },
                lb("default-r-0-dns-53", &["10.0.0.1:1053", "10.0.0.2:1053"]),
                lb("default-r-0-game-7777", &["10.0.1.1:7000"]),
            ],
            problems: vec![],
        },
        Case {
            name: "a bad reference is left out, the route keeps the others",
            routes: udp_route(
                "r",
                "entryPoints: [dns]\nroutes:\n- services:\n  - {name: missing, port: 53}\n  - {name: game, port: 7777}",
            ),
            routers: vec![router("default-r-0", &["dns"])],
            services: vec![
                UdpService {
                    name: "default-r-0".into(),
                    kind: UdpServiceKind::Weighted(vec![UdpWeighted {
                        service: "default-r-0-game-7777".into(),
                        weight: 1,
                    }]),
                },
                lb("default-r-0-game-7777", &["10.0.1.1:7000"]),
            ],
            problems: vec![(Severity::Error, "service default/missing not found")],
        },
        Case {
            name: "a TCP entrypoint is refused, the UDP one kept",
            routes: udp_route("r", "entryPoints: [web, dns]\nroutes: [{services: [{name: game, port: 7777}]}]"),
            routers: vec![router("default-r-0", &["dns"])],
            services: vec![lb("default-r-0", &["10.0.1.1:7000"])],
            problems: vec![(Severity::Warning, "`web` is not a UDP entrypoint")],
        },
        Case {
            name: "only a TCP entrypoint: no router",
            routes: udp_route("r", "entryPoints: [web]\nroutes: [{services: [{name: game, port: 7777}]}]"),
            routers: vec![],
            services: vec![],
            problems: vec![
                (Severity::Warning, "`web` is not a UDP entrypoint"),
                (Severity::Error, "no valid UDP entrypoint among web"),
            ],
        },
        Case {
            name: "one router per entrypoint: the first by name",
            routes: format!(
                "{}{}",
                udp_route("b", "entryPoints: [dns, game]\nroutes: [{services: [{name: game, port: 7777}]}]"),
                udp_route("a", "entryPoints: [dns]\nroutes: [{services: [{name: dns, port: 53}]}]"),
            ),
            routers: vec![router("default-a-0", &["dns"]), router("default-b-0", &["game"])],
            services: vec![
                lb("default-a-0", &["10.0.0.1:1053", "10.0.0.2:1053"]),
                lb("default-b-0", &["10.0.1.1:7000"]),
            ],
            problems: vec![(Severity::Warning, "`dns` already serves router default-a-0")],
        },
        Case {
            name: "no endpoints",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: [{name: empty, port: 9}]}]"),
            routers: vec![],
            services: vec![],
            problems: vec![(Severity::Error, "no endpoints for service default/empty")],
        },
        Case {
            name: "cross namespace refused by default",
            routes: udp_route(
                "r",
                "entryPoints: [dns]\nroutes: [{services: [{name: game, namespace: other, port: 7777}]}]",
            ),
            routers: vec![],
            services: vec![],
            problems: vec![(Severity::Error, "allowCrossNamespace is false")],
        },
        Case {
            name: "port required",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: [{name: game}]}]"),
            routers: vec![],
            services: vec![],
            problems: vec![(Severity::Error, "port is required")],
        },
        Case {
            name: "negative weight",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: [{name: game, port: 7777, weight: -2}]}]"),
            routers: vec![],
            services: vec![],
            problems: vec![(Severity::Error, "invalid weight -2")],
        },
        Case {
            name: "no services",
            routes: udp_route("r", "entryPoints: [dns]\nroutes: [{services: []}]"),
            routers: vec![],
            services: vec![],
            problems: vec![(Severity::Error, "no services")],
        },
        Case {
            name: "foreign ingress class ignored",
            routes: udp_route(
                "r",
                "ingressClassName: nginx\nentryPoints: [dns]\nroutes: [{services: [{name: game, port: 7777}]}]",
            ),
            routers: vec![],
            services: vec![],
            problems: vec![(Severity::Info, "ingress class `nginx`")],
        },
    ]
}

#[test]
fn ingress_routes_udp() {
    for case in cases() {
        let out = translate_with(&case.routes);
        assert_eq!(out.udp.routers, case.routers, "{}", case.name);
        assert_eq!(out.udp.services, case.services, "{}", case.name);
        assert_eq!(out.problems.len(), case.problems.len(), "{}: {:?}", case.name, out.problems);
        for (severity, text) in &case.problems {
            assert!(
                out.problems.iter().any(|p| p.severity == *severity && p.message.contains(text)),
                "{}: no {severity:?} problem containing {text:?} in {:?}",
                case.name,
                out.problems
            );
        }
    }
}
