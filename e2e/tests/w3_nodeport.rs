//! W3/W6 end to end: `nodePortLB` through the real binaries. A NodePort Service is balanced
//! over the Nodes' InternalIP addresses at the port's `nodePort` (Nodes written as manifests,
//! on loopback addresses 127.0.0.1 and 127.0.0.2); ExternalIPs and the Service's own endpoints
//! are not used; removing a Node removes its server; with no Node left the route is refused
//! with Traefik's message. Once for an IngressRoute (HTTP), once for an IngressRouteTCP, and
//! once with the Nodes listed and watched from an (in-memory) Kubernetes API server.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use weir_e2e::kube_api::KubeApi;
use weir_e2e::{free_port, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

fn node(name: &str, addresses: &[(&str, &str)]) -> String {
    let addresses: Vec<String> =
        addresses.iter().map(|(t, a)| format!("{{type: {t}, address: '{a}'}}")).collect();
    format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nspec: {{podCIDR: 10.244.0.0/24}}\n\
         status:\n  addresses: [{}]\n",
        addresses.join(", ")
    )
}

/// A NodePort Service `np` in `apps` whose port 80 has node port `node_port`, with an
/// EndpointSlice pointing at `pod` (which nodePortLB must not use).
fn node_port_service(node_port: u16, pod: std::net::SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: np, namespace: apps}}\n\
         spec:\n  type: NodePort\n  clusterIP: 10.96.0.30\n  ports: [{{name: web, port: 80, nodePort: {node_port}}}]\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: np-1, namespace: apps, labels: {{kubernetes.io/service-name: np}}}}\n\
         addressType: IPv4\nports: [{{name: web, port: {}}}]\nendpoints: [{{addresses: ['{}']}}]\n",
        pod.port(),
        pod.ip()
    )
}

/// Backends seen over `n` requests to `np.test`.
fn backends(weir: &Weir, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let r = weir.get("np.test", "/").expect("get");
            assert_eq!(r.status, 200, "{r:?}\n{}", weir.log());
            r.backend().unwrap_or("?").to_string()
        })
        .collect()
}

fn eventually(weir: &Weir, what: &str, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        if start.elapsed() > READY {
            panic!("{what}: not within {READY:?}\n--- log ---\n{}", weir.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ingressroute_balances_over_node_internal_ips_and_follows_node_removal() {
    let node_a = Whoami::start("node-a");
    let node_port = node_a.addr.port();
    // The same port on the other loopback addresses: node-b's InternalIP, and an ExternalIP
    // that must never be dialed.
    let node_b = Whoami::start_on("node-b", &format!("127.0.0.2:{node_port}"));
    let _external = Whoami::start_on("external-ip", &format!("127.0.0.3:{node_port}"));
    let pod = Whoami::start("pod");
    let files = [
        ("svc.yaml", node_port_service(node_port, pod.addr)),
        ("node-a.yaml", node("node-a", &[("InternalIP", "127.0.0.1"), ("ExternalIP", "127.0.0.3")])),
        ("node-b.yaml", node("node-b", &[("Hostname", "node-b"), ("InternalIP", "127.0.0.2")])),
        (
            "route.yaml",
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: np, namespace: apps}\n\
             spec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`np.test`)\n    kind: Rule\n\
             \x20   services: [{name: np, port: 80, nodePortLB: true}]\n"
                .to_string(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("np.test", "/", READY, |r| r.status == 200);

    // Round robin over both Nodes; neither the ExternalIP nor the pod endpoint is a server.
    let seen: BTreeSet<String> = backends(&weir, 20).into_iter().collect();
    assert_eq!(seen, BTreeSet::from(["node-a".to_string(), "node-b".to_string()]), "{}", weir.log());

    // A Node removed: its server goes.
    weir.remove_manifest("node-b.yaml");
    eventually(&weir, "node-b removed", || backends(&weir, 10).iter().all(|b| b == "node-a"));
    // Back again: served again.
    weir.write_manifest("node-b.yaml", &node("node-b", &[("InternalIP", "127.0.0.2")]));
    eventually(&weir, "node-b back", || backends(&weir, 10).iter().any(|b| b == "node-b"));

    // No Node at all: Traefik refuses the service, so the route is not served.
    weir.remove_manifest("node-a.yaml");
    weir.remove_manifest("node-b.yaml");
    weir.wait_for("np.test", "/", READY, |r| r.status == 404);
    let log = weir.log();
    assert!(log.contains("nodes not found for NodePort service apps/np"), "{log}");
    drop(weir);

    // disableClusterScopeResources: Nodes are not looked up, even when written.
    let weir = Weir::start(&files, &["--providers.kubernetesCRD.disableClusterScopeResources"]);
    weir.wait_for("np.test", "/", READY, |r| r.status == 404);
    eventually(&weir, "the reason logged", || weir.log().contains("nodes lookup is disabled"));
    drop(node_b);
}

/// A listener on `ip:port` answering `<name>\n` to every connection.
fn banner(ip: &str, port: u16, name: &'static str) -> std::io::Result<()> {
    let listener = TcpListener::bind((ip, port))?;
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(format!("{name}\n").as_bytes());
        }
    });
    Ok(())
}

fn read_banner(port: u16) -> Option<String> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    Some(line.trim().to_string()).filter(|l| !l.is_empty())
}

