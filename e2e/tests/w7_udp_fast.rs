//! W7 end to end: the UDP fast path (`--experimental.udpFastPath`, TC program on loopback)
//! through the real binaries, with a UDP echo backend that records who wrote to it. A flow's
//! first datagram goes through the userspace proxy, the rest are forwarded by the kernel (its
//! counters grow, the data plane's userspace datagram count does not), replies reach the client
//! from the entrypoint's address, kernel activity keeps a flow alive past `udp.timeout` while
//! userspace sees nothing, an idle flow leaves the map and the next datagram opens a new one in
//! userspace, a second client's flow is independent, without the flag the plain path serves,
//! and a data plane without the capability says why once and keeps running. Needs root
//! (CAP_BPF + CAP_NET_ADMIN); skips loudly elsewhere, except under CI.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir_e2e::{free_port, Weir};

const READY: Duration = Duration::from_secs(20);
/// The entrypoint's `udp.timeout`.
const TIMEOUT: Duration = Duration::from_secs(2);

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    if root {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "UDP fast path test cannot run under CI: not root");
    eprintln!("\n!!! SKIPPED w7 UDP fast path test (not root: cannot load BPF programs) !!!\n");
    false
}

/// A UDP backend echoing every datagram, recording each sender.
struct Echo {
    addr: SocketAddr,
    senders: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Echo {
    fn start() -> Echo {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind backend");
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let senders = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, flag) = (Arc::clone(&senders), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                seen.lock().expect("senders lock").push(from);
                let _ = socket.send_to(&buf[..n], from);
            }
        });
        Echo { addr, senders, stop, thread: Some(thread) }
    }

    /// Distinct senders in order of first appearance.
    fn distinct_senders(&self) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for s in self.senders.lock().expect("senders lock").iter() {
            if !out.contains(s) {
                out.push(*s);
            }
        }
        out
    }

    fn last_sender(&self) -> Option<SocketAddr> {
        self.senders.lock().expect("senders lock").last().copied()
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client socket of its own (its own flow).
struct Client {
    socket: UdpSocket,
    to: SocketAddr,
}

impl Client {
    fn new(to: SocketAddr) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind client");
        socket.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        Client { socket, to }
    }

    /// Sends `payload` and checks the echo: same bytes, from the entrypoint's address.
    fn echo(&self, payload: &[u8]) {
        self.socket.send_to(payload, self.to).expect("send");
        let mut buf = [0u8; 65_536];
        let (n, from) = self.socket.recv_from(&mut buf).unwrap_or_else(|e| {
            panic!(
                "no echo for a {}-byte datagram from {}: {e}",
                payload.len(),
                self.socket.local_addr().unwrap()
            )
        });
        assert_eq!(&buf[..n], payload, "the echo carries the datagram unchanged");
        assert_eq!(from, self.to, "the reply comes from the address the client sent to");
    }

    /// `count` echoes of varied sizes.
    fn echoes(&self, count: usize, tag: u8) {
        for i in 0..count {
            let payload = vec![tag.wrapping_add(i as u8); 1 + (i * 37) % 1400];
            self.echo(&payload);
        }
    }
}

/// The value of the series `name{labels}` on /metrics (0 when absent).
fn metric(port: u16, series: &str) -> u64 {
    metrics(port)
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn metrics(port: u16) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).to_string()
}

const TC_PACKETS: &str = r#"weir_ebpf_packets_total{program="tc_udp_fast"}"#;
const FLOWS: &str = "weir_ebpf_udp_fast_flows";
const USERSPACE: &str = "weir_udp_userspace_datagrams_total";

