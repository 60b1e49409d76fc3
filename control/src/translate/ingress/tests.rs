//! Ingress translation, table-driven from Traefik's provider tests and documentation (names,
//! rules, priorities, classes, annotations).

use std::collections::BTreeMap;

use weir_proto::snapshot::{Scheme, ServiceKind};

use super::*;
use crate::objects::{IngressSpec, Object, ObjectMeta};
use crate::source::manifests::parse_file;
use crate::translate::translate;

const BACKEND: &str = "\
apiVersion: v1
kind: Service
metadata: {name: whoami, namespace: apps}
spec: {ports: [{port: 80, name: web}, {port: 443, name: https-alt}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: whoami-1, namespace: apps, labels: {kubernetes.io/service-name: whoami}}
addressType: IPv4
ports: [{port: 8080, name: web}, {port: 8443, name: https-alt}]
endpoints: [{addresses: [10.0.0.1]}]
";

fn store(yaml: &str) -> ObjectStore {
    let mut problems = Vec::new();
    let mut s = ObjectStore::new();
    for o in parse_file(std::path::Path::new("t.yaml"), yaml, &mut problems) {
        s.insert(o);
    }
    assert!(problems.is_empty(), "fixture problems: {problems:?}");
    s
}

fn options() -> TranslateOptions {
    TranslateOptions {
        entrypoints: vec!["web".into(), "websecure".into()],
        default_entrypoints: vec!["web".into(), "websecure".into()],
        ingress_enabled: true,
        ..Default::default()
    }
}

fn ingress(name: &str, annotations: &str, spec: &str) -> String {
    let spec = spec.lines().map(|l| format!("  {l}\n")).collect::<String>();
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: apps\n  \
         annotations: {{{annotations}}}\nspec:\n{spec}"
    )
}

fn errors(t: &Translation) -> Vec<String> {
    t.problems.iter().filter(|p| p.severity == Severity::Error).map(|p| p.message.clone()).collect()
}

fn rules(t: &Translation) -> BTreeMap<String, (String, i64)> {
    t.routers.values().map(|r| (r.name.clone(), (r.rule.clone(), r.priority))).collect()
}

