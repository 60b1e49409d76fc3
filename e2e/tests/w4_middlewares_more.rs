//! W4 end to end, continued: Buffering, ContentType, EncodedCharacters, RateLimit,
//! InFlightReq and Compress from Middleware CRDs through the real `weir`, `weir-dataplane` and backends —
//! what the client gets (status, headers, body) and what the backend receives.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use weir_e2e::{service_yaml, Conn, Response, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// An IngressRoute in `apps` with one route per `(host, service, middlewares)` (port 80).
fn routes(routes: &[(&str, &str, &[&str])]) -> String {
    let mut y = String::from(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: more\n  namespace: apps\nspec:\n  entryPoints: [web]\n  routes:\n",
    );
    for (host, svc, mws) in routes {
        y.push_str(&format!("    - match: Host(`{host}`)\n      services: [{{name: {svc}, port: 80}}]\n"));
        if !mws.is_empty() {
            y.push_str("      middlewares:\n");
            for m in mws.iter() {
                y.push_str(&format!("        - {{name: {m}}}\n"));
            }
        }
    }
    y
}

/// A Middleware in `apps` with the given spec (YAML flow style).
fn middleware(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: {name}\n  namespace: apps\nspec: {spec}\n---\n"
    )
}

/// A backend that answers every request with `answer` and closes the connection.
fn raw_backend(answer: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind raw backend");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).is_ok_and(|n| n == 1) {
                head.push(b[0]);
            }
            let _ = s.write_all(answer);
        }
    });
    addr
}

/// Starts whoami (`whoami`), the raw backends (`raw-N`) and weir with these manifests.
fn start(middlewares: &str, ir: &str, raw: &[SocketAddr], flags: &[&str]) -> (Weir, Whoami) {
    let backend = Whoami::start("w");
    let mut svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    for (i, addr) in raw.iter().enumerate() {
        svc.push_str("---\n");
        svc.push_str(&service_yaml("apps", &format!("raw-{i}"), 80, "http", &[*addr]));
    }
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", middlewares), ("ir.yaml", ir)], flags);
    (weir, backend)
}

fn request(weir: &Weir, raw: &str) -> Response {
    Conn::open(weir.port).and_then(|mut c| c.raw(raw)).expect("request")
}

fn get(weir: &Weir, host: &str, path: &str) -> Response {
    Conn::open(weir.port).and_then(|mut c| c.get(host, path, &[("Connection", "close")])).expect("request")
}

#[test]
fn buffering_limits_and_reframes_bodies() {
    let mws = [
        middleware("buf", "{buffering: {maxRequestBodyBytes: 10}}"),
        middleware("small-resp", "{buffering: {maxResponseBodyBytes: 10}}"),
    ]
    .concat();
    let ir = routes(&[("buf.test", "whoami", &["buf"]), ("resp.test", "whoami", &["small-resp"])]);
    let (weir, _b) = start(&mws, &ir, &[], &[]);
    weir.wait_for("buf.test", "/", READY, |r| r.status == 200);

    // (case, raw request, status, body the client gets, text the backend echo holds)
    let cases = [
        (
            "declared too large",
            "POST / HTTP/1.1\r\nHost: buf.test\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world",
            413,
            Some("Request Entity Too Large"),
            None,
        ),
        (
            "chunked too large",
            "POST / HTTP/1.1\r\nHost: buf.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
            413,
            Some("Request Entity Too Large"),
            None,
        ),
        (
            "chunked within the limit arrives with a length",
            "POST / HTTP/1.1\r\nHost: buf.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            200,
            None,
            Some("content-length: 5"),
        ),
    ];
    for (name, raw, status, body, echo) in cases {
        let r = request(&weir, raw);
        assert_eq!(r.status, status, "case {name}: {r:?}");
        if let Some(b) = body {
            assert_eq!(r.text(), b, "case {name}");
            assert_eq!(r.header("content-type"), None, "case {name}");
        }
        if let Some(e) = echo {
            assert!(r.text().to_ascii_lowercase().contains(e), "case {name}: {}", r.text());
            assert!(
                !r.text().to_ascii_lowercase().contains("transfer-encoding"),
                "case {name}: {}",
                r.text()
            );
        }
    }
    // The whoami echo is longer than 10 bytes: Traefik answers 500.
    let r = get(&weir, "resp.test", "/");
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.text(), "Internal Server Error");
}

