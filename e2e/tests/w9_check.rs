//! W9 end to end: `weir check` — the offline migration report — on a directory of good
//! manifests (exit 0, routers listed), on one with a broken rule and an unknown field (exit 1,
//! the error and the ignored field named), and on a `kubectl get -o yaml` dump (`kind: List`).

use std::process::{Command, Output};
use std::time::Duration;

use weir_e2e::{bin_dir, TempDir};

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: whoami\n  namespace: default\nspec:\n  ports:\n    - name: http\n      port: 80\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: whoami-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: whoami\naddressType: IPv4\nports:\n  - name: http\n    port: 8080\n    protocol: TCP\nendpoints:\n  - addresses: [\"10.0.0.1\"]\n    conditions:\n      ready: true\n";

const GOOD: &str = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: good\n  namespace: default\nspec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`good.test`)\n      kind: Rule\n      middlewares: [{name: strip}]\n      services: [{name: whoami, port: 80}]\n---\napiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: strip\n  namespace: default\nspec:\n  stripPrefix:\n    prefixes: [/api]\n";

const BAD: &str = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`bad.test`\n      kind: Rule\n      services: [{name: whoami, port: 80}]\n---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: extra\n  namespace: default\nspec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`extra.test`)\n      kind: Rule\n      notAField: 1\n      services: [{name: whoami, port: 80}]\n";

