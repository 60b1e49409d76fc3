//! W3 end to end: services as Traefik resolves and runs them — nested weighted TraefikServices
//! and mirroring counted at the backends, sticky cookies, response header timeout (504),
//! passHostHeader false, nativeLB, noop@internal, the retry of a failed connect, health checks
//! taking a stopped ExternalName backend out and back in, and streamed responses arriving
//! before the backend finishes — through the real `weir`, `weir-dataplane` and backends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::{free_port, service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// A std backend that counts the requests it gets and answers `200` with its name; with
/// `stream`, it answers with two chunks a second apart.
struct Counted {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Counted {
    fn start(name: &'static str, stream: bool) -> Counted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || serve(conn, name, stream, &counter));
            }
        });
        Counted { addr, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve(conn: TcpStream, name: &str, stream: bool, hits: &AtomicUsize) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
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
        hits.fetch_add(1, Ordering::SeqCst);
        let out = reader.get_mut();
        if stream {
            let head = format!(
                "HTTP/1.1 200 OK\r\nX-Whoami-Name: {name}\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(b"7\r\nfirst\n\n\r\n");
            let _ = out.flush();
            std::thread::sleep(Duration::from_millis(1500));
            let _ = out.write_all(b"8\r\nsecond\n\n\r\n0\r\n\r\n");
        } else {
            let reply = format!("HTTP/1.1 200 OK\r\nX-Whoami-Name: {name}\r\nContent-Length: 2\r\n\r\nok");
            let _ = out.write_all(reply.as_bytes());
        }
    }
}

fn route(host: &str, services: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: r-{}, namespace: default}}\nspec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`{host}`)\n    services: {services}\n",
        host.replace('.', "-")
    )
}

fn start(files: &[(&str, String)], extra: &[&str], probe: &str) -> Weir {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, extra);
    weir.wait_for(probe, "/", READY, |r| r.status != 404);
    weir
}

#[test]
fn nested_weighted_traefik_services_are_counted() {
    let (a, b, c) = (Counted::start("a", false), Counted::start("b", false), Counted::start("c", false));
    let ts = "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: outer}\nspec:\n  weighted:\n    services:\n    - {name: svc-a, port: 80, weight: 3}\n    - {name: inner, kind: TraefikService, weight: 1}\n---\napiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: inner}\nspec:\n  weighted:\n    services:\n    - {name: svc-b, port: 80}\n    - {name: svc-c, port: 80}\n";
    let files = [
        ("a.yaml", service_yaml("default", "svc-a", 80, "", &[a.addr])),
        ("b.yaml", service_yaml("default", "svc-b", 80, "", &[b.addr])),
        ("c.yaml", service_yaml("default", "svc-c", 80, "", &[c.addr])),
        ("ts.yaml", ts.to_string()),
        ("r.yaml", route("nested.test", "[{name: outer, kind: TraefikService}]")),
    ];
    // One worker: smooth weighted round robin is then exact over every cycle.
    let weir = start(&files, &["--workers", "1"], "nested.test");
    let before = a.hits() + b.hits() + c.hits();
    let mut conn = Conn::open(weir.port).expect("connect");
    for _ in 0..80 {
        assert_eq!(conn.get("nested.test", "/", &[]).expect("get").status, 200);
    }
    let total = a.hits() + b.hits() + c.hits() - before;
    assert_eq!(total, 80);
    // 3:1 at the top, 1:1 below: a 60, b 10, c 10 (the probe requests shift it by a cycle at most).
    assert!((57..=63).contains(&a.hits()), "a got {}", a.hits());
    assert!((8..=12).contains(&b.hits()) && (8..=12).contains(&c.hits()), "b {} c {}", b.hits(), c.hits());
}

