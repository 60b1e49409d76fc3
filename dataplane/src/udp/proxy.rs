//! A worker's UDP proxy: per UDP entrypoint, one receive loop on the worker's listener socket,
//! one sweeper that ends idle flows, and per flow one connected upstream socket with a reply
//! loop. Replies leave through the listener socket, which is bound to the entrypoint address,
//! so the client sees them come from the address it sent to. The decisions (which flow, which
//! backend, when a flow ends) are [`super::flows`] and [`super::table`]; this only moves bytes.
//!
//! Datagrams move in batches ([`super::batch`]): when a socket is readable (a monoio readiness
//! wait), one `recvmmsg` takes everything queued, and each flow's datagrams of the batch leave
//! together in arrival order (one GSO send for same-size runs, else one `sendmmsg`), so a busy
//! entrypoint costs a few system calls per batch instead of two io_uring operations per datagram.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use monoio::net::udp::UdpSocket;
use socket2::SockAddr;

use super::batch::{self, RecvBatch, BATCH};
use super::fast;
use super::flows::{FlowTable, Lookup};
use super::table::{Balancer, ServiceTree, UdpEntry, UdpTable};
use super::MAX_FLOWS_PER_WORKER;

/// Reply batches kept for reuse per entrypoint (one is enough unless replies wait for a full
/// socket buffer; more are freed after use).
const POOLED_BATCHES: usize = 2;

/// The UDP part of a worker's `Apply`.
pub struct UdpApply {
    /// The UDP table to serve from now on.
    pub table: Arc<UdpTable>,
    /// Entrypoints whose sockets close (before `open` is processed).
    pub close: Vec<String>,
    /// This worker's new sockets, by entrypoint name.
    pub open: Vec<(String, std::net::UdpSocket)>,
}

/// A worker's running UDP entrypoints.
#[derive(Default)]
pub struct WorkerUdp {
    running: HashMap<String, Running>,
}

struct Running {
    entry: Rc<Entry>,
    /// Dropping it stops the receive loop.
    _receive: oneshot::Sender<()>,
    /// Dropping it stops the sweeper.
    _sweeper: oneshot::Sender<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Ends every reply loop (each flow's drop stops its loop).
        let fresh = FlowTable::new(self.entry.timeout, MAX_FLOWS_PER_WORKER);
        drop(std::mem::replace(&mut *self.entry.flows.borrow_mut(), fresh));
    }
}

impl WorkerUdp {
    /// Closes, opens and re-routes UDP entrypoints as `apply` says.
    pub fn apply(&mut self, worker: usize, apply: UdpApply) {
        for name in &apply.close {
            self.running.remove(name);
        }
        for (name, std_socket) in apply.open {
            let Some(spec) = apply.table.entrypoints.get(&name) else { continue };
            match UdpSocket::from_std(std_socket) {
                Ok(socket) => {
                    let entry = Rc::new(Entry::new(spec, socket));
                    let (receive, receive_stop) = oneshot::channel();
                    let (sweeper, sweeper_stop) = oneshot::channel();
                    monoio::spawn(receive_loop(Rc::clone(&entry), receive_stop));
                    monoio::spawn(sweep_loop(Rc::clone(&entry), sweeper_stop));
                    self.running.insert(name, Running { entry, _receive: receive, _sweeper: sweeper });
                }
                Err(e) => tracing::error!(worker, entrypoint = %name, "cannot use UDP socket: {e}"),
            }
        }
        for (name, running) in &self.running {
            if let Some(spec) = apply.table.entrypoints.get(name) {
                running.entry.set_route(spec);
            }
        }
    }
}

/// The GSO limit a new flow starts with: any size, or none when `WEIR_UDP_GSO=off` (every
/// batch then leaves with `sendmmsg`), to compare or to work around a kernel that mishandles GSO.
fn gso_start() -> usize {
    static START: OnceLock<usize> = OnceLock::new();
    *START.get_or_init(|| match std::env::var("WEIR_UDP_GSO") {
        Ok(v) if v == "off" => 0,
        _ => batch::GSO_UNTRIED,
    })
}

/// One UDP entrypoint on one worker.
struct Entry {
    name: Rc<str>,
    /// The bound address (the fast path's "listener" side of a flow).
    address: SocketAddr,
    timeout: Duration,
    listener: UdpSocket,
    flows: RefCell<FlowTable<Flow>>,
    route: RefCell<Option<Route>>,
    /// Batches for backend replies, reused.
    reply_batches: RefCell<Vec<Box<RecvBatch>>>,
}

struct Route {
    router: String,
    tree: Arc<ServiceTree>,
    balancer: Balancer,
}

/// A client's session. Dropping it ends the reply loop, which closes the upstream socket.
struct Flow {
    upstream: Rc<Upstream>,
    _stop: oneshot::Sender<()>,
}

/// A flow's socket connected to its backend, and the GSO segment sizes each way's route has
/// not refused ([`batch::send`]; a route that refuses them limits this flow only).
struct Upstream {
    /// First, so a mirrored flow leaves the map before its socket closes.
    fast: RefCell<Fast>,
    socket: UdpSocket,
    gso_to_backend: Cell<usize>,
    gso_to_client: Cell<usize>,
}

