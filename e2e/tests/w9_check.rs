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
