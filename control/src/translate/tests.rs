//! Table-driven translation tests: one IngressRoute per row against a fixed set of Services
//! and EndpointSlices, asserting the routers and services produced or the reason given.

use std::path::Path;

use weir_proto::rule::{Expr, Matcher, Syntax};
use weir_proto::snapshot::ServiceKind;

use super::*;
use crate::source::manifests::parse_file;
use crate::status::{Severity, Subject};

const BACKENDS: &str = "
apiVersion: v1
kind: Service
metadata: {name: whoami}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: admin, port: 9000}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami-a, labels: {kubernetes.io/service-name: whoami}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: admin, port: 9001}]
endpoints:
- addresses: [10.0.0.2]
- {addresses: [10.0.0.9], conditions: {ready: true, serving: false, terminating: true}}
- {addresses: [10.0.0.8], conditions: {ready: false}}
- {addresses: [10.0.0.1], conditions: {ready: false, serving: true, terminating: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami-b, labels: {kubernetes.io/service-name: whoami}}
addressType: IPv6
ports: [{name: http, port: 8080}]
endpoints:
- addresses: ['fd00::1']
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami-c, labels: {kubernetes.io/service-name: whoami}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.0.0.2]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami-other-port, labels: {kubernetes.io/service-name: whoami}}
addressType: IPv4
ports: [{name: metrics, port: 7000}]
endpoints:
- addresses: [10.0.0.7]
---
apiVersion: v1
kind: Service
metadata: {name: single}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: single-1, labels: {kubernetes.io/service-name: single}}
addressType: IPv4
ports: [{port: 3000}]
endpoints: [{addresses: [10.1.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: secure}
spec: {ports: [{port: 443}, {name: https-alt, port: 8443}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: secure-1, labels: {kubernetes.io/service-name: secure}}
addressType: IPv4
ports: [{port: 443}, {name: https-alt, port: 8443}]
endpoints: [{addresses: [10.2.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: empty-1, labels: {kubernetes.io/service-name: empty}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.3.0.1], conditions: {ready: false, serving: false}}]
---
apiVersion: v1
kind: Service
metadata: {name: remote, namespace: other}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: remote-1, namespace: other, labels: {kubernetes.io/service-name: remote}}
addressType: IPv4
ports: [{port: 80}]
endpoints: [{addresses: [10.4.0.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: external}
spec: {type: ExternalName, externalName: example.com, ports: [{port: 80}]}
";

/// What a row expects of its first route.
enum Want {
    /// Served: the router's service, priority and entrypoints, and the services generated.
    Served {
        service: &'static str,
        priority: i64,
        entrypoints: &'static [&'static str],
        services: &'static [(&'static str, Svc)],
    },
    /// Disabled with a reason containing this text.
    Disabled(&'static str),
}

/// A generated service.
enum Svc {
    /// Server URLs and passHostHeader.
    Lb(&'static [&'static str], bool),
    /// Children and weights.
    Weighted(&'static [(&'static str, u32)]),
}

struct Case {
    name: &'static str,
    /// `spec` of IngressRoute `default/web`.
    spec: &'static str,
    allow_cross_namespace: bool,
    allow_empty_services: bool,
    want: Want,
}

const fn case(name: &'static str, spec: &'static str, want: Want) -> Case {
    Case { name, spec, allow_cross_namespace: false, allow_empty_services: false, want }
}

// Traefik keeps every endpoint whose `serving` is not false (10.0.0.8 has only `ready: false`).
const WHOAMI_SERVERS: &[&str] =
    &["http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.8:8080", "http://[fd00::1]:8080"];

