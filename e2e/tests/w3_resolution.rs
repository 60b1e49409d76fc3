//! W3 end to end: how a service reference resolves to servers and how stickiness holds, as
//! Traefik's CRD provider does it, through the real binaries: port by name and `weight`,
//! `nativeLB` / `nativeLBByDefault`, refusals (cross-namespace, `allowEmptyServices` off,
//! ExternalName without `allowExternalNameServices`, `nodePortLB` without Nodes: 404 with the
//! reason logged),
//! serving / terminating endpoints, sticky cookie attributes and the derived default name,
//! stickiness across a snapshot change, a nested weighted service with its own cookie, and
//! mirroring's `maxBodySize` and `mirrorBody`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha1::Digest as _;
use weir_e2e::{service_yaml, Conn, Response, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

fn start(files: &[(&str, String)], extra: &[&str]) -> Weir {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    Weir::start(&files, extra)
}

/// An IngressRoute `name` in `namespace` with one route per `(host, services)`.
fn ingressroute(namespace: &str, name: &str, routes: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  entryPoints: [web]\n  routes:\n"
    );
    for (host, services) in routes {
        y.push_str(&format!("  - match: Host(`{host}`)\n    services: {services}\n"));
    }
    y
}

/// Who answered `n` requests to `host`, each on a new connection with `headers`.
fn counts(weir: &Weir, host: &str, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for _ in 0..n {
        let r = weir.get(host, "/").expect("request");
        assert_eq!(r.status, 200, "{host}: {r:?}");
        *out.entry(r.backend().unwrap_or("?").to_string()).or_default() += 1;
    }
    out
}

/// Traefik's sticky value of a server: the first 16 hex digits of sha256 of its URL.
fn sticky_value(url: &str) -> String {
    sha2::Sha256::digest(url.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// GET with a `Cookie` header on a new connection.
fn get_with_cookie(weir: &Weir, host: &str, cookie: &str) -> Response {
    Conn::open(weir.port)
        .expect("connect")
        .get(host, "/", &[("Cookie", cookie), ("Connection", "close")])
        .expect("request")
}

/// `name=value` of every `Set-Cookie` of a response.
fn set_cookies(r: &Response) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())
        .collect()
}

#[test]
fn port_by_name_and_weights_share_requests() {
    let (a, b) = (Whoami::start("a"), Whoami::start("b"));
    let files = [
        ("a.yaml", service_yaml("default", "svc-a", 80, "web", &[a.addr])),
        ("b.yaml", service_yaml("default", "svc-b", 80, "web", &[b.addr])),
        (
            "r.yaml",
            ingressroute(
                "default",
                "r",
                &[
                    (
                        "weights.test",
                        "[{name: svc-a, port: web, weight: 3}, {name: svc-b, port: web, weight: 1}]",
                    ),
                    ("zero.test", "[{name: svc-a, port: 80, weight: 0}, {name: svc-b, port: 80}]"),
                    ("wrongport.test", "[{name: svc-a, port: admin}]"),
                ],
            ),
        ),
    ];
    // One worker: the rotation is exact over every cycle.
    let weir = start(&files, &["--workers", "1"]);
    weir.wait_for("weights.test", "/", READY, |r| r.status == 200);
    weir.wait_for("zero.test", "/", READY, |r| r.status == 200);
    let got = counts(&weir, "weights.test", 39);
    // The probe took one turn of the 4-cycle: 40 in all, 30 and 10.
    let (na, nb) = (got.get("a").copied().unwrap_or(0), got.get("b").copied().unwrap_or(0));
    assert!((28..=30).contains(&na) && (9..=11).contains(&nb), "3:1 by weight: {got:?}");
    let got = counts(&weir, "zero.test", 10);
    assert_eq!(got.get("b"), Some(&10), "weight 0 is never picked: {got:?}");
    // A port name the Service does not declare: the route is not served (Traefik).
    assert_eq!(weir.get("wrongport.test", "/").expect("get").status, 404);
    assert!(weir.log().contains("admin"), "the error names the port:\n{}", weir.log());
}