#[test]
fn mirroring_copies_a_share_and_the_client_sees_only_the_main_answer() {
    let (main, mirror) = (Counted::start("main", false), Counted::start("mirror", false));
    let ts = "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {name: mirrored}\nspec:\n  mirroring:\n    name: svc-main\n    port: 80\n    mirrors:\n    - {name: svc-mirror, port: 80, percent: 25}\n";
    let files = [
        ("m.yaml", service_yaml("default", "svc-main", 80, "", &[main.addr])),
        ("x.yaml", service_yaml("default", "svc-mirror", 80, "", &[mirror.addr])),
        ("ts.yaml", ts.to_string()),
        ("r.yaml", route("mirror.test", "[{name: mirrored, kind: TraefikService}]")),
    ];
    let weir = start(&files, &["--workers", "1"], "mirror.test");
    let (main0, mirror0) = (main.hits(), mirror.hits());
    let mut conn = Conn::open(weir.port).expect("connect");
    for i in 0..40 {
        let body = format!("payload {i}");
        let req =
            format!("POST / HTTP/1.1\r\nHost: mirror.test\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let r = conn.raw(&req).expect("post");
        assert_eq!((r.status, r.backend()), (200, Some("main")), "request {i}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(main.hits() - main0, 40);
    let mirrored = mirror.hits() - mirror0;
    assert!((9..=11).contains(&mirrored), "25% of 40 should reach the mirror, got {mirrored}");
}

#[test]
fn sticky_cookie_round_trip() {
    let (a, b) = (Whoami::start("a"), Whoami::start("b"));
    let files = [
        ("s.yaml", service_yaml("default", "pair", 80, "", &[a.addr, b.addr])),
        (
            "r.yaml",
            route("sticky.test", "[{name: pair, port: 80, sticky: {cookie: {name: lvl1, httpOnly: true}}}]"),
        ),
    ];
    let weir = start(&files, &[], "sticky.test");
    let first = weir.get("sticky.test", "/").expect("first");
    let set = first.header("set-cookie").expect("Set-Cookie on the first response").to_string();
    assert!(set.starts_with("lvl1=") && set.ends_with("; Path=/; HttpOnly"), "{set}");
    let value = &set["lvl1=".len()..set.find(';').expect("attributes")];
    assert_eq!(value.len(), 16, "sha256 prefix of the server URL: {value}");
    let pinned = first.backend().expect("backend").to_string();
    for _ in 0..10 {
        let mut conn = Conn::open(weir.port).expect("connect");
        let cookie = format!("lvl1={value}");
        let r = conn.get("sticky.test", "/", &[("Cookie", &cookie), ("Connection", "close")]).expect("get");
        assert_eq!(r.backend(), Some(pinned.as_str()));
        assert!(r.header("set-cookie").is_none(), "a valid cookie is not rewritten");
    }
    // Without the cookie, round robin (and a new cookie) again.
    let other = weir.get("sticky.test", "/").expect("get");
    assert!(other.header("set-cookie").is_some());
}

#[test]
fn response_header_timeout_is_504_and_pass_host_header_false_sends_the_server_address() {
    let slow = Whoami::start("slow");
    let st = "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: impatient}\nspec: {forwardingTimeouts: {responseHeaderTimeout: 1s}}\n";
    let files = [
        ("s.yaml", service_yaml("default", "slow", 80, "", &[slow.addr])),
        ("st.yaml", st.to_string()),
        (
            "r.yaml",
            route(
                "slow.test",
                "[{name: slow, port: 80, serversTransport: impatient, passHostHeader: false}]",
            ),
        ),
    ];
    let weir = start(&files, &[], "slow.test");
    let fast = weir.get("slow.test", "/").expect("get");
    assert_eq!(fast.status, 200);
    assert_eq!(fast.echoed_header("host").as_deref(), Some(slow.addr.to_string().as_str()));
    let started = Instant::now();
    let r = weir.get("slow.test", "/?wait=3s").expect("get");
    assert_eq!((r.status, r.text().as_str()), (504, "Gateway Timeout"));
    assert!(started.elapsed() < Duration::from_millis(2500), "took {:?}", started.elapsed());
}

#[test]
fn native_lb_noop_and_retry_of_a_refused_connect() {
    // A "ClusterIP" on another loopback address, with no endpoints at all.
    let vip = Whoami::start_on("vip", "127.0.0.7:0");
    let native = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: native, namespace: default}}\nspec:\n  clusterIP: 127.0.0.7\n  ports: [{{name: web, port: {}}}]\n",
        vip.addr.port()
    );
    let live = Whoami::start("live");
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let files = [
        ("n.yaml", native),
        ("p.yaml", service_yaml("default", "half", 80, "", &[live.addr, dead])),
        (
            "r1.yaml",
            route("native.test", &format!("[{{name: native, port: {}, nativeLB: true}}]", vip.addr.port())),
        ),
        ("r2.yaml", route("noop.test", "[{name: noop@internal, kind: TraefikService}]")),
        ("r3.yaml", route("half.test", "[{name: half, port: 80}]")),
    ];
    // One worker: the rotation (and so which POST meets the dead server) is predictable.
    let weir = start(&files, &["--workers", "1"], "native.test");
    let r = weir.get("native.test", "/").expect("get");
    assert_eq!((r.status, r.backend()), (200, Some("vip")));
    let r = weir.get("noop.test", "/").expect("get");
    assert_eq!((r.status, r.body.len()), (418, 0));
    // Half the rotation points at a closed port: an idempotent request is retried on the live one.
    for i in 0..10 {
        let r = weir.get("half.test", "/").expect("get");
        assert_eq!((r.status, r.backend()), (200, Some("live")), "request {i}");
    }
    // A POST is not retried: it sees Traefik's 502 when its turn lands on the dead server.
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            let mut c = Conn::open(weir.port).expect("connect");
            c.raw("POST / HTTP/1.1\r\nHost: half.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .expect("post")
                .status
        })
        .collect();
    assert!(statuses.contains(&502) && statuses.contains(&200), "{statuses:?}");
}

