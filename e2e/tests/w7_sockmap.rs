//! W7 end to end: TCP passthrough moved by the in-kernel sockmap splice
//! (`--experimental.sockmap`) through the real binaries. 1,000 TLS-passthrough connections of
//! random sizes (1 B to 16 MiB, log-uniform) to an echo backend, each sending its ClientHello
//! and bulk at once (so bytes wait in the receive queue when the sockets join), with every byte
//! checked, every half-close propagated, every connection closed and no descriptor left in the
//! data plane; `weir_ebpf_*` on /metrics must show that the kernel moved the bulk. A
//! server-first backend (its greeting arrives before the join) behind `HostSNI(`*`)` too.
//! Needs root (the data plane loads the BPF program); skips loudly elsewhere, except under CI.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// A minimal ClientHello record with an SNI (enough for routing).
fn client_hello(sni: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    entry.extend_from_slice(sni.as_bytes());
    let mut list = (entry.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&entry);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
    exts.extend_from_slice(&list);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    record.extend_from_slice(&msg);
    record
}

/// Deterministic bytes for connection `id` at `offset` (8-byte words).
fn fill(id: u64, offset: u64, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut x = (id << 40) ^ (offset / 8 + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Sends `data`, half-closes, and reads everything until the peer closes.
fn exchange(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(data)?;
    s.shutdown(Shutdown::Write)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
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
    let counted = Arc::clone(&eofs);
    // Echo until the client's half-close arrives, then close.
    let echo = backend(move |mut conn: TcpStream| {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
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
    const MAX: f64 = 16.0 * 1024.0 * 1024.0;
    let sizes: Vec<usize> = (0..CONNECTIONS)
        .map(|i| {
            let mut x = (i + 7).wrapping_mul(0x2545_F491_4F6C_DD1D);
            x ^= x >> 33;
            let u = (x % 1_000_000) as f64 / 1_000_000.0;
            (MAX.powf(u)).round().max(1.0) as usize
        })
        .collect();
    let total: usize = sizes.iter().sum();
    let sizes = Arc::new(sizes);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (sizes, next, hello) = (Arc::clone(&sizes), Arc::clone(&next), hello.clone());
            std::thread::spawn(move || -> Result<(), String> {
                loop {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&size) = sizes.get(id) else { return Ok(()) };
                    let s =
                        TcpStream::connect(("127.0.0.1", tcp)).map_err(|e| format!("{id}: connect {e}"))?;
                    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
                    let mut w = s.try_clone().map_err(|e| e.to_string())?;
                    let head = hello.clone();
                    let writer = std::thread::spawn(move || -> std::io::Result<()> {
                        w.write_all(&head)?;
                        let mut buf = vec![0u8; 64 * 1024];
                        let mut off = 0usize;
                        while off < size {
                            let n = (size - off).min(buf.len());
                            fill(id as u64, off as u64, &mut buf[..n]);
                            w.write_all(&buf[..n])?;
                            off += n;
                        }
                        w.shutdown(Shutdown::Write)
                    });
                    let mut r = s;
                    let mut got = vec![0u8; hello.len()];
                    r.read_exact(&mut got).map_err(|e| format!("{id}: hello echo {e}"))?;
                    if got != hello {
                        return Err(format!("{id}: hello bytes differ"));
                    }
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut want = vec![0u8; 64 * 1024 + 8];
                    let mut off = 0usize;
                    loop {
                        let n = r.read(&mut buf).map_err(|e| format!("{id}: read at {off}/{size}: {e}"))?;
                        if n == 0 {
                            break;
                        }
                        if off + n > size {
                            return Err(format!("{id}: more bytes than sent ({} > {size})", off + n));
                        }
                        let lead = off % 8;
                        fill(id as u64, (off - lead) as u64, &mut want[..lead + n]);
                        if buf[..n] != want[lead..lead + n] {
                            return Err(format!("{id}: bytes differ at {off}"));
                        }
                        off += n;
                    }
                    if off != size {
                        return Err(format!("{id}: got {off} of {size} bytes before the close"));
                    }
                    writer
                        .join()
                        .map_err(|_| format!("{id}: writer panicked"))?
                        .map_err(|e| format!("{id}: write {e}"))?;
                }
            })
        })
        .collect();
    for w in workers {
        if let Err(e) = w.join().expect("worker thread") {
            panic!("{e}\n--- log ---\n{}", weir.log());
        }
    }
    let elapsed = start.elapsed();
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