#[test]
fn names_as_traefik_builds_them() {
    // From Traefik's provider tests ("Ingress with conflicting routers on host/path").
    let keys = [
        ("testing", "", "*.bar", Some("/bar"), "testing-bar-bar"),
        ("testing", "", "", Some("/foo/bar"), "testing-foo-bar"),
        ("testing", "", "foobar.com", None, "testing-foobar-com"),
        ("apps", "web", "*.foobar.com", Some("/bar"), "apps-web-foobar-com-bar"),
    ];
    for (ns, ing, host, path, want) in keys {
        assert_eq!(router_key(ns, ing, host, path), want);
    }
    let hashed = [
        ("testing-bar-bar", r#"Host("*.bar") && PathPrefix("/bar")"#, "testing-bar-bar-41871576e140babe40bd"),
        ("testing-bar-bar", r#"Host("bar") && PathPrefix("/bar")"#, "testing-bar-bar-605945111a3c9f84dc65"),
        ("testing-foo-bar", r#"PathPrefix("/foo/bar")"#, "testing-foo-bar-930f0e8b221e60bc7ab7"),
        ("testing-foo-bar", r#"PathPrefix("/foo-bar")"#, "testing-foo-bar-207cc2245cb31ba18e29"),
    ];
    for (key, rule, want) in hashed {
        assert_eq!(hashed_key(key, rule), want);
    }
    assert_eq!(service_name("testing", "service1", "80"), "testing-service1-80@kubernetes");
    assert_eq!(service_name("apps", "my.svc", "https-alt"), "apps-my-svc-https-alt@kubernetes");
}

#[test]
fn rules_and_priorities() {
    // (case, annotations, host, path, pathType, strict, default syntax, router → rule, priority)
    type S = &'static str;
    type Case = (S, S, S, S, S, bool, Syntax, S, S, i64);
    let cases: [Case; 14] = [
        ("prefix", "", "", "/bar", "Prefix", false, Syntax::V3, "apps-web-bar", r#"PathPrefix("/bar")"#, 18),
        ("exact", "", "", "/bar", "Exact", false, Syntax::V3, "apps-web-bar", r#"Path("/bar")"#, 12),
        (
            "implementation specific",
            "",
            "",
            "/bar",
            "ImplementationSpecific",
            false,
            Syntax::V3,
            "apps-web-bar",
            r#"PathPrefix("/bar")"#,
            18,
        ),
        (
            "empty pathType",
            "",
            "",
            "/bar",
            "",
            false,
            Syntax::V3,
            "apps-web-bar",
            r#"PathPrefix("/bar")"#,
            18,
        ),
        ("host only", "", "foo.com", "", "", false, Syntax::V3, "apps-web-foo-com", r#"Host("foo.com")"#, 15),
        (
            "host and path",
            "",
            "foo.com",
            "/bar",
            "Prefix",
            false,
            Syntax::V3,
            "apps-web-foo-com-bar",
            r#"Host("foo.com") && PathPrefix("/bar")"#,
            37,
        ),
        (
            "wildcard v3",
            "",
            "*.foobar.com",
            "/bar",
            "Prefix",
            false,
            Syntax::V3,
            "apps-web-foobar-com-bar",
            r#"Host("*.foobar.com") && PathPrefix("/bar")"#,
            42,
        ),
        (
            "wildcard v2",
            "",
            "*.foobar.com",
            "/bar",
            "Prefix",
            false,
            Syntax::V2,
            "apps-web-foobar-com-bar",
            r#"HostRegexp("{subdomain:[a-zA-Z0-9-]+}.foobar.com") && PathPrefix("/bar")"#,
            72,
        ),
        (
            "wildcard rulesyntax annotation",
            "traefik.ingress.kubernetes.io/router.rulesyntax: v2",
            "*.foobar.com",
            "",
            "",
            false,
            Syntax::V3,
            "apps-web-foobar-com",
            r#"HostRegexp("{subdomain:[a-zA-Z0-9-]+}.foobar.com")"#,
            50,
        ),
        (
            "strict prefix",
            "",
            "",
            "/bar/",
            "Prefix",
            true,
            Syntax::V3,
            "apps-web-bar",
            r#"(Path("/bar") || PathPrefix("/bar/"))"#,
            37,
        ),
        ("strict prefix root", "", "", "/", "Prefix", true, Syntax::V3, "apps-web", r#"PathPrefix("/")"#, 15),
        (
            "strict leaves exact",
            "",
            "",
            "/bar",
            "Exact",
            true,
            Syntax::V3,
            "apps-web-bar",
            r#"Path("/bar")"#,
            12,
        ),
        (
            "pathmatcher",
            "traefik.ingress.kubernetes.io/router.pathmatcher: PathRegexp",
            "",
            "/ba[rz]",
            "ImplementationSpecific",
            false,
            Syntax::V3,
            "apps-web-ba-rz",
            r#"PathRegexp("/ba[rz]")"#,
            21,
        ),
        (
            "priority annotation",
            "traefik.ingress.kubernetes.io/router.priority: '42'",
            "",
            "/bar",
            "Prefix",
            false,
            Syntax::V3,
            "apps-web-bar",
            r#"PathPrefix("/bar")"#,
            42,
        ),
    ];
    for (case, annotations, host, path, path_type, strict, syntax, router, rule, priority) in cases {
        let host_line = if host.is_empty() { String::new() } else { format!("  host: '{host}'\n") };
        let path_line = if path.is_empty() { String::new() } else { format!("      path: '{path}'\n") };
        let type_line =
            if path_type.is_empty() { String::new() } else { format!("      pathType: {path_type}\n") };
        let spec = format!(
            "rules:\n-\n{host_line}  http:\n    paths:\n    - backend: {{service: {{name: whoami, port: {{number: 80}}}}}}\n{path_line}{type_line}"
        );
        let yaml = format!("{BACKEND}{}", ingress("web", annotations, &spec));
        let mut o = options();
        o.default_rule_syntax = syntax;
        o.ingress.strict_prefix_matching = strict;
        let t = translate(&store(&yaml), &o);
        assert!(errors(&t).is_empty(), "case {case}: {:?}", errors(&t));
        let want: BTreeMap<String, (String, i64)> =
            [(format!("{router}@kubernetes"), (rule.to_string(), priority))].into();
        assert_eq!(rules(&t), want, "case {case}");
    }
}

#[test]
fn paths_that_are_skipped() {
    let cases = [
        (
            "bad pathmatcher",
            "traefik.ingress.kubernetes.io/router.pathmatcher: Foo",
            "path: /x\n  backend: {service: {name: whoami, port: {number: 80}}}",
            "invalid router path matcher",
        ),
        (
            "resource backend",
            "",
            "path: /x\n  backend: {resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: b}}",
            "resource backends are not supported",
        ),
        (
            "unknown port",
            "",
            "path: /x\n  backend: {service: {name: whoami, port: {number: 81}}}",
            "service port not found",
        ),
        (
            "unknown port name",
            "",
            "path: /x\n  backend: {service: {name: whoami, port: {name: nope}}}",
            "service port not found",
        ),
        (
            "missing service",
            "",
            "path: /x\n  backend: {service: {name: ghost, port: {number: 80}}}",
            "service not found",
        ),
        ("no host no path", "", "backend: {service: {name: whoami, port: {number: 80}}}", "empty rule"),
        (
            "undefined middleware provider",
            "traefik.ingress.kubernetes.io/router.middlewares: auth@file",
            "path: /x\n  backend: {service: {name: whoami, port: {number: 80}}}",
            "provider `file`",
        ),
        (
            "unqualified middleware",
            "traefik.ingress.kubernetes.io/router.middlewares: auth",
            "path: /x\n  backend: {service: {name: whoami, port: {number: 80}}}",
            "auth@kubernetes does not exist",
        ),
        (
            "missing middleware",
            "traefik.ingress.kubernetes.io/router.middlewares: apps-auth@kubernetescrd",
            "path: /x\n  backend: {service: {name: whoami, port: {number: 80}}}",
            "not found",
        ),
        (
            "no defined entrypoint",
            "traefik.ingress.kubernetes.io/router.entrypoints: nope",
            "path: /x\n  backend: {service: {name: whoami, port: {number: 80}}}",
            "none of the entrypoints",
        ),
    ];
    for (case, annotations, path, want) in cases {
        let path = path.lines().map(|l| format!("      {}\n", l.trim_start())).collect::<String>();
        let spec = format!("rules:\n- http:\n    paths:\n    - {}", path.trim_start());
        let yaml = format!("{BACKEND}{}", ingress("web", annotations, &spec));
        let t = translate(&store(&yaml), &options());
        assert!(t.routers.is_empty(), "case {case}: {:?}", t.routers.keys());
        let errs = errors(&t);
        assert!(errs.iter().any(|e| e.contains(want)), "case {case}: {errs:?}");
    }
}

#[test]
fn annotation_errors_skip_the_ingress() {
    for bad in [
        "traefik.ingress.kubernetes.io/router.priority: high",
        "traefik.ingress.kubernetes.io/router.tls: maybe",
        "traefik.ingress.kubernetes.io/router.bogus: x",
    ] {
        let spec = "rules:\n- http:\n    paths:\n    - {path: /, backend: {service: {name: whoami, port: {number: 80}}}}";
        let yaml = format!("{BACKEND}{}", ingress("web", bad, spec));
        let t = translate(&store(&yaml), &options());
        assert!(t.routers.is_empty(), "{bad}");
        assert!(
            errors(&t).iter().any(|e| e.contains("failed to parse annotations")),
            "{bad}: {:?}",
            errors(&t)
        );
    }
    // Keys outside router.* (and other prefixes) are ignored, as Traefik does.
    let ok = "traefik.ingress.kubernetes.io/foo: bar, ingress.kubernetes.io/foo: bar";
    let spec = "rules:\n- http:\n    paths:\n    - {path: /, backend: {service: {name: whoami, port: {number: 80}}}}";
    let t = translate(&store(&format!("{BACKEND}{}", ingress("web", ok, spec))), &options());
    assert_eq!(t.routers.len(), 1, "{:?}", errors(&t));
}

#[test]
fn router_annotations_decode() {
    let a: BTreeMap<String, String> = [
        ("traefik.ingress.kubernetes.io/router.pathmatcher", "Path"),
        ("traefik.ingress.kubernetes.io/router.entrypoints", "ep1, ep2"),
        ("traefik.ingress.kubernetes.io/router.middlewares", "md1,md2"),
        ("traefik.ingress.kubernetes.io/router.priority", "42"),
        ("traefik.ingress.kubernetes.io/router.ruleSyntax", "v2"),
        ("traefik.ingress.kubernetes.io/router.tls.certresolver", "foobar"),
        ("traefik.ingress.kubernetes.io/router.tls.domains.0.main", "domain.com"),
        ("traefik.ingress.kubernetes.io/router.tls.domains.0.sans", "one.domain.com,two.domain.com"),
        ("traefik.ingress.kubernetes.io/router.tls.domains.1.main", "example.com"),
        ("traefik.ingress.kubernetes.io/router.tls.options", "foobar"),
        ("traefik.ingress.kubernetes.io/router.observability.accessLogs", "true"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let r = annotations::router(&a).unwrap().expect("router annotations");
    assert_eq!(r.path_matcher.as_deref(), Some("Path"));
    assert_eq!(r.entrypoints, ["ep1", "ep2"]);
    assert_eq!(r.middlewares, ["md1", "md2"]);
    assert_eq!((r.priority, r.rule_syntax.as_deref()), (42, Some("v2")));
    let tls = r.tls.expect("tls.* implies a TLS router");
    assert_eq!(tls.cert_resolver.as_deref(), Some("foobar"));
    assert_eq!(tls.options.as_deref(), Some("foobar"));
    assert_eq!(
        tls.domains,
        [
            ("domain.com".to_string(), vec!["one.domain.com".to_string(), "two.domain.com".to_string()]),
            ("example.com".to_string(), vec![]),
        ]
    );
    assert_eq!(annotations::router(&BTreeMap::new()), Ok(None));
    let off: BTreeMap<String, String> =
        [("traefik.ingress.kubernetes.io/router.tls".to_string(), "false".to_string())].into();
    assert_eq!(annotations::router(&off).unwrap().unwrap().tls, None);
}

#[test]
fn service_annotations_decode() {
    let a: BTreeMap<String, String> = [
        ("traefik.ingress.kubernetes.io/service.serversscheme", "h2c"),
        ("traefik.ingress.kubernetes.io/service.serverstransport", "foobar@file"),
        ("traefik.ingress.kubernetes.io/service.passhostheader", "false"),
        ("traefik.ingress.kubernetes.io/service.nativelb", "true"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.httponly", "true"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.name", "foobar"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.secure", "true"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.samesite", "none"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.maxage", "42"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.domain", "foo.com"),
        ("traefik.ingress.kubernetes.io/service.sticky.cookie.path", "foobar"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = annotations::service(&a).unwrap().expect("service annotations");
    assert_eq!(s.servers_scheme.as_deref(), Some("h2c"));
    assert_eq!(s.servers_transport.as_deref(), Some("foobar@file"));
    assert_eq!((s.pass_host_header, s.native_lb, s.node_port_lb), (Some(false), Some(true), false));
    let c = s.sticky_cookie.expect("cookie");
    assert_eq!(c.name.as_deref(), Some("foobar"));
    assert!(c.secure && c.http_only);
    assert_eq!((c.same_site.as_deref(), c.max_age), (Some("none"), Some(42)));
    assert_eq!((c.domain.as_deref(), c.path.as_deref()), (Some("foo.com"), Some("foobar")));
    let bad: BTreeMap<String, String> =
        [("traefik.ingress.kubernetes.io/service.sticky.cookie.flavour".to_string(), "x".to_string())].into();
    assert!(annotations::service(&bad).is_err());
}

#[test]
fn ingress_classes() {
    let classes = "\
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik-lb}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: traefik-internal}
spec: {controller: traefik.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx, annotations: {ingressclass.kubernetes.io/is-default-class: 'true'}}
spec: {controller: k8s.io/ingress-nginx}
";
    // (case, ingressClassName, class annotation, provider ingressClass, lookup disabled, handled)
    type Case = (&'static str, Option<&'static str>, Option<&'static str>, &'static str, bool, bool);
    let cases: [Case; 12] = [
        ("no class at all", None, None, "", false, true),
        ("annotation traefik", None, Some("traefik"), "", false, true),
        ("annotation other", None, Some("nginx"), "", false, false),
        ("annotation equals the configured class", None, Some("internal"), "internal", false, true),
        ("annotation traefik with a configured class", None, Some("traefik"), "internal", false, false),
        ("no class with a configured class", None, None, "internal", false, false),
        ("class of ours", Some("traefik-lb"), None, "", false, true),
        ("class of another controller", Some("nginx"), None, "", false, false),
        ("class that does not exist", Some("ghost"), None, "", false, false),
        ("class filtered by name", Some("traefik-lb"), None, "traefik-internal", false, false),
        ("class kept by name", Some("traefik-internal"), None, "traefik-internal", false, true),
        ("class lookup disabled", Some("traefik-lb"), None, "", true, false),
    ];
    for (case, class_name, annotation, configured, no_lookup, handled) in cases {
        let ann = annotation.map(|a| format!("kubernetes.io/ingress.class: {a}")).unwrap_or_default();
        let class_line = class_name.map(|c| format!("ingressClassName: {c}\n")).unwrap_or_default();
        let spec = format!(
            "{class_line}rules:\n- http:\n    paths:\n    - {{path: /, pathType: Prefix, backend: {{service: {{name: whoami, port: {{number: 80}}}}}}}}"
        );
        let yaml = format!("{BACKEND}{classes}{}", ingress("web", &ann, &spec));
        let mut o = options();
        o.ingress.ingress_class = configured.into();
        o.ingress.disable_ingress_class_lookup = no_lookup;
        let t = translate(&store(&yaml), &o);
        assert_eq!(t.routers.len(), usize::from(handled), "case {case}");
        assert!(errors(&t).is_empty(), "case {case}: {:?}", errors(&t));
    }
}

#[test]
fn provider_scope() {
    let spec = "rules:\n- http:\n    paths:\n    - {path: /, backend: {service: {name: whoami, port: {number: 80}}}}";
    let yaml = format!("{BACKEND}{}", ingress("web", "", spec))
        .replace("  namespace: apps\n  annotations", "  namespace: apps\n  labels: {team: a}\n  annotations");
    let s = store(&yaml);
    let count = |tune: &dyn Fn(&mut TranslateOptions)| {
        let mut o = options();
        tune(&mut o);
        translate(&s, &o).routers.len()
    };
    assert_eq!(count(&|_| {}), 1);
    assert_eq!(count(&|o| o.ingress_enabled = false), 0);
    assert_eq!(count(&|o| o.ingress.namespaces = vec!["other".into()]), 0);
    assert_eq!(count(&|o| o.ingress.namespaces = vec!["other".into(), "apps".into()]), 1);
    assert_eq!(
        count(&|o| o.ingress.label_selector = crate::config::LabelSelector::parse("team=b").unwrap()),
        0
    );
    assert_eq!(
        count(&|o| o.ingress.label_selector = crate::config::LabelSelector::parse("team in (a,b)").unwrap()),
        1
    );
    // Enabled by the flag, or by default when no provider is named.
    let mut c = IngressProviderConfig::default();
    assert!(enabled(&c, false));
    assert!(!enabled(&c, true));
    c.enabled = true;
    assert!(enabled(&c, true));
    c = IngressProviderConfig { disabled: true, ..Default::default() };
    assert!(!enabled(&c, false));
}

#[test]
fn services_and_their_annotations() {
    let service = "\
---
apiVersion: v1
kind: Service
metadata:
  name: sticky
  namespace: apps
  annotations:
    traefik.ingress.kubernetes.io/service.sticky.cookie: 'true'
    traefik.ingress.kubernetes.io/service.serversscheme: h2c
    traefik.ingress.kubernetes.io/service.passhostheader: 'false'
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sticky-1, namespace: apps, labels: {kubernetes.io/service-name: sticky}}
addressType: IPv4
ports: [{port: 9000}]
endpoints: [{addresses: [10.0.0.9]}, {addresses: [10.0.0.8], conditions: {serving: false}}]
";
    let spec = "\
rules:
- host: a.example
  http:
    paths:
    - {path: /s, pathType: Prefix, backend: {service: {name: sticky, port: {number: 80}}}}
    - {path: /w, pathType: Prefix, backend: {service: {name: whoami, port: {name: web}}}}
    - {path: /h, pathType: Prefix, backend: {service: {name: whoami, port: {number: 443}}}}";
    let t = translate(&store(&format!("{BACKEND}{service}{}", ingress("web", "", spec))), &options());
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    let lb = |name: &str| match &t
        .services
        .get(name)
        .unwrap_or_else(|| panic!("{name}: {:?}", t.services.keys()))
        .kind
    {
        ServiceKind::LoadBalancer(lb) => lb.clone(),
        other => panic!("{other:?}"),
    };
    let sticky = lb("apps-sticky-80@kubernetes");
    assert_eq!(sticky.servers.len(), 1, "not serving endpoints are left out");
    assert_eq!(sticky.servers[0].scheme, Scheme::H2c);
    assert!(!sticky.pass_host_header);
    let cookie = sticky.sticky.expect("sticky cookie");
    // Derived from sha1("_TRAEFIK_BACKEND_apps-sticky-80@kubernetes").
    assert_eq!(cookie.name, service::cookie_name(None, "apps-sticky-80@kubernetes"));
    assert_ne!(cookie.name, service::cookie_name(None, "apps-sticky-80@kubernetescrd"));
    // By port name; https inferred from port 443 (and from an `https` port-name prefix).
    assert_eq!(lb("apps-whoami-web@kubernetes").servers[0].scheme, Scheme::Http);
    assert_eq!(lb("apps-whoami-443@kubernetes").servers[0].scheme, Scheme::Https);
    assert_eq!(t.routers["apps-web-a-example-s@kubernetes"].service, "apps-sticky-80@kubernetes");
}

#[test]
fn empty_services() {
    let service = "\
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: apps}
spec: {ports: [{port: 80}]}
";
    let spec =
        "rules:\n- http:\n    paths:\n    - {path: /, backend: {service: {name: empty, port: {number: 80}}}}";
    let s = store(&format!("{BACKEND}{service}{}", ingress("web", "", spec)));
    let t = translate(&s, &options());
    assert!(t.routers.is_empty());
    let mut o = options();
    o.ingress.allow_empty_services = true;
    let t = translate(&s, &o);
    assert_eq!(t.routers.len(), 1, "{:?}", errors(&t));
}

#[test]
fn default_backend_is_the_lowest_priority_catch_all() {
    let first = ingress(
        "fallback",
        "traefik.ingress.kubernetes.io/router.entrypoints: web, traefik.ingress.kubernetes.io/router.priority: '5'",
        "defaultBackend: {service: {name: whoami, port: {number: 80}}}",
    );
    let second = ingress("zz-second", "", "defaultBackend: {service: {name: whoami, port: {name: web}}}");
    // With rules, the default backend is not used (Traefik).
    let with_rules = ingress(
        "with-rules",
        "",
        "defaultBackend: {service: {name: whoami, port: {number: 80}}}\nrules:\n- host: r.example\n  http:\n    paths:\n    - {path: /, backend: {service: {name: whoami, port: {number: 80}}}}",
    );
    let t = translate(&store(&format!("{BACKEND}{first}{second}{with_rules}")), &options());
    let r = &t.routers["default-router@kubernetes"];
    assert_eq!((r.rule.as_str(), r.priority), (r#"PathPrefix("/")"#, i64::from(i32::MIN)));
    assert_eq!(r.entrypoints, ["web"]);
    assert_eq!(r.service, "default-backend@kubernetes");
    assert!(t.services.contains_key("default-backend@kubernetes"));
    assert_eq!(t.routers.len(), 2, "{:?}", t.routers.keys());
    assert_eq!(errors(&t), ["the default backend already exists"]);
}

#[test]
fn tls_annotations_and_secrets() {
    let spec = "\
tls: [{hosts: [a.example], secretName: missing}]
rules:
- host: a.example
  http:
    paths:
    - {path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}";
    let annotations = "traefik.ingress.kubernetes.io/router.tls: 'true', \
                       traefik.ingress.kubernetes.io/router.tls.options: apps-strict@kubernetescrd";
    let t = translate(&store(&format!("{BACKEND}{}", ingress("web", annotations, spec))), &options());
    // The missing secret is reported; the router still exists (Traefik) but its option is unknown.
    assert!(errors(&t).iter().any(|e| e.contains("secret apps/missing does not exist")), "{:?}", errors(&t));
    assert!(errors(&t).iter().any(|e| e.contains("unknown TLS options: apps-strict")), "{:?}", errors(&t));
    assert!(t.routers.is_empty());
    // Without options, the router is a TLS router.
    let annotations = "traefik.ingress.kubernetes.io/router.tls: 'true'";
    let t = translate(&store(&format!("{BACKEND}{}", ingress("web", annotations, spec))), &options());
    assert!(t.routers["apps-web-a-example@kubernetes"].tls);
    // `spec.tls` alone does not make TLS routers.
    let t = translate(&store(&format!("{BACKEND}{}", ingress("web", "", spec))), &options());
    assert!(!t.routers["apps-web-a-example@kubernetes"].tls);
    let names = [
        (None, "default"),
        (Some("default"), "default"),
        (Some("apps-strict@kubernetescrd"), "apps-strict"),
        (Some("strict"), "strict@kubernetes"),
        (Some("strict@file"), "strict@file"),
    ];
    for (written, want) in names {
        assert_eq!(tls_option_name(written), want, "{written:?}");
    }
}

#[test]
fn middlewares_from_annotations() {
    let mw = "\
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: prefix, namespace: tools}
spec: {addPrefix: {prefix: /api}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: apps}
spec: {stripPrefix: {prefixes: [/x]}}
";
    let spec = "rules:\n- http:\n    paths:\n    - {path: /, backend: {service: {name: whoami, port: {number: 80}}}}";
    let annotations = "traefik.ingress.kubernetes.io/router.middlewares: 'apps-strip@kubernetescrd, tools-prefix@kubernetescrd'";
    let t = translate(&store(&format!("{BACKEND}{mw}{}", ingress("web", annotations, spec))), &options());
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    assert_eq!(t.routers["apps-web@kubernetes"].middlewares, ["apps-strip", "tools-prefix"]);
    assert!(t.middlewares.contains_key("tools-prefix"));
}

#[test]
fn objects_round_trip_from_yaml() {
    let yaml = ingress(
        "web",
        "",
        "ingressClassName: traefik\ndefaultBackend: {service: {name: a, port: {number: 8080}}}\ntls: [{hosts: [x], secretName: s}]",
    );
    let s = store(&yaml);
    let ing = s.ingresses().next().expect("ingress");
    assert_eq!(ing.spec.ingress_class_name.as_deref(), Some("traefik"));
    assert_eq!(ing.spec.tls[0].secret_name.as_deref(), Some("s"));
    let empty = Object::Ingress(Ingress {
        metadata: ObjectMeta { name: "x".into(), ..Default::default() },
        spec: IngressSpec::default(),
    });
    assert_eq!(empty.kind().name(), "Ingress");
}

#[test]
fn entrypoint_tls_makes_ingress_routers_tls() {
    use crate::config::{EntryPointHttp, EntryPointTls};
    use crate::translate::entrypoints::EntryPointInfo;
    // The usual Traefik setup: `websecure` with `http.tls`, Ingresses pinned to it by annotation.
    let mut o = options();
    let tls = EntryPointHttp { tls: Some(EntryPointTls::default()), ..Default::default() };
    o.entrypoint_http.insert("web".into(), EntryPointInfo { port: 8000, http: EntryPointHttp::default() });
    o.entrypoint_http.insert("websecure".into(), EntryPointInfo { port: 8443, http: tls });
    let spec = "rules:\n- host: s.example\n  http:\n    paths:\n    - {path: /, backend: {service: {name: whoami, port: {number: 80}}}}";
    let pinned = ingress("secure", "traefik.ingress.kubernetes.io/router.entrypoints: websecure", spec);
    let plain = ingress("plain", "traefik.ingress.kubernetes.io/router.entrypoints: web", spec);
    let t = translate(&store(&format!("{BACKEND}{pinned}{plain}")), &o);
    assert!(errors(&t).is_empty(), "{:?}", errors(&t));
    assert!(t.routers["apps-secure-s-example@kubernetes"].tls);
    assert!(!t.routers["apps-plain-s-example@kubernetes"].tls);
}