#[test]
fn content_type_sniffs_only_with_the_middleware() {
    let html: &'static [u8] =
        b"HTTP/1.1 200 OK\r\nContent-Length: 19\r\nConnection: close\r\n\r\n<html><b>hi</b>...\n";
    let raw = raw_backend(html);
    let mws = middleware("sniff", "{contentType: {}}");
    let ir = routes(&[
        ("sniff.test", "raw-0", &["sniff"]),
        ("plain.test", "raw-0", &[]),
        ("typed.test", "whoami", &["sniff"]),
    ]);
    let (weir, _b) = start(&mws, &ir, &[raw], &[]);
    weir.wait_for("sniff.test", "/", READY, |r| r.status == 200);

    // (case, host, Content-Type the client gets)
    let cases = [
        ("sniffed", "sniff.test", Some("text/html; charset=utf-8")),
        ("Traefik v3 does not sniff by default", "plain.test", None),
        ("a backend's type is kept", "typed.test", Some("text/plain; charset=utf-8")),
    ];
    for (name, host, want) in cases {
        let r = get(&weir, host, "/");
        assert_eq!(r.status, 200, "case {name}: {r:?}");
        assert_eq!(r.header("content-type"), want, "case {name}: {r:?}");
    }
    assert_eq!(get(&weir, "sniff.test", "/").text(), "<html><b>hi</b>...\n");
}

#[test]
fn encoded_characters_refuse_with_400() {
    let mws = [
        middleware("strict", "{encodedCharacters: {}}"),
        middleware("slash", "{encodedCharacters: {allowEncodedSlash: true}}"),
    ]
    .concat();
    let ir = routes(&[("strict.test", "whoami", &["strict"]), ("slash.test", "whoami", &["slash"])]);
    let (weir, _b) = start(&mws, &ir, &[], &[]);
    weir.wait_for("strict.test", "/", READY, |r| r.status == 200);

    // (case, host, path, status)
    let cases = [
        ("plain path", "strict.test", "/a/b", 200),
        ("harmless escape", "strict.test", "/a%20b", 200),
        ("encoded slash", "strict.test", "/a%2Fb", 400),
        ("encoded backslash", "strict.test", "/a%5cb", 400),
        ("encoded semicolon", "strict.test", "/a%3Bb", 400),
        ("encoded percent", "strict.test", "/a%25b", 400),
        ("encoded question mark", "strict.test", "/a%3Fb", 400),
        ("encoded hash", "strict.test", "/a%23b", 400),
        ("slash allowed", "slash.test", "/a%2Fb", 200),
        ("hash still refused", "slash.test", "/a%23b", 400),
    ];
    for (name, host, path, status) in cases {
        let r = get(&weir, host, path);
        assert_eq!(r.status, status, "case {name}: {r:?}");
        if status == 400 {
            assert!(r.body.is_empty(), "case {name}: {r:?}");
            assert_eq!(r.backend(), None, "case {name}");
        }
    }
}

