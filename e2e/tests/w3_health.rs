//! W3 end to end: active health checks as Traefik runs them, through the real `weir`,
//! `weir-dataplane` and backends. A gRPC server speaking `grpc.health.v1.Health/Check` (framed
//! by hand over the `h2` crate) flips NOT_SERVING → its server gets no request (503) → SERVING
//! → back within `unhealthyInterval`; and the HTTP mode's fields (`path`, `method`,
//! `hostname`, `port`, `headers`, `status`, `followRedirects`, `timeout`) each decide the
//! outcome of one route against a health endpoint that records what it was asked; two workers
//! still make one checker per server, and a health check on a non-ExternalName Service is
//! refused as Traefik refuses it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use weir_e2e::{Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
/// `grpc.health.v1.HealthCheckResponse.ServingStatus` values.
const SERVING: u8 = 1;
const NOT_SERVING: u8 = 2;

/// What the gRPC backend saw.
#[derive(Default)]
struct GrpcSeen {
    /// Health `Check` calls answered.
    checks: AtomicUsize,
    /// Application requests answered (anything but the health service).
    hits: AtomicUsize,
    /// The status the health service reports now.
    status: AtomicU8,
}

/// An h2c server: the gRPC health service on `HEALTH_CHECK` (answering `seen.status`), and a
/// plain `200 grpc-app` for every other request.
async fn grpc_backend(listener: tokio::net::TcpListener, seen: Arc<GrpcSeen>) {
    while let Ok((sock, _)) = listener.accept().await {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::handshake(sock).await else { return };
            while let Some(Ok((req, respond))) = conn.accept().await {
                tokio::spawn(grpc_call(req, respond, Arc::clone(&seen)));
            }
        });
    }
}

async fn grpc_call(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    seen: Arc<GrpcSeen>,
) {
    let is_check = req.uri().path() == HEALTH_CHECK
        && req.headers().get("content-type").is_some_and(|v| v == "application/grpc");
    let mut body = req.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    if !is_check {
        seen.hits.fetch_add(1, Ordering::SeqCst);
        let head = http::Response::builder().status(200).body(()).expect("static head");
        if let Ok(mut send) = respond.send_response(head, false) {
            let _ = send.send_data(Bytes::from_static(b"grpc-app"), true);
        }
        return;
    }
    seen.checks.fetch_add(1, Ordering::SeqCst);
    let head =
        http::Response::builder().header("content-type", "application/grpc").body(()).expect("static head");
    let Ok(mut send) = respond.send_response(head, false) else { return };
    // HealthCheckResponse { status (field 1, varint) }, in a gRPC message frame.
    let mut msg = BytesMut::with_capacity(7);
    msg.put_u8(0);
    msg.put_u32(2);
    msg.put_slice(&[0x08, seen.status.load(Ordering::SeqCst)]);
    let _ = send.send_data(msg.freeze(), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = send.send_trailers(trailers);
}

/// An ExternalName Service `name` on `localhost:port`.
fn external(name: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  type: ExternalName\n  externalName: localhost\n  ports: [{{port: {port}}}]\n"
    )
}

fn route(host: &str, service: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: r-{}, namespace: default}}\nspec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`{host}`)\n    services: [{service}]\n",
        host.replace('.', "-")
    )
}

#[test]
fn grpc_health_check_takes_a_not_serving_server_out_and_back() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
    let seen = Arc::new(GrpcSeen { status: AtomicU8::new(SERVING), ..GrpcSeen::default() });
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(grpc_backend(listener, Arc::clone(&seen)));

    // A long interval and a short unhealthy interval: recovery within well under `interval`
    // shows the down server is checked at `unhealthyInterval`.
    let service = format!(
        "{{name: grpc-app, port: {port}, scheme: h2c, healthCheck: {{mode: grpc, interval: 2s, unhealthyInterval: 100ms, timeout: 1s}}}}"
    );
    let files = [("s.yaml", external("grpc-app", port)), ("r.yaml", route("grpc.test", &service))];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &["--providers.kubernetesCRD.allowExternalNameServices"]);
    let r = weir.wait_for("grpc.test", "/", READY, |r| r.status == 200);
    assert_eq!(r.text(), "grpc-app");

    seen.status.store(NOT_SERVING, Ordering::SeqCst);
    let r = weir.wait_for("grpc.test", "/", Duration::from_secs(6), |r| r.status == 503);
    assert_eq!(r.text(), "no available server\n");
    assert!(seen.checks.load(Ordering::SeqCst) >= 1, "the check is the gRPC health call");
    // While it is NOT_SERVING, no request reaches it.
    let hits = seen.hits.load(Ordering::SeqCst);
    for i in 0..10 {
        assert_eq!(weir.get("grpc.test", "/").expect("get").status, 503, "request {i}");
    }
    assert_eq!(seen.hits.load(Ordering::SeqCst), hits, "a NOT_SERVING server gets no request");

    // Flip right after a check: the next one is due an unhealthyInterval later.
    let checks = seen.checks.load(Ordering::SeqCst);
    let limit = Instant::now() + Duration::from_secs(5);
    while seen.checks.load(Ordering::SeqCst) == checks {
        assert!(Instant::now() < limit, "a down server is still checked");
        std::thread::sleep(Duration::from_millis(2));
    }
    let checks = seen.checks.load(Ordering::SeqCst);
    seen.status.store(SERVING, Ordering::SeqCst);
    let flipped = Instant::now();
    let r = weir.wait_for("grpc.test", "/", Duration::from_secs(6), |r| r.status == 200);
    let back_after = flipped.elapsed();
    assert_eq!(r.text(), "grpc-app");
    assert!(
        back_after < Duration::from_millis(1200),
        "a down server is checked every unhealthyInterval (100ms), not every interval (2s): back after {back_after:?}"
    );
    assert!(seen.checks.load(Ordering::SeqCst) > checks);
    assert!(seen.hits.load(Ordering::SeqCst) > hits, "requests reach it again");
}