fn cases() -> Vec<Case> {
    use Svc::*;
    use Want::*;
    vec![
        case(
            "host route, default priority is the rule length",
            "routes: [{match: 'Host(`a.example`)', services: [{name: whoami, port: 80}]}]",
            Served {
                service: "default-whoami-80",
                priority: 17,
                entrypoints: &["admin", "web"],
                services: &[("default-whoami-80", Lb(WHOAMI_SERVERS, true))],
            },
        ),
        case(
            "path route with explicit priority and entrypoint",
            "entryPoints: [web]\nroutes: [{match: 'PathPrefix(`/api`)', priority: 5, kind: Rule, services: [{name: whoami, port: 80}]}]",
            Served {
                service: "default-whoami-80",
                priority: 5,
                entrypoints: &["web"],
                services: &[("default-whoami-80", Lb(WHOAMI_SERVERS, true))],
            },
        ),
        case(
            "port by name, passHostHeader false",
            "routes: [{match: 'Path(`/`)', services: [{name: whoami, port: http, passHostHeader: false}]}]",
            Served {
                service: "default-whoami-http",
                priority: 9,
                entrypoints: &["admin", "web"],
                services: &[("default-whoami-http", Lb(WHOAMI_SERVERS, false))],
            },
        ),
        case(
            "second port uses the slice port of the same name",
            "routes: [{match: 'Path(`/`)', services: [{name: whoami, port: 9000}]}]",
            Served {
                service: "default-whoami-9000",
                priority: 9,
                entrypoints: &["admin", "web"],
                services: &[("default-whoami-9000", Lb(&["http://10.0.0.1:9001", "http://10.0.0.2:9001", "http://10.0.0.8:9001"], true))],
            },
        ),
        case(
            "unnamed port matches unnamed slice port",
            "routes: [{match: 'Path(`/`)', services: [{name: single, port: 80}]}]",
            Served {
                service: "default-single-80",
                priority: 9,
                entrypoints: &["admin", "web"],
                services: &[("default-single-80", Lb(&["http://10.1.0.1:3000"], true))],
            },
        ),
        case(
            "https inferred from port 443 and from an https port name",
            "routes: [{match: 'Path(`/`)', services: [{name: secure, port: 443}, {name: secure, port: https-alt}]}]",
            Served {
                service: "default-web-ea3e18f6ac2df301c2eb",
                priority: 9,
                entrypoints: &["admin", "web"],
                services: &[
                    ("default-secure-443", Lb(&["https://10.2.0.1:443"], true)),
                    ("default-secure-https-alt", Lb(&["https://10.2.0.1:8443"], true)),
                    ("default-web-ea3e18f6ac2df301c2eb", Weighted(&[("default-secure-443", 1), ("default-secure-https-alt", 1)])),
                ],
            },
        ),
        case(
            "several services become a weighted service named like the router",
            "routes: [{match: 'Path(`/`)', services: [{name: whoami, port: 80, weight: 3}, {name: single, port: 80}]}]",
            Served {
                service: "default-web-ea3e18f6ac2df301c2eb",
                priority: 9,
                entrypoints: &["admin", "web"],
                services: &[
                    ("default-single-80", Lb(&["http://10.1.0.1:3000"], true)),
                    ("default-web-ea3e18f6ac2df301c2eb", Weighted(&[("default-whoami-80", 3), ("default-single-80", 1)])),
                    ("default-whoami-80", Lb(WHOAMI_SERVERS, true)),
                ],
            },
        ),
        case(
            "undefined entrypoint among defined ones is dropped",
            "entryPoints: [web, nope]\nroutes: [{match: 'Path(`/`)', services: [{name: single, port: 80}]}]",
            Served {
                service: "default-single-80",
                priority: 9,
                entrypoints: &["web"],
                services: &[("default-single-80", Lb(&["http://10.1.0.1:3000"], true))],
            },
        ),
        Case {
            allow_cross_namespace: true,
            ..case(
                "cross-namespace allowed",
                "routes: [{match: 'Path(`/`)', services: [{name: remote, namespace: other, port: 80}]}]",
                Served {
                    service: "other-remote-80",
                    priority: 9,
                    entrypoints: &["admin", "web"],
                    services: &[("other-remote-80", Lb(&["http://10.4.0.1:80"], true))],
                },
            )
        },
        Case {
            allow_empty_services: true,
            ..case(
                "empty service allowed answers 503",
                "routes: [{match: 'Path(`/`)', services: [{name: empty, port: 80}]}]",
                Served {
                    service: "default-empty-80",
                    priority: 9,
                    entrypoints: &["admin", "web"],
                    services: &[("default-empty-80", Lb(&[], true))],
                },
            )
        },
        case(
            "empty service refused by default",
            "routes: [{match: 'Path(`/`)', services: [{name: empty, port: 80}]}]",
            Disabled("no endpoints for service default/empty"),
        ),
        case(
            "cross-namespace refused by default",
            "routes: [{match: 'Path(`/`)', services: [{name: remote, namespace: other, port: 80}]}]",
            Disabled("service other/remote: reference from namespace default is not allowed"),
        ),
        case(
            "missing service",
            "routes: [{match: 'Path(`/`)', services: [{name: nope, port: 80}]}]",
            Disabled("service default/nope not found"),
        ),
        case(
            "wrong port number",
            "routes: [{match: 'Path(`/`)', services: [{name: whoami, port: 81}]}]",
            Disabled("service port not found"),
        ),
        case(
            "port name given as a quoted number matches names only",
            "routes: [{match: 'Path(`/`)', services: [{name: whoami, port: '80'}]}]",
            Disabled("service port not found"),
        ),
        case(
            "port missing",
            "routes: [{match: 'Path(`/`)', services: [{name: whoami}]}]",
            Disabled("port is required"),
        ),
        case(
            "ExternalName refused",
            "routes: [{match: 'Path(`/`)', services: [{name: external, port: 80}]}]",
            Disabled("ExternalName services are not allowed"),
        ),
        case("no services", "routes: [{match: 'Path(`/`)'}]", Disabled("route has no services")),
        case(
            "TLS",
            "tls: {secretName: cert}\nroutes: [{match: 'Path(`/`)', services: [{name: single, port: 80}]}]",
            Disabled("secret default/cert does not exist"),
        ),
        case(
            "middlewares",
            "routes: [{match: 'Path(`/`)', middlewares: [{name: auth}], services: [{name: single, port: 80}]}]",
            Disabled("middleware default/auth not found"),
        ),
        case(
            "TraefikService",
            "routes: [{match: 'Path(`/`)', services: [{name: wrr, kind: TraefikService}]}]",
            Disabled("TraefikService default/wrr not found"),
        ),
        case(
            "bad rule",
            "routes: [{match: 'Host(`a`', services: [{name: single, port: 80}]}]",
            Disabled("invalid rule `Host(`a`"),
        ),
        case("empty match", "routes: [{match: '', services: [{name: single, port: 80}]}]", Disabled("match is empty")),
        case(
            "route kind",
            "routes: [{match: 'Path(`/`)', kind: Match, services: [{name: single, port: 80}]}]",
            Disabled("route kind `Match` is not supported"),
        ),
        case(
            "priority too high",
            "routes: [{match: 'Path(`/`)', priority: 9223372036854775807, services: [{name: single, port: 80}]}]",
            Disabled("above the maximum user priority"),
        ),
        case(
            "no defined entrypoint",
            "entryPoints: [websecure]\nroutes: [{match: 'Path(`/`)', services: [{name: single, port: 80}]}]",
            Disabled("no valid entrypoint: websecure not defined"),
        ),
        case(
            "negative weight",
            "routes: [{match: 'Path(`/`)', services: [{name: single, port: 80, weight: -1}]}]",
            Disabled("invalid weight -1"),
        ),
    ]
}

