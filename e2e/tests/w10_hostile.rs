//! W10 (part): hostile HTTP/1.1 through a raw socket. Smuggling vectors are refused with 400
//! and the connection closed, oversized heads get 431 and oversized targets 414, and weir
//! keeps serving well-formed clients afterwards. Each case sends bytes no well-behaved client
//! sends, then checks the status and that the connection was closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

fn start() -> (Whoami, Weir) {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("PathPrefix(`/`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
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
        // Both framings: Go's server (so Traefik) drops Content-Length and reads the chunked
        // body (net/http transfer.go, RFC 9112 6.1); hyper does the same and closes the
        // connection after answering, so nothing can be smuggled behind it.
        (
            "content-length and transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            &[200],
        ),
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
        // The head is valid, so the request is already on its way to the backend when the body
        // turns out malformed: Traefik's proxy answers 502 then, as weir does.
        ("bad chunk size", b"POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".to_vec(), &[400, 502]),
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

#[test]
fn a_slow_header_is_cut_off() {
    let (_be, weir) = start();
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n").expect("write");
    // Never finish the head: weir must not keep the connection forever (Traefik's read
    // timeout is 60 s; weir's header read timeout is shorter, see docs).
    s.set_read_timeout(Some(Duration::from_secs(90))).expect("timeout");
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(r.is_ok(), "the connection was closed by weir: {r:?}");
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