#[test]
fn native_lb_by_default_is_overridden_per_reference() {
    let vip = Whoami::start_on("vip", "127.0.0.7:0");
    let ep = Whoami::start("endpoint");
    let port = vip.addr.port();
    // A Service whose ClusterIP reaches `vip` and whose endpoints reach `ep`.
    let svc = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  clusterIP: 127.0.0.7\n  ports: [{{name: web, port: {port}}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-1\n  namespace: default\n  labels: {{kubernetes.io/service-name: {name}}}\naddressType: IPv4\nports: [{{name: web, port: {}}}]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: {{ready: true}}\n",
            ep.addr.port()
        )
    };
    let files = [
        ("s1.yaml", svc("by-default")),
        ("s2.yaml", svc("opted-out")),
        (
            "r.yaml",
            ingressroute(
                "default",
                "r",
                &[
                    ("default.test", &format!("[{{name: by-default, port: {port}}}]")),
                    ("optout.test", &format!("[{{name: opted-out, port: {port}, nativeLB: false}}]")),
                ],
            ),
        ),
    ];
    let weir = start(&files, &["--providers.kubernetesCRD.nativeLBByDefault"]);
    let r = weir.wait_for("default.test", "/", READY, |r| r.status == 200);
    assert_eq!(r.backend(), Some("vip"), "nativeLBByDefault: the ClusterIP");
    let r = weir.wait_for("optout.test", "/", READY, |r| r.status == 200);
    assert_eq!(r.backend(), Some("endpoint"), "nativeLB: false: the endpoints");
}

#[test]
fn cross_namespace_empty_external_name_and_node_port_services_are_refused_by_default() {
    let w = Whoami::start("other-ns");
    let files = [
        ("s.yaml", service_yaml("other", "svc", 80, "", &[w.addr])),
        (
            "empty.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: apps}\nspec:\n  ports: [{port: 80}]\n"
                .to_string(),
        ),
        (
            "r.yaml",
            ingressroute(
                "apps",
                "r",
                &[
                    ("cross.test", "[{name: svc, namespace: other, port: 80}]"),
                    ("empty.test", "[{name: empty, port: 80}]"),
                    ("same.test", "[{name: svc, port: 80}]"),
                ],
            ),
        ),
        ("probe.yaml", ingressroute("other", "probe", &[("probe.test", "[{name: svc, port: 80}]")])),
        (
            "np.yaml",
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: np, namespace: other}}\nspec:\n  type: NodePort\n  ports: [{{port: 80, nodePort: 30080}}]\n---\n{}",
                ingressroute("other", "np", &[("nodeport.test", "[{name: np, port: 80, nodePortLB: true}]")])
            ),
        ),
        (
            "ext.yaml",
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: ext, namespace: other}}\nspec:\n  type: ExternalName\n  externalName: localhost\n  ports: [{{port: {}}}]\n---\n{}",
                w.addr.port(),
                ingressroute("other", "ext", &[("ext.test", &format!("[{{name: ext, port: {}}}]", w.addr.port()))])
            ),
        ),
    ];
    let weir = start(&files, &[]);
    weir.wait_for("probe.test", "/", READY, |r| r.status == 200);
    // Traefik: a reference into another namespace, a Service without endpoints, or a Service
    // looked up in the route's own namespace where it does not exist: the route is not served.
    // nodePortLB with no Node known: Traefik's error (e2e w3_nodeport covers Nodes).
    // ExternalName Services need allowExternalNameServices.
    for host in ["cross.test", "empty.test", "same.test", "nodeport.test", "ext.test"] {
        assert_eq!(weir.get(host, "/").expect("get").status, 404, "{host}");
    }
    let log = weir.log();
    assert!(log.contains("other") && log.contains("apps"), "the refusal names both namespaces:\n{log}");
    assert!(log.contains("nodes not found for NodePort service other/np"), "the refusal says why:\n{log}");
    assert!(log.contains("service other/ext: ExternalName services are not allowed"), "{log}");
    drop(weir);

    let weir = start(&files, &["--providers.kubernetesCRD.allowCrossNamespace"]);
    let r = weir.wait_for("cross.test", "/", READY, |r| r.status == 200);
    assert_eq!(r.backend(), Some("other-ns"));
    drop(weir);

    let weir = start(&files, &["--providers.kubernetesCRD.allowExternalNameServices"]);
    let r = weir.wait_for("ext.test", "/", READY, |r| r.status == 200);
    assert_eq!(r.backend(), Some("other-ns"), "allowed, the external name is resolved and reached");
}

