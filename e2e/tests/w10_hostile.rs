//! W10 (part): hostile HTTP/1.1 through a raw socket. Smuggling vectors are refused with 400
//! and the connection closed (before anything reaches the backend), oversized heads get 431 and
//! oversized targets 414, slow heads and slow bodies are cut by the entrypoint's readTimeout,
//! connections beyond the per-worker cap are refused, and weir keeps serving well-formed
//! clients afterwards. Each case sends bytes no well-behaved client sends, then checks the
//! status and that the connection was closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

fn start() -> (Whoami, Weir) {
    start_with(&[])
}

fn start_with(flags: &[&str]) -> (Whoami, Weir) {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("PathPrefix(`/`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, flags);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    (be, weir)
}

/// Sends raw bytes, reads until the peer closes (or 5 s), returns (status, everything read, closed).
fn exchange(port: u16, bytes: &[u8]) -> (u16, String, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    // The server may answer and close before it read everything: a failed write is fine.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // A reset is a close too (the server dropped unread bytes of ours).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text, closed)
}

#[test]
fn smuggling_vectors_are_refused_and_the_connection_closed() {
    let (_be, weir) = start();
    let long_header = format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n", "a".repeat(2 << 20));
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a.test\r\n\r\n", "a".repeat(2 << 20));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        // Both framings: Go (so Traefik) and hyper drop the length and read chunked; W10 asks
        // for a refusal, which weir's pre-parse check makes (in either order).
        (
            "content-length and transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "transfer-encoding then content-length",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "two equal content-lengths",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
            &[400],
        ),
        ("content-length list", b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4, 4\r\n\r\nabcd".to_vec(), &[400]),
        ("signed content-length", b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: +4\r\n\r\nabcd".to_vec(), &[400]),
        ("bare LF line endings", b"GET / HTTP/1.1\nHost: a.test\n\n".to_vec(), &[400]),
        ("one bare LF in a header line", b"GET / HTTP/1.1\r\nHost: a.test\nX-A: 1\r\n\r\n".to_vec(), &[400]),
        ("bare CR", b"GET / HTTP/1.1\r\nHost: a.test\rX-A: 1\r\n\r\n".to_vec(), &[400]),
        // Go refuses these after parsing; hyper lets them through, weir's head check does not.
        ("two host headers", b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n".to_vec(), &[400]),
        ("no host header", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n".to_vec(), &[400]),
        ("malformed host", b"GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n".to_vec(), &[400]),
        (
            "coding before chunked",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
            &[501],
        ),
        (
            "two transfer-encoding lines",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            &[501],
        ),
        (
            "bare LF line endings with a second host",
            b"GET / HTTP/1.1\nHost: a.test\nHost: b.test\n\n".to_vec(),
            &[400],
        ),
        (
            "duplicate content-length",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde".to_vec(),
            &[400],
        ),
        // A malformed chunk read together with its head refuses the whole request.
        ("bad chunk size", b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(), &[400]),
        ("chunk size overflow", b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nabc\r\n0\r\n\r\n".to_vec(), &[400]),
        ("chunk without CRLF", b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n".to_vec(), &[400]),
        ("bare LF after a chunk size", b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n".to_vec(), &[400]),
        (
            "absolute-form target naming another host",
            b"GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n".to_vec(),
            &[400],
        ),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: one\r\n two\r\n\r\n".to_vec(), &[400]),
        ("invalid header byte", b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: o\x01ne\r\n\r\n".to_vec(), &[400]),
        ("space before colon", b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A : one\r\n\r\n".to_vec(), &[400]),
        ("unknown transfer-encoding", b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), &[400, 501]),
        ("garbage request line", b"HELLO\r\n\r\n".to_vec(), &[400]),
        ("oversized header", long_header.into_bytes(), &[431]),
        ("oversized target", long_uri.into_bytes(), &[414, 431]),
    ];
    for (name, bytes, want) in cases {
        let (status, text, closed) = exchange(weir.port, &bytes);
        assert!(
            want.contains(&status),
            "case {name}: status {status}, want {want:?}; got {:?}",
            &text[..text.len().min(300)]
        );
        assert!(closed, "case {name}: connection left open");
    }
    // Still serving.
    assert_eq!(weir.get("a.test", "/").expect("request").status, 200);
}

/// Sends `bytes` and reads `n` responses' status lines (Content-Length bodies), then closes.
fn statuses(port: u16, bytes: &[u8], n: usize) -> Vec<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(bytes).expect("write");
    let mut reader = std::io::BufReader::new(s);
    let mut out = Vec::new();
    for _ in 0..n {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
            break;
        }
        out.push(line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0));
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            std::io::BufRead::read_line(&mut reader, &mut h).expect("header");
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().expect("length");
                }
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).expect("body");
    }
    out
}

#[test]
fn well_formed_neighbours_of_the_refused_heads_are_served() {
    let (_be, weir) = start();
    // Bodies may hold bare LFs (they are data); the pipelined request after each is served.
    let pipelined: &[u8] = b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\na\nb\n\
        POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\na\nb\r\n0\r\nX-T: 1\r\n\r\n\
        GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n\
        GET http://a.test:80/x HTTP/1.1\r\nHost: A.TEST\r\nConnection: close\r\n\r\n";
    assert_eq!(statuses(weir.port, pipelined, 4), [200, 200, 200, 200]);
}

#[test]
fn a_slow_body_is_cut_by_the_read_timeout() {
    let (_be, weir) = start_with(&["--entryPoints.web.transport.respondingTimeouts.readTimeout=2s"]);
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    let start = Instant::now();
    s.write_all(b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000\r\n\r\n").expect("head");
    // One body byte every 200 ms: never idle, never done. Traefik's readTimeout covers the
    // whole request, body included.
    let mut cut = None;
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(b"x").is_err() {
            cut = Some(start.elapsed());
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(1))).expect("timeout");
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) => {
                cut = Some(start.elapsed());
                break;
            }
            // An answer before the end of the body would be a bug too: weir must not have
            // forwarded a short body as complete.
            Ok(n) => panic!(
                "answered a request whose body never finished: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                cut = Some(start.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let cut = cut.expect("the slow body was never cut");
    assert!(cut >= Duration::from_millis(1800) && cut < Duration::from_millis(4500), "cut after {cut:?}");
    assert_eq!(weir.get("a.test", "/").expect("request").status, 200);
}

#[test]
fn a_slow_header_is_cut_by_the_read_timeout() {
    let (_be, weir) = start_with(&["--entryPoints.web.transport.respondingTimeouts.readTimeout=2s"]);
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    let start = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n").expect("write");
    // Slowloris: a header line every 200 ms, never the end of the head.
    let mut cut = None;
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(b"X-Slow: 1\r\n").is_err() {
            cut = Some(start.elapsed());
            break;
        }
        s.set_read_timeout(Some(Duration::from_millis(1))).expect("timeout");
        match s.read(&mut [0u8; 512]) {
            Ok(_) => {
                cut = Some(start.elapsed());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                cut = Some(start.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let cut = cut.expect("the slow head was never cut");
    assert!(cut >= Duration::from_millis(1800) && cut < Duration::from_millis(4500), "cut after {cut:?}");
}

#[test]
fn connections_beyond_the_worker_cap_are_closed_at_once() {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("PathPrefix(`/`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &["--workers=1", "--weir.maxConnectionsPerWorker=2"]);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);

    // Two idle connections fill the only worker.
    let held: Vec<TcpStream> =
        (0..2).map(|_| TcpStream::connect(("127.0.0.1", weir.port)).expect("connect")).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, text, closed) = exchange(weir.port, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    assert!(closed && status == 0 && text.is_empty(), "a third connection is closed unanswered: {text:?}");

    // A place freed is a place for the next client.
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (status, _, _) = exchange(weir.port, b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200);
}
