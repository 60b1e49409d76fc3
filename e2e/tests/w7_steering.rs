//! W7 end to end: SK_REUSEPORT per-core steering in the real data plane. weir runs two workers
//! pinned to CPUs 0 and 1; clients pinned to one CPU open a new connection per request, and the
//! per-worker request counters (`weir_worker_requests_total` on /metrics) must show every one of
//! them on that CPU's worker. UDP entrypoints too: each datagram from a client pinned to a CPU
//! must be answered by that CPU's worker, which the client sees with SO_INCOMING_CPU (on
//! loopback a datagram is received on the CPU of the thread that sent it, and workers are
//! pinned). Needs root (the data plane loads the BPF program) and two CPUs; without them it
//! skips loudly, except under CI where it must run.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::{free_port, ingressroute_yaml, service_yaml, Weir, Whoami};

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if root && cpus >= 2 {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "steering test cannot run under CI: root={root}, cpus={cpus}");
    eprintln!("\n!!! SKIPPED w7 steering test (root={root}, cpus={cpus}) !!!\n");
    false
}

fn scrape(metrics_port: u16) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://127.0.0.1:{metrics_port}/metrics")])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Requests counted per worker: `[worker 0, worker 1]`.
fn per_worker(metrics_port: u16) -> [f64; 2] {
    let body = scrape(metrics_port);
    let mut counts = [0.0; 2];
    for line in body.lines().filter(|l| l.starts_with("weir_worker_requests_total{")) {
        let Some((series, v)) = line.rsplit_once(' ') else { continue };
        let v: f64 = v.parse().unwrap_or(0.0);
        if series.contains("worker=\"0\"") {
            counts[0] += v;
        } else if series.contains("worker=\"1\"") {
            counts[1] += v;
        }
    }
    counts
}

#[test]
fn connections_are_served_by_the_worker_of_their_cpu() {
    if !can_run() {
        return;
    }
    let be = Whoami::start("app");
    let mport = free_port();
    let metrics_ep = format!("--entryPoints.metrics.address=127.0.0.1:{mport}");
    let flags = [
        "--metrics.prometheus",
        "--metrics.prometheus.entryPoint=metrics",
        metrics_ep.as_str(),
        "--cpus",
        "0,1",
    ];
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let route = ingressroute_yaml("default", "r", &[("Host(`a.test`)", None, &[("app", 80, 1)])]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("route.yaml", &route)], &flags);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    assert!(weir.log().contains("eBPF per-core steering attached"), "steering not attached:\n{}", weir.log());

    for cpu in [0usize, 1] {
        let before = per_worker(mport);
        let port = weir.port;
        std::thread::spawn(move || {
            let mut set = rustix::thread::CpuSet::new();
            set.set(cpu);
            rustix::thread::sched_setaffinity(None, &set).expect("pin client thread");
            for _ in 0..100 {
                let r = weir_e2e::get(port, "a.test", "/").expect("request");
                assert_eq!(r.status, 200);
            }
        })
        .join()
        .expect("client thread");
        let after = per_worker(mport);
        let (mine, other) = (after[cpu] - before[cpu], after[1 - cpu] - before[1 - cpu]);
        assert_eq!(
            (mine, other),
            (100.0, 0.0),
            "clients on CPU {cpu}: {mine} requests on worker {cpu}, {other} on the other\n{}",
            weir.log()
        );
    }
}

