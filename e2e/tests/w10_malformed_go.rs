//! W10: malformed HTTP/1.x requests are answered with exactly the bytes Traefik's HTTP server
//! (Go's net/http, `(*conn).serve`) writes: `HTTP/1.1 <status>\r\nContent-Type: text/plain;
//! charset=utf-8\r\nConnection: close\r\n\r\n<body>`, then the connection is closed. Each case
//! drives the real binaries over a raw TCP socket and compares every byte of the answer (no
//! `Date`, no `Content-Length`, nothing after the body) and checks the close. The table these
//! cases come from is in docs/configuration.md ("Malformed requests").

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

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

/// Go's error answer: `status` on the status line, `body` after the empty line.
fn go(status: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{body}")
        .into_bytes()
}

fn go_same(both: &str) -> Vec<u8> {
    go(both, both)
}

/// Reads until the peer closes (or 5 s); returns what was read and whether it closed.
fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (out, closed)
}

/// Sends `pieces` (pausing between them, so that they arrive in separate reads), then reads to
/// the close.
fn exchange(port: u16, pieces: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The server may answer and close before it read everything: a failed write is fine.
        let _ = s.write_all(piece);
    }
    read_to_close(&mut s)
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned()
}

/// One row of the table: the request bytes, Go's answer.
type Row = (&'static str, Vec<u8>, Vec<u8>);

fn table() -> Vec<Row> {
    let bad = go_same("400 Bad Request");
    let missing = go_same("400 Bad Request: missing required Host header");
    let malformed = go_same("400 Bad Request: malformed Host header");
    let bad_name = go_same("400 Bad Request: invalid header name");
    let te = go("501 Not Implemented", "Unsupported transfer encoding");
    let version = go_same("505 HTTP Version Not Supported: unsupported protocol version");
    let r = |s: &str| s.as_bytes().to_vec();
    vec![
        // Host (server.go, after parsing).
        ("missing host", r("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"), missing.clone()),
        ("host name with a space", r("GET / HTTP/1.1\r\nHost : a.test\r\n\r\n"), missing),
        ("malformed host", r("GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n"), malformed.clone()),
        ("space inside host", r("GET / HTTP/1.1\r\nHost: a .test\r\n\r\n"), malformed.clone()),
        ("malformed host on HTTP/1.0", r("GET / HTTP/1.0\r\nHost: a\"b\r\n\r\n"), malformed),
        // Go: `fmt.Errorf("too many Host headers")` in readRequest: no detail on the wire.
        ("too many host headers", r("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"), bad.clone()),
        // Header names and values (textproto, then server.go).
        ("space in a header name", r("GET / HTTP/1.1\r\nHost: a.test\r\nX-A : 1\r\n\r\n"), bad_name),
        ("invalid header name byte", r("GET / HTTP/1.1\r\nHost: a.test\r\nX(A: 1\r\n\r\n"), bad.clone()),
        ("empty header name", r("GET / HTTP/1.1\r\nHost: a.test\r\n: 1\r\n\r\n"), bad.clone()),
        ("header line without colon", r("GET / HTTP/1.1\r\nHost: a.test\r\nX-A\r\n\r\n"), bad.clone()),
        ("control byte in a value", r("GET / HTTP/1.1\r\nHost: a.test\r\nX-A: o\x01ne\r\n\r\n"), bad.clone()),
        ("DEL in a value", r("GET / HTTP/1.1\r\nHost: a.test\r\nX-A: \x7f\r\n\r\n"), bad.clone()),
        ("first header line starts with a space", r("GET / HTTP/1.1\r\n Host: a.test\r\n\r\n"), bad.clone()),
        // Request line (request.go readRequest, url.ParseRequestURI).
        ("request line without a version", r("GET /\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("garbage request line", r("HELLO\r\n\r\n"), bad.clone()),
        ("invalid method byte", r("G(T / HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("empty method", r(" / HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("two spaces before the target", r("GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("space after the version", r("GET / HTTP/1.1 \r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("malformed version", r("GET / HTTP/1.x\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("two-digit minor version", r("GET / HTTP/1.10\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("lower-case protocol", r("GET / http/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("target without a slash", r("GET a.test HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("bad escape in the path", r("GET /a%zz HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("control byte in the target", r("GET /a\x01b HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        ("empty line before the request", r("\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), bad.clone()),
        // Versions: syntax is checked first (400), support after the header lines (505).
        ("HTTP/2.0 on the HTTP/1 parser", r("GET / HTTP/2.0\r\nHost: a.test\r\n\r\n"), version.clone()),
        ("HTTP/0.9", r("GET / HTTP/0.9\r\n\r\n"), version.clone()),
        ("HTTP/3.0 without host", r("GET / HTTP/3.0\r\n\r\n"), version),
        ("HTTP/3.0 with a bad header line", r("GET / HTTP/3.0\r\nX-A: \x01\r\n\r\n"), bad.clone()),
        // Transfer-Encoding (transfer.go): 501 without the status text in the body.
        ("gzip then chunked", r("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), te.clone()),
        ("identity", r("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: identity\r\n\r\n"), te.clone()),
        (
            "two transfer-encoding lines",
            r("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            te.clone(),
        ),
        ("coding checked before host", r("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), te),
        // Content-Length (transfer.go).
        ("signed content-length", r("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: +4\r\n\r\nabcd"), bad.clone()),
        ("content-length list", r("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4, 4\r\n\r\nabcd"), bad.clone()),
        ("empty content-length", r("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: \r\n\r\n"), bad.clone()),
        (
            "differing content-lengths",
            r("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"),
            bad.clone(),
        ),
        // W10, stricter than Go (Go accepts these): answered in Go's words.
        ("W10: bare LF", r("GET / HTTP/1.1\nHost: a.test\n\n"), bad.clone()),
        ("W10: bare CR", r("GET / HTTP/1.1\r\nHost: a.test\rX-A: 1\r\n\r\n"), bad.clone()),
        (
            "W10: content-length and chunked",
            r("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            bad.clone(),
        ),
        (
            "W10: equal content-lengths",
            r("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd"),
            bad.clone(),
        ),
        ("W10: obs-fold", r("GET / HTTP/1.1\r\nHost: a.test\r\nX-A: one\r\n two\r\n\r\n"), bad),
    ]
}

#[test]
fn malformed_heads_get_gos_bytes_and_a_close() {
    let (_be, weir) = start_with(&[]);
    let mut failures = Vec::new();
    for (name, request, want) in table() {
        // Whole, and split in three reads (the refusal then comes after hyper holds part of
        // the head).
        let third = request.len() / 3;
        let split: [&[u8]; 3] = [&request[..third], &request[third..2 * third], &request[2 * third..]];
        for (how, pieces) in [("whole", vec![&request[..]]), ("split", split.to_vec())] {
            let (got, closed) = exchange(weir.port, &pieces);
            if got != want || !closed {
                failures.push(format!(
                    "{name} ({how}): closed {closed}, got {:?}, want {:?}",
                    show(&got),
                    show(&want)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} cases differ from Go:\n{}", failures.len(), failures.join("\n"));
    // Still serving.
    assert_eq!(weir.get("a.test", "/").expect("request").status, 200);
}

#[test]
fn oversized_heads_get_431() {
    let want = go_same("431 Request Header Fields Too Large");
    // An entrypoint's maxHeaderBytes, plus Go's 4096 bytes of slack.
    let (_be, weir) = start_with(&["--entryPoints.web.http.maxHeaderBytes=4096"]);
    let fits = format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n", "a".repeat(8000));
    assert!(fits.len() <= 8192);
    let (got, _) =
        exchange(weir.port, &[fits.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n").as_bytes()]);
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"), "a head within the limit is served: {:?}", show(&got));
    for (name, head) in [
        (
            "long header value",
            format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n", "a".repeat(9000)),
        ),
        ("long target", format!("GET /{} HTTP/1.1\r\nHost: a.test\r\n\r\n", "a".repeat(9000))),
        (
            "many lines",
            format!("GET / HTTP/1.1\r\nHost: a.test\r\n{}\r\n", "X-Line: 0123456789\r\n".repeat(500)),
        ),
    ] {
        let (got, closed) = exchange(weir.port, &[head.as_bytes()]);
        assert!(closed && got == want, "case {name}: closed {closed}, got {:?}", show(&got));
    }
    drop(weir);
    // Traefik's default: 1 MiB + 4096.
    let (_be, weir) = start_with(&[]);
    let big = format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: {}\r\n\r\n", "a".repeat((1 << 20) + 5000));
    let (got, closed) = exchange(weir.port, &[big.as_bytes()]);
    assert!(closed && got == want, "default limit: closed {closed}, got {:?}", show(&got));
}

#[test]
fn pipelined_requests_are_answered_before_the_refusal() {
    let (_be, weir) = start_with(&[]);
    let good = "GET /?wait=300ms HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let missing = go_same("400 Bad Request: missing required Host header");
    for (name, pieces) in [
        // In one read: the good request is served (its response in flight while hyper reads on),
        // then Go's answer.
        ("same read", vec![format!("{good}GET / HTTP/1.1\r\n\r\n")]),
        // The refused head arrives while the first response is in flight.
        ("later read", vec![good.to_string(), "GET / HTTP/1.1\r\n\r\n".to_string()]),
        // Its first bytes arrive with the first request, the rest later.
        ("split head", vec![format!("{good}GET / HT"), "TP/1.1\r\n\r\n".to_string()]),
    ] {
        let pieces: Vec<&[u8]> = pieces.iter().map(|p| p.as_bytes()).collect();
        let (got, closed) = exchange(weir.port, &pieces);
        let text = String::from_utf8_lossy(&got).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "case {name}: first response: {}", show(&got));
        assert!(got.ends_with(&missing), "case {name}: Go's answer last: {}", show(&got));
        assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "case {name}: two responses: {text}");
        assert!(closed, "case {name}: connection left open");
    }
}

#[test]
fn cut_heads_and_silent_clients() {
    let (_be, weir) = start_with(&["--entryPoints.web.transport.respondingTimeouts.readTimeout=1s"]);
    // A client that closes its side mid-head gets 400 (Go: io.ErrUnexpectedEOF is answered).
    for (name, partial) in
        [("mid request line", "GET / HT"), ("mid header lines", "GET / HTTP/1.1\r\nHost: a.test\r\n")]
    {
        let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
        s.write_all(partial.as_bytes()).expect("write");
        s.shutdown(Shutdown::Write).expect("half-close");
        let (got, closed) = read_to_close(&mut s);
        assert!(
            closed && got == go_same("400 Bad Request"),
            "case {name}: closed {closed}, got {:?}",
            show(&got)
        );
    }
    // No byte of a request, then EOF: no answer (Go's common read error).
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    s.shutdown(Shutdown::Write).expect("half-close");
    let (got, closed) = read_to_close(&mut s);
    assert!(closed && got.is_empty(), "EOF before a request: {:?}", show(&got));
    // A head that stops coming: closed by the read timeout without an answer.
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n").expect("write");
    let start = Instant::now();
    let (got, closed) = read_to_close(&mut s);
    assert!(closed && got.is_empty(), "timed-out head: {:?}", show(&got));
    assert!(start.elapsed() < Duration::from_secs(4), "cut after {:?}", start.elapsed());
}

#[test]
fn well_formed_oddities_go_accepts_are_served() {
    let (_be, weir) = start_with(&[]);
    for (name, request) in [
        ("HTTP/1.2 is HTTP/1.x", "GET / HTTP/1.2\r\nHost: a.test\r\nConnection: close\r\n\r\n"),
        ("lower-case method", "get / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"),
        ("padded host", "GET / HTTP/1.1\r\nHost: \t a.test \t\r\nConnection: close\r\n\r\n"),
        ("obs-text in a value", "GET / HTTP/1.1\r\nHost: a.test\r\nX-A: caf\u{e9}\r\nConnection: close\r\n\r\n"),
        ("CRLF after a POST", "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n\r\nx\r\nGET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"),
    ] {
        let (got, closed) = exchange(weir.port, &[request.as_bytes()]);
        let text = String::from_utf8_lossy(&got).into_owned();
        let served = text.matches("HTTP/1.1 200 OK\r\n").count();
        let want = if name.starts_with("CRLF") { 2 } else { 1 };
        assert!(closed && served == want, "case {name}: {}", show(&got));
    }
}
