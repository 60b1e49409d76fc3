use super::*;
use crate::compile::{compile, CompileOptions};
use crate::config::{parse, Command, Environment};
use crate::source::manifests::parse_file;

fn options(args: &[&str]) -> CompileOptions {
    let env = Environment { xdg_runtime_dir: None, euid: 0, exe_dir: None };
    let args = args.iter().copied().chain(["--manifests=/m", "--entryPoints.web.address=:80"]);
    match parse(args, &env) {
        Ok(Command::Run { config, .. }) => CompileOptions::from_config(&config),
        other => panic!("{other:?}"),
    }
}

fn store(text: &str) -> ObjectStore {
    let mut problems = Vec::new();
    let mut s = ObjectStore::new();
    for o in parse_file(std::path::Path::new("t.yaml"), text, &mut problems) {
        s.insert(o);
    }
    assert!(problems.is_empty(), "{problems:?}");
    s
}

const OBJECTS: &str = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: apps}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`a`)
    services: [{name: a, port: 80}]
    middlewares: [{name: strip}]
  - match: Host(`b`) && Path(`/x`
    priority: 7
    services: [{name: a, port: 80}]
  - match: Host(`c`)
    services: [{name: api@internal, kind: TraefikService}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: apps}
spec: {stripPrefix: {prefixes: [/a]}}
---
apiVersion: v1
kind: Service
metadata: {name: a, namespace: apps}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: apps, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.1]}]
";

fn model(args: &[&str]) -> (Snapshot, Value) {
    let compiled = compile(&store(OBJECTS), &options(args));
    let model = if compiled.snapshot.api.runtime_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&compiled.snapshot.api.runtime_json).expect("model is JSON")
    };
    (compiled.snapshot, model)
}

fn router_names(s: &Snapshot) -> Vec<&str> {
    s.routers.iter().map(|r| r.name.as_str()).filter(|n| n.ends_with("@internal")).collect()
}

#[test]
fn internal_routers_and_entrypoint() {
    let cases: [(&str, &[&str], &[&str], bool); 6] = [
        ("nothing", &[], &[], false),
        ("secure api", &["--api"], &[], false),
        ("insecure api", &["--api.insecure"], &["api@internal", "dashboard@internal"], true),
        ("insecure api, no dashboard", &["--api.insecure", "--api.dashboard=false"], &["api@internal"], true),
        ("ping", &["--ping"], &["ping@internal"], true),
        ("ping, manual routing", &["--ping.manualRouting"], &[], false),
    ];
    for (name, args, want, traefik_ep) in cases {
        let (snap, _) = model(args);
        assert_eq!(router_names(&snap), want, "{name}");
        assert_eq!(snap.entrypoints.iter().any(|e| e.name == "traefik"), traefik_ep, "{name}");
        // User routers never attach to the traefik entrypoint by default.
        assert!(snap
            .routers
            .iter()
            .filter(|r| !r.name.ends_with("@internal"))
            .all(|r| r.entrypoints == ["web"]));
    }
}

#[test]
fn dashboard_middlewares() {
    let (snap, _) = model(&["--api.insecure"]);
    let dash = snap.routers.iter().find(|r| r.name == "dashboard@internal").expect("dashboard router");
    assert_eq!(dash.middlewares, ["dashboard_redirect@internal", "dashboard_stripprefix@internal"]);
    assert_eq!(dash.priority, i64::MAX - 2);
    for m in &dash.middlewares {
        assert!(snap.middlewares.iter().any(|x| &x.name == m), "{m} defined");
    }
}

#[test]
fn api_service_needs_the_api() {
    let user = |s: &Snapshot| {
        s.routers.iter().any(|r| r.service == "api@internal" && !r.name.ends_with("@internal"))
    };
    let (without, _) = model(&[]);
    assert!(!user(&without), "router to api@internal without --api is disabled");
    assert!(!without.services.iter().any(|s| s.name == "api@internal"));
    let (with, _) = model(&["--api"]);
    assert!(user(&with));
    assert!(with.services.iter().any(|s| s.kind == ServiceKind::Internal(InternalService::Api)));
}

#[test]
fn runtime_model() {
    let (_, off) = model(&[]);
    assert_eq!(off, Value::Null, "no model without --api");
    let (_, m) = model(&["--api.insecure"]);
    let routers = m["routers"].as_object().expect("routers");
    let find = |rule: &str| routers.values().find(|r| r["rule"] == rule).unwrap_or_else(|| panic!("{rule}"));
    let a = find("Host(`a`)");
    assert_eq!(a["status"], "enabled");
    assert_eq!(a["service"], "apps-a-80");
    assert_eq!(a["middlewares"], json!(["apps-strip"]));
    assert!(a.get("priority").is_none(), "default priority is not written");
    let b = find("Host(`b`) && Path(`/x`");
    assert_eq!(b["status"], "disabled");
    assert_eq!(b["priority"], 7);
    assert_eq!(b["entryPoints"], json!(["web"]));
    assert!(b["error"][0].as_str().unwrap().contains("invalid rule"), "{b}");
    let api = &routers["api@internal"];
    assert_eq!((api["provider"].as_str(), api["priority"].as_i64()), (Some("internal"), Some(i64::MAX - 1)));

    let services = m["services"].as_object().expect("services");
    let lb = &services["apps-a-80@kubernetescrd"];
    // Servers and their status come from the data plane's live table.
    assert!(lb["loadBalancer"].get("servers").is_none() && lb.get("serverStatus").is_none(), "{lb}");
    assert_eq!(lb["loadBalancer"]["passHostHeader"], true);
    assert_eq!(lb["usedBy"].as_array().map(Vec::len), Some(1));
    assert_eq!(lb["loadBalancer"]["responseForwarding"]["flushInterval"], "100ms");
    for internal in ["api@internal", "dashboard@internal", "noop@internal"] {
        assert_eq!(services[internal]["provider"], "internal", "{internal}");
    }
    let mw = &m["middlewares"]["apps-strip@kubernetescrd"];
    assert_eq!(mw["type"], "stripprefix");
    assert_eq!(mw["stripPrefix"]["prefixes"], json!(["/a"]));
    assert_eq!(m["entryPoints"]["web"]["address"], ":80");
    assert_eq!(m["entryPoints"]["traefik"]["address"], ":8080");
}

