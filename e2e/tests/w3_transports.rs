//! W3 end to end: ServersTransport fields and Traefik's upstream error statuses, through the
//! real binaries. A TLS backend with a self-signed certificate offering h2 and http/1.1
//! shows `insecureSkipVerify`, HTTP/2 by ALPN, `disableHTTP2` and the https scheme inferred
//! from a port name; transports are looked up as `<ns>-<name>` or `name@kubernetescrd`;
//! counted backend connections show `maxIdleConnsPerHost` and `idleConnTimeout`; a listener
//! whose accept queue is full shows `dialTimeout` (504); a backend that hangs up is 502.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_e2e::{service_yaml, Conn, Weir};

const READY: Duration = Duration::from_secs(20);

fn start(files: &[(&str, String)], extra: &[&str]) -> Weir {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    Weir::start(&files, extra)
}

fn route(namespace: &str, host: &str, services: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: r-{}, namespace: {namespace}}}\nspec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`{host}`)\n    services: {services}\n",
        host.replace('.', "-")
    )
}

fn transport(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

/// A TLS backend with a self-signed certificate for `backend.internal`, offering ALPN h2 and
/// http/1.1; every answer carries `X-Proto` with the protocol it was asked in.
fn tls_backend(rt: &tokio::runtime::Runtime) -> SocketAddr {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["backend.internal".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else { return };
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let Ok(mut conn) = h2::server::handshake(tls).await else { return };
                    while let Some(Ok((_req, mut respond))) = conn.accept().await {
                        let head = http::Response::builder()
                            .header("x-proto", "h2")
                            .header("x-whoami-name", "tls")
                            .body(())
                            .expect("static head");
                        if let Ok(mut send) = respond.send_response(head, false) {
                            let _ = send.send_data(Bytes::from_static(b"ok"), true);
                        }
                    }
                    return;
                }
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nX-Proto: http/1.1\r\nX-Whoami-Name: tls\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[test]
fn insecure_skip_verify_h2_by_alpn_and_disable_http2() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let backend = tls_backend(&rt);
    // Port name `https-…` (not 443): Traefik infers the https scheme from the name.
    let svc = |name: &str| service_yaml("default", name, 8443, "https-web", &[backend]);
    let files = [
        ("t.yaml", transport("default", "skip", "{insecureSkipVerify: true}")),
        ("t2.yaml", transport("default", "skip-h1", "{insecureSkipVerify: true, disableHTTP2: true}")),
        ("s1.yaml", svc("h2")),
        ("s2.yaml", svc("h1")),
        ("s3.yaml", svc("verify")),
        ("r1.yaml", route("default", "h2.test", "[{name: h2, port: https-web, serversTransport: skip}]")),
        ("r2.yaml", route("default", "h1.test", "[{name: h1, port: https-web, serversTransport: skip-h1}]")),
        ("r3.yaml", route("default", "verify.test", "[{name: verify, port: 8443}]")),
    ];
    let weir = start(&files, &[]);
    let r = weir.wait_for("h2.test", "/", READY, |r| r.status != 404);
    assert_eq!((r.status, r.header("x-proto")), (200, Some("h2")), "HTTP/2 by ALPN: {r:?}");
    let r = weir.wait_for("h1.test", "/", READY, |r| r.status != 404);
    assert_eq!((r.status, r.header("x-proto")), (200, Some("http/1.1")), "disableHTTP2: {r:?}");
    // The default transport verifies: a self-signed certificate is Traefik's 500.
    let r = weir.wait_for("verify.test", "/", READY, |r| r.status != 404);
    assert_eq!((r.status, r.text().as_str()), (500, "Internal Server Error"));
}

#[test]
fn servers_transports_are_namespaced_as_traefik_does() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let backend = tls_backend(&rt);
    let svc = |name: &str| service_yaml("apps", name, 443, "", &[backend]);
    let files = [
        // The only transport lives in namespace `tls`: its key is `tls-skip`.
        ("t.yaml", transport("tls", "skip", "{insecureSkipVerify: true}")),
        ("s1.yaml", svc("qualified")),
        ("s2.yaml", svc("local")),
        ("s3.yaml", svc("probe")),
        (
            "r1.yaml",
            route(
                "apps",
                "qualified.test",
                "[{name: qualified, port: 443, serversTransport: tls-skip@kubernetescrd}]",
            ),
        ),
        ("r2.yaml", route("apps", "local.test", "[{name: local, port: 443, serversTransport: skip}]")),
        ("r3.yaml", route("apps", "probe.test", "[{name: probe, port: 443}]")),
    ];
    let weir = start(&files, &["--providers.kubernetesCRD.allowCrossNamespace"]);
    weir.wait_for("probe.test", "/", READY, |r| r.status == 500);
    let r = weir.wait_for("qualified.test", "/", READY, |r| r.status != 404);
    assert_eq!((r.status, r.backend()), (200, Some("tls")), "`<ns>-<name>@kubernetescrd` names it");
    // `skip` from namespace `apps` means `apps-skip`, which does not exist: route not served.
    assert_eq!(weir.get("local.test", "/").expect("get").status, 404);
    drop(weir);

    // Without cross-namespace references, the `@kubernetescrd` form is refused (Traefik).
    let weir = start(&files, &[]);
    weir.wait_for("probe.test", "/", READY, |r| r.status == 500);
    assert_eq!(weir.get("qualified.test", "/").expect("get").status, 404);
    assert!(weir.log().contains("tls-skip@kubernetescrd"), "the refusal names it:\n{}", weir.log());
}