/// One health request as the health endpoint received it.
#[derive(Debug, Clone)]
struct Probe {
    at: Instant,
    method: String,
    path: String,
    host: String,
    probe_header: Option<String>,
}

/// A health endpoint on its own port: records every request and answers by path:
/// `/ok` 200, `/no-content` 204, `/redirect` 302 to `/fail`, `/fail` 500, `/sleep` 200 after 2 s.
fn health_endpoint() -> (u16, Arc<Mutex<Vec<Probe>>>) {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let probes = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&probes);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut host, mut probe_header) = (String::new(), None);
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
                        if k.eq_ignore_ascii_case("host") {
                            host = v.trim().to_string();
                        } else if k.eq_ignore_ascii_case("x-probe") {
                            probe_header = Some(v.trim().to_string());
                        }
                    }
                }
                let at = Instant::now();
                log.lock().expect("probe log").push(Probe {
                    at,
                    method,
                    path: path.clone(),
                    host,
                    probe_header,
                });
                let (status, extra) = match path.as_str() {
                    "/ok" => ("200 OK", ""),
                    "/no-content" => ("204 No Content", ""),
                    "/redirect" => ("302 Found", "Location: /fail\r\n"),
                    "/sleep" => {
                        std::thread::sleep(Duration::from_secs(2));
                        ("200 OK", "")
                    }
                    _ => ("500 Internal Server Error", ""),
                };
                let _ = reader.get_mut().write_all(
                    format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
            });
        }
    });
    (port, probes)
}

#[test]
fn http_health_check_fields_decide_each_servers_health() {
    let app = Whoami::start("app");
    let (health_port, probes) = health_endpoint();
    let app_port = app.addr.port();
    // (host, health check fields, healthy?)
    let cases: [(&str, &str, bool); 7] = [
        ("fields.test", "path: /ok, method: HEAD, hostname: health.example, headers: {X-Probe: weir}", true),
        ("follow.test", "path: /redirect", false),
        ("nofollow.test", "path: /redirect, followRedirects: false", true),
        ("status.test", "path: /ok, status: 204", false),
        ("status204.test", "path: /no-content, status: 204", true),
        ("timeout.test", "path: /sleep, timeout: 300ms", false),
        ("failing.test", "path: /fail", false),
    ];
    let mut files = Vec::new();
    for (i, (host, extra, _)) in cases.iter().enumerate() {
        // Every route reaches the same whoami; its health is asked on the health endpoint's port
        // (`timeout` 500ms unless the case sets its own).
        let svc = format!(
            "{{name: app-{i}, port: {app_port}, healthCheck: {{port: {health_port}, interval: 150ms, {}}}}}",
            if extra.contains("timeout") { extra.to_string() } else { format!("timeout: 500ms, {extra}") }
        );
        files.push((format!("s{i}.yaml"), external(&format!("app-{i}"), app_port)));
        files.push((format!("r{i}.yaml"), route(host, &svc)));
    }
    // Traefik allows health checks on ExternalName Services only.
    files.push(("plain.yaml".into(), weir_e2e::service_yaml("default", "plain", 80, "", &[app.addr])));
    files.push((
        "rp.yaml".into(),
        route("plain.test", "{name: plain, port: 80, healthCheck: {path: /ok, interval: 150ms}}"),
    ));
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    // Weir::start runs two workers: still one checker per server.
    let weir = Weir::start(&files, &["--providers.kubernetesCRD.allowExternalNameServices"]);
    for (host, _, _) in &cases {
        weir.wait_for(host, "/", READY, |r| r.status != 404);
    }
    // Several intervals: every check has run a few times (the `timeout` one included).
    let window = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let window = window..Instant::now();
    for (host, extra, healthy) in &cases {
        let want = if *healthy { 200 } else { 503 };
        let r = weir.wait_for(host, "/", Duration::from_secs(5), |r| r.status == want);
        if *healthy {
            assert_eq!(r.backend(), Some("app"), "{host} ({extra})");
        }
    }
    let probes = probes.lock().expect("probe log").clone();
    let fields = probes.iter().find(|p| p.path == "/ok" && p.host == "health.example");
    let fields = fields.unwrap_or_else(|| panic!("no probe with the configured hostname: {probes:?}"));
    assert_eq!(fields.method, "HEAD", "method");
    assert_eq!(fields.probe_header.as_deref(), Some("weir"), "headers");
    // Without `hostname`, Host is the server's host and the health port.
    assert!(
        probes.iter().any(|p| p.path == "/no-content" && p.host == format!("localhost:{health_port}")),
        "{probes:?}"
    );
    // One checker for the server, not one per worker: about 1500/150 = 10 checks in the window.
    let in_window = probes.iter().filter(|p| p.host == "health.example" && window.contains(&p.at)).count();
    assert!((4..=13).contains(&in_window), "{in_window} checks of one server in 1.5 s at a 150 ms interval");
    assert_eq!(weir.get("plain.test", "/").expect("get").status, 404);
    assert!(
        weir.log().contains("healthCheck allowed only for ExternalName services: default/plain"),
        "{}",
        weir.log()
    );
    // followRedirects (the default) went on from /redirect to /fail.
    assert!(probes.iter().any(|p| p.path == "/fail"), "{probes:?}");
    assert!(probes.iter().all(|p| p.method == "GET" || p.path == "/ok"), "GET is the default method");
}