#[test]
fn terminating_endpoints_keep_only_their_sticky_sessions() {
    let (live, term, gone) =
        (Whoami::start("live"), Whoami::start("terminating"), Whoami::start("not-serving"));
    let endpoint = |w: &Whoami, conditions: &str| {
        format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: pool-{}\n  namespace: default\n  labels: {{kubernetes.io/service-name: pool}}\naddressType: IPv4\nports: [{{name: web, port: {}}}]\nendpoints:\n  - addresses: [\"127.0.0.1\"]\n    conditions: {conditions}\n",
            w.name,
            w.addr.port()
        )
    };
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: pool, namespace: default}}\nspec:\n  ports: [{{name: web, port: 80}}]\n{}{}{}",
        endpoint(&live, "{ready: true, serving: true}"),
        endpoint(&term, "{ready: false, serving: true, terminating: true}"),
        endpoint(&gone, "{ready: false, serving: false, terminating: true}"),
    );
    let files = [
        ("s.yaml", svc),
        (
            "r.yaml",
            ingressroute(
                "default",
                "r",
                &[("term.test", "[{name: pool, port: 80, sticky: {cookie: {name: s}}}]")],
            ),
        ),
    ];
    let weir = start(&files, &[]);
    weir.wait_for("term.test", "/", READY, |r| r.status == 200);
    let got = counts(&weir, "term.test", 12);
    assert_eq!(
        got.get("live"),
        Some(&12),
        "only the serving, not terminating endpoint gets new traffic: {got:?}"
    );
    // An existing session on the terminating endpoint still reaches it (Traefik's fencing).
    let cookie = format!("s={}", sticky_value(&format!("http://{}", term.addr)));
    for _ in 0..3 {
        let r = get_with_cookie(&weir, "term.test", &cookie);
        assert_eq!((r.status, r.backend()), (200, Some("terminating")));
    }
    // A not-serving endpoint is not a server at all: its cookie falls back to a fresh pick.
    let cookie = format!("s={}", sticky_value(&format!("http://{}", gone.addr)));
    let r = get_with_cookie(&weir, "term.test", &cookie);
    assert_eq!(r.backend(), Some("live"));
    assert_eq!(set_cookies(&r), vec![format!("s={}", sticky_value(&format!("http://{}", live.addr)))]);
}

