//! W8: the Kubernetes providers against an in-memory API server (`weir_e2e::kube_api`) through
//! the real kube-rs client, weir, weir-dataplane and whoami: objects listed and watched,
//! changes applied, invalid objects reported as Events, `410 Gone` re-lists, an API server
//! outage during which the data plane keeps serving, and the Ingress status written.

use std::time::{Duration, Instant};

use serde_json::json;
use weir_e2e::kube_api::KubeApi;
use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

const TOKEN: &str = "test-token-8f3a";
const LIMIT: Duration = Duration::from_secs(15);

fn route(name: &str, host: &str) -> String {
    ingressroute_yaml("apps", name, &[(&format!("Host(`{host}`)"), None, &[("web", 80, 1)])])
}

fn start_crd(api: &KubeApi, extra: &[&str]) -> Weir {
    let endpoint = format!("--providers.kubernetesCRD.endpoint={}", api.url());
    let token = format!("--providers.kubernetesCRD.token={TOKEN}");
    let mut args = vec![endpoint.as_str(), token.as_str()];
    args.extend_from_slice(extra);
    Weir::start_without_manifests(&args)
}

fn lists_of(api: &KubeApi, plural: &str) -> usize {
    api.requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains(&format!("/{plural}?")) && !r.contains("watch=true"))
        .filter(|r| !r.contains("watch=1"))
        .count()
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn crd_provider_follows_the_api_server() {
    let api = KubeApi::start(Some(TOKEN));
    let backend = Whoami::start("kube-w1");
    api.apply_yaml(&service_yaml("apps", "web", 80, "http", &[backend.addr]));
    api.apply_yaml(&route("r1", "a.test"));
    // A Helm release Secret: excluded by the field selector, never sent to weir.
    api.apply(json!({"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"namespace": "apps", "name": "sh.helm.release.v1.app.v1"}, "data": {"release": "AAAA"}}));
    let weir = start_crd(&api, &[]);

    // Listed at start.
    let r = weir.wait_for("a.test", "/", LIMIT, |r| r.status == 200);
    assert_eq!(r.backend(), Some("kube-w1"));
    let secret_lists: Vec<String> =
        api.requests().into_iter().filter(|r| r.contains("/secrets?") && !r.contains("watch=")).collect();
    assert!(
        !secret_lists.is_empty()
            && secret_lists.iter().all(|r| r.contains("fieldSelector=type") && r.contains("helm.sh")),
        "{secret_lists:?}"
    );
    assert!(api.requests().iter().any(|r| r.contains("/apis/traefik.containo.us/v1alpha1/ingressroutes")));

    // Watched: an added route, a changed one, a deleted one.
    let started = Instant::now();
    api.apply_yaml(&route("r2", "b.test"));
    weir.wait_for("b.test", "/", LIMIT, |r| r.status == 200);
    let add_ms = started.elapsed().as_millis();
    api.apply_yaml(&route("r1", "a2.test"));
    weir.wait_for("a2.test", "/", LIMIT, |r| r.status == 200);
    weir.wait_for("a.test", "/", LIMIT, |r| r.status == 404);
    api.delete("traefik.io/v1alpha1", "IngressRoute", "apps", "r1");
    weir.wait_for("a2.test", "/", LIMIT, |r| r.status == 404);
    eprintln!("one added route served after {add_ms} ms");

    // An invalid object disables itself only and is reported as an Event regarding it.
    api.apply(json!({"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
        "metadata": {"namespace": "apps", "name": "broken"}, "spec": {"routes": "not a list"}}));
    wait_until("an Event about apps/broken", LIMIT, || {
        api.events().iter().any(|e| {
            e["regarding"]["name"] == "broken"
                && e["regarding"]["kind"] == "IngressRoute"
                && e["regarding"]["namespace"] == "apps"
                && e["reason"] == "InvalidConfiguration"
                && e["metadata"]["namespace"] == "apps"
        })
    });
    assert!(weir.log().contains("broken"), "logged with its name");
    assert_eq!(weir.get("b.test", "/").expect("get").status, 200);

    // Compaction: the watch is cut, re-watching from the old version gets 410 Gone, the
    // watcher re-lists; changes keep arriving.
    let lists_before = lists_of(&api, "ingressroutes");
    api.compact();
    api.apply_yaml(&route("r3", "c.test"));
    weir.wait_for("c.test", "/", LIMIT, |r| r.status == 200);
    wait_until("a re-list after 410", LIMIT, || lists_of(&api, "ingressroutes") > lists_before);

    // A re-list that returns the same objects publishes nothing.
    let applied = |w: &Weir| w.log().matches("applied generation").count();
    std::thread::sleep(Duration::from_millis(300));
    let (generations, lists_before) = (applied(&weir), lists_of(&api, "ingressroutes"));
    assert!(generations > 0, "the log names applied generations");
    api.compact();
    wait_until("a re-list after 410", LIMIT, || lists_of(&api, "ingressroutes") > lists_before);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(applied(&weir), generations, "an identical re-list must not publish");

    // Outage: the data plane keeps serving the last snapshot; changes made meanwhile are
    // applied once the API server is back.
    api.set_down(true);
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(3) {
        assert_eq!(weir.get("b.test", "/").expect("get during outage").status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    api.apply_yaml(&route("r4", "d.test"));
    api.delete("traefik.io/v1alpha1", "IngressRoute", "apps", "r2");
    api.compact();
    api.set_down(false);
    weir.wait_for("d.test", "/", Duration::from_secs(45), |r| r.status == 200);
    weir.wait_for("b.test", "/", LIMIT, |r| r.status == 404);
    assert_eq!(weir.get("c.test", "/").expect("get").status, 200);
}

#[test]
fn ingress_provider_reads_ingresses_and_writes_status() {
    let api = KubeApi::start(None);
    let backend = Whoami::start("kube-ing");
    api.apply_yaml(&service_yaml("apps", "web", 80, "http", &[backend.addr]));
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": "apps", "name": "site"},
        "spec": {"rules": [{"host": "i.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}));
    // Another class: not handled, no status.
    api.apply(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": "apps", "name": "other"},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "o.test", "http": {"paths": [{"path": "/",
            "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}));
    let endpoint = format!("--providers.kubernetesIngress.endpoint={}", api.url());
    let weir = Weir::start_without_manifests(&[
        &endpoint,
        "--providers.kubernetesIngress.ingressEndpoint.ip=192.0.2.10",
    ]);
    let r = weir.wait_for("i.test", "/", LIMIT, |r| r.status == 200);
    assert_eq!(r.backend(), Some("kube-ing"));
    assert_eq!(weir.get("o.test", "/").expect("get").status, 404);
    wait_until("the status of apps/site", LIMIT, || {
        api.status_patches().iter().any(|(path, body)| {
            path == "/apis/networking.k8s.io/v1/namespaces/apps/ingresses/site/status"
                && body["status"]["loadBalancer"]["ingress"] == json!([{"ip": "192.0.2.10"}])
        })
    });
    assert!(!api.status_patches().iter().any(|(p, _)| p.contains("/other/")), "{:?}", api.status_patches());
}

#[test]
fn wrong_token_serves_nothing_and_says_why() {
    let api = KubeApi::start(Some(TOKEN));
    let backend = Whoami::start("kube-tok");
    api.apply_yaml(&service_yaml("apps", "web", 80, "http", &[backend.addr]));
    api.apply_yaml(&route("r1", "a.test"));
    let endpoint = format!("--providers.kubernetesCRD.endpoint={}", api.url());
    let weir = Weir::start_without_manifests(&[&endpoint, "--providers.kubernetesCRD.token=wrong"]);
    wait_until("a warning about the watch", LIMIT, || {
        weir.log().contains("401") || weir.log().contains("Unauthorized")
    });
    assert_ne!(weir.get("a.test", "/").map(|r| r.status).unwrap_or(0), 200);
}

#[test]
fn deploy_renders_with_kustomize() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let out = match std::process::Command::new("kubectl").arg("kustomize").arg(&deploy).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "kubectl is missing in CI: {e}");
            eprintln!(
                "!!! SKIPPED deploy_renders_with_kustomize: no kubectl ({e}); install kubernetes-client"
            );
            return;
        }
    };
    assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<serde_json::Value> =
        text.split("\n---\n").map(|d| serde_yaml_ng::from_str(d).expect("rendered YAML")).collect();
    let kinds = |kind: &str| docs.iter().filter(|d| d["kind"] == kind).count();
    assert_eq!(kinds("CustomResourceDefinition"), 10);
    assert_eq!((kinds("DaemonSet"), kinds("ClusterRole"), kinds("ClusterRoleBinding")), (1, 1, 1));
    let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").expect("daemonset");
    assert_eq!(ds["metadata"]["namespace"], "weir-system");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 2);
    let dataplane = &containers[0];
    assert_eq!(dataplane["readinessProbe"]["httpGet"]["path"], "/ping");
    assert_eq!(dataplane["readinessProbe"]["httpGet"]["port"], 8080);
    assert!(dataplane["lifecycle"]["preStop"].is_object());
    let caps = dataplane["securityContext"]["capabilities"]["add"].to_string();
    for cap in ["BPF", "NET_ADMIN", "NET_BIND_SERVICE"] {
        assert!(caps.contains(cap), "{cap} in {caps}");
    }
    for c in containers {
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/run/weir", "{}", c["name"]);
    }
    // RBAC: Secrets are read-only; nothing but Events and Ingress status is written.
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole").expect("role");
    for rule in role["rules"].as_array().expect("rules") {
        let verbs = rule["verbs"].to_string();
        let resources = rule["resources"].to_string();
        if resources.contains("secrets") {
            assert_eq!(verbs, r#"["get","list","watch"]"#);
        }
        if verbs.contains("update") || verbs.contains("create") || verbs.contains("patch") {
            assert!(
                resources == r#"["ingresses/status"]"# || resources == r#"["events"]"#,
                "{resources}: {verbs}"
            );
        }
    }
}

/// VmRSS of a process in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The W8 scale measurement (run by `bench/kube-scale`, in release): N IngressRoutes and N
/// Services + EndpointSlices in the in-memory API server; time from weir's start until the
/// last route serves, time for one change to serve (median and max of CHANGES), and VmRSS of
/// both processes. `WEIR_KUBE_ROUTES` / `WEIR_KUBE_CHANGES` override the counts.
#[test]
#[ignore = "measurement: bench/kube-scale runs it in release"]
fn kube_scale() {
    let routes: usize = std::env::var("WEIR_KUBE_ROUTES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let changes: usize = std::env::var("WEIR_KUBE_CHANGES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let api = KubeApi::start(Some(TOKEN));
    let backend = Whoami::start("scale");
    let (ip, port) = (backend.addr.ip().to_string(), backend.addr.port());
    let svc = |i: usize| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": "apps", "name": format!("svc-{i}")},
               "spec": {"ports": [{"name": "http", "port": 80}]}})
    };
    let slice = |i: usize| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"namespace": "apps", "name": format!("svc-{i}-0"),
                            "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
               "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
               "endpoints": [{"addresses": [ip.clone()], "conditions": {"ready": true}}]})
    };
    let route = |i: usize, host: &str| {
        json!({"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRoute",
               "metadata": {"namespace": "apps", "name": format!("route-{i}")},
               "spec": {"entryPoints": ["web"], "routes": [{"match": format!("Host(`{host}`)"), "kind": "Rule",
                        "services": [{"name": format!("svc-{i}"), "port": 80}]}]}})
    };
    for i in 0..routes {
        api.apply(svc(i));
        api.apply(slice(i));
        api.apply(route(i, &format!("r{i}.scale.test")));
    }
    let started = Instant::now();
    let weir = start_crd(&api, &[]);
    let last = format!("r{}.scale.test", routes - 1);
    weir.wait_for(&last, "/", Duration::from_secs(120), |r| r.status == 200);
    let cold = started.elapsed();
    let mut times = Vec::new();
    for c in 0..changes {
        let i = c % routes;
        let host = format!("changed-{c}.scale.test");
        let t = Instant::now();
        api.apply(route(i, &host));
        loop {
            if weir.get(&host, "/").map(|r| r.status).unwrap_or(0) == 200 {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "change {c} not applied");
            std::thread::sleep(Duration::from_millis(1));
        }
        times.push(t.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let max = times[times.len() - 1];
    if std::env::var_os("WEIR_KUBE_LOG").is_some() {
        // The per-phase timings of the last changes, as weir logged them.
        let log = weir.log();
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(30)..] {
            eprintln!("{line}");
        }
    }
    let control = rss_mib(weir.weir_pid());
    let dataplane = weir.dataplane_pid().map(rss_mib).unwrap_or(0.0);
    println!(
        "kube-scale: {routes} IngressRoutes + {routes} Services + {routes} EndpointSlices\n\
         cold start to last route served: {:.0} ms\n\
         one IngressRoute change applied: median {:.1} ms, max {:.1} ms ({changes} changes)\n\
         VmRSS: weir {control:.1} MiB, weir-dataplane {dataplane:.1} MiB",
        cold.as_secs_f64() * 1000.0,
        median.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
    );
}
