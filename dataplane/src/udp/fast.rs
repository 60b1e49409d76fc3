//! The UDP fast path (`--experimental.udpFastPath`): established flows mirrored into the flows
//! map of weir-ebpf's TC program, which then rewrites and forwards their datagrams in the
//! kernel both ways. The proxy ([`super::proxy`]) still opens every flow (the first datagram
//! always comes through userspace) and still owns its end: a mirrored flow keeps its socket,
//! and its map entries leave with it ([`Mirrored`]'s drop). Expiry stays consistent because
//! the flow table asks [`Mirrored::last_forwarded`] before ending a flow it saw idle.
//!
//! Which flows: IPv4 (or v4-mapped) clients and backends, both on loopback or both not (the
//! kernel drops a packet rewritten toward 127/8 that arrived on another interface). Anything
//! else, or a map error, leaves the flow on the userspace path, which always works.
//!
//! The program and its counters live in one keeper thread (like the sockmap's watcher), so
//! scrapes read atomics and workers never take a lock; each worker has its own map handle.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use weir_ebpf::{FlowMap, FlowPair, UdpFastCounters, UdpFastPath};

/// How often the keeper copies the program's counters for `/metrics`.
const COUNTERS_EVERY: Duration = Duration::from_millis(250);
/// How long a worker trusts what it learnt about an address (local or not, which interface).
const ROUTE_TTL: Duration = Duration::from_secs(5);

/// The program's counters as the keeper last read them: packets, bytes, redirects, drops,
/// passed.
static COUNTERS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
/// Flows mirrored into the map right now.
static MIRRORED: AtomicU64 = AtomicU64::new(0);
/// Datagrams the userspace proxy relayed (both ways): the fast path's comparison partner.
static USERSPACE: AtomicU64 = AtomicU64::new(0);

struct Enabled {
    /// The handle workers clone theirs from.
    flows: FlowMap,
    /// Asks the keeper to detach (answered when done).
    stop: mpsc::Sender<mpsc::Sender<()>>,
}

static FAST: OnceLock<Option<Enabled>> = OnceLock::new();