#[test]
fn sticky_cookie_attributes_default_name_and_survival_across_changes() {
    let ws: Vec<Whoami> = ["a", "b", "c", "d"].iter().map(|n| Whoami::start(n)).collect();
    let addrs: Vec<SocketAddr> = ws.iter().map(|w| w.addr).collect();
    let route = ingressroute(
        "default",
        "r",
        &[(
            "sticky.test",
            "[{name: whoami, port: 80, sticky: {cookie: {secure: true, httpOnly: true, sameSite: lax, maxAge: 60, path: /app, domain: .example.test}}}]",
        )],
    );
    let files = [("s.yaml", service_yaml("default", "whoami", 80, "", &addrs[..3])), ("r.yaml", route)];
    let weir = start(&files, &[]);
    let first = weir.wait_for("sticky.test", "/", READY, |r| r.status == 200);
    // Traefik's default name: "_" + 5 hex digits of sha1("_TRAEFIK_BACKEND_" + service@provider).
    let digest = sha1::Sha1::digest(b"_TRAEFIK_BACKEND_default-whoami-80@kubernetescrd");
    let name: String =
        format!("_{}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())[..6].into();
    let pinned = first.backend().expect("backend").to_string();
    let pinned_addr = ws.iter().find(|w| w.name == pinned).expect("one of ours").addr;
    let value = sticky_value(&format!("http://{pinned_addr}"));
    assert_eq!(
        first.header("set-cookie"),
        Some(
            format!(
                "{name}={value}; Path=/app; Domain=example.test; Max-Age=60; HttpOnly; Secure; SameSite=Lax"
            )
            .as_str()
        ),
        "Go's attribute order, the leading dot of the domain dropped"
    );
    let cookie = format!("{name}={value}");

    // A snapshot change that keeps the server: the session stays, the cookie is not rewritten.
    weir.write_manifest("s.yaml", &service_yaml("default", "whoami", 80, "", &addrs));
    weir.wait_for("sticky.test", "/", Duration::from_secs(10), |r| r.backend() == Some("d"));
    for _ in 0..5 {
        let r = get_with_cookie(&weir, "sticky.test", &cookie);
        assert_eq!(r.backend(), Some(pinned.as_str()), "the session survives the change");
        assert!(r.header("set-cookie").is_none());
    }

    // The server goes: the cookie leads to another server, which sets its own cookie.
    let rest: Vec<SocketAddr> = addrs.iter().copied().filter(|a| *a != pinned_addr).collect();
    weir.write_manifest("s.yaml", &service_yaml("default", "whoami", 80, "", &rest));
    let start = std::time::Instant::now();
    let moved = loop {
        let r = get_with_cookie(&weir, "sticky.test", &cookie);
        if r.backend() != Some(pinned.as_str()) {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the removed server still answers");
        std::thread::sleep(Duration::from_millis(20));
    };
    let now = moved.backend().expect("backend").to_string();
    let now_addr = ws.iter().find(|w| w.name == now).expect("ours").addr;
    assert_eq!(set_cookies(&moved), vec![format!("{name}={}", sticky_value(&format!("http://{now_addr}")))]);
}

#[test]
fn nested_weighted_service_with_its_own_sticky_cookie() {
    let ws: Vec<Whoami> = ["x1", "x2", "y1"].iter().map(|n| Whoami::start(n)).collect();
    let ts = "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: split, namespace: default}\nspec:\n  weighted:\n    sticky: {cookie: {name: outer}}\n    services:\n    - {name: svc-x, port: 80, sticky: {cookie: {name: inner}}}\n    - {name: svc-y, port: 80}\n";
    let files = [
        ("x.yaml", service_yaml("default", "svc-x", 80, "", &[ws[0].addr, ws[1].addr])),
        ("y.yaml", service_yaml("default", "svc-y", 80, "", &[ws[2].addr])),
        ("ts.yaml", ts.to_string()),
        ("r.yaml", ingressroute("default", "r", &[("nested.test", "[{name: split, kind: TraefikService}]")])),
    ];
    let weir = start(&files, &[]);
    weir.wait_for("nested.test", "/", READY, |r| r.status == 200);
    // Fresh requests until one lands in svc-x: it carries both cookies.
    let (backend, cookies) = (0..20)
        .find_map(|_| {
            let r = weir.get("nested.test", "/").expect("get");
            let cookies = set_cookies(&r);
            (cookies.len() == 2).then(|| (r.backend().expect("backend").to_string(), cookies))
        })
        .expect("svc-x is picked within 20 requests");
    assert!(cookies[0].starts_with("outer=") && cookies[1].starts_with("inner="), "{cookies:?}");
    // The outer value names the child service (sha256 of its name), the inner one the server.
    assert_eq!(cookies[0], format!("outer={}", sticky_value("default-svc-x-80")));
    let jar = cookies.join("; ");
    for _ in 0..8 {
        let r = get_with_cookie(&weir, "nested.test", &jar);
        assert_eq!(r.backend(), Some(backend.as_str()), "both levels stick");
        assert!(r.header("set-cookie").is_none());
    }
    // Only the outer cookie: the child is kept, its own balancer picks and sets `inner`.
    let r = get_with_cookie(&weir, "nested.test", &cookies[0]);
    assert!(r.backend().is_some_and(|b| b.starts_with('x')), "{r:?}");
    assert!(set_cookies(&r).iter().all(|c| c.starts_with("inner=")), "{r:?}");
}

/// A backend that records every request's body, answering 200 with its name.
struct Recorder {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    fn start(name: &'static str) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0usize;
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = l.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    length = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        log.lock().expect("body log").push(body);
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nX-Whoami-Name: {name}\r\nContent-Length: 2\r\n\r\nok"
                        );
                        let _ = reader.get_mut().write_all(reply.as_bytes());
                    }
                });
            }
        });
        Recorder { addr, bodies }
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().expect("body log").clone()
    }
}