#[test]
fn health_check_takes_a_stopped_external_name_backend_out_and_back() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let backend = Whoami::start_on("ext", &listen);
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: ext, namespace: default}}\nspec:\n  type: ExternalName\n  externalName: localhost\n  ports: [{{port: {port}}}]\n"
    );
    let files = [
        ("s.yaml", svc),
        (
            "r.yaml",
            route("health.test", &format!("[{{name: ext, port: {port}, healthCheck: {{path: /health, interval: 300ms, timeout: 200ms}}}}]")),
        ),
    ];
    let weir = start(&files, &["--providers.kubernetesCRD.allowExternalNameServices"], "health.test");
    assert_eq!(weir.get("health.test", "/").expect("get").backend(), Some("ext"));
    drop(backend);
    let r = weir.wait_for("health.test", "/", Duration::from_secs(5), |r| r.status == 503);
    assert_eq!(r.text(), "no available server\n");
    let _again = Whoami::start_on("ext-again", &listen);
    let r = weir.wait_for("health.test", "/", Duration::from_secs(5), |r| r.status == 200);
    assert_eq!(r.backend(), Some("ext-again"));
}

#[test]
fn streamed_responses_reach_the_client_before_the_backend_finishes() {
    let sse = Counted::start("sse", true);
    let files = [
        ("s.yaml", service_yaml("default", "sse", 80, "", &[sse.addr])),
        ("r.yaml", route("sse.test", "[{name: sse, port: 80}]")),
    ];
    let weir = start(&files, &[], "sse.test");
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let started = Instant::now();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: sse.test\r\nConnection: close\r\n\r\n").expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("first") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed before the first event: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let first_at = started.elapsed();
    assert!(first_at < Duration::from_millis(1000), "first event after {first_at:?}");
    assert!(!String::from_utf8_lossy(&seen).contains("second"));
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(String::from_utf8_lossy(&rest).contains("second"));
    assert!(started.elapsed() >= Duration::from_millis(1400));
}