/// A flow's place in the UDP fast path (`--experimental.udpFastPath`).
enum Fast {
    /// Not mirrored: off, not eligible, or the map refused it.
    Off,
    /// To mirror once its first datagram has gone out.
    Pending { client: SocketAddr, backend: SocketAddr },
    /// In the kernel's map; dropping it takes it out.
    On(fast::Mirrored),
}

impl Upstream {
    /// Mirrors the flow into the fast path's map if it waits for that (after its first
    /// datagrams went out through userspace, so the kernel's never overtake them).
    fn mirror_pending(&self, listener: SocketAddr) {
        let mut state = self.fast.borrow_mut();
        if let Fast::Pending { client, backend } = *state {
            let mirrored =
                self.socket.local_addr().ok().and_then(|flow| fast::mirror(listener, client, flow, backend));
            *state = mirrored.map_or(Fast::Off, Fast::On);
        }
    }

    /// When the kernel last forwarded a datagram of this flow (never, if it is not mirrored).
    fn last_forwarded(&self, now: Instant) -> Option<Instant> {
        match &*self.fast.borrow() {
            Fast::On(mirrored) => mirrored.last_forwarded(now),
            _ => None,
        }
    }
}

/// Activity of `flow` the flow table does not see: datagrams the kernel forwarded.
fn seen_in_kernel(now: Instant) -> impl FnMut(&Flow) -> Option<Instant> {
    move |flow| flow.upstream.last_forwarded(now)
}

impl Entry {
    fn new(spec: &UdpEntry, listener: UdpSocket) -> Entry {
        let entry = Entry {
            name: Rc::from(spec.name.as_str()),
            address: spec.address,
            timeout: spec.timeout,
            listener,
            flows: RefCell::new(FlowTable::new(spec.timeout, MAX_FLOWS_PER_WORKER)),
            route: RefCell::new(None),
            reply_batches: RefCell::new(Vec::new()),
        };
        entry.set_route(spec);
        entry
    }

    /// Serves `spec`'s router from now on (new sessions only; live flows keep their backend).
    /// The balancer's rotation carries over when the router and its services did not change.
    fn set_route(&self, spec: &UdpEntry) {
        let mut route = self.route.borrow_mut();
        match (&spec.route, route.as_ref()) {
            (Some((router, tree)), Some(current)) if *router == current.router && *tree == current.tree => {}
            (Some((router, tree)), _) => {
                *route = Some(Route {
                    router: router.clone(),
                    tree: Arc::clone(tree),
                    balancer: Balancer::new(tree),
                })
            }
            (None, _) => *route = None,
        }
    }

    fn reply_batch(&self) -> Box<RecvBatch> {
        self.reply_batches.borrow_mut().pop().unwrap_or_else(RecvBatch::new)
    }

    fn recycle(&self, batch: Box<RecvBatch>) {
        let mut pool = self.reply_batches.borrow_mut();
        if pool.len() < POOLED_BATCHES {
            pool.push(batch);
        }
    }

    /// The upstream of `peer`'s flow, opening a flow (and picking a backend) when it has none;
    /// `None` drops the datagram (no router, no server, no socket).
    fn upstream_for(self: &Rc<Self>, peer: SocketAddr, now: Instant) -> Option<Rc<Upstream>> {
        if let Lookup::Live(flow) = self.flows.borrow_mut().lookup_with(peer, now, seen_in_kernel(now)) {
            return Some(Rc::clone(&flow.upstream));
        }
        let backend = self.route.borrow_mut().as_mut()?.balancer.pick()?;
        let socket = match connect(backend) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(entrypoint = %self.name, %backend, "cannot open a UDP flow: {e}");
                return None;
            }
        };
        let fast = if fast::enabled() { Fast::Pending { client: peer, backend } } else { Fast::Off };
        let upstream = Rc::new(Upstream {
            fast: RefCell::new(fast),
            socket,
            gso_to_backend: Cell::new(gso_start()),
            gso_to_client: Cell::new(gso_start()),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        monoio::spawn(reply_loop(Rc::clone(self), peer, Rc::clone(&upstream), stop_rx));
        let flow = Flow { upstream: Rc::clone(&upstream), _stop: stop_tx };
        // The evicted flow (the table was full) is dropped here, which closes it.
        drop(self.flows.borrow_mut().insert(peer, flow, now));
        Some(upstream)
    }
}

/// A socket connected to `backend`, from an ephemeral port of the same family.
fn connect(backend: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if backend.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let s = std::net::UdpSocket::bind(local)?;
    s.connect(backend)?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s)
}

/// Waits until `socket` is readable; `false` when `stop` fired (or its sender went away).
async fn readable_or_stop(socket: &UdpSocket, stop: &mut oneshot::Receiver<()>) -> bool {
    // Not relaxed: the reads are ours (recvmmsg), so the legacy driver must ask the kernel
    // rather than trust readiness it saw earlier.
    let readable = std::pin::pin!(socket.readable(false));
    match select(readable, stop).await {
        Either::Left((Ok(()), _)) => true,
        Either::Left((Err(e), _)) => {
            // Not expected from a poll; pause so an error that persists cannot spin.
            tracing::debug!("UDP readiness: {e}");
            monoio::time::sleep(Duration::from_millis(1)).await;
            true
        }
        Either::Right(_) => false,
    }
}

