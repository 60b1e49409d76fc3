//! W6 (TCP) end to end, through the real binaries: IngressRouteTCP with TLS passthrough and
//! termination routed by SNI (openssl s_client shows whose certificate answered), a cleartext
//! echo and a server-first backend behind `HostSNI(`*`)`, a TCP and an HTTP router sharing an
//! entrypoint (with the HTTPS fallthrough), PROXY protocol received on an entrypoint (TCP and
//! HTTP) and sent to backends (v1 and v2, parsed by a backend in the test), 1,000 passthrough
//! connections of random sizes with every byte and every close checked, and iperf3 through weir.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::passthrough::{
    client_hello, echo_many, exchange, half_close_echo, log_uniform_sizes, open_fds,
};
use weir_e2e::{free_port, service_yaml, Weir, Whoami};
use weir_proto::proxy_protocol::{self, Decoded};

const READY: Duration = Duration::from_secs(20);

/// A certificate and key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A private CA.
struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "w6 test CA");
        Ca { issuer: rcgen::Issuer::new(params, key) }
    }

    fn leaf(&self, cn: &str, names: &[&str]) -> Pem {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        Pem { cert: cert.pem(), key: key.serialize_pem() }
    }
}

fn indent(s: &str, by: usize) -> String {
    s.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

fn tls_secret(name: &str, pem: &Pem) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&pem.cert, 4),
        indent(&pem.key, 4)
    )
}

/// An IngressRouteTCP with one route to `service:port`; `extra` is more YAML under `spec`.
fn route_tcp(name: &str, entrypoint: &str, rule: &str, service: &str, port: u16, extra: &str) -> String {
    format!(
        "---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  entryPoints: [{entrypoint}]\n  routes:\n  - match: '{rule}'\n    services:\n    - name: {service}\n      port: {port}\n{extra}"
    )
}

/// A backend thread per connection running `serve`; stops with the process.
fn backend(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let serve = Arc::clone(&serve);
            std::thread::spawn(move || serve(conn));
        }
    });
    addr
}

/// A line echo: answers `<name>:<line>` to the first line, then closes.
fn line_echo(name: &'static str) -> impl Fn(TcpStream) + Send + Sync + 'static {
    move |conn: TcpStream| {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_ok() {
            let mut conn = conn;
            let _ = conn.write_all(format!("{name}:{line}").as_bytes());
        }
    }
}

/// A TLS line echo with its own certificate (a passthrough target).
fn tls_line_echo(name: &'static str, pem: Pem) -> impl Fn(TcpStream) + Send + Sync + 'static {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem.cert.as_bytes())
        .collect::<Result<_, _>>()
        .expect("cert");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).expect("key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config"),
    );
    move |conn: TcpStream| {
        let Ok(server) = rustls::ServerConnection::new(Arc::clone(&config)) else { return };
        let mut tls = rustls::StreamOwned::new(server, conn);
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while tls.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        let _ = tls.write_all(format!("{name}:{}", String::from_utf8_lossy(&line)).as_bytes());
        tls.conn.send_close_notify();
        let _ = tls.flush();
    }
}