/// A keep-alive HTTP/1.1 backend that counts the connections it accepted.
fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => {
                            let r =
                                b"HTTP/1.1 200 OK\r\nX-Whoami-Name: counted\r\nContent-Length: 2\r\n\r\nok";
                            if reader.get_mut().write_all(r).is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[test]
fn max_idle_conns_per_host_and_idle_conn_timeout_decide_connection_reuse() {
    let (pooled, pooled_n) = counting_backend();
    let (no_reuse, no_reuse_n) = counting_backend();
    let (short_idle, short_idle_n) = counting_backend();
    let files = [
        ("t1.yaml", transport("default", "no-reuse", "{maxIdleConnsPerHost: -1}")),
        ("t2.yaml", transport("default", "short-idle", "{forwardingTimeouts: {idleConnTimeout: 300ms}}")),
        ("s1.yaml", service_yaml("default", "pooled", 80, "", &[pooled])),
        ("s2.yaml", service_yaml("default", "no-reuse", 80, "", &[no_reuse])),
        ("s3.yaml", service_yaml("default", "short-idle", 80, "", &[short_idle])),
        ("r1.yaml", route("default", "pooled.test", "[{name: pooled, port: 80}]")),
        (
            "r2.yaml",
            route("default", "noreuse.test", "[{name: no-reuse, port: 80, serversTransport: no-reuse}]"),
        ),
        (
            "r3.yaml",
            route("default", "idle.test", "[{name: short-idle, port: 80, serversTransport: short-idle}]"),
        ),
    ];
    // One worker: one pool.
    let weir = start(&files, &["--workers", "1"]);
    for host in ["pooled.test", "noreuse.test", "idle.test"] {
        weir.wait_for(host, "/", READY, |r| r.status == 200);
    }
    let (p0, n0, i0) = (
        pooled_n.load(Ordering::SeqCst),
        no_reuse_n.load(Ordering::SeqCst),
        short_idle_n.load(Ordering::SeqCst),
    );
    for _ in 0..5 {
        assert_eq!(weir.get("pooled.test", "/").expect("get").status, 200);
        assert_eq!(weir.get("noreuse.test", "/").expect("get").status, 200);
    }
    assert_eq!(pooled_n.load(Ordering::SeqCst) - p0, 0, "the default transport reuses its connection");
    assert_eq!(no_reuse_n.load(Ordering::SeqCst) - n0, 5, "maxIdleConnsPerHost -1: a connection per request");

    // idleConnTimeout: after 800 ms idle the 300 ms transport reconnects, the default does not.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(weir.get("idle.test", "/").expect("get").status, 200);
    assert_eq!(weir.get("pooled.test", "/").expect("get").status, 200);
    assert_eq!(
        short_idle_n.load(Ordering::SeqCst) - i0,
        1,
        "an idle connection past idleConnTimeout is closed"
    );
    assert_eq!(pooled_n.load(Ordering::SeqCst) - p0, 0);
}

/// A listener whose accept queue is full: further SYNs are dropped, connects hang.
fn black_hole() -> (SocketAddr, Vec<TcpStream>, rustix::fd::OwnedFd) {
    use rustix::net::{AddressFamily, SocketType};
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).expect("socket");
    let addr = SocketAddr::from(([127, 0, 0, 1], weir_e2e::free_port()));
    rustix::net::bind(&fd, &addr).expect("bind");
    rustix::net::listen(&fd, 0).expect("listen");
    let mut held = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    (addr, held, fd)
}

#[test]
fn dial_timeout_is_504_and_a_backend_that_hangs_up_is_502() {
    let (hole, _held, _fd) = black_hole();
    // A backend that reads the request head and closes without answering.
    let rude = TcpListener::bind("127.0.0.1:0").expect("bind");
    let rude_addr = rude.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in rude.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
        }
    });
    let files = [
        ("t.yaml", transport("default", "quick-dial", "{forwardingTimeouts: {dialTimeout: 300ms}}")),
        ("s1.yaml", service_yaml("default", "hole", 80, "", &[hole])),
        ("s2.yaml", service_yaml("default", "rude", 80, "", &[rude_addr])),
        ("r1.yaml", route("default", "hole.test", "[{name: hole, port: 80, serversTransport: quick-dial}]")),
        ("r2.yaml", route("default", "rude.test", "[{name: rude, port: 80}]")),
    ];
    let weir = start(&files, &[]);
    weir.wait_for("rude.test", "/", READY, |r| r.status != 404);
    let started = Instant::now();
    let r = weir.wait_for("hole.test", "/", READY, |r| r.status != 404);
    assert_eq!((r.status, r.text().as_str()), (504, "Gateway Timeout"), "dial timeout: {r:?}");
    let started = Instant::now().max(started);
    let r = weir.get("hole.test", "/").expect("get");
    assert_eq!(r.status, 504);
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "dialTimeout 300ms, took {:?}",
        started.elapsed()
    );
    // Closed without an answer: a status, never a reset (Traefik: 502).
    let mut c = Conn::open(weir.port).expect("connect");
    let r = c
        .raw("POST / HTTP/1.1\r\nHost: rude.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .expect("a response, not a reset");
    assert_eq!((r.status, r.text().as_str()), (502, "Bad Gateway"));
    let r = weir.get("rude.test", "/").expect("a response, not a reset");
    assert_eq!(r.status, 502);
}

