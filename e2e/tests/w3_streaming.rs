//! W3 end to end: `responseForwarding.flushInterval`, watched with curl (`-N`, no output
//! buffering) through the real binaries. The backend writes a first part, waits 1.5 s, writes
//! the rest; the first part must reach curl long before the rest exists — for server-sent
//! events with `-1`, the default 100ms and `1s`, for a chunked stream, and for a sized
//! response at `1s` (Traefik holds it at most the interval; weir forwards at once,
//! docs/architecture.md "flushInterval").

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir_e2e::{service_yaml, Weir};

const READY: Duration = Duration::from_secs(20);
/// How long the backend waits between the two parts.
const GAP: Duration = Duration::from_millis(1500);

/// A backend answering by path: `/sse` (text/event-stream, chunked), `/chunked` (text/plain,
/// chunked) or `/sized` (Content-Length), each in two parts `GAP` apart.
fn streaming_backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let out = reader.get_mut();
                let (first, second): (&[u8], &[u8]) = (b"data: first\n\n", b"data: second\n\n");
                let chunk = |b: &[u8]| {
                    let mut c = format!("{:x}\r\n", b.len()).into_bytes();
                    c.extend_from_slice(b);
                    c.extend_from_slice(b"\r\n");
                    c
                };
                let head = match path.as_str() {
                    "/sse" => "Content-Type: text/event-stream\r\nTransfer-Encoding: chunked".to_string(),
                    "/chunked" => "Content-Type: text/plain\r\nTransfer-Encoding: chunked".to_string(),
                    _ => {
                        format!("Content-Type: text/plain\r\nContent-Length: {}", first.len() + second.len())
                    }
                };
                let sized = path == "/sized";
                let _ = out
                    .write_all(format!("HTTP/1.1 200 OK\r\n{head}\r\nConnection: close\r\n\r\n").as_bytes());
                let _ = out.write_all(&if sized { first.to_vec() } else { chunk(first) });
                let _ = out.flush();
                std::thread::sleep(GAP);
                let _ = out.write_all(&if sized { second.to_vec() } else { chunk(second) });
                if !sized {
                    let _ = out.write_all(b"0\r\n\r\n");
                }
            });
        }
    });
    addr
}

/// When curl printed the first part and when the whole body, after starting it.
fn curl_timings(port: u16, host: &str, path: &str) -> (Duration, Duration, String) {
    let started = Instant::now();
    let mut child = Command::new("curl")
        .args(["-sN", "--http1.1", "--max-time", "10", "-H"])
        .arg(format!("Host: {host}"))
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl is installed");
    let mut out = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let mut body = Vec::new();
    let mut first_at = None;
    while let Ok((at, bytes)) = rx.recv_timeout(Duration::from_secs(10)) {
        body.extend_from_slice(&bytes);
        if first_at.is_none() && String::from_utf8_lossy(&body).contains("first") {
            first_at = Some(at - started);
        }
    }
    let _ = child.wait();
    let all_at = started.elapsed();
    let text = String::from_utf8_lossy(&body).into_owned();
    (first_at.unwrap_or_else(|| panic!("{host}{path}: no first part in {text:?}")), all_at, text)
}

#[test]
fn first_part_reaches_curl_at_once_for_every_flush_interval() {
    let backend = streaming_backend();
    let svc = |name: &str| service_yaml("default", name, 80, "", &[backend]);
    let route = |host: &str, name: &str, flush: Option<&str>| {
        let forwarding =
            flush.map(|f| format!(", responseForwarding: {{flushInterval: {f}}}")).unwrap_or_default();
        format!(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`{host}`)\n    services: [{{name: {name}, port: 80{forwarding}}}]\n"
        )
    };
    // One Service per route: one load balancer carries one flush interval (Traefik).
    let files = [
        ("s1.yaml", svc("now")),
        ("r1.yaml", route("now.test", "now", Some("\"-1\""))),
        ("s2.yaml", svc("default-interval")),
        ("r2.yaml", route("default.test", "default-interval", None)),
        ("s3.yaml", svc("slow-flush")),
        ("r3.yaml", route("second.test", "slow-flush", Some("1s"))),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    for host in ["now.test", "default.test", "second.test"] {
        weir.wait_for(host, "/sse", READY, |r| r.status == 200);
    }
    let cases = [
        ("now.test", "/sse"),
        ("default.test", "/sse"),
        ("second.test", "/sse"),
        ("second.test", "/chunked"),
        ("second.test", "/sized"),
    ];
    for (host, path) in cases {
        let (first, all, text) = curl_timings(weir.port, host, path);
        eprintln!("{host}{path}: first part after {first:?}, whole body after {all:?}");
        assert_eq!(text, "data: first\n\ndata: second\n\n", "{host}{path}: body intact");
        // The first part exists from the start; the second only after GAP. Traefik would hold
        // a sized response's bytes for at most the 1 s interval: anything under GAP shows
        // neither holds the first part for the whole response.
        assert!(first < Duration::from_millis(1000), "{host}{path}: first part after {first:?}");
        assert!(all >= GAP, "{host}{path}: the backend's gap is real ({all:?})");
    }
}

#[test]
fn an_invalid_flush_interval_disables_the_route() {
    let backend = streaming_backend();
    let files = [
        ("s.yaml", service_yaml("default", "bad", 80, "", &[backend])),
        ("g.yaml", service_yaml("default", "good", 80, "", &[backend])),
        (
            "r.yaml",
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: bad, namespace: default}\nspec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`bad.test`)\n    services: [{name: bad, port: 80, responseForwarding: {flushInterval: soon}}]\n  - match: Host(`good.test`)\n    services: [{name: good, port: 80}]\n".to_string(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("good.test", "/sse", READY, |r| r.status == 200);
    let r = weir.get("bad.test", "/sse").expect("get");
    assert_eq!(r.status, 404, "a route whose service fails to translate is not served (Traefik)");
    assert!(weir.log().contains("flushInterval"), "the error names the field:\n{}", weir.log());
}
