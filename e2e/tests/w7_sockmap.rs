//! W7 end to end: TCP passthrough moved by the in-kernel sockmap splice
//! (`--experimental.sockmap`) through the real binaries. 1,000 TLS-passthrough connections of
//! random sizes (1 B to 16 MiB, log-uniform) to an echo backend, each sending its ClientHello
//! and bulk at once (so bytes wait in the receive queue when the sockets join), with every byte
//! checked, every half-close propagated, every connection closed and no descriptor left in the
//! data plane; `weir_ebpf_*` on /metrics must show that the kernel moved the bulk. A
//! server-first backend (its greeting arrives before the join) behind `HostSNI(`*`)` too.
//! Needs root (the data plane loads the BPF program); skips loudly elsewhere, except under CI.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::passthrough::{
    client_hello, echo_many, exchange, half_close_echo, log_uniform_sizes, open_fds,
};
use weir_e2e::{free_port, service_yaml, Weir};

const READY: Duration = Duration::from_secs(20);

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    if root {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "sockmap test cannot run under CI: not root");
    eprintln!("\n!!! SKIPPED w7 sockmap test (not root: cannot load BPF programs) !!!\n");
    false
}

/// An IngressRouteTCP with one route to `service:port`; `extra` is more YAML under `spec`.
fn route_tcp(name: &str, entrypoint: &str, rule: &str, service: &str, port: u16, extra: &str) -> String {
    format!(
        "---\napiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  entryPoints: [{entrypoint}]\n  routes:\n  - match: '{rule}'\n    services:\n    - name: {service}\n      port: {port}\n{extra}"
    )
}

/// A backend thread per connection running `serve`.
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