/// `openssl s_client` to `port` with `sni`, sending `line`; its whole output.
fn s_client(port: u16, sni: &str, line: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", sni, "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client (apt package openssl)");
    child.stdin.take().expect("stdin").write_all(line.as_bytes()).expect("write to s_client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("s_client output");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Retries `attempt` until it returns true, or panics with weir's log.
fn eventually(weir: &Weir, what: &str, attempt: impl Fn() -> bool) {
    let start = Instant::now();
    while !attempt() {
        if start.elapsed() > READY {
            panic!("{what}: not within {READY:?}\n--- log ---\n{}", weir.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn passthrough_and_termination_by_sni() {
    let ca = Ca::new();
    let a = backend(tls_line_echo("backend-a", ca.leaf("backend-a", &["a.example.com"])));
    let b = backend(tls_line_echo("backend-b", ca.leaf("backend-b", &["b.example.com"])));
    let plain = backend(line_echo("plain"));
    let files = [
        (
            "svc.yaml",
            format!(
                "{}\n---\n{}\n---\n{}",
                service_yaml("default", "a", 443, "https", &[a]),
                service_yaml("default", "b", 443, "https", &[b]),
                service_yaml("default", "plain", 80, "tcp", &[plain])
            ),
        ),
        ("cert.yaml", tls_secret("weir-t", &ca.leaf("weir-terminated", &["t.example.com"]))),
        (
            "routes.yaml",
            [
                route_tcp("a", "web", "HostSNI(`a.example.com`)", "a", 443, "  tls: {passthrough: true}\n"),
                route_tcp("b", "web", "HostSNI(`b.example.com`)", "b", 443, "  tls: {passthrough: true}\n"),
                route_tcp(
                    "t",
                    "web",
                    "HostSNI(`t.example.com`)",
                    "plain",
                    80,
                    "  tls: {secretName: weir-t}\n",
                ),
            ]
            .concat(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    eventually(&weir, "passthrough to a", || {
        s_client(weir.port, "a.example.com", "hello\n").contains("backend-a:hello")
    });

    let out = s_client(weir.port, "a.example.com", "one\n");
    assert!(out.contains("CN=backend-a") || out.contains("CN = backend-a"), "a's certificate: {out}");
    assert!(out.contains("backend-a:one"), "a answered: {out}");
    let out = s_client(weir.port, "b.example.com", "two\n");
    assert!(out.contains("CN=backend-b") || out.contains("CN = backend-b"), "b's certificate: {out}");
    assert!(out.contains("backend-b:two"), "b answered: {out}");
    let out = s_client(weir.port, "t.example.com", "three\n");
    assert!(
        out.contains("CN=weir-terminated") || out.contains("CN = weir-terminated"),
        "weir's certificate: {out}"
    );
    assert!(out.contains("plain:three"), "terminated and forwarded in clear: {out}");
}

#[test]
fn cleartext_catch_all_and_server_first() {
    let echo = backend(|mut conn: TcpStream| {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 || conn.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let banner = backend(|mut conn: TcpStream| {
        let _ = conn.write_all(b"220 server speaks first\r\n");
    });
    let (tcp, first) = (free_port(), free_port());
    let files = [
        (
            "svc.yaml",
            format!(
                "{}\n---\n{}",
                service_yaml("default", "echo", 7, "echo", &[echo]),
                service_yaml("default", "banner", 25, "smtp", &[banner])
            ),
        ),
        (
            "routes.yaml",
            [
                route_tcp("echo", "tcp", "HostSNI(`*`)", "echo", 7, ""),
                route_tcp("banner", "first", "HostSNI(`*`)", "banner", 25, ""),
            ]
            .concat(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(
        &files,
        &[
            &format!("--entryPoints.tcp.address=127.0.0.1:{tcp}"),
            &format!("--entryPoints.first.address=127.0.0.1:{first}"),
        ],
    );
    eventually(&weir, "echo", || exchange(tcp, b"ping").map(|o| o == b"ping").unwrap_or(false));
    // Not HTTP: bytes that would be a bad HTTP request come back untouched.
    let odd = b"\x00\x01GARBAGE \r\n\r\n not http at all".repeat(100);
    assert_eq!(exchange(tcp, &odd).expect("echo"), odd);
    // A server-first protocol: the client sends nothing and still gets the banner at once.
    eventually(&weir, "banner", || {
        let Ok(s) = TcpStream::connect(("127.0.0.1", first)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let start = Instant::now();
        let mut line = String::new();
        let ok = BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).is_ok();
        let _ = s.shutdown(Shutdown::Both);
        ok && line == "220 server speaks first\r\n" && start.elapsed() < Duration::from_millis(900)
    });
}

#[test]
fn tcp_and_http_routers_share_an_entrypoint() {
    let ca = Ca::new();
    let passthrough = backend(tls_line_echo("tls-backend", ca.leaf("tls-backend", &["p.example.com"])));
    let whoami = Whoami::start("http-backend");
    let files = [
        ("svc.yaml", format!("{}\n---\n{}", service_yaml("default", "p", 443, "https", &[passthrough]),
            service_yaml("default", "who", 80, "http", &[whoami.addr]))),
        ("cert.yaml", tls_secret("https-cert", &ca.leaf("weir-https", &["s.example.com"]))),
        ("routes.yaml", route_tcp("p", "web", "HostSNI(`p.example.com`)", "p", 443, "  tls: {passthrough: true}\n")),
        ("http.yaml", "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: h, namespace: default}\n\
            spec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`h.example.com`)\n    kind: Rule\n    services: [{name: who, port: 80}]\n\
            ---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: s, namespace: default}\n\
            spec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`s.example.com`)\n    kind: Rule\n    services: [{name: who, port: 80}]\n  tls: {secretName: https-cert}\n".to_string()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    let r = weir.wait_for("h.example.com", "/", READY, |r| r.status == 200);
    assert_eq!(r.backend(), Some("http-backend"), "cleartext HTTP goes to the HTTP router");
    eventually(&weir, "passthrough", || {
        s_client(weir.port, "p.example.com", "x\n").contains("tls-backend:x")
    });
    // A TLS connection no TCP router takes falls through to the HTTPS routers.
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "--resolve", &format!("s.example.com:{}:127.0.0.1", weir.port)])
        .arg(format!("https://s.example.com:{}/", weir.port))
        .args(["-D", "-"])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.to_ascii_lowercase().contains("x-whoami-name: http-backend"), "HTTPS fallthrough: {text}");
}

#[test]
fn proxy_protocol_in_and_out() {
    // A backend that parses the PROXY header weir sends and answers with the source it read.
    let parser = backend(|mut conn: TcpStream| {
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            match proxy_protocol::decode(&seen) {
                Ok(Decoded::NeedMore) => match conn.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                },
                Ok(Decoded::Header(h, len)) => {
                    let version = if seen.starts_with(b"PROXY ") { 1 } else { 2 };
                    // The rest, until the client's half-close arrives.
                    let mut rest = seen[len..].to_vec();
                    let _ = conn.read_to_end(&mut rest);
                    let rest = String::from_utf8_lossy(&rest).into_owned();
                    let source = h.source.map(|s| s.to_string()).unwrap_or_default();
                    let _ = conn.write_all(format!("v{version} {source} {rest}").as_bytes());
                    return;
                }
                _ => {
                    let _ = conn.write_all(b"no header");
                    return;
                }
            }
        }
    });
    let whoami = Whoami::start("who");
    let (v1, v2) = (free_port(), free_port());
    let files = [
        ("svc.yaml", format!("{}\n---\n{}", service_yaml("default", "parser", 9, "pp", &[parser]),
            service_yaml("default", "who", 80, "http", &[whoami.addr]))),
        ("st.yaml", "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: ppv1, namespace: default}\n\
            spec: {proxyProtocol: {version: 1}}\n".to_string()),
        ("routes.yaml", [
            "---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {name: v1, namespace: default}\n\
             spec:\n  entryPoints: [v1]\n  routes:\n  - match: HostSNI(`*`)\n    services: [{name: parser, port: 9, serversTransport: ppv1}]\n".to_string(),
            route_tcp("v2", "v2", "HostSNI(`*`)", "parser", 9, "      proxyProtocol: {version: 2}\n"),
            "---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: h, namespace: default}\n\
             spec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`h`)\n    kind: Rule\n    services: [{name: who, port: 80}]\n".to_string(),
        ].concat()),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(
        &files,
        &[
            &format!("--entryPoints.v1.address=127.0.0.1:{v1}"),
            &format!("--entryPoints.v2.address=127.0.0.1:{v2}"),
            "--entryPoints.v1.proxyProtocol.trustedIPs=127.0.0.1",
            "--entryPoints.v2.proxyProtocol.insecure=true",
            "--entryPoints.web.proxyProtocol.insecure=true",
        ],
    );
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    eventually(&weir, "v1 out", || {
        exchange(v1, b"hi").map(|o| text(o).starts_with("v1 127.0.0.1:")).unwrap_or(false)
    });
    // A v2 header from the client (trusted) replaces the source weir tells the backend, in v1.
    let client: SocketAddr = "203.0.113.7:4242".parse().expect("addr");
    let local: SocketAddr = format!("127.0.0.1:{v1}").parse().expect("addr");
    let mut msg = proxy_protocol::encode_v2(client, local);
    msg.extend_from_slice(b"data");
    assert_eq!(text(exchange(v1, &msg).expect("v1")), "v1 203.0.113.7:4242 data");
    // A v1 header from the client, sent on as v2.
    let mut msg = proxy_protocol::encode_v1("198.51.100.2:1000".parse().expect("addr"), local);
    msg.extend_from_slice(b"more");
    let out = text(exchange(v2, &msg).expect("v2"));
    assert_eq!(out, "v2 198.51.100.2:1000 more");
    // A broken header closes the connection before any backend is reached.
    let out = exchange(v2, b"PROXY TCP4 nonsense\r\nhello").unwrap_or_default();
    assert!(out.is_empty(), "bad header must close: {:?}", text(out));
    // HTTP on an entrypoint with PROXY protocol: forwarded headers carry the PROXY source.
    let mut req = proxy_protocol::encode_v1(
        "192.0.2.55:999".parse().expect("addr"),
        "127.0.0.1:80".parse().expect("addr"),
    );
    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    // No half-close here: an HTTP server may drop a request whose client stopped sending.
    let http = |req: &[u8]| -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(("127.0.0.1", weir.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(req)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    };
    eventually(&weir, "http with PROXY header", || {
        http(&req).map(|o| text(o).contains("200 OK")).unwrap_or(false)
    });
    let lower = text(http(&req).expect("http")).to_ascii_lowercase();
    assert!(lower.contains("x-forwarded-for: 192.0.2.55"), "X-Forwarded-For from PROXY source: {lower}");
    assert!(lower.contains("x-real-ip: 192.0.2.55"), "X-Real-Ip from PROXY source: {lower}");
}

#[test]
fn thousand_passthrough_connections_lose_nothing() {
    let eofs = Arc::new(AtomicUsize::new(0));
    let echo = backend(half_close_echo(Arc::clone(&eofs)));
    let tcp = free_port();
    let files = [
        ("svc.yaml", service_yaml("default", "echo", 7, "echo", &[echo])),
        // Traefik's default terminationDelay (100 ms) cuts a direction 100 ms after the other
        // one ended, by design; -1 lets every half-closed connection drain fully.
        ("st.yaml", "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: drain, namespace: default}\n\
            spec: {terminationDelay: -1}\n".to_string()),
        ("routes.yaml", route_tcp("p", "tcp", "HostSNI(`bulk.example.com`)", "echo", 7,
            "      serversTransport: drain\n  tls: {passthrough: true}\n")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[&format!("--entryPoints.tcp.address=127.0.0.1:{tcp}")]);
    let hello = client_hello("bulk.example.com");
    eventually(&weir, "passthrough echo", || {
        let mut m = hello.clone();
        m.extend_from_slice(b"x");
        exchange(tcp, &m).map(|o| o == m).unwrap_or(false)
    });
    std::thread::sleep(Duration::from_millis(200));
    let pid = weir.dataplane_pid().expect("dataplane running");
    let baseline = open_fds(pid);
    eofs.store(0, Ordering::SeqCst);

    const CONNECTIONS: u64 = 1000;
    // Log-uniform sizes from 1 B to 16 MiB, from a fixed seed; 8 clients at a time.
    let sizes = log_uniform_sizes(CONNECTIONS, 16 << 20, 1);
    let echoed =
        echo_many(tcp, &hello, sizes, 8).unwrap_or_else(|e| panic!("{e}\n--- log ---\n{}", weir.log()));
    let (total, elapsed) = (echoed.bytes, echoed.elapsed);
    eprintln!(
        "w6: {CONNECTIONS} passthrough connections, {:.1} MiB each way in {elapsed:?} ({:.2} Gbit/s echoed)",
        total as f64 / 1048576.0,
        (total * 2 * 8) as f64 / elapsed.as_secs_f64() / 1e9
    );
    // Every client half-close reached the backend, and every backend close reached the client
    // (checked above: each read ended with EOF after exactly `size` bytes).
    assert_eq!(eofs.load(Ordering::SeqCst), CONNECTIONS as usize, "half-closes propagated to the backend");
    // No socket left open in the data plane.
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(open_fds(pid) <= baseline, "dataplane fds: {} now, {baseline} before", open_fds(pid));
}

#[test]
fn iperf3_through_weir() {
    let port = free_port();
    let mut server = Command::new("iperf3")
        .args(["-s", "-B", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 (apt package iperf3)");
    let (tcp, probe) = (free_port(), free_port());
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // A probe route in the same manifests: once it answers, the iperf3 route is applied too
    // (one snapshot), without spending a connection on the iperf3 server.
    let echo = backend(|mut conn: TcpStream| {
        let mut buf = [0u8; 64];
        if let Ok(n) = conn.read(&mut buf) {
            let _ = conn.write_all(&buf[..n]);
        }
    });
    let files = [
        (
            "svc.yaml",
            format!(
                "{}\n---\n{}",
                service_yaml("default", "iperf", 5201, "iperf", &[addr]),
                service_yaml("default", "probe", 7, "echo", &[echo])
            ),
        ),
        (
            "routes.yaml",
            [
                route_tcp("iperf", "tcp", "HostSNI(`*`)", "iperf", 5201, ""),
                route_tcp("probe", "probe", "HostSNI(`*`)", "probe", 7, ""),
            ]
            .concat(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(
        &files,
        &[
            &format!("--entryPoints.tcp.address=127.0.0.1:{tcp}"),
            &format!("--entryPoints.probe.address=127.0.0.1:{probe}"),
        ],
    );
    eventually(&weir, "routes applied", || exchange(probe, b"ok").map(|o| o == b"ok").unwrap_or(false));
    let out = Command::new("timeout")
        .args(["30", "iperf3", "-c", "127.0.0.1", "-p", &tcp.to_string(), "-t", "3", "-J"])
        .output()
        .expect("iperf3 client");
    let _ = server.kill();
    let _ = server.wait();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iperf3 output is not JSON ({e}): {}\n--- log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            weir.log()
        )
    });
    let bps = json["end"]["sum_received"]["bits_per_second"].as_f64().unwrap_or(0.0);
    eprintln!("w6: iperf3 through weir: {:.2} Gbit/s", bps / 1e9);
    assert!(out.status.success() && bps > 1e6, "iperf3 failed: {json}");
}
