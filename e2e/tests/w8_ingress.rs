//! W8 end to end: the kubernetesIngress provider fed from the manifests directory, through the
//! real binaries: Exact and Prefix paths, hosts, the default backend, IngressClass filtering
//! (another controller's class and the legacy annotation ignored), TLS from an Ingress's secret
//! served to curl and openssl s_client, the router annotations (entrypoints, middlewares,
//! priority) and the Service annotations (sticky cookie, serversscheme).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use weir_e2e::{free_port, get, service_yaml, TempDir, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// An Ingress in `default` with `annotations` (YAML flow mapping body) and `spec` (YAML lines).
fn ingress(name: &str, annotations: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n  namespace: default\n  \
         annotations: {{{annotations}}}\nspec:\n{spec}"
    )
}

/// One `rules` entry with one path.
fn rule(host: &str, path: &str, path_type: &str, service: &str) -> String {
    let host = if host.is_empty() { String::new() } else { format!("  host: {host}\n") };
    format!(
        "- http:\n    paths:\n    - path: {path}\n      pathType: {path_type}\n      backend: {{service: {{name: {service}, port: {{number: 80}}}}}}\n{host}"
    )
}

fn ingress_class(name: &str, controller: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {{name: {name}}}\nspec: {{controller: {controller}}}\n")
}

fn backend(w: &Whoami) -> String {
    service_yaml("default", &w.name, 80, "http", &[w.addr])
}

fn start(files: &[(&str, String)], extra: &[&str]) -> Weir {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    Weir::start(&files, extra)
}

#[test]
fn paths_hosts_default_backend_and_classes() {
    let (a, b, c, d) = (Whoami::start("a"), Whoami::start("b"), Whoami::start("c"), Whoami::start("d"));
    let mut files = vec![
        ("a.yaml", backend(&a)),
        ("b.yaml", backend(&b)),
        ("c.yaml", backend(&c)),
        ("d.yaml", backend(&d)),
        (
            "classes.yaml",
            format!(
                "{}---\n{}",
                ingress_class("traefik-lb", "traefik.io/ingress-controller"),
                ingress_class("nginx", "k8s.io/ingress-nginx")
            ),
        ),
    ];
    let paths = format!(
        "rules:\n{}{}{}",
        rule("a.test", "/exact", "Exact", "a"),
        rule("a.test", "/pre", "Prefix", "b"),
        rule("", "/anyhost", "ImplementationSpecific", "a"),
    );
    files.push(("paths.yaml", ingress("paths", "", &paths)));
    files.push((
        "fallback.yaml",
        ingress("fallback", "", "defaultBackend: {service: {name: c, port: {number: 80}}}"),
    ));
    files.push((
        "classy.yaml",
        ingress(
            "classy",
            "",
            &format!("ingressClassName: traefik-lb\nrules:\n{}", rule("class.test", "/", "Prefix", "b")),
        ),
    ));
    files.push((
        "nginx.yaml",
        ingress(
            "nginx",
            "",
            &format!("ingressClassName: nginx\nrules:\n{}", rule("nginx.test", "/", "Prefix", "d")),
        ),
    ));
    files.push((
        "legacy.yaml",
        ingress(
            "legacy",
            "kubernetes.io/ingress.class: nginx",
            &format!("rules:\n{}", rule("legacy.test", "/", "Prefix", "d")),
        ),
    ));
    files.push((
        "legacy-ours.yaml",
        ingress(
            "legacy-ours",
            "kubernetes.io/ingress.class: traefik",
            &format!("rules:\n{}", rule("legacy-ours.test", "/", "Prefix", "a")),
        ),
    ));
    let weir = start(&files, &["--providers.kubernetesIngress"]);
    weir.wait_for("a.test", "/exact", READY, |r| r.status == 200 && r.backend() == Some("a"));

    let cases = [
        ("a.test", "/exact", "a"),
        // Exact: nothing below it; the default backend answers.
        ("a.test", "/exact/x", "c"),
        ("a.test", "/pre", "b"),
        ("a.test", "/pre/x", "b"),
        // Traefik's PathPrefix is character-wise (strictPrefixMatching is off).
        ("a.test", "/prefix", "b"),
        // Host rules: another host does not match them.
        ("other.test", "/exact", "c"),
        ("other.test", "/anyhost/x", "a"),
        ("class.test", "/", "b"),
        // Another controller's IngressClass, and the legacy annotation of another class.
        ("nginx.test", "/", "c"),
        ("legacy.test", "/", "c"),
        ("legacy-ours.test", "/", "a"),
    ];
    for (host, path, want) in cases {
        let r = weir.get(host, path).expect("request");
        assert_eq!((r.status, r.backend()), (200, Some(want)), "{host}{path}\n{}", weir.log());
    }

    // Removing the default backend: unmatched requests get Traefik's 404.
    weir.remove_manifest("fallback.yaml");
    let r = weir.wait_for("other.test", "/exact", READY, |r| r.status == 404);
    assert_eq!(r.text(), "404 page not found\n");
    assert_eq!(weir.get("nginx.test", "/").expect("request").status, 404);
}