#[test]
fn mirroring_max_body_size_and_mirror_body() {
    let (main, limited, headless) =
        (Recorder::start("main"), Recorder::start("limited"), Recorder::start("headless"));
    let ts = "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: small-only, namespace: default}\nspec:\n  mirroring:\n    name: svc-main\n    port: 80\n    maxBodySize: 10\n    mirrors: [{name: svc-limited, port: 80, percent: 100}]\n---\napiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: no-body, namespace: default}\nspec:\n  mirroring:\n    name: svc-main\n    port: 80\n    mirrorBody: false\n    mirrors: [{name: svc-headless, port: 80, percent: 100}]\n";
    let files = [
        ("m.yaml", service_yaml("default", "svc-main", 80, "", &[main.addr])),
        ("l.yaml", service_yaml("default", "svc-limited", 80, "", &[limited.addr])),
        ("h.yaml", service_yaml("default", "svc-headless", 80, "", &[headless.addr])),
        ("ts.yaml", ts.to_string()),
        (
            "r.yaml",
            ingressroute(
                "default",
                "r",
                &[
                    ("small.test", "[{name: small-only, kind: TraefikService}]"),
                    ("nobody.test", "[{name: no-body, kind: TraefikService}]"),
                ],
            ),
        ),
    ];
    let weir = start(&files, &[]);
    weir.wait_for("small.test", "/", READY, |r| r.status == 200);
    weir.wait_for("nobody.test", "/", READY, |r| r.status == 200);
    let post = |host: &str, body: &str| {
        let mut c = Conn::open(weir.port).expect("connect");
        let r = c
            .raw(&format!(
                "POST /m HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ))
            .expect("post");
        assert_eq!(
            (r.status, r.backend()),
            (200, Some("main")),
            "{host}: the client sees only the main answer"
        );
    };
    let settle = || std::thread::sleep(Duration::from_millis(500));

    // maxBodySize 10: a 5-byte body is copied, a 50-byte one goes to main only (whole).
    // The readiness GETs above are mirrored too, after their answers: let those land first.
    settle();
    let before = limited.bodies().len();
    post("small.test", "small");
    settle();
    assert_eq!(limited.bodies()[before..], [b"small".to_vec()], "at most maxBodySize: mirrored");
    let big = "x".repeat(50);
    post("small.test", &big);
    settle();
    assert_eq!(limited.bodies().len(), before + 1, "above maxBodySize: not mirrored");
    assert_eq!(main.bodies().last().map(Vec::len), Some(50), "main gets the whole large body");

    // mirrorBody false: the mirror gets the request without its body; main gets it all.
    let before = headless.bodies().len();
    post("nobody.test", "hello world");
    settle();
    assert_eq!(main.bodies().last().map(Vec::as_slice), Some(&b"hello world"[..]));
    assert_eq!(headless.bodies()[before..], [Vec::<u8>::new()], "the mirror's copy has no body");
}