#[test]
fn go_durations() {
    let cases =
        [(0, "0s"), (100, "100ms"), (1000, "1s"), (1500, "1.5s"), (60_000, "1m0s"), (3_723_000, "1h2m3s")];
    for (ms, want) in cases {
        assert_eq!(go_duration_ms(ms), want);
    }
}

#[test]
fn tcp_routers_in_the_model() {
    let objects = format!(
        "{OBJECTS}---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {{name: db, namespace: apps}}
spec:
  entryPoints: [web]
  routes:
  - match: HostSNI(`*`)
    services: [{{name: a, port: 80}}]
  - match: HostSNI(`*`) && Nope(`x`)
    services: [{{name: a, port: 80}}]
"
    );
    let compiled = compile(&store(&objects), &options(&["--api"]));
    let m: Value = serde_json::from_str(&compiled.snapshot.api.runtime_json).expect("json");
    let routers = m["tcpRouters"].as_object().expect("tcp routers");
    let ok = routers.values().find(|r| r["rule"] == "HostSNI(`*`)").expect("enabled tcp router");
    assert_eq!(ok["status"], "enabled");
    let service = ok["service"].as_str().expect("service name");
    assert!(routers.values().any(|r| r["status"] == "disabled" && r["error"].is_array()), "{routers:?}");
    // TCP problems never land among the HTTP routers.
    assert!(m["routers"].as_object().unwrap().values().all(|r| r["rule"] != "HostSNI(`*`) && Nope(`x`)"));
    // Traefik's CRD provider: a weighted service named like the router over one load balancer
    // per referenced Service port.
    let svc = &m["tcpServices"][format!("{service}@kubernetescrd")];
    assert_eq!(svc["type"], "weighted", "{}", m["tcpServices"]);
    let child = svc["weighted"]["services"][0]["name"].as_str().expect("child");
    let lb = &m["tcpServices"][format!("{child}@kubernetescrd")];
    assert_eq!(lb["loadBalancer"]["servers"][0]["address"], "10.0.0.1:8080");
    assert_eq!(svc["usedBy"].as_array().map(Vec::len), Some(1));
}

/// Size and cost of the model at scale: `cargo test -p weir-control --release --lib
/// api::tests::model_at_10k_routes -- --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn model_at_10k_routes() {
    let mut y = String::new();
    for i in 0..10_000 {
        y.push_str(&format!(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: r{i}, namespace: apps}}\nspec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`h{i}.example`) && PathPrefix(`/p`)\n    services: [{{name: s{i}, port: 80}}]\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: apps}}\nspec: {{ports: [{{port: 80}}]}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s{i}-1, namespace: apps, labels: {{kubernetes.io/service-name: s{i}}}}}\naddressType: IPv4\nports: [{{port: 8080}}]\nendpoints: [{{addresses: [10.0.{}.{}]}}, {{addresses: [10.1.{}.{}]}}]\n---\n",
            i / 250, i % 250, i / 250, i % 250
        ));
    }
    let store = store(&y);
    for args in [&[][..], &["--api"][..]] {
        let o = options(args);
        let start = std::time::Instant::now();
        let c = compile(&store, &o);
        let took = start.elapsed();
        let bytes = c.snapshot.encode().expect("encodes").len();
        let parse = std::time::Instant::now();
        let v: Value = serde_json::from_str(&c.snapshot.api.runtime_json).unwrap_or(Value::Null);
        let parse_took = parse.elapsed();
        eprintln!(
            "{args:?}: compile {took:?}, snapshot {bytes} bytes, model {} bytes, model parse {parse_took:?} ({} routers)",
            c.snapshot.api.runtime_json.len(),
            v["routers"].as_object().map_or(0, |m| m.len())
        );
    }
}

#[test]
fn endpoint_changes_leave_the_model_alone() {
    // The publisher sends endpoint deltas only when nothing but servers changed; servers and
    // their status are filled in by the data plane, so the model must not carry them.
    let o = options(&["--api"]);
    let before = compile(&store(OBJECTS), &o).snapshot;
    let after = compile(&store(&OBJECTS.replace("10.0.0.1", "10.0.0.9")), &o).snapshot;
    assert_ne!(before.services, after.services);
    assert_eq!(before.api, after.api);
}