/// PEM of a certificate and its key.
struct Pem {
    cert: String,
    key: String,
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// A TLS backend with a private CA that requires a client certificate from that CA.
/// The URI SAN every certificate of the test CA carries.
const PEER_URI: &str = "spiffe://weir.test/backend";

fn mtls_backend() -> (SocketAddr, Pem, Pem) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "w3 private CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let ca = Pem { cert: ca_cert.pem(), key: ca_key.serialize_pem() };
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params = rcgen::CertificateParams::new(names).expect("params");
        // A URI SAN, for ServersTransport.peerCertURI.
        params
            .subject_alt_names
            .push(rcgen::SanType::URI(rcgen::string::Ia5String::try_from(PEER_URI).expect("ascii URI")));
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        Pem { cert: cert.pem(), key: key.serialize_pem() }
    };
    let server = leaf(vec!["backend.internal".into()]);
    let client = leaf(Vec::new());

    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.cert.as_bytes()).expect("CA der")).expect("root");
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .expect("client verifier");
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(server.cert.as_bytes()).expect("cert")],
            PrivateKeyDer::from_pem_slice(server.key.as_bytes()).expect("key"),
        )
        .expect("server config");
    let config = std::sync::Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = std::sync::Arc::clone(&config);
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let has_client_cert = tls.conn.peer_certificates().is_some_and(|c| !c.is_empty());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nX-Whoami-Name: tls\r\nX-Client-Cert: {has_client_cert}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = tls.write_all(reply.as_bytes());
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (addr, ca, client)
}

#[test]
fn tls_backend_with_a_private_ca_and_a_client_certificate() {
    let (addr, ca, client) = mtls_backend();
    let secrets = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: backend-ca, namespace: default}}\nstringData:\n  ca.crt: |\n{}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: client-cert, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&ca.cert),
        indent(&client.cert),
        indent(&client.key)
    );
    let transport = "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: mtls, namespace: default}\nspec:\n  serverName: backend.internal\n  rootCAs: [{secret: backend-ca}]\n  certificatesSecrets: [client-cert]\n---\napiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: by-uri, namespace: default}\nspec:\n  peerCertURI: spiffe://weir.test/backend\n  rootCAs: [{secret: backend-ca}]\n  certificatesSecrets: [client-cert]\n---\napiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {name: wrong-uri, namespace: default}\nspec:\n  peerCertURI: spiffe://weir.test/someone-else\n  rootCAs: [{secret: backend-ca}]\n  certificatesSecrets: [client-cert]\n";
    let files = [
        ("secrets.yaml", secrets),
        ("st.yaml", transport.to_string()),
        // Port 443: Traefik infers https.
        ("svc.yaml", service_yaml("default", "secure", 443, "", &[addr])),
        ("r1.yaml", route("mtls.test", "[{name: secure, port: 443, serversTransport: mtls}]")),
        // Another Service: one `<ns>-<svc>-<port>` load balancer has one transport (Traefik).
        ("svc2.yaml", service_yaml("default", "secure-default", 443, "", &[addr])),
        ("r2.yaml", route("untrusted.test", "[{name: secure-default, port: 443}]")),
        // peerCertURI: the URI SAN is checked instead of the host name (Traefik).
        ("svc3.yaml", service_yaml("default", "secure-uri", 443, "", &[addr])),
        ("r3.yaml", route("uri.test", "[{name: secure-uri, port: 443, serversTransport: by-uri}]")),
        ("svc4.yaml", service_yaml("default", "secure-wrong-uri", 443, "", &[addr])),
        (
            "r4.yaml",
            route("wronguri.test", "[{name: secure-wrong-uri, port: 443, serversTransport: wrong-uri}]"),
        ),
    ];
    let weir = start(&files, &[], "mtls.test");
    let r = weir.get("mtls.test", "/").expect("get");
    assert_eq!(
        (r.status, r.backend(), r.header("x-client-cert")),
        (200, Some("tls"), Some("true")),
        "{r:?}\n{}",
        weir.log()
    );
    // The default transport trusts the system's CAs only: Traefik answers 500 for an
    // untrusted certificate.
    let r = weir.get("untrusted.test", "/").expect("get");
    assert_eq!((r.status, r.text().as_str()), (500, "Internal Server Error"));
    let r = weir.wait_for("uri.test", "/", Duration::from_secs(10), |r| r.status != 404);
    assert_eq!((r.status, r.backend()), (200, Some("tls")), "peerCertURI matches the URI SAN: {r:?}");
    let r = weir.wait_for("wronguri.test", "/", Duration::from_secs(10), |r| r.status != 404);
    assert_eq!((r.status, r.text().as_str()), (500, "Internal Server Error"), "another URI is refused");
}
