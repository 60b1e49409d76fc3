//! `nodePortLB`: servers from the Nodes' InternalIPs and the Service port's `nodePort`, with
//! Traefik's precedence against `nativeLB` (HTTP: nativeLB first; TCP/UDP: nodePortLB first)
//! and its errors.

use std::path::Path;

use super::*;
use crate::objects::{Kind, ServiceRef};
use crate::source::manifests::parse_file;
use crate::store::Dep;

const SERVICES: &str = "
apiVersion: v1
kind: Service
metadata: {name: np}
spec:
  type: NodePort
  clusterIP: 10.96.0.20
  ports: [{name: http, port: 80, nodePort: 30080}, {name: bare, port: 81}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: np-1, labels: {kubernetes.io/service-name: np}}
ports: [{name: http, port: 8080}, {name: bare, port: 8081}]
endpoints: [{addresses: [10.0.2.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: cip}
spec: {clusterIP: 10.96.0.21, ports: [{name: http, port: 80, nodePort: 30081}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: cip-1, labels: {kubernetes.io/service-name: cip}}
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [10.0.3.1]}]
";

const NODES: &str = "
apiVersion: v1
kind: Node
metadata: {name: n2}
status:
  addresses:
  - {type: InternalIP, address: 192.168.1.2}
  - {type: InternalIP, address: 'fd00::2'}
  - {type: Hostname, address: n2}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
spec: {podCIDR: 10.244.0.0/24}
status:
  addresses:
  - {type: ExternalIP, address: 203.0.113.1}
  - {type: InternalIP, address: 192.168.1.1}
---
apiVersion: v1
kind: Node
metadata: {name: n0}
status: {addresses: [{type: ExternalIP, address: 203.0.113.9}, {type: InternalDNS, address: n0.internal}]}
";

/// Only n0: a Node without InternalIP.
const EXTERNAL_ONLY_NODE: &str = "
apiVersion: v1
kind: Node
metadata: {name: n0}
status: {addresses: [{type: ExternalIP, address: 203.0.113.9}]}
";

fn store(docs: &[&str]) -> ObjectStore {
    let mut problems = Vec::new();
    let mut store = ObjectStore::new();
    for (i, text) in docs.iter().enumerate() {
        for o in parse_file(Path::new(&format!("f{i}.yaml")), text, &mut problems) {
            store.insert(o);
        }
    }
    assert!(problems.is_empty(), "fixture problems: {problems:?}");
    store
}

fn sref(yaml: &str) -> ServiceRef {
    serde_yaml_ng::from_str(yaml).expect("service ref")
}

#[derive(Clone, Copy)]
enum Flavor {
    /// IngressRoute: [`resolve`].
    Http,
    /// IngressRouteTCP/UDP: [`resolve_node_port_first`].
    L4,
}

#[test]
fn node_port_lb_table() {
    let full = store(&[SERVICES, NODES]);
    let no_nodes = store(&[SERVICES]);
    let no_internal = store(&[SERVICES, EXTERNAL_ONLY_NODE]);
    let by_default = ServiceOptions { native_lb_by_default: true, ..ServiceOptions::default() };
    let empty_ok = ServiceOptions { allow_empty_services: true, ..ServiceOptions::default() };
    let disabled = ServiceOptions { nodes_lookup_disabled: true, ..ServiceOptions::default() };
    let nodes = ["http://192.168.1.1:30080", "http://192.168.1.2:30080", "http://[fd00::2]:30080"];
    // (case, store, reference, options, flavor, Ok(server URLs) or Err(message))
    type Case<'a> =
        (&'a str, &'a ObjectStore, &'a str, ServiceOptions, Flavor, Result<Vec<&'a str>, &'a str>);
    let d = ServiceOptions::default();
    let cases: Vec<Case> = vec![
        (
            "one server per InternalIP, Nodes by name, other address types skipped",
            &full,
            "{name: np, port: 80, nodePortLB: true}",
            d,
            Flavor::Http,
            Ok(nodes.to_vec()),
        ),
        (
            "port by name",
            &full,
            "{name: np, port: http, nodePortLB: true}",
            d,
            Flavor::L4,
            Ok(nodes.to_vec()),
        ),
        (
            "scheme applies to node servers",
            &full,
            "{name: np, port: 80, nodePortLB: true, scheme: https}",
            d,
            Flavor::Http,
            Ok(vec!["https://192.168.1.1:30080", "https://192.168.1.2:30080", "https://[fd00::2]:30080"]),
        ),
        (
            "without nodePortLB: endpoints",
            &full,
            "{name: np, port: 80}",
            d,
            Flavor::Http,
            Ok(vec!["http://10.0.2.1:8080"]),
        ),
        (
            "nodePortLB on a ClusterIP Service is ignored, as in Traefik",
            &full,
            "{name: cip, port: 80, nodePortLB: true}",
            d,
            Flavor::Http,
            Ok(vec!["http://10.0.3.1:8080"]),
        ),
        (
            "HTTP: nativeLB wins over nodePortLB",
            &full,
            "{name: np, port: 80, nodePortLB: true, nativeLB: true}",
            d,
            Flavor::Http,
            Ok(vec!["http://10.96.0.20:80"]),
        ),
        (
            "HTTP: nativeLBByDefault wins too",
            &full,
            "{name: np, port: 80, nodePortLB: true}",
            by_default,
            Flavor::Http,
            Ok(vec!["http://10.96.0.20:80"]),
        ),
        (
            "HTTP: nativeLB: false lets nodePortLB through the default",
            &full,
            "{name: np, port: 80, nodePortLB: true, nativeLB: false}",
            by_default,
            Flavor::Http,
            Ok(nodes.to_vec()),
        ),
        (
            "TCP/UDP: nodePortLB wins over nativeLB",
            &full,
            "{name: np, port: 80, nodePortLB: true, nativeLB: true}",
            d,
            Flavor::L4,
            Ok(nodes.to_vec()),
        ),
        (
            "TCP/UDP: nativeLB still applies without nodePortLB",
            &full,
            "{name: np, port: 80, nativeLB: true}",
            d,
            Flavor::L4,
            Ok(vec!["http://10.96.0.20:80"]),
        ),
        (
            "disableClusterScopeResources, even with Nodes in the store",
            &full,
            "{name: np, port: 80, nodePortLB: true}",
            disabled,
            Flavor::L4,
            Err("service default/np: nodes lookup is disabled (disableClusterScopeResources), needed by nodePortLB"),
        ),
        (
            "disableClusterScopeResources leaves other services alone",
            &full,
            "{name: cip, port: 80, nodePortLB: true}",
            disabled,
            Flavor::Http,
            Ok(vec!["http://10.0.3.1:8080"]),
        ),
        (
            "no Node",
            &no_nodes,
            "{name: np, port: 80, nodePortLB: true}",
            d,
            Flavor::Http,
            Err("nodes not found for NodePort service default/np"),
        ),
        (
            "no Node is an error even with allowEmptyServices",
            &no_nodes,
            "{name: np, port: 80, nodePortLB: true}",
            empty_ok,
            Flavor::L4,
            Err("nodes not found for NodePort service default/np"),
        ),
        (
            "Nodes without InternalIP",
            &no_internal,
            "{name: np, port: 80, nodePortLB: true}",
            d,
            Flavor::Http,
            Err("no servers were generated for service default/np"),
        ),
        (
            "Service port without nodePort",
            &full,
            "{name: np, port: 81, nodePortLB: true}",
            d,
            Flavor::Http,
            Err("service default/np: port 81 has no nodePort, needed by nodePortLB"),
        ),
    ];
    for (case, store, written, options, flavor, want) in cases {
        let r = sref(written);
        let got = match flavor {
            Flavor::Http => resolve(store, "default", &r, options),
            Flavor::L4 => resolve_node_port_first(store, "default", &r, options),
        };
        match (got, want) {
            (Ok(got), Ok(want)) => {
                let urls: Vec<&str> = got.load_balancer.servers.iter().map(|s| s.url.as_str()).collect();
                assert_eq!(urls, want, "case {case}");
                assert!(got.load_balancer.servers.iter().all(|s| !s.fenced), "case {case}");
            }
            (Err(e), Err(want)) => assert_eq!(e.to_string(), want, "case {case}"),
            (got, want) => panic!("case {case}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn a_node_port_translation_depends_on_the_nodes() {
    let mut store = store(&[SERVICES, NODES]);
    let scope = store.record_reads();
    resolve(&store, "default", &sref("{name: np, port: 80, nodePortLB: true}"), ServiceOptions::default())
        .expect("resolves");
    let deps = scope.finish();
    let (_, before) =
        deps.iter().find(|(d, _)| *d == Dep::Kind(Kind::Node)).expect("reads recorded the Nodes");
    let before = *before;
    // Removing a Node changes the revision a cached translation compares, and the servers.
    assert!(store.remove(Kind::Node, "default", "n2").is_some());
    assert_ne!(store.revision(&Dep::Kind(Kind::Node)), before);
    let r = resolve(
        &store,
        "default",
        &sref("{name: np, port: 80, nodePortLB: true}"),
        ServiceOptions::default(),
    )
    .expect("resolves");
    let urls: Vec<&str> = r.load_balancer.servers.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, ["http://192.168.1.1:30080"]);
}