/// The value of `series` on /metrics (0 when absent).
fn metric(metrics_port: u16, series: &str) -> f64 {
    scrape(metrics_port)
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A UDP echo backend (answers each datagram with itself) until dropped.
struct UdpEcho {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl UdpEcho {
    fn start() -> UdpEcho {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind UDP backend");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        UdpEcho { addr, stop }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn udp_route(backend: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: default}}\nspec:\n  \
         ports: [{{name: echo, port: 53, protocol: UDP}}]\n---\napiVersion: discovery.k8s.io/v1\n\
         kind: EndpointSlice\nmetadata:\n  name: echo-0\n  namespace: default\n  \
         labels: {{kubernetes.io/service-name: echo}}\naddressType: IPv4\n\
         ports: [{{name: echo, port: {}, protocol: UDP}}]\nendpoints: [{{addresses: ['{}']}}]\n---\n\
         apiVersion: traefik.io/v1alpha1\nkind: IngressRouteUDP\nmetadata: {{name: echo, namespace: default}}\n\
         spec:\n  entryPoints: [dns]\n  routes:\n  - services: [{{name: echo, port: 53}}]\n",
        backend.port(),
        backend.ip()
    )
}

/// One datagram from a new socket (a new flow) connected to `to`; the CPU that received the
/// answer, or None when none came.
fn udp_answer_cpu(to: SocketAddr, payload: &[u8]) -> Option<u32> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    // Connected: the kernel then records the CPU each answer arrives on.
    socket.connect(to).ok()?;
    socket.send(payload).ok()?;
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).ok()?;
    assert_eq!(&buf[..n], payload, "the echo came back unchanged");
    rustix::net::sockopt::socket_incoming_cpu(&socket).ok()
}

#[test]
fn a_udp_flow_stays_on_one_worker_whatever_cpu_its_client_runs_on() {
    if !can_run() {
        return;
    }
    let echo = UdpEcho::start();
    let port = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("free UDP port").port();
    let dns: SocketAddr = ([127, 0, 0, 1], port).into();
    let mport = free_port();
    let metrics_ep = format!("--entryPoints.metrics.address=127.0.0.1:{mport}");
    let dns_ep = format!("--entryPoints.dns.address=127.0.0.1:{port}/udp");
    let flags = [
        "--metrics.prometheus",
        "--metrics.prometheus.entryPoint=metrics",
        metrics_ep.as_str(),
        dns_ep.as_str(),
        "--cpus",
        "0,1",
    ];
    let route = udp_route(echo.addr);
    let weir = Weir::start(&[("udp.yaml", &route)], &flags);
    let start = Instant::now();
    while udp_answer_cpu(dns, b"ready").is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "UDP route never answered:\n{}", weir.log());
    }
    // The data plane's log reaches the file a moment after the route serves.
    let attached =
        || weir.log().lines().any(|l| l.contains("eBPF flow-hash steering attached") && l.contains("dns"));
    let start = Instant::now();
    while !attached() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "steering not attached to the UDP entrypoint:\n{}",
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // UDP groups are steered by the flow's hash, never by CPU: each worker keeps its own flow
    // table and upstream socket, so a flow split across workers would reach the backend from
    // two source ports (a backend that connected its socket to the first drops the rest).
    let by_hash = r#"weir_ebpf_steered_total{entrypoint="dns",choice="hash"}"#;
    let before = metric(mport, by_hash);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    socket.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    socket.connect(dns).expect("connect");
    let socket = Arc::new(socket);
    let mut answered_on = Vec::new();
    for i in 0..100u32 {
        // The same flow, sent alternately from CPU 0 and CPU 1.
        let s = Arc::clone(&socket);
        let cpu = std::thread::spawn(move || {
            let mut set = rustix::thread::CpuSet::new();
            set.set((i % 2) as usize);
            rustix::thread::sched_setaffinity(None, &set).expect("pin client thread");
            s.send(&i.to_be_bytes()).ok()?;
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).ok()?;
            assert_eq!(&buf[..n], &i.to_be_bytes(), "the echo came back unchanged");
            rustix::net::sockopt::socket_incoming_cpu(&*s).ok()
        })
        .join()
        .expect("client thread");
        answered_on.extend(cpu);
    }
    assert!(answered_on.len() >= 95, "only {} of 100 answered", answered_on.len());
    // Answers leave through the listener of the worker that holds the flow, on its CPU.
    let first = answered_on[0];
    assert!(
        answered_on.iter().all(|c| *c == first),
        "one flow was served by several workers: answers arrived on CPUs {answered_on:?}\n{}",
        weir.log()
    );
    let steered = metric(mport, by_hash) - before;
    assert!(steered >= 100.0, "weir_ebpf_steered_total choice=hash grew by {steered}, want >= 100");
}