/// What an h2c backend saw of the proxy's connection.
#[derive(Default)]
struct PingSeen {
    pings: AtomicUsize,
    closed: AtomicUsize,
}

/// A minimal h2c server over std sockets: answers every request `200` (an HPACK-indexed
/// `:status`), answers PINGs only when `answer_pings`, and counts PINGs and closed
/// connections. Hand-written so that it can refuse to answer a PING.
fn h2c_backend(answer_pings: bool) -> (SocketAddr, Arc<PingSeen>) {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(PingSeen::default());
    let stats = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let stats = Arc::clone(&stats);
            std::thread::spawn(move || {
                let frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
                    let len = payload.len() as u32;
                    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
                    f.extend_from_slice(&stream.to_be_bytes());
                    f.extend_from_slice(payload);
                    f
                };
                let mut preface = [0u8; 24];
                if conn.read_exact(&mut preface).is_err() || conn.write_all(&frame(4, 0, 0, &[])).is_err() {
                    return;
                }
                loop {
                    let mut head = [0u8; 9];
                    if conn.read_exact(&mut head).is_err() {
                        stats.closed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    let len =
                        (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
                    let (kind, flags) = (head[3], head[4]);
                    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                    let mut payload = vec![0u8; len];
                    if conn.read_exact(&mut payload).is_err() {
                        stats.closed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    let reply = match (kind, flags & 1) {
                        // SETTINGS → ACK.
                        (4, 0) => frame(4, 1, 0, &[]),
                        // HEADERS of a request (END_HEADERS set by hyper) → `:status 200`, END_STREAM.
                        (1, _) => frame(1, 0x5, stream, &[0x88]),
                        (6, 0) => {
                            stats.pings.fetch_add(1, Ordering::SeqCst);
                            if !answer_pings {
                                continue;
                            }
                            frame(6, 1, 0, &payload)
                        }
                        _ => continue,
                    };
                    if conn.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[test]
fn read_idle_timeout_pings_and_ping_timeout_closes_a_silent_connection() {
    let (silent, silent_seen) = h2c_backend(false);
    let (answering, answering_seen) = h2c_backend(true);
    let (plain, plain_seen) = h2c_backend(false);
    let pinging = "{forwardingTimeouts: {readIdleTimeout: 200ms, pingTimeout: 300ms}}";
    let files = [
        ("t.yaml", transport("default", "pinging", pinging)),
        ("s1.yaml", service_yaml("default", "silent", 80, "", &[silent])),
        ("s2.yaml", service_yaml("default", "answering", 80, "", &[answering])),
        ("s3.yaml", service_yaml("default", "plain", 80, "", &[plain])),
        (
            "r1.yaml",
            route(
                "default",
                "silent.test",
                "[{name: silent, port: 80, scheme: h2c, serversTransport: pinging}]",
            ),
        ),
        (
            "r2.yaml",
            route(
                "default",
                "answering.test",
                "[{name: answering, port: 80, scheme: h2c, serversTransport: pinging}]",
            ),
        ),
        ("r3.yaml", route("default", "plain.test", "[{name: plain, port: 80, scheme: h2c}]")),
    ];
    let weir = start(&files, &["--workers", "1"]);
    for host in ["silent.test", "answering.test", "plain.test"] {
        let r = weir.wait_for(host, "/", READY, |r| r.status != 404);
        assert_eq!(r.status, 200, "{host}: {r:?}");
    }
    // Idle for 1.5 s: pings every 200 ms; an unanswered one closes the connection after 300 ms.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(silent_seen.pings.load(Ordering::SeqCst) >= 1, "readIdleTimeout sends PINGs");
    assert_eq!(silent_seen.closed.load(Ordering::SeqCst), 1, "an unanswered PING closes the connection");
    assert!(answering_seen.pings.load(Ordering::SeqCst) >= 2, "answered PINGs keep coming");
    assert_eq!(answering_seen.closed.load(Ordering::SeqCst), 0, "answered PINGs keep the connection");
    assert_eq!(plain_seen.pings.load(Ordering::SeqCst), 0, "no readIdleTimeout, no PING");
    assert_eq!(plain_seen.closed.load(Ordering::SeqCst), 0);
    // The closed connection is replaced on the next request.
    assert_eq!(weir.get("silent.test", "/").expect("get").status, 200);
}