fn eventually(weir: &Weir, what: &str, attempt: impl Fn() -> bool) {
    let start = Instant::now();
    while !attempt() {
        if start.elapsed() > READY {
            panic!("{what}: not within {READY:?}\n--- log ---\n{}", weir.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the series `name{labels}` on /metrics (0 when absent).
fn metric(port: u16, series: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .expect("run curl");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    body.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn metrics_flags(port: u16) -> Vec<String> {
    vec![
        "--metrics.prometheus".into(),
        "--metrics.prometheus.entryPoint=metrics".into(),
        format!("--entryPoints.metrics.address=127.0.0.1:{port}"),
        "--experimental.sockmap".into(),
    ]
}

#[test]
fn thousand_sockmap_connections_lose_nothing_and_all_close() {
    if !can_run() {
        return;
    }
    let eofs = Arc::new(AtomicUsize::new(0));
    let echo = backend(half_close_echo(Arc::clone(&eofs)));
    let tcp = free_port();
    let mport = free_port();
    let files = [
        ("svc.yaml", service_yaml("default", "echo", 7, "echo", &[echo])),
        // terminationDelay -1: every half-closed connection drains fully (Traefik's default
        // cuts the other direction 100 ms after the first ended).
        ("st.yaml", "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: drain, namespace: default}\n\
            spec: {terminationDelay: -1}\n".to_string()),
        ("routes.yaml", route_tcp("p", "tcp", "HostSNI(`bulk.example.com`)", "echo", 7,
            "      serversTransport: drain\n  tls: {passthrough: true}\n")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let mut flags = metrics_flags(mport);
    flags.push(format!("--entryPoints.tcp.address=127.0.0.1:{tcp}"));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let weir = Weir::start(&files, &flags);
    let hello = client_hello("bulk.example.com");
    eventually(&weir, "passthrough echo", || {
        let mut m = hello.clone();
        m.extend_from_slice(b"x");
        exchange(tcp, &m).map(|o| o == m).unwrap_or(false)
    });
    assert!(
        weir.log().contains("experimental sockmap splice enabled"),
        "sockmap splice not enabled:\n{}",
        weir.log()
    );
    std::thread::sleep(Duration::from_millis(200));
    let pid = weir.dataplane_pid().expect("dataplane running");
    let baseline = open_fds(pid);
    let moved_before = metric(mport, r#"weir_ebpf_bytes_total{program="sk_skb_splice"}"#);
    eofs.store(0, Ordering::SeqCst);

    const CONNECTIONS: u64 = 1000;
    let sizes = log_uniform_sizes(CONNECTIONS, 16 << 20, 7);
    let echoed =
        echo_many(tcp, &hello, sizes, 8).unwrap_or_else(|e| panic!("{e}\n--- log ---\n{}", weir.log()));
    let (total, elapsed) = (echoed.bytes, echoed.elapsed);
    eprintln!(
        "w7 sockmap: {CONNECTIONS} passthrough connections, {:.1} MiB each way in {elapsed:?} ({:.2} Gbit/s echoed)",
        total as f64 / 1048576.0,
        (total * 2 * 8) as f64 / elapsed.as_secs_f64() / 1e9
    );
    assert_eq!(eofs.load(Ordering::SeqCst), CONNECTIONS as usize, "half-closes propagated to the backend");
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds(pid) > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(open_fds(pid) <= baseline, "dataplane fds: {} now, {baseline} before", open_fds(pid));
    // The kernel moved the bulk. Not all of it: weir writes by hand what it read with the
    // ClientHello and the rest of that segment, and a connection whose client had sent
    // everything (FIN included) before the join stays on splice(2). Measured here: ~98%.
    // The watcher publishes the counters every 250 ms.
    std::thread::sleep(Duration::from_millis(400));
    let moved = metric(mport, r#"weir_ebpf_bytes_total{program="sk_skb_splice"}"#) - moved_before;
    let bulk = (2 * total) as u64;
    assert!(moved >= bulk / 4 * 3, "weir_ebpf_bytes_total moved {moved} bytes of the {bulk}-byte bulk");
    eprintln!("w7 sockmap: the kernel moved {:.1}% of the bulk", moved as f64 * 100.0 / bulk as f64);
}

#[test]
fn server_first_greeting_before_the_join_is_moved() {
    if !can_run() {
        return;
    }
    // Speaks first, then echoes one line and closes.
    let server = backend(|mut conn: TcpStream| {
        let _ = conn.write_all(b"220 ready\n");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while conn.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        let _ = conn.write_all(&line);
    });
    let tcp = free_port();
    let mport = free_port();
    let files = [
        ("svc.yaml", service_yaml("default", "smtp", 25, "smtp", &[server])),
        ("routes.yaml", route_tcp("s", "tcp", "HostSNI(`*`)", "smtp", 25, "")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let mut flags = metrics_flags(mport);
    flags.push(format!("--entryPoints.tcp.address=127.0.0.1:{tcp}"));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let weir = Weir::start(&files, &flags);
    for i in 0..50 {
        let attempt = || -> std::io::Result<Vec<u8>> {
            let mut s = TcpStream::connect(("127.0.0.1", tcp))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut greeting = [0u8; 10];
            s.read_exact(&mut greeting)?;
            assert_eq!(&greeting, b"220 ready\n");
            s.write_all(format!("HELO {i}\n").as_bytes())?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok(out)
        };
        if i == 0 {
            eventually(&weir, "server-first route", || attempt().is_ok());
            continue;
        }
        let got = attempt().unwrap_or_else(|e| panic!("connection {i}: {e}\n{}", weir.log()));
        assert_eq!(got, format!("HELO {i}\n").as_bytes(), "connection {i}");
    }
    assert!(weir.log().contains("experimental sockmap splice enabled"), "{}", weir.log());
    std::thread::sleep(Duration::from_millis(400));
    let redirects = metric(mport, r#"weir_ebpf_redirects_total{program="sk_skb_splice"}"#);
    assert!(redirects >= 49 * 3, "greeting, line and answer of each connection redirected: {redirects}");
}