thread_local! {
    /// This worker's map handle and route cache (created at its first mirrored flow).
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

struct Worker {
    flows: FlowMap,
    /// IPv4 address → (interface to reach it, 0 = local; when learnt).
    routes: HashMap<Ipv4Addr, (u32, Instant)>,
}

/// Loads the TC program on `interfaces` (None: loopback and every interface with a route) and
/// starts the keeper; once, at start. On failure weir logs why once and stays on the
/// userspace path.
pub fn enable(interfaces: Option<Vec<String>>) {
    FAST.get_or_init(|| {
        let interfaces = interfaces.unwrap_or_else(routed_interfaces);
        match start(&interfaces) {
            Ok(enabled) => {
                tracing::info!(?interfaces, "experimental UDP fast path enabled (TC program on ingress)");
                Some(enabled)
            }
            Err(e) => {
                tracing::warn!(
                    "--experimental.udpFastPath: not in use, UDP stays on the userspace path: {e}"
                );
                None
            }
        }
    });
}

/// Detaches the program (at exit; waits for the keeper at most a second).
pub fn disable() {
    let Some(Some(enabled)) = FAST.get() else { return };
    let (tx, rx) = mpsc::channel();
    if enabled.stop.send(tx).is_ok() {
        let _ = rx.recv_timeout(Duration::from_secs(1));
    }
}

/// Whether new flows are mirrored.
pub fn enabled() -> bool {
    matches!(FAST.get(), Some(Some(_)))
}

/// The program's counters (None when the fast path is not in use).
pub fn counters() -> Option<UdpFastCounters> {
    FAST.get()?.as_ref()?;
    let c = |i: usize| COUNTERS[i].load(Ordering::Relaxed);
    Some(UdpFastCounters { packets: c(0), bytes: c(1), redirects: c(2), drops: c(3), passed: c(4) })
}

/// Flows mirrored into the map now.
pub fn mirrored_flows() -> u64 {
    MIRRORED.load(Ordering::Relaxed)
}

/// Datagrams relayed by the userspace proxy since start.
pub fn userspace_datagrams() -> u64 {
    USERSPACE.load(Ordering::Relaxed)
}

/// Counts `n` datagrams relayed in userspace (once per batch).
pub fn count_userspace(n: usize) {
    USERSPACE.fetch_add(n as u64, Ordering::Relaxed);
}

/// An error and its innermost source (aya keeps the OS error there, e.g. EPERM without
/// CAP_BPF; the layers between repeat each other).
fn chain(e: &dyn std::error::Error) -> String {
    let mut innermost = None;
    let mut source = e.source();
    while let Some(s) = source {
        innermost = Some(s);
        source = s.source();
    }
    match innermost {
        Some(root) => format!("{e} ({root})"),
        None => e.to_string(),
    }
}

fn start(interfaces: &[String]) -> Result<Enabled, String> {
    let path = UdpFastPath::load(interfaces).map_err(|e| chain(&e))?;
    let flows = path.flows().map_err(|e| e.to_string())?;
    let (stop, stopped) = mpsc::channel::<mpsc::Sender<()>>();
    std::thread::Builder::new()
        .name("weir-udp-fast".into())
        .spawn(move || keep(path, stopped))
        .map_err(|e| format!("keeper thread: {e}"))?;
    Ok(Enabled { flows, stop })
}

/// Owns the program: copies its counters until asked to stop, then drops it (detaching it).
fn keep(path: UdpFastPath, stop: mpsc::Receiver<mpsc::Sender<()>>) {
    loop {
        let c = path.counters();
        for (slot, v) in COUNTERS.iter().zip([c.packets, c.bytes, c.redirects, c.drops, c.passed]) {
            slot.store(v, Ordering::Relaxed);
        }
        match stop.recv_timeout(COUNTERS_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(done) => {
                drop(path);
                let _ = done.send(());
                return;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// `lo` and every interface the main routing table names (where UDP traffic can come from).
fn routed_interfaces() -> Vec<String> {
    let mut out = vec!["lo".to_string()];
    if let Ok(table) = std::fs::read_to_string("/proc/net/route") {
        for line in table.lines().skip(1) {
            if let Some(name) = line.split_whitespace().next() {
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}

/// A flow in the map; dropping it removes its two entries.
pub struct Mirrored {
    pair: FlowPair,
}

impl std::fmt::Debug for Mirrored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirrored").field("pair", &self.pair).finish()
    }
}

/// IPv4, or IPv4 mapped into IPv6 (a dual-stack listener's IPv4 clients).
fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

/// Mirrors a flow whose first datagram went out: `listener` is the entrypoint's bound
/// address, `client` the client, `flow` the flow socket's local address (connected: its IP
/// is concrete), `backend` the backend. `None` when the flow is not eligible or the map
/// refused it (the flow stays on the userspace path).
pub fn mirror(
    listener: SocketAddr,
    client: SocketAddr,
    flow: SocketAddr,
    backend: SocketAddr,
) -> Option<Mirrored> {
    let enabled = FAST.get()?.as_ref()?;
    let (client, backend, flow) = (v4(client)?, v4(backend)?, v4(flow)?);
    // Rewriting a packet that came in on eth0 toward 127/8 (or the reverse from lo with a
    // local route) is dropped by the kernel as martian: those flows stay in userspace.
    if client.ip().is_loopback() != backend.ip().is_loopback() {
        return None;
    }
    let listener = match listener {
        // A dual-stack wildcard listener serves IPv4 clients too.
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, a.port()),
        other => v4(other)?,
    };
    let listener = if listener.ip().is_unspecified() {
        // A wildcard listener answers from the source the kernel picks toward the client;
        // a client that wrote to another local address misses in the map and keeps being
        // served in userspace.
        SocketAddrV4::new(source_toward(client)?, listener.port())
    } else {
        listener
    };
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_none() {
            match enabled.flows.try_clone() {
                Ok(flows) => *w = Some(Worker { flows, routes: HashMap::new() }),
                Err(e) => {
                    tracing::debug!("UDP fast path: no map handle on this worker: {e}");
                    return None;
                }
            }
        }
        let w = w.as_mut()?;
        let pair = FlowPair {
            client,
            listener,
            flow,
            backend,
            to_backend_ifindex: w.route(*backend.ip())?,
            to_client_ifindex: w.route(*client.ip())?,
        };
        match w.flows.insert(&pair) {
            Ok(()) => {
                MIRRORED.fetch_add(1, Ordering::Relaxed);
                Some(Mirrored { pair })
            }
            Err(e) => {
                tracing::debug!(?pair, "UDP fast path: cannot mirror the flow: {e}");
                None
            }
        }
    })
}

impl Mirrored {
    /// When the kernel last forwarded a datagram of this flow (either way), on the clock of
    /// `now`; `None` when it has forwarded none.
    pub fn last_forwarded(&self, now: Instant) -> Option<Instant> {
        let last = WORKER.with(|w| w.borrow().as_ref().map(|w| w.flows.activity(&self.pair)))?.last_seen_ns?;
        let age = weir_ebpf::udp_fast::monotonic_ns().saturating_sub(last);
        now.checked_sub(Duration::from_nanos(age))
    }
}

impl Drop for Mirrored {
    fn drop(&mut self) {
        MIRRORED.fetch_sub(1, Ordering::Relaxed);
        WORKER.with(|w| {
            if let Some(w) = w.borrow_mut().as_mut() {
                w.flows.remove(&self.pair);
            }
        });
    }
}

impl Worker {
    /// The interface toward `ip` (0 when it is local), learnt at most [`ROUTE_TTL`] ago.
    fn route(&mut self, ip: Ipv4Addr) -> Option<u32> {
        let now = Instant::now();
        if let Some((ifindex, at)) = self.routes.get(&ip) {
            if now.duration_since(*at) < ROUTE_TTL {
                return Some(*ifindex);
            }
        }
        let ifindex = if is_local(ip) { 0 } else { route_ifindex(ip)? };
        if self.routes.len() > 4096 {
            self.routes.clear();
        }
        self.routes.insert(ip, (ifindex, now));
        Some(ifindex)
    }
}

/// Whether `ip` is an address of this host (it can be bound).
fn is_local(ip: Ipv4Addr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// The source address the kernel picks for datagrams to `to`.
fn source_toward(to: SocketAddrV4) -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(to).ok()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(a) => Some(*a.ip()),
        SocketAddr::V6(_) => None,
    }
}

/// The interface of the main table's longest-prefix route to `ip` (`/proc/net/route`).
fn route_ifindex(ip: Ipv4Addr) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    let name = longest_prefix(&table, ip)?;
    let ifindex = rustix::net::netdevice::name_to_index(
        &rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None).ok()?,
        &name,
    )
    .ok()?;
    Some(ifindex)
}