#[test]
fn ingresses_need_the_provider_when_another_is_named() {
    let a = Whoami::start("a");
    let files = [
        ("a.yaml", backend(&a)),
        ("ing.yaml", ingress("ing", "", &format!("rules:\n{}", rule("ing.test", "/", "Prefix", "a")))),
        (
            "ir.yaml",
            weir_e2e::ingressroute_yaml("default", "ir", &[("Host(`ir.test`)", None, &[("a", 80, 1)])]),
        ),
    ];
    // Only the CRD provider: Ingresses are not read (Traefik).
    let weir = start(&files, &["--providers.kubernetesCRD"]);
    weir.wait_for("ir.test", "/", READY, |r| r.status == 200);
    assert_eq!(weir.get("ing.test", "/").expect("request").status, 404);
    drop(weir);
    // Both providers at once.
    let weir = start(&files, &["--providers.kubernetesCRD", "--providers.kubernetesIngress"]);
    weir.wait_for("ir.test", "/", READY, |r| r.status == 200);
    weir.wait_for("ing.test", "/", READY, |r| r.status == 200 && r.backend() == Some("a"));
    drop(weir);
    // No provider named (the quickstart): both are read.
    let weir = start(&files, &[]);
    weir.wait_for("ing.test", "/", READY, |r| r.status == 200 && r.backend() == Some("a"));
    // --providers.kubernetesIngress.ingressClass: only that class.
    drop(weir);
    let weir = start(&files, &["--providers.kubernetesIngress.ingressClass=internal"]);
    weir.wait_for("ir.test", "/", READY, |r| r.status == 200);
    assert_eq!(weir.get("ing.test", "/").expect("request").status, 404);
}

#[test]
fn router_annotations() {
    let (a, b) = (Whoami::start("a"), Whoami::start("b"));
    let admin = free_port();
    let middleware =
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: prefix, namespace: default}\n\
                      spec: {addPrefix: {prefix: /added}}\n";
    let files = [
        ("a.yaml", backend(&a)),
        ("b.yaml", backend(&b)),
        ("mw.yaml", middleware.to_string()),
        (
            "admin-only.yaml",
            ingress(
                "admin-only",
                "traefik.ingress.kubernetes.io/router.entrypoints: admin",
                &format!("rules:\n{}", rule("ep.test", "/", "Prefix", "a")),
            ),
        ),
        (
            "mw-ing.yaml",
            ingress(
                "mw-ing",
                "traefik.ingress.kubernetes.io/router.middlewares: default-prefix@kubernetescrd",
                &format!("rules:\n{}", rule("mw.test", "/x", "Prefix", "a")),
            ),
        ),
        // A longer rule wins by default; the priority annotation overrides it.
        (
            "long.yaml",
            ingress("long", "", &format!("rules:\n{}", rule("prio.test", "/longer/path", "Prefix", "a"))),
        ),
        (
            "short.yaml",
            ingress(
                "short",
                "traefik.ingress.kubernetes.io/router.priority: '1000'",
                &format!("rules:\n{}", rule("prio.test", "/", "Prefix", "b")),
            ),
        ),
        (
            "long2.yaml",
            ingress("long2", "", &format!("rules:\n{}", rule("prio2.test", "/longer/path", "Prefix", "a"))),
        ),
        (
            "short2.yaml",
            ingress("short2", "", &format!("rules:\n{}", rule("prio2.test", "/", "Prefix", "b"))),
        ),
    ];
    let admin_ep = format!("--entryPoints.admin.address=127.0.0.1:{admin}");
    let weir = start(&files, &["--providers.kubernetesIngress", &admin_ep]);
    weir.wait_for("mw.test", "/x", READY, |r| r.status == 200);

    // router.entrypoints: served on admin only.
    let r = get(admin, "ep.test", "/").expect("admin request");
    assert_eq!((r.status, r.backend()), (200, Some("a")));
    assert_eq!(weir.get("ep.test", "/").expect("web request").status, 404);
    // router.middlewares: the CRD middleware ran (the backend saw the prefixed path).
    let r = weir.get("mw.test", "/x/y").expect("request");
    assert!(r.text().contains("GET /added/x/y HTTP/1.1"), "{}", r.text());
    // router.priority.
    assert_eq!(weir.get("prio.test", "/longer/path").expect("request").backend(), Some("b"));
    assert_eq!(weir.get("prio2.test", "/longer/path").expect("request").backend(), Some("a"));
    assert_eq!(weir.get("prio2.test", "/other").expect("request").backend(), Some("b"));
}