fn store_with(extra: &str) -> ObjectStore {
    let mut problems = Vec::new();
    let mut store = ObjectStore::new();
    for text in [BACKENDS, extra] {
        for o in parse_file(Path::new("test.yaml"), text, &mut problems) {
            store.insert(o);
        }
    }
    assert!(problems.is_empty(), "fixture problems: {problems:?}");
    store
}

fn options(cross: bool, empty: bool) -> TranslateOptions {
    TranslateOptions {
        entrypoints: vec!["admin".into(), "web".into()],
        default_entrypoints: vec!["admin".into(), "web".into()],
        services: ServiceOptions {
            allow_cross_namespace: cross,
            allow_empty_services: empty,
            ..Default::default()
        },
        default_rule_syntax: Syntax::V3,
        ..Default::default()
    }
}

fn ingress_route(spec: &str) -> String {
    let spec = spec.lines().map(|l| format!("  {l}\n")).collect::<String>();
    format!("apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: web}}\nspec:\n{spec}")
}

#[test]
fn ingress_routes() {
    for case in cases() {
        let name = case.name;
        let store = store_with(&ingress_route(case.spec));
        let out = translate(&store, &options(case.allow_cross_namespace, case.allow_empty_services));
        let errors: Vec<&Problem> = out.problems.iter().filter(|p| p.severity == Severity::Error).collect();
        match case.want {
            Want::Served { service, priority, entrypoints, services } => {
                assert!(errors.is_empty(), "{name}: {errors:?}");
                assert_eq!(out.routers.len(), 1, "{name}");
                let (router_name, router) = out.routers.iter().next().expect("one router");
                assert_eq!(router_name, &router.name, "{name}");
                assert!(router.name.starts_with("default-web-"), "{name}: {}", router.name);
                assert_eq!(router.service, service, "{name}");
                assert_eq!(router.priority, priority, "{name}");
                assert_eq!(router.entrypoints, entrypoints, "{name}");
                let got: Vec<&str> = out.services.keys().map(String::as_str).collect();
                let want: Vec<&str> = services.iter().map(|(n, _)| *n).collect();
                assert_eq!(got, want, "{name}");
                for (svc_name, want) in services {
                    let kind = &out.services[*svc_name].kind;
                    match (want, kind) {
                        (Svc::Lb(urls, pass_host), ServiceKind::LoadBalancer(lb)) => {
                            let got: Vec<&str> = lb.servers.iter().map(|s| s.url.as_str()).collect();
                            assert_eq!(&got, urls, "{name}: {svc_name}");
                            assert!(lb.servers.iter().all(|s| s.weight == 1), "{name}");
                            assert_eq!(lb.pass_host_header, *pass_host, "{name}: {svc_name}");
                        }
                        (Svc::Weighted(children), ServiceKind::Weighted(got)) => {
                            let got: Vec<(&str, u32)> =
                                got.iter().map(|c| (c.service.as_str(), c.weight)).collect();
                            assert_eq!(&got, children, "{name}: {svc_name}");
                        }
                        (_, other) => panic!("{name}: {svc_name} is {other:?}"),
                    }
                }
            }
            Want::Disabled(reason) => {
                assert!(out.routers.is_empty(), "{name}: {:?}", out.routers);
                assert!(out.services.is_empty(), "{name}: {:?}", out.services);
                assert_eq!(errors.len(), 1, "{name}: {errors:?}");
                assert!(errors[0].message.contains(reason), "{name}: {}", errors[0].message);
                match &errors[0].subject {
                    Subject::Route { kind, namespace, name: ir, route, router } => {
                        assert_eq!(
                            (kind.as_str(), namespace.as_str(), ir.as_str(), *route),
                            ("IngressRoute", "default", "web", 0)
                        );
                        assert!(router.starts_with("default-web-"), "{name}");
                    }
                    other => panic!("{name}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn errors_disable_only_their_route_and_identical_rules_overwrite() {
    let ir = ingress_route(
        "routes:
- {match: 'Path(`/a`)', services: [{name: whoami, port: 80}]}
- {match: 'Path(`/b`)', services: [{name: nope, port: 80}]}
- {match: 'Path(`/a`)', services: [{name: single, port: 80}]}",
    );
    let out = translate(&store_with(&ir), &options(false, false));
    let routers: Vec<(&str, &str)> =
        out.routers.values().map(|r| (r.rule.as_str(), r.service.as_str())).collect();
    // The third route has the first one's rule, hence its name: it wins.
    assert_eq!(routers, [("Path(`/a`)", "default-single-80")]);
    assert!(out.services.contains_key("default-whoami-80"), "generated before being overwritten");
    let errors: Vec<(usize, &str)> = out
        .problems
        .iter()
        .filter_map(|p| match &p.subject {
            Subject::Route { route, .. } if p.severity == Severity::Error => {
                Some((*route, p.message.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(errors, [(1, "service default/nope not found")]);
}

/// Two IngressRoutes generating one service name with different definitions: the later one
/// (in store order) wins and its route is warned; an identical definition warns nobody.
#[test]
fn later_service_definition_wins_with_a_warning() {
    let ir = |name: &str, path: &str, pass_host: bool| {
        format!(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}}}\nspec:\n  routes:\n  \
             - {{match: 'Path(`{path}`)', services: [{{name: single, port: 80, passHostHeader: {pass_host}}}]}}\n"
        )
    };
    let store = store_with(&format!(
        "{}---\n{}---\n{}",
        ir("a", "/a", true),
        ir("b", "/b", false),
        ir("c", "/c", false)
    ));
    let out = translate(&store, &options(false, false));
    assert_eq!(out.routers.len(), 3);
    let ServiceKind::LoadBalancer(lb) = &out.services["default-single-80"].kind else { panic!("{out:?}") };
    assert!(!lb.pass_host_header, "the later definition wins");
    let warned: Vec<&str> = out
        .problems
        .iter()
        .filter(|p| p.message.contains("also generated, differently"))
        .filter_map(|p| match &p.subject {
            Subject::Route { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(warned, ["b"], "{:?}", out.problems);
}

#[test]
fn foreign_ingress_class_is_skipped() {
    let cases = [("ingressClassName: nginx\n", 0), ("ingressClassName: traefik\n", 1), ("", 1)];
    for (class, routers) in cases {
        let spec = format!("{class}routes: [{{match: 'Path(`/`)', services: [{{name: single, port: 80}}]}}]");
        let out = translate(&store_with(&ingress_route(&spec)), &options(false, false));
        assert_eq!(out.routers.len(), routers, "{class:?}");
    }
}

/// A case, the route's fields, the default syntax, the expression or error, the warning.
type SyntaxRow = (&'static str, &'static str, Syntax, Result<Expr, &'static str>, Option<&'static str>);

#[test]
fn rule_syntax_per_route_and_default() {
    let host = |h: &str| Expr::Matcher(Matcher::Host(h.into()));
    let v2_hosts = Expr::Or(Box::new(host("a.test")), Box::new(host("b.test")));
    let cases: [SyntaxRow; 8] = [
        ("v3 by default", "match: 'Host(`a.test`)'", Syntax::V3, Ok(host("a.test")), None),
        (
            "v2 per route",
            "match: 'Host(`a.test`, `b.test`)', syntax: v2",
            Syntax::V3,
            Ok(v2_hosts.clone()),
            Some("deprecated"),
        ),
        (
            "ruleSyntax alias",
            "match: 'Host(`a.test`, `b.test`)', ruleSyntax: v2",
            Syntax::V3,
            Ok(v2_hosts.clone()),
            Some("deprecated"),
        ),
        ("v2 by default", "match: 'Host(`a.test`, `b.test`)'", Syntax::V2, Ok(v2_hosts.clone()), None),
        (
            "empty syntax takes the default",
            "match: 'Host(`a.test`, `b.test`)', syntax: ''",
            Syntax::V2,
            Ok(v2_hosts),
            None,
        ),
        (
            "v3 per route beats a v2 default",
            "match: 'Host(`a.test`)', syntax: v3",
            Syntax::V2,
            Ok(host("a.test")),
            Some("deprecated"),
        ),
        (
            "v2 rule under v3 is disabled",
            "match: 'Host(`a.test`, `b.test`)'",
            Syntax::V3,
            Err("Host takes 1 argument, got 2"),
            None,
        ),
        (
            "unknown syntax parses as v3, as Traefik does",
            "match: 'Host(`a.test`)', syntax: v4",
            Syntax::V2,
            Ok(host("a.test")),
            Some("unknown rule syntax `v4`"),
        ),
    ];
    for (name, fields, default, want, warning) in cases {
        let spec = format!("routes: [{{{fields}, services: [{{name: single, port: 80}}]}}]");
        let options = TranslateOptions { default_rule_syntax: default, ..options(false, false) };
        let out = translate(&store_with(&ingress_route(&spec)), &options);
        let messages = |severity| -> Vec<&str> {
            out.problems.iter().filter(|p| p.severity == severity).map(|p| p.message.as_str()).collect()
        };
        match want {
            Ok(expr) => {
                let router =
                    out.routers.values().next().unwrap_or_else(|| panic!("{name}: {:?}", out.problems));
                assert_eq!(router.expr, expr, "{name}");
                // Traefik: the default priority is the rule's length whatever the syntax.
                assert_eq!(router.priority, router.rule.len() as i64, "{name}");
            }
            Err(reason) => {
                assert!(out.routers.is_empty(), "{name}");
                let errors = messages(Severity::Error);
                assert!(errors.len() == 1 && errors[0].contains(reason), "{name}: {errors:?}");
            }
        }
        let warnings = messages(Severity::Warning);
        match warning {
            Some(w) => assert!(warnings.len() == 1 && warnings[0].contains(w), "{name}: {warnings:?}"),
            None => assert!(warnings.is_empty(), "{name}: {warnings:?}"),
        }
    }
}