/// The interface name of the longest matching route in a `/proc/net/route` text (its
/// addresses are hexadecimal in host byte order).
fn longest_prefix(table: &str, ip: Ipv4Addr) -> Option<String> {
    let target = u32::from_ne_bytes(ip.octets());
    let mut best: Option<(u32, &str)> = None;
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(dest), Some(mask)) = (f.first(), f.get(1), f.get(7)) else { continue };
        let (Ok(dest), Ok(mask)) = (u32::from_str_radix(dest, 16), u32::from_str_radix(mask, 16)) else {
            continue;
        };
        if target & mask == dest && best.is_none_or(|(m, _)| mask.count_ones() > m) {
            best = Some((mask.count_ones(), name));
        }
    }
    best.map(|(_, name)| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins() {
        // Destination, gateway and mask in host byte order, as the kernel writes them.
        let hex = |ip: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(ip));
        let row = |name: &str, dest: [u8; 4], mask: [u8; 4]| {
            format!("{name}\t{}\t00000000\t0001\t0\t0\t0\t{}\t0\t0\t0", hex(dest), hex(mask))
        };
        let table = [
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT".to_string(),
            row("eth0", [0, 0, 0, 0], [0, 0, 0, 0]),
            row("veth1", [10, 1, 0, 0], [255, 255, 0, 0]),
            row("veth2", [10, 1, 2, 0], [255, 255, 255, 0]),
        ]
        .join("\n");
        type Case = (&'static str, [u8; 4], Option<&'static str>);
        let cases: [Case; 3] = [
            ("default route", [8, 8, 8, 8], Some("eth0")),
            ("a /16", [10, 1, 9, 9], Some("veth1")),
            ("the /24 inside it", [10, 1, 2, 3], Some("veth2")),
        ];
        for (name, ip, want) in cases {
            assert_eq!(longest_prefix(&table, Ipv4Addr::from(ip)).as_deref(), want, "{name}");
        }
        assert_eq!(longest_prefix("Iface\n", Ipv4Addr::LOCALHOST), None, "no route");
    }

    #[test]
    fn v4_mapped_clients_count_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:53".parse().expect("addr");
        assert_eq!(v4(mapped), Some("10.0.0.1:53".parse().expect("addr")));
        assert_eq!(v4("[2001:db8::1]:53".parse().expect("addr")), None, "IPv6 stays in userspace");
    }
}
