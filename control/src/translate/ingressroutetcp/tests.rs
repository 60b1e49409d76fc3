//! Table-driven IngressRouteTCP translation: each row its own manifests, asserting the TCP
//! routers, services and problems produced.

use std::path::Path;

use super::*;
use crate::source::manifests::parse_file;

const BACKENDS: &str = "
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {clusterIP: 10.96.0.5, ports: [{name: pg, port: 5432}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-a, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: pg, port: 15432}]
endpoints:
- addresses: [10.0.0.1]
- addresses: [10.0.0.2]
---
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: limit}
spec: {inFlightConn: {amount: 3}}
---
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: allow}
spec: {ipWhiteList: {sourceRange: [10.0.0.0/8]}}
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransportTCP
metadata: {name: slow}
spec: {dialTimeout: 5s, terminationDelay: 200ms, proxyProtocol: {version: 1}}
";

fn options() -> TranslateOptions {
    TranslateOptions {
        entrypoints: vec!["web".into(), "tcp".into()],
        default_entrypoints: vec!["tcp".into(), "web".into()],
        ..Default::default()
    }
}

fn tcp_route(name: &str, spec: &str) -> String {
    let spec = spec.lines().map(|l| format!("  {l}\n")).collect::<String>();
    format!("---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {{name: {name}}}\nspec:\n{spec}")
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
    out.tls.options.push(weir_proto::tls::TlsOption::traefik_default());
    translate_all(&store, &options(), &mut out);
    out
}

#[test]
fn routers() {
    // (case, spec, want: (priority, tls, entrypoints, middlewares) of the single router, or the
    // error fragment)
    type Want =
        Result<(i64, Option<(bool, &'static str)>, Vec<&'static str>, Vec<&'static str>), &'static str>;
    let cases: Vec<(&str, &str, Want)> = vec![
        (
            "catch-all cleartext gets priority -1 and the default entrypoints",
            "routes: [{match: 'HostSNI(`*`)', services: [{name: db, port: 5432}]}]",
            Ok((-1, None, vec!["tcp", "web"], vec![])),
        ),
        (
            "passthrough with explicit priority and entrypoint",
            "entryPoints: [tcp]\nroutes: [{match: 'HostSNI(`a.example.com`)', priority: 7, services: [{name: db, port: pg}]}]\ntls: {passthrough: true}",
            Ok((7, Some((true, "default")), vec!["tcp"], vec![])),
        ),
        (
            "termination with default option, length priority",
            "entryPoints: [tcp]\nroutes: [{match: 'HostSNI(`a`)', services: [{name: db, port: 5432}]}]\ntls: {}",
            Ok((12, Some((false, "default")), vec!["tcp"], vec![])),
        ),
        (
            "middlewares resolved in order",
            "entryPoints: [tcp]\nroutes: [{match: 'HostSNI(`*`)', middlewares: [{name: allow}, {name: limit}], services: [{name: db, port: 5432}]}]",
            Ok((-1, None, vec!["tcp"], vec!["default-allow", "default-limit"])),
        ),
        (
            "sni on a cleartext router is refused",
            "routes: [{match: 'HostSNI(`a`)', services: [{name: db, port: 5432}]}]",
            Err("no TLS on the router"),
        ),
        ("bad rule", "routes: [{match: 'Host(`a`)', services: [{name: db, port: 5432}]}]", Err("HTTP matcher")),
        (
            "missing middleware",
            "routes: [{match: 'HostSNI(`*`)', middlewares: [{name: nope}], services: [{name: db, port: 5432}]}]",
            Err("MiddlewareTCP default/nope does not exist"),
        ),
        (
            "missing service",
            "routes: [{match: 'HostSNI(`*`)', services: [{name: nope, port: 1}]}]",
            Err("nope"),
        ),
        (
            "unknown tls option",
            "routes: [{match: 'HostSNI(`a`)', services: [{name: db, port: 5432}]}]\ntls: {options: {name: strict}}",
            Err("unknown TLS options: default-strict"),
        ),
        (
            "missing transport",
            "routes: [{match: 'HostSNI(`*`)', services: [{name: db, port: 5432, serversTransport: nope}]}]",
            Err("ServersTransportTCP default/nope does not exist"),
        ),
    ];
    for (name, spec, want) in cases {
        let out = translate_with(&tcp_route("r", spec));
        match want {
            Ok((priority, tls, eps, mws)) => {
                assert!(out.problems.is_empty(), "case {name}: {:?}", out.problems);
                let [router] = out.tcp.routers.as_slice() else {
                    panic!("case {name}: {:?}", out.tcp.routers)
                };
                assert_eq!(router.priority, priority, "case {name}");
                assert_eq!(
                    router.tls.as_ref().map(|t| (t.passthrough, t.option.as_str())),
                    tls,
                    "case {name}"
                );
                assert_eq!(router.entrypoints, eps, "case {name}");
                assert_eq!(router.middlewares, mws, "case {name}");
            }
            Err(fragment) => {
                assert!(out.tcp.routers.is_empty(), "case {name}: {:?}", out.tcp.routers);
                assert!(
                    out.problems.iter().any(|p| p.message.contains(fragment)),
                    "case {name}: {:?}",
                    out.problems
                );
            }
        }
    }
}

#[test]
fn services_and_transports() {
    let out = translate_with(&tcp_route(
        "r",
        "routes: [{match: 'HostSNI(`*`)', services: [{name: db, port: 5432, weight: 3, serversTransport: slow}, \
         {name: db, port: pg, nativeLB: true, proxyProtocol: {version: 2}}]}]",
    ));
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    let router = &out.tcp.routers[0];
    let by_name = |n: &str| out.tcp.services.iter().find(|s| s.name == n).cloned();
    let Some(TcpService { kind: TcpServiceKind::Weighted(children), .. }) = by_name(&router.service) else {
        panic!("router service is not weighted: {:?}", out.tcp.services)
    };
    let weights: Vec<u32> = children.iter().map(|c| c.weight).collect();
    assert_eq!(weights, [3, 1]);
    let lb = |n: &str| match by_name(n).map(|s| s.kind) {
        Some(TcpServiceKind::LoadBalancer(lb)) => lb,
        other => panic!("{n}: {other:?}"),
    };
    let first = lb(&children[0].service);
    let addrs: Vec<String> = first.servers.iter().map(|s| s.address.to_string()).collect();
    assert_eq!(addrs, ["10.0.0.1:15432", "10.0.0.2:15432"]);
    assert_eq!(first.servers_transport, "default-slow");
    let second = lb(&children[1].service);
    let addrs: Vec<String> = second.servers.iter().map(|s| s.address.to_string()).collect();
    assert_eq!(addrs, ["10.96.0.5:5432"], "nativeLB goes to the ClusterIP");
    assert_eq!(second.proxy_protocol, Some(2));
    let slow = out.tcp.servers_transports.iter().find(|t| t.name == "default-slow").expect("transport");
    assert_eq!((slow.dial_timeout_ms, slow.termination_delay_ms, slow.proxy_protocol), (5_000, 200, Some(1)));
}