/// Runs `weir check` with a time bound (the command is offline and must not hang).
fn check(args: &[&str]) -> Output {
    let mut child = Command::new(bin_dir().join("weir"))
        .arg("check")
        .args(args)
        .env("HOME", "/nonexistent")
        .env_remove("XDG_CONFIG_HOME")
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run weir check");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("weir check did not finish within 30s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn good_directory_passes_and_lists_what_weir_builds() {
    let dir = TempDir::new();
    std::fs::write(dir.join("svc.yaml"), SERVICE).expect("write");
    std::fs::write(dir.join("app.yaml"), GOOD).expect("write");
    let out = check(&[dir.0.to_str().expect("utf-8")]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("IngressRoute default/good"), "{t}");
    assert!(t.contains("Host(`good.test`) [entrypoints web]"), "{t}");
    assert!(t.contains("middlewares [default-strip]"), "{t}");
    assert!(t.contains("0 error(s)"), "{t}");
}

#[test]
fn errors_and_ignored_fields_fail_the_check() {
    let dir = TempDir::new();
    std::fs::write(dir.join("svc.yaml"), SERVICE).expect("write");
    std::fs::write(dir.join("bad.yaml"), BAD).expect("write");
    let out = check(&[dir.0.to_str().expect("utf-8"), "--entryPoints.web.address=:8000"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("IngressRoute default/bad"), "{t}");
    assert!(t.lines().any(|l| l.trim_start().starts_with("error") && l.contains("route 0")), "{t}");
    assert!(t.contains("ignored field: spec.routes[0].notAField"), "{t}");
    assert!(t.contains("Host(`extra.test`)"), "the valid object still builds: {t}");
}

#[test]
fn kubectl_list_dump_and_usage_errors() {
    let dir = TempDir::new();
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let mut dump = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for doc in SERVICE.split("---\n").chain(GOOD.split("---\n").take(1)) {
        let body = indent(doc);
        dump.push_str(&format!("  - {}", body.trim_start()));
    }
    let file = dir.join("dump.yaml");
    std::fs::write(&file, &dump).expect("write");
    let out = check(&[file.to_str().expect("utf-8")]);
    let t = text(&out);
    // The route names a Middleware the dump lacks: an error, reported on the route.
    assert_eq!(out.status.code(), Some(1), "{t}\n{dump}");
    assert!(t.contains("Service default/whoami") && t.contains("IngressRoute default/good"), "{t}");
    assert!(t.contains("strip"), "{t}");

    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = check(&["/nonexistent/manifests"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// What `kubectl get svc,endpointslices,ingressroutes,middlewares -A -o yaml` prints: a `List`
/// whose items carry the server's bookkeeping (managedFields, uid, resourceVersion, status)
/// and the Service fields Traefik does not read either.
const KUBECTL_DUMP: &str = r#"apiVersion: v1
items:
- apiVersion: v1
  kind: Service
  metadata:
    annotations:
      kubectl.kubernetes.io/last-applied-configuration: |
        {"apiVersion":"v1","kind":"Service"}
    creationTimestamp: "2026-01-01T00:00:00Z"
    managedFields:
    - apiVersion: v1
      fieldsType: FieldsV1
      manager: kubectl-client-side-apply
      operation: Update
    name: whoami
    namespace: default
    resourceVersion: "1234"
    uid: 0f0e0d0c-0000-0000-0000-000000000001
  spec:
    clusterIP: 10.43.0.10
    clusterIPs: [10.43.0.10]
    internalTrafficPolicy: Cluster
    ipFamilies: [IPv4]
    ipFamilyPolicy: SingleStack
    ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 8080
    selector:
      app: whoami
    sessionAffinity: None
    type: ClusterIP
  status:
    loadBalancer: {}
- addressType: IPv4
  apiVersion: discovery.k8s.io/v1
  endpoints:
  - addresses: [10.42.0.7]
    conditions: {ready: true, serving: true, terminating: false}
    nodeName: node-1
    targetRef: {kind: Pod, name: whoami-abc, namespace: default, uid: 0f0e0d0c-0000-0000-0000-000000000002}
  kind: EndpointSlice
  metadata:
    generateName: whoami-
    labels:
      endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
      kubernetes.io/service-name: whoami
    name: whoami-x7k2p
    namespace: default
    resourceVersion: "1240"
  ports:
  - name: http
    port: 8080
    protocol: TCP
- apiVersion: traefik.io/v1alpha1
  kind: IngressRoute
  metadata:
    generation: 3
    name: dumped
    namespace: default
    resourceVersion: "1300"
  spec:
    entryPoints: [web]
    routes:
    - kind: Rule
      match: Host(`dumped.test`)
      middlewares: [{name: strip}]
      services: [{name: whoami, port: 80}]
- apiVersion: traefik.io/v1alpha1
  kind: Middleware
  metadata:
    name: strip
    namespace: default
  spec:
    stripPrefix:
      prefixes: [/api]
kind: List
metadata:
  resourceVersion: ""
"#;

#[test]
fn real_kubectl_dump_and_static_option_warnings() {
    let dir = TempDir::new();
    let file = dir.join("cluster.yaml");
    std::fs::write(&file, KUBECTL_DUMP).expect("write");
    let out = check(&[
        file.to_str().expect("utf-8"),
        "--entryPoints.web.address=:8000",
        "--serversTransport.insecureSkipVerify=true",
        "--entryPoints.web.http.sanitizePath=false",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "a clean cluster dump has no error: {t}");
    for kind in
        ["Service default/whoami", "EndpointSlice default/whoami-x7k2p", "IngressRoute default/dumped"]
    {
        assert!(t.contains(kind), "{kind} in {t}");
    }
    assert!(t.contains("Host(`dumped.test`) [entrypoints web] middlewares [default-strip]"), "{t}");
    assert!(t.contains("middleware default-strip (used by a router)"), "{t}");
    // Server bookkeeping and Service fields Traefik does not read either are not "ignored".
    assert!(!t.contains("ignored field"), "{t}");
    // The static options weir ignores or treats differently are named, before the objects.
    let section = t.split("\nstatic configuration\n").nth(1).expect("a static configuration section");
    let section = section.split("\n\n").next().unwrap_or("");
    assert!(section.contains("serversTransport.insecureSkipVerify"), "{section}");
    assert!(section.contains("sanitizePath"), "{section}");
    assert!(t.contains("0 error(s), 2 warning(s)"), "{t}");
}