#[test]
fn service_annotations() {
    let (a, b) = (Whoami::start("a"), Whoami::start("b"));
    let annotated = |name: &str, w: &Whoami, annotations: &str| {
        backend(w).replacen(
            &format!("  name: {name}\n  namespace: default\n"),
            &format!("  name: {name}\n  namespace: default\n  annotations: {{{annotations}}}\n"),
            1,
        )
    };
    let files = [
        (
            "a.yaml",
            annotated(
                "a",
                &a,
                "traefik.ingress.kubernetes.io/service.sticky.cookie: 'true', \
                 traefik.ingress.kubernetes.io/service.sticky.cookie.name: weir_sticky, \
                 traefik.ingress.kubernetes.io/service.sticky.cookie.httponly: 'true'",
            ),
        ),
        // The backend speaks cleartext HTTP: serversscheme https makes the proxy fail.
        ("b.yaml", annotated("b", &b, "traefik.ingress.kubernetes.io/service.serversscheme: https")),
        (
            "ing.yaml",
            ingress(
                "ing",
                "",
                &format!(
                    "rules:\n{}{}",
                    rule("sticky.test", "/", "Prefix", "a"),
                    rule("scheme.test", "/", "Prefix", "b")
                ),
            ),
        ),
    ];
    let weir = start(&files, &["--providers.kubernetesIngress"]);
    let r = weir.wait_for("sticky.test", "/", READY, |r| r.status == 200);
    let cookie = r.header("set-cookie").expect("sticky cookie set");
    assert!(cookie.starts_with("weir_sticky="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    // weir's whoami does not answer a ClientHello (Go's server would say 400 at once, giving
    // Traefik's 502): the handshake fails or times out, never reaching the backend as HTTP.
    let r = weir.get("scheme.test", "/").expect("request");
    assert!(matches!(r.status, 502 | 504), "{r:?}");
    // Without the annotation the same backend answers.
    weir.write_manifest("b.yaml", &backend(&b));
    weir.wait_for("scheme.test", "/", READY, |r| r.status == 200 && r.backend() == Some("b"));
}

/// A certificate for `names` signed by a fresh CA: (CA PEM, cert PEM, key PEM).
fn certificate(names: &[&str]) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "weir w8 CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    let cert = params.signed_by(&key, &issuer).expect("leaf");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

fn indent(s: &str, by: usize) -> String {
    s.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

fn curl_https(port: u16, host: &str, ca: &Path) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("run curl");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn tls_from_the_ingress_secret() {
    let a = Whoami::start("a");
    let (ca, cert, key) = certificate(&["secure.test"]);
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: secure-tls, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&cert, 4),
        indent(&key, 4)
    );
    let spec = format!(
        "tls:\n- hosts: [secure.test]\n  secretName: secure-tls\nrules:\n{}",
        rule("secure.test", "/", "Prefix", "a")
    );
    let files = [
        ("a.yaml", backend(&a)),
        ("secret.yaml", secret),
        ("tls.yaml", ingress("secure", "traefik.ingress.kubernetes.io/router.tls: 'true'", &spec)),
        // spec.tls alone does not make the routers TLS-only (Traefik): this one stays cleartext.
        (
            "plain.yaml",
            ingress(
                "plain",
                "",
                &format!(
                    "tls:\n- secretName: secure-tls\nrules:\n{}",
                    rule("plain.test", "/", "Prefix", "a")
                ),
            ),
        ),
    ];
    let weir = start(&files, &["--providers.kubernetesIngress"]);
    weir.wait_for("plain.test", "/", READY, |r| r.status == 200);
    let scratch = TempDir::new();
    let ca_file: PathBuf = scratch.join("ca.pem");
    std::fs::write(&ca_file, &ca).expect("write CA");
    let mut last = (String::new(), String::new());
    for _ in 0..100 {
        last = curl_https(weir.port, "secure.test", &ca_file);
        if last.0.ends_with("\n200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(last.0.ends_with("\n200"), "curl: {last:?}\n{}", weir.log());
    assert!(last.0.contains("Name: a"), "{last:?}");
    // The TLS router does not serve cleartext requests.
    assert_eq!(weir.get("secure.test", "/").expect("request").status, 404);
    // openssl s_client sees the secret's certificate for the name.
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", weir.port), "-servername", "secure.test"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("subject=CN = secure.test") || text.contains("subject=CN=secure.test"), "{text}");
}