#[test]
fn rate_limit_answers_429_with_retry_headers() {
    let mws = [
        middleware("limited", "{rateLimit: {average: 1, period: 1m, burst: 2}}"),
        middleware(
            "per-user",
            "{rateLimit: {average: 1, period: 1m, sourceCriterion: {requestHeaderName: X-User}}}",
        ),
    ]
    .concat();
    let ir = routes(&[
        ("rl.test", "whoami", &["limited"]),
        ("user.test", "whoami", &["per-user"]),
        ("ready.test", "whoami", &[]),
    ]);
    let (weir, _b) = start(&mws, &ir, &[], &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);

    // One keep-alive connection: one worker, so exactly Traefik's bucket.
    let mut c = Conn::open(weir.port).expect("connect");
    let statuses: Vec<u16> = (0..3).map(|_| c.get("rl.test", "/", &[]).expect("request").status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    let r = c.get("rl.test", "/", &[]).expect("request");
    assert_eq!(r.status, 429);
    assert_eq!(r.text(), "Too Many Requests");
    let retry: u64 = r.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After");
    assert!((59..=60).contains(&retry), "{r:?}");
    let retry_in = r.header("x-retry-in").expect("X-Retry-In");
    assert!(retry_in.ends_with('s') && retry_in.starts_with("59."), "{retry_in}");

    // Buckets per source: another user still has a token.
    let mut c = Conn::open(weir.port).expect("connect");
    // (case, user, status)
    let cases = [("alice first", "alice", 200), ("alice again", "alice", 429), ("bob first", "bob", 200)];
    for (name, user, status) in cases {
        let r = c.get("user.test", "/", &[("X-User", user)]).expect("request");
        assert_eq!(r.status, status, "case {name}: {r:?}");
    }
}

#[test]
fn in_flight_requests_are_limited_per_source() {
    let mws = middleware("one", "{inFlightReq: {amount: 1}}");
    let ir = routes(&[("a.test", "whoami", &["one"]), ("b.test", "whoami", &["one"])]);
    // One worker keeps the timing simple (the count is per instance; w4_instance_limits covers two).
    let (weir, _b) = start(&mws, &ir, &[], &["--workers", "1"]);
    weir.wait_for("a.test", "/", READY, |r| r.status == 200);

    let port = weir.port;
    let slow =
        std::thread::spawn(move || weir_e2e::get(port, "a.test", "/?wait=1500ms").expect("slow request"));
    std::thread::sleep(Duration::from_millis(500));
    // (case, host, status) while a.test has one request in flight
    let cases = [("same host refused", "a.test", 429), ("another host", "b.test", 200)];
    for (name, host, status) in cases {
        let r = get(&weir, host, "/");
        assert_eq!(r.status, status, "case {name}: {r:?}");
        if status == 429 {
            assert_eq!(r.text(), "max connections reached: 1", "case {name}");
        }
    }
    assert_eq!(slow.join().expect("slow thread").status, 200);
    // Released once the response is done.
    assert_eq!(get(&weir, "a.test", "/").status, 200);
}

fn decode(encoding: Option<&str>, data: &[u8]) -> String {
    use std::io::Read as _;
    let mut out = Vec::new();
    match encoding {
        Some("gzip") => flate2::read::GzDecoder::new(data).read_to_end(&mut out).map(drop),
        Some("br") => brotli::Decompressor::new(data, 4096).read_to_end(&mut out).map(drop),
        Some("zstd") => {
            zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut out)).map(drop)
        }
        _ => {
            out.extend_from_slice(data);
            Ok(())
        }
    }
    .expect("body decodes");
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn compress_negotiates_and_streams_encodings() {
    let encoded: &'static [u8] =
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n";
    let mut answer = encoded.to_vec();
    answer.extend(std::iter::repeat_n(b'x', 2000));
    let raw = raw_backend(answer.leak());
    let mws = [
        middleware("small", "{compress: {minResponseBodyBytes: 10}}"),
        middleware("default-min", "{compress: {}}"),
        middleware("zstd-default", "{compress: {minResponseBodyBytes: 10, defaultEncoding: zstd}}"),
    ]
    .concat();
    let ir = routes(&[
        ("c.test", "whoami", &["small"]),
        ("min.test", "whoami", &["default-min"]),
        ("def.test", "whoami", &["zstd-default"]),
        ("enc.test", "raw-0", &["small"]),
    ]);
    let (weir, _b) = start(&mws, &ir, &[raw], &[]);
    weir.wait_for("c.test", "/", READY, |r| r.status == 200);

    // (case, method, host, Accept-Encoding, Content-Encoding expected, Vary expected)
    let cases = [
        ("gzip", "GET", "c.test", Some("gzip"), Some("gzip"), true),
        ("brotli", "GET", "c.test", Some("br"), Some("br"), true),
        ("zstd", "GET", "c.test", Some("zstd"), Some("zstd"), true),
        ("ties follow the configured order", "GET", "c.test", Some("zstd, br, gzip"), Some("gzip"), true),
        ("highest q", "GET", "c.test", Some("gzip;q=0.2, br;q=0.8"), Some("br"), true),
        ("nothing acceptable", "GET", "c.test", Some("deflate"), None, false),
        ("no Accept-Encoding", "GET", "c.test", None, None, false),
        ("no Accept-Encoding, default encoding", "GET", "def.test", None, Some("zstd"), true),
        ("HEAD is left alone", "HEAD", "c.test", Some("gzip"), None, false),
        ("below the default 1024 bytes", "GET", "min.test", Some("gzip"), None, true),
        ("already encoded", "GET", "enc.test", Some("gzip"), Some("br"), true),
    ];
    for (name, method, host, ae, want, vary) in cases {
        let mut raw = format!("{method} / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        if let Some(ae) = ae {
            raw.push_str(&format!("Accept-Encoding: {ae}\r\n"));
        }
        raw.push_str("\r\n");
        let r = if method == "HEAD" {
            // No body follows a HEAD answer: read the head only.
            let mut s = std::net::TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
            s.write_all(raw.as_bytes()).expect("send");
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            assert!(text.starts_with("HTTP/1.1 200"), "case {name}: {text}");
            assert!(!text.to_ascii_lowercase().contains("content-encoding"), "case {name}: {text}");
            continue;
        } else {
            request(&weir, &raw)
        };
        assert_eq!(r.status, 200, "case {name}: {r:?}");
        assert_eq!(r.header("content-encoding"), want, "case {name}: {r:?}");
        assert_eq!(r.header("vary") == Some("Accept-Encoding"), vary, "case {name}: {r:?}");
        if host != "enc.test" {
            let text = decode(want, &r.body);
            assert!(text.contains("Name: w"), "case {name}: {text}");
            if want.is_some() {
                assert_eq!(r.header("content-length"), None, "case {name}");
            }
        } else {
            assert_eq!(r.body.len(), 2000, "case {name}: never compressed twice");
        }
    }
}

