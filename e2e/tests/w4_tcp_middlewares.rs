//! W4 MiddlewareTCP end to end, through the real binaries: `inFlightConn` caps simultaneous
//! connections per client IP for the whole instance (two workers), and `ipAllowList` /
//! the deprecated `ipWhiteList` close connections from sources outside their ranges before
//! any byte reaches the backend.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::{free_port, service_yaml, Weir};

const READY: Duration = Duration::from_secs(20);

/// An echo backend that counts the connections it accepted.
fn echo_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
    let addr = listener.local_addr().expect("backend addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// An IngressRouteTCP `HostSNI(`*`)` on `entrypoint` to `echo:7` through MiddlewareTCP `middleware`.
fn route(name: &str, entrypoint: &str, middleware: &str) -> String {
    format!(
        "---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  entryPoints: [{entrypoint}]\n  routes:\n  - match: 'HostSNI(`*`)'\n    middlewares:\n    - name: {middleware}\n    services:\n    - name: echo\n      port: 7\n"
    )
}

fn middleware_tcp(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: traefik.io/v1alpha1\nkind: MiddlewareTCP\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  {spec}\n"
    )
}

/// Opens a connection and checks one round trip: `Some(stream)` when the echo answered,
/// `None` when weir closed (or reset) the connection instead.
fn echo_once(port: u16, payload: &[u8]) -> Option<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(payload).ok()?;
    let mut got = vec![0u8; payload.len()];
    match s.read_exact(&mut got) {
        Ok(()) if got == payload => Some(s),
        _ => None,
    }
}

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
fn in_flight_conn_caps_connections_per_client_across_workers() {
    let (echo, accepted) = echo_backend();
    let port = free_port();
    let files = [
        ("svc.yaml", service_yaml("default", "echo", 7, "echo", &[echo])),
        (
            "routes.yaml",
            [middleware_tcp("two-conns", "inFlightConn: {amount: 2}"), route("limited", "tcp", "two-conns")]
                .concat(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[&format!("--entryPoints.tcp.address=127.0.0.1:{port}")]);
    eventually(&weir, "route", || echo_once(port, b"ready").is_some());
    // The probe above closed; give weir a moment to count it out.
    std::thread::sleep(Duration::from_millis(200));

    // Two held connections (the kernel spreads them over the two workers as it likes; the
    // count is per instance, so a third one is refused whichever worker accepts it).
    let mut held = Vec::new();
    for i in 0..2 {
        held.push(echo_once(port, format!("held-{i}").as_bytes()).expect("connection within the limit"));
    }
    let before = accepted.load(Ordering::SeqCst);
    for attempt in 0..6 {
        assert!(
            echo_once(port, b"over the limit").is_none(),
            "attempt {attempt}: a third simultaneous connection was served\n{}",
            weir.log()
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), before, "refused connections reached the backend");

    // The held connections still work, and closing one frees a slot.
    for (i, s) in held.iter_mut().enumerate() {
        s.write_all(b"still").expect("write");
        let mut got = [0u8; 5];
        s.read_exact(&mut got).unwrap_or_else(|e| panic!("held connection {i}: {e}"));
        assert_eq!(&got, b"still");
    }
    let closed = held.pop().expect("two held");
    let _ = closed.shutdown(Shutdown::Both);
    drop(closed);
    eventually(&weir, "a slot freed by a close", || echo_once(port, b"again").is_some());
}

#[test]
fn ip_allow_list_and_ip_white_list_close_outside_sources() {
    let (echo, accepted) = echo_backend();
    let (allow, deny, legacy_allow, legacy_deny) = (free_port(), free_port(), free_port(), free_port());
    let files = [
        ("svc.yaml", service_yaml("default", "echo", 7, "echo", &[echo])),
        (
            "routes.yaml",
            [
                middleware_tcp("loopback", "ipAllowList: {sourceRange: [127.0.0.0/8]}"),
                middleware_tcp("elsewhere", "ipAllowList: {sourceRange: [192.0.2.0/24, '2001:db8::/32']}"),
                middleware_tcp("legacy-loopback", "ipWhiteList: {sourceRange: [127.0.0.1]}"),
                middleware_tcp("legacy-elsewhere", "ipWhiteList: {sourceRange: [198.51.100.7]}"),
                route("allow", "allow", "loopback"),
                route("deny", "deny", "elsewhere"),
                route("legacy-allow", "legacyallow", "legacy-loopback"),
                route("legacy-deny", "legacydeny", "legacy-elsewhere"),
            ]
            .concat(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(
        &files,
        &[
            &format!("--entryPoints.allow.address=127.0.0.1:{allow}"),
            &format!("--entryPoints.deny.address=127.0.0.1:{deny}"),
            &format!("--entryPoints.legacyallow.address=127.0.0.1:{legacy_allow}"),
            &format!("--entryPoints.legacydeny.address=127.0.0.1:{legacy_deny}"),
        ],
    );
    // Both allowed routes serve; they belong to the same snapshot as the denying ones.
    eventually(&weir, "allowed route", || echo_once(allow, b"hello").is_some());
    eventually(&weir, "allowed legacy route", || echo_once(legacy_allow, b"hello").is_some());
    let before = accepted.load(Ordering::SeqCst);
    for port in [deny, legacy_deny] {
        for _ in 0..3 {
            assert!(echo_once(port, b"let me in").is_none(), "port {port}: a denied source was served");
        }
    }
    assert_eq!(accepted.load(Ordering::SeqCst), before, "denied connections reached the backend");
    let log = weir.log();
    assert!(!log.contains("panicked"), "{log}");
}