#[test]
fn ingressroutetcp_node_port_lb_wins_over_native_lb() {
    // One port free on both loopback addresses.
    let node_port = loop {
        let probe = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        if banner("127.0.0.1", port, "node-a").is_ok() && banner("127.0.0.2", port, "node-b").is_ok() {
            break port;
        }
    };
    let pod = TcpListener::bind("127.0.0.1:0").expect("bind pod");
    let pod_addr = pod.local_addr().expect("pod addr");
    let tcp = free_port();
    let files = [
        ("svc.yaml", node_port_service(node_port, pod_addr)),
        ("node-a.yaml", node("node-a", &[("InternalIP", "127.0.0.1")])),
        ("node-b.yaml", node("node-b", &[("InternalIP", "127.0.0.2")])),
        (
            "route.yaml",
            // nativeLB would dial the ClusterIP (unreachable here); for TCP Traefik looks at
            // nodePortLB first.
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {name: np, namespace: apps}\n\
             spec:\n  entryPoints: [tcp]\n  routes:\n  - match: HostSNI(`*`)\n\
             \x20   services: [{name: np, port: web, nodePortLB: true, nativeLB: true}]\n"
                .to_string(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[&format!("--entryPoints.tcp.address=127.0.0.1:{tcp}")]);
    eventually(&weir, "both nodes answer", || {
        let seen: BTreeSet<String> = (0..10).filter_map(|_| read_banner(tcp)).collect();
        seen == BTreeSet::from(["node-a".to_string(), "node-b".to_string()])
    });
    weir.remove_manifest("node-a.yaml");
    eventually(&weir, "node-a removed", || {
        (0..10).map(|_| read_banner(tcp)).all(|b| b.as_deref() == Some("node-b"))
    });
    drop(pod);
}

#[test]
fn nodes_are_watched_from_the_api_server() {
    const TOKEN: &str = "nodeport-token";
    let api = KubeApi::start(Some(TOKEN));
    let node_a = Whoami::start("node-a");
    let node_port = node_a.addr.port();
    let _node_b = Whoami::start_on("node-b", &format!("127.0.0.2:{node_port}"));
    let pod = Whoami::start("pod");
    api.apply_yaml(&node_port_service(node_port, pod.addr));
    api.apply_yaml(&node("node-a", &[("InternalIP", "127.0.0.1")]));
    api.apply_yaml(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: np, namespace: apps}\n\
         spec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`np.test`)\n    kind: Rule\n\
         \x20   services: [{name: np, port: 80, nodePortLB: true}]\n",
    );
    let weir = Weir::start_without_manifests(&[
        &format!("--providers.kubernetesCRD.endpoint={}", api.url()),
        &format!("--providers.kubernetesCRD.token={TOKEN}"),
    ]);
    weir.wait_for("np.test", "/", READY, |r| r.status == 200);
    assert!(backends(&weir, 10).iter().all(|b| b == "node-a"), "{}", weir.log());
    assert!(api.requests().iter().any(|r| r.starts_with("GET /api/v1/nodes")), "Nodes are listed");
    // A Node added, then one deleted, through the watch.
    api.apply_yaml(&node("node-b", &[("InternalIP", "127.0.0.2")]));
    eventually(&weir, "node-b added", || backends(&weir, 10).iter().any(|b| b == "node-b"));
    api.delete("v1", "Node", "", "node-a");
    eventually(&weir, "node-a deleted", || backends(&weir, 10).iter().all(|b| b == "node-b"));
}