/// A backend whose n-th connection gets `answers[n]` (the last one from then on).
fn sequence_backend(answers: &'static [&'static [u8]]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind sequence backend");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for (n, s) in l.incoming().flatten().enumerate() {
            let mut s = s;
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).is_ok_and(|n| n == 1) {
                head.push(b[0]);
            }
            let _ = s.write_all(answers[n.min(answers.len() - 1)]);
        }
    });
    addr
}

#[test]
fn retry_reaches_another_server_and_retries_statuses() {
    let dead = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let flaky = sequence_backend(&[
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\nfail",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    ]);
    let backend = Whoami::start("w");
    let mut svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    svc.push_str("---\n");
    svc.push_str(&service_yaml("apps", "half-dead", 80, "http", &[dead, backend.addr]));
    svc.push_str("---\n");
    svc.push_str(&service_yaml("apps", "flaky", 80, "http", &[flaky]));
    let mws = [
        middleware("retry", "{retry: {attempts: 2}}"),
        middleware("retry-status", "{retry: {attempts: 3, initialInterval: 50ms, status: ['500-599']}}"),
    ]
    .concat();
    let ir = routes(&[
        ("r.test", "half-dead", &["retry"]),
        ("n.test", "half-dead", &[]),
        ("s.test", "flaky", &["retry-status"]),
        ("ready.test", "whoami", &[]),
    ]);
    // One worker: its round robin alternates the two servers request after request.
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", &mws), ("ir.yaml", &ir)], &["--workers", "1"]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);

    let post = |host: &str| {
        request(
            &weir,
            &format!(
                "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            ),
        )
    };
    // Without Retry, a POST that meets the dead server is a 502 (POSTs are not re-sent).
    let without: Vec<u16> = (0..4).map(|_| post("n.test").status).collect();
    assert!(without.contains(&502), "{without:?}");
    // With Retry, every POST reaches the live server, body and all.
    for i in 0..4 {
        let r = post("r.test");
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert!(r.text().ends_with("hello"), "request {i}: {}", r.text());
    }
    // Status retries: the first answer is a 500, the retry gets the 200.
    let r = get(&weir, "s.test", "/");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
}

#[test]
fn errors_serve_pages_from_another_service() {
    let backend = Whoami::start("w");
    let pages = Whoami::start("p");
    let mut svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    svc.push_str("---\n");
    svc.push_str(&service_yaml("apps", "pages", 80, "http", &[pages.addr]));
    let mws = [
        middleware(
            "errors",
            "{errors: {status: ['500-599'], query: '/page/{status}?orig={originalStatus}&url={url}', service: {name: pages, port: 80}}}",
        ),
        middleware(
            "rewrite",
            "{errors: {status: ['404', '502-504'], statusRewrites: {'502-504': 500}, query: 'p{status}', service: {name: pages, port: 80}}}",
        ),
    ]
    .concat();
    let ir = routes(&[("e.test", "whoami", &["errors"]), ("rw.test", "whoami", &["rewrite"])]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", &mws), ("ir.yaml", &ir)], &[]);
    weir.wait_for("e.test", "/", READY, |r| r.status == 200);

    // (case, host, path, client status, who answered, page target)
    let cases = [
        ("not caught", "e.test", "/x?status=404", 404, "w", None),
        ("caught", "e.test", "/x?status=503", 503, "p", Some("/page/503?orig=503&url=%2Fx%3Fstatus%3D503")),
        ("single code", "rw.test", "/x?status=404", 404, "p", Some("/p404")),
        ("rewritten", "rw.test", "/x?status=502", 500, "p", Some("/p500")),
        ("outside", "rw.test", "/x?status=500", 500, "w", None),
    ];
    for (name, host, path, status, who, target) in cases {
        let r = get(&weir, host, path);
        assert_eq!(r.status, status, "case {name}: {r:?}");
        assert_eq!(r.backend(), Some(who), "case {name}: {r:?}");
        if let Some(t) = target {
            let line = r.text().lines().nth(3).unwrap_or("").to_string();
            assert_eq!(line, format!("GET {t} HTTP/1.1"), "case {name}: {}", r.text());
            assert_eq!(r.echoed_header("Host").as_deref(), Some(host), "case {name}");
        }
    }
}

#[test]
fn forward_auth_asks_the_auth_server_first() {
    let allow = raw_backend(
        b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Secret: s\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let deny = raw_backend(
        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 6\r\nConnection: close\r\n\r\ndenied",
    );
    let redirect = raw_backend(
        b"HTTP/1.1 302 Found\r\nLocation: /login\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let dead = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let echo = Whoami::start("auth");
    let fa = |name: &str, extra: String| middleware(name, &format!("{{forwardAuth: {{{extra}}}}}"));
    let mws = [
        fa(
            "allow",
            format!("address: 'http://{allow}/check', authResponseHeaders: [X-Auth-User], addAuthCookiesToResponse: [session]"),
        ),
        fa("deny", format!("address: 'http://{deny}/check'")),
        fa("redirect", format!("address: 'http://{redirect}/check'")),
        fa("dead", format!("address: 'http://{dead}/check'")),
        fa("echo", format!("address: 'http://{}/verify?status=403', authRequestHeaders: [Authorization]", echo.addr)),
    ]
    .concat();
    let ir = routes(&[
        ("allow.test", "whoami", &["allow"]),
        ("deny.test", "whoami", &["deny"]),
        ("redirect.test", "whoami", &["redirect"]),
        ("dead.test", "whoami", &["dead"]),
        ("echo.test", "whoami", &["echo"]),
        ("ready.test", "whoami", &[]),
    ]);
    let (weir, _b) = start(&mws, &ir, &[], &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);

    // Allowed: the backend answers, with the listed auth header and the listed cookie.
    let r = get(&weir, "allow.test", "/app");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.backend(), Some("w"));
    assert_eq!(r.echoed_header("X-Auth-User").as_deref(), Some("alice"), "{}", r.text());
    assert_eq!(r.echoed_header("X-Auth-Secret"), None, "not listed: {}", r.text());
    assert_eq!(r.header("set-cookie"), Some("session=abc; Path=/"));

    let location = format!("http://{redirect}/login");
    // (case, host, status, body, header, value)
    let cases = [
        ("denied", "deny.test", 401, "denied", "www-authenticate", Some("Basic realm=\"x\"")),
        ("redirect made absolute", "redirect.test", 302, "", "location", Some(location.as_str())),
        ("unreachable", "dead.test", 500, "", "content-type", None),
    ];
    for (name, host, status, body, h, v) in cases {
        let r = get(&weir, host, "/app");
        assert_eq!(r.status, status, "case {name}: {r:?}");
        assert_eq!(r.text(), body, "case {name}");
        assert_eq!(r.header(h).map(str::to_string), v.map(|v| v.to_string()), "case {name}: {r:?}");
        assert_eq!(r.backend(), None, "case {name}: the backend is not called");
    }

    // What the auth server receives: GET, Traefik's X-Forwarded-* and only the listed headers.
    let r = Conn::open(weir.port)
        .and_then(|mut c| {
            c.get(
                "echo.test",
                "/app?x=1",
                &[("Authorization", "Bearer t"), ("X-Other", "1"), ("Connection", "close")],
            )
        })
        .expect("request");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.backend(), Some("auth"));
    let text = r.text();
    assert!(text.contains("GET /verify?status=403 HTTP/1.1"), "{text}");
    for (h, v) in [
        ("Authorization", Some("Bearer t")),
        ("X-Other", None),
        ("X-Forwarded-Method", Some("GET")),
        ("X-Forwarded-Uri", Some("/app?x=1")),
        ("X-Forwarded-Host", Some("echo.test")),
        ("X-Forwarded-Proto", Some("http")),
        ("X-Forwarded-For", Some("127.0.0.1")),
    ] {
        assert_eq!(r.echoed_header(h).as_deref(), v, "{h}: {text}");
    }
}

fn md5_hex(s: &str) -> String {
    use md5::Digest as _;
    md5::Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A quoted parameter of a `WWW-Authenticate: Digest` challenge.
fn challenge_param(challenge: &str, name: &str) -> String {
    let start = challenge.find(&format!("{name}=\"")).expect("parameter") + name.len() + 2;
    challenge[start..].split('"').next().unwrap_or("").to_string()
}

#[test]
fn digest_auth_challenges_and_accepts() {
    let users = format!("alice:traefik:{}\n", md5_hex("alice:traefik:secret"));
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: digest-users\n  namespace: apps\nstringData:\n  users: |\n    {users}---\n"
    );
    let mws = [
        secret,
        middleware("digest", "{digestAuth: {secret: digest-users, headerField: X-User, removeHeader: true}}"),
    ]
    .concat();
    let ir = routes(&[("d.test", "whoami", &["digest"]), ("ready.test", "whoami", &[])]);
    let (weir, _b) = start(&mws, &ir, &[], &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
    weir.wait_for("d.test", "/", READY, |r| r.status == 401);

    let r = get(&weir, "d.test", "/p?q=1");
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.text(), "401 Unauthorized\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let challenge = r.header("www-authenticate").expect("challenge").to_string();
    assert!(challenge.starts_with("Digest realm=\"traefik\""), "{challenge}");
    assert!(challenge.ends_with("algorithm=MD5, qop=\"auth\""), "{challenge}");
    let (nonce, opaque) = (challenge_param(&challenge, "nonce"), challenge_param(&challenge, "opaque"));

    let authorization = |password: &str, nc: &str| {
        let ha1 = md5_hex(&format!("alice:traefik:{password}"));
        let ha2 = md5_hex("GET:/p?q=1");
        let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:abc:auth:{ha2}"));
        format!(
            "Digest username=\"alice\", realm=\"traefik\", nonce=\"{nonce}\", uri=\"/p?q=1\", algorithm=MD5, response=\"{response}\", opaque=\"{opaque}\", qop=auth, nc={nc}, cnonce=\"abc\""
        )
    };
    // (case, password, nonce count, status)
    let cases = [("right password", "secret", "00000001", 200), ("wrong password", "nope", "00000002", 401)];
    for (name, password, nc, status) in cases {
        let auth = authorization(password, nc);
        // A new connection each time: the nonce is good on every worker.
        let r = Conn::open(weir.port)
            .and_then(|mut c| c.get("d.test", "/p?q=1", &[("Authorization", &auth), ("Connection", "close")]))
            .expect("request");
        assert_eq!(r.status, status, "case {name}: {r:?}");
        if status == 200 {
            assert_eq!(r.echoed_header("X-User").as_deref(), Some("alice"), "case {name}: {}", r.text());
            assert_eq!(r.echoed_header("Authorization"), None, "case {name}: removed");
        }
    }
}

#[test]
fn circuit_breaker_trips_on_network_errors() {
    let dead = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let backend = Whoami::start("w");
    let mut svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    svc.push_str("---\n");
    svc.push_str(&service_yaml("apps", "dead", 80, "http", &[dead]));
    let mws = [
        middleware("cb", "{circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5', checkPeriod: 100ms}}"),
        middleware(
            "cb-ok",
            "{circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5', checkPeriod: 100ms}}",
        ),
    ]
    .concat();
    let ir = routes(&[("cb.test", "dead", &["cb"]), ("ok.test", "whoami", &["cb-ok"])]);
    // One worker keeps the timing simple (breaker state is per instance; see w4_instance_limits).
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", &mws), ("ir.yaml", &ir)], &["--workers", "1"]);
    weir.wait_for("ok.test", "/", READY, |r| r.status == 200);

    assert_eq!(get(&weir, "cb.test", "/").status, 502, "the first failure is passed on");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(get(&weir, "cb.test", "/").status, 502, "evaluated after this one");
    let r = get(&weir, "cb.test", "/");
    assert_eq!((r.status, r.text().as_str()), (503, "Service Unavailable"), "tripped: {r:?}");
    assert_eq!(r.header("content-type"), None);
    // Another breaker on a healthy service is not affected.
    for _ in 0..3 {
        assert_eq!(get(&weir, "ok.test", "/").status, 200);
    }
}