/// Sends `datagrams` in order through `socket` (to `dest`, or its connected peer), waiting
/// when its buffer is full. A datagram the kernel refuses (typically ECONNREFUSED reported
/// for an earlier one) is lost, as UDP loses it, as Traefik does.
async fn send_all(
    socket: &UdpSocket,
    dest: Option<&SockAddr>,
    datagrams: &[&[u8]],
    gso: &Cell<usize>,
    what: &str,
) {
    let fd = socket.as_raw_fd();
    let mut done = 0;
    while done < datagrams.len() {
        match batch::send(fd, dest, &datagrams[done..], gso) {
            Ok(n) => done += n.max(1),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = socket.writable(false).await {
                    tracing::debug!("{what}: waiting to send: {e}");
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("{what}: {e}");
                done += 1;
            }
        }
    }
}

/// Client datagrams → their flow's upstream socket, a batch at a time.
async fn receive_loop(entry: Rc<Entry>, mut stop: oneshot::Receiver<()>) {
    let mut batch = RecvBatch::new();
    let mut targets: Vec<Option<Rc<Upstream>>> = Vec::with_capacity(BATCH);
    let fd = entry.listener.as_raw_fd();
    let what = format!("UDP entrypoint {}: send upstream", entry.name);
    loop {
        // Waiting for readiness after every batch, even a full one, is also what lets the
        // worker's other tasks run under a flood.
        if !readable_or_stop(&entry.listener, &mut stop).await {
            return;
        }
        let n = match batch.recv(fd) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => continue,
            Err(e) => {
                tracing::debug!(entrypoint = %entry.name, "UDP receive: {e}");
                monoio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        fast::count_userspace(n);
        // One clock read per batch: the datagrams of a batch arrived together.
        let now = Instant::now();
        targets.clear();
        targets.extend((0..n).map(|i| batch.source(i).and_then(|peer| entry.upstream_for(peer, now))));
        // Each flow's datagrams together, in the order they arrived.
        for i in 0..n {
            let Some(upstream) = targets[i].take() else { continue };
            let mut group: [&[u8]; BATCH] = [&[]; BATCH];
            group[0] = batch.datagram(i);
            let mut len = 1;
            for (j, target) in targets.iter_mut().enumerate().skip(i + 1) {
                if target.as_ref().is_some_and(|t| Rc::ptr_eq(t, &upstream)) {
                    *target = None;
                    group[len] = batch.datagram(j);
                    len += 1;
                }
            }
            send_all(&upstream.socket, None, &group[..len], &upstream.gso_to_backend, &what).await;
            upstream.mirror_pending(entry.address);
        }
    }
}

/// Backend datagrams → the client, through the listener socket, a batch at a time.
async fn reply_loop(
    entry: Rc<Entry>,
    peer: SocketAddr,
    upstream: Rc<Upstream>,
    mut stop: oneshot::Receiver<()>,
) {
    let dest = SockAddr::from(peer);
    let fd = upstream.socket.as_raw_fd();
    let what = format!("UDP entrypoint {}: send to client {peer}", entry.name);
    loop {
        // Wait without holding a batch, so idle flows cost no buffer memory.
        if !readable_or_stop(&upstream.socket, &mut stop).await {
            return;
        }
        let mut batch = entry.reply_batch();
        let ended = loop {
            let n = match batch.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                // The backend's port was closed (ICMP) for an earlier datagram: later ones may
                // find it open again. The error is consumed; read on.
                Err(e)
                    if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted) =>
                {
                    continue
                }
                Err(e) => {
                    tracing::debug!(entrypoint = %entry.name, %peer, "UDP receive from backend: {e}");
                    break true;
                }
            };
            fast::count_userspace(n);
            entry.flows.borrow_mut().touch(peer, Instant::now());
            let mut group: [&[u8]; BATCH] = [&[]; BATCH];
            for (i, slot) in group.iter_mut().enumerate().take(n) {
                *slot = batch.datagram(i);
            }
            send_all(&entry.listener, Some(&dest), &group[..n], &upstream.gso_to_client, &what).await;
            if n < BATCH {
                break false;
            }
        };
        entry.recycle(batch);
        if ended {
            return;
        }
    }
}

/// Ends idle flows, so their sockets close without waiting for the client's next datagram.
async fn sweep_loop(entry: Rc<Entry>, mut stop: oneshot::Receiver<()>) {
    let period = (entry.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        let tick = std::pin::pin!(monoio::time::sleep(period));
        if let Either::Right(_) = select(tick, &mut stop).await {
            return;
        }
        let now = Instant::now();
        let ended = entry.flows.borrow_mut().expire_with(now, seen_in_kernel(now));
        drop(ended);
    }
}