fn eventually(weir: &Weir, what: &str, attempt: impl Fn() -> bool) {
    let start = Instant::now();
    while !attempt() {
        if start.elapsed() > READY {
            panic!("{what}: not within {READY:?}\n--- log ---\n{}", weir.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The series after the data plane's copy of the program's counters caught up (it is
/// refreshed every 250 ms; the userspace count is live).
fn settled(port: u16, series: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    metric(port, series)
}

fn start(echo: &Echo, fast: bool) -> (Weir, SocketAddr, u16) {
    let port = free_port();
    let mport = free_port();
    let service = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: default}}\nspec:\n  \
         ports: [{{name: udp, port: 7, protocol: UDP}}]\n---\napiVersion: discovery.k8s.io/v1\n\
         kind: EndpointSlice\nmetadata:\n  name: echo-0\n  namespace: default\n  labels: {{kubernetes.io/service-name: echo}}\n\
         addressType: IPv4\nports: [{{name: udp, port: {}, protocol: UDP}}]\nendpoints: [{{addresses: ['127.0.0.1']}}]\n",
        echo.addr.port()
    );
    let route = "apiVersion: traefik.io/v1alpha1\nkind: IngressRouteUDP\nmetadata: {name: echo, namespace: default}\n\
                 spec:\n  entryPoints: [udp]\n  routes:\n  - services: [{name: echo, port: 7}]\n";
    let files = [("svc.yaml", service.as_str()), ("route.yaml", route)];
    let mut flags = vec![
        format!("--entryPoints.udp.address=127.0.0.1:{port}/udp"),
        format!("--entryPoints.udp.udp.timeout={}ms", TIMEOUT.as_millis()),
        "--metrics.prometheus".into(),
        "--metrics.prometheus.entryPoint=metrics".into(),
        format!("--entryPoints.metrics.address=127.0.0.1:{mport}"),
    ];
    if fast {
        flags.push("--experimental.udpFastPath".into());
        // Loopback only: this test's traffic, not the machine's.
        flags.push("--experimental.udpFastPath.interfaces=lo".into());
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let weir = Weir::start(&files, &flags);
    let to: SocketAddr = ([127, 0, 0, 1], port).into();
    eventually(&weir, "UDP echo through weir", || {
        let c = Client::new(to);
        c.socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let _ = c.socket.send_to(b"ready?", to);
        let mut buf = [0u8; 16];
        c.socket.recv_from(&mut buf).is_ok() && metrics(mport).contains("# TYPE")
    });
    (weir, to, mport)
}

#[test]
fn established_udp_flows_are_forwarded_by_the_kernel() {
    if !can_run() {
        return;
    }
    let echo = Echo::start();
    let (weir, to, mport) = start(&echo, true);
    assert!(
        weir.log().contains("experimental UDP fast path enabled"),
        "UDP fast path not enabled:\n{}",
        weir.log()
    );
    // The readiness probes' flows must be gone before counting.
    eventually(&weir, "probe flows expired", || metric(mport, FLOWS) == 0);

    // Client A: the first datagram through userspace, then the flow is mirrored.
    let a = Client::new(to);
    let users_before = settled(mport, USERSPACE);
    a.echo(b"first datagram of A");
    eventually(&weir, "A's flow mirrored", || metric(mport, FLOWS) == 1);
    let a_flow = echo.last_sender().expect("the backend saw A's first datagram");
    let users = settled(mport, USERSPACE);
    // Its reply may already find the flow mirrored (it is, right after the datagram left).
    assert!(
        (1..=2).contains(&(users - users_before)),
        "A's first datagram went through userspace: {}",
        users - users_before
    );
    let tc = settled(mport, TC_PACKETS);

    a.echoes(1000, 1);
    let tc_after = settled(mport, TC_PACKETS);
    assert!(tc_after - tc >= 2000, "the TC program forwarded {} datagrams, expected 2000", tc_after - tc);
    assert_eq!(settled(mport, USERSPACE), users, "userspace relayed none of A's established flow");
    assert_eq!(echo.distinct_senders().last(), Some(&a_flow), "the backend sees A's flow socket only");
    eprintln!(
        "w7 udp fast: 2000 datagrams of one flow, kernel-forwarded {}, userspace {}",
        tc_after - tc,
        settled(mport, USERSPACE) - users
    );

    // Client B: a flow of its own, through userspace first, independent of A's.
    let b = Client::new(to);
    b.echo(b"first datagram of B");
    let b_flow = echo.last_sender().expect("the backend saw B's first datagram");
    assert_ne!(b_flow, a_flow, "B has a flow socket of its own");
    eventually(&weir, "B's flow mirrored", || metric(mport, FLOWS) == 2);
    let users = settled(mport, USERSPACE);
    for i in 0..200u8 {
        a.echo(&[b'a', i]);
        b.echo(&[b'b', i]);
    }
    assert_eq!(settled(mport, USERSPACE), users, "both established flows stay in the kernel");
    let senders = echo.distinct_senders();
    assert_eq!(senders.iter().filter(|s| **s == a_flow || **s == b_flow).count(), 2, "{senders:?}");

    // Kernel activity keeps A alive past udp.timeout although userspace sees none of it; B,
    // idle, ends (its map entries with it).
    let until = Instant::now() + TIMEOUT * 5 / 2;
    while Instant::now() < until {
        a.echo(b"keep alive");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(echo.last_sender(), Some(a_flow), "A kept its flow (and backend socket) past the timeout");
    assert_eq!(settled(mport, USERSPACE), users, "A's keep-alives never reached userspace");
    eventually(&weir, "B's idle flow left the map", || metric(mport, FLOWS) == 1);
    b.echo(b"B after expiry");
    assert_ne!(echo.last_sender(), Some(b_flow), "B's next datagram opened a new flow (old entries gone)");
    assert!(settled(mport, USERSPACE) > users, "and went through userspace");

    // Everything idle: every flow ends, the map is empty, and A starts over in userspace.
    eventually(&weir, "idle flows left the map", || metric(mport, FLOWS) == 0);
    let users = settled(mport, USERSPACE);
    a.echo(b"A after expiry");
    assert_ne!(echo.last_sender(), Some(a_flow), "A's next datagram opened a new flow");
    let more = settled(mport, USERSPACE) - users;
    assert!((1..=2).contains(&more), "through userspace: {more}");
    let drops = metric(mport, r#"weir_ebpf_drops_total{program="tc_udp_fast"}"#);
    assert_eq!(drops, 0, "the TC program dropped datagrams");
}

#[test]
fn without_the_flag_udp_stays_in_userspace() {
    if !can_run() {
        return;
    }
    let echo = Echo::start();
    let (weir, to, mport) = start(&echo, false);
    let probes = echo.distinct_senders().len();
    let a = Client::new(to);
    a.echoes(200, 7);
    let text = metrics(mport);
    assert!(!text.contains("tc_udp_fast"), "no TC program without the flag:\n{text}");
    assert!(!weir.log().contains("UDP fast path"), "{}", weir.log());
    assert_eq!(
        echo.distinct_senders().len(),
        probes + 1,
        "one flow socket for A: {:?}",
        echo.distinct_senders()
    );
}

#[test]
fn without_the_capability_the_reason_is_logged_once() {
    if !can_run() {
        return;
    }
    // The data plane as `nobody` (no CAP_BPF / CAP_NET_ADMIN), started directly.
    let socket = std::env::temp_dir().join(format!("weir-udpfast-nocap-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let mut child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(weir_e2e::bin_dir().join("weir-dataplane"))
        .args(["--socket", &socket.display().to_string(), "--experimental.udpFastPath", "--log.noColor"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the data plane with setpriv");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = Vec::new();
    let until = Instant::now() + READY;
    while Instant::now() < until && !log.iter().any(|l: &String| l.contains("waiting for the control plane"))
    {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            log.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&socket);
    let why: Vec<&String> =
        log.iter().filter(|l| l.contains("--experimental.udpFastPath: not in use")).collect();
    assert_eq!(why.len(), 1, "one line saying why:\n{}", log.join("\n"));
    assert!(why[0].contains("Operation not permitted"), "the reason names the refusal: {}", why[0]);
}
