//! A worker's UDP proxy: per UDP entrypoint, one receive loop on the worker's listener socket,
//! one sweeper that ends idle flows, and per flow one connected upstream socket with a reply
//! loop. Replies leave through the listener socket, which is bound to the entrypoint address,
//! so the client sees them come from the address it sent to. The decisions (which flow, which
//! backend, when a flow ends) are [`super::flows`] and [`super::table`]; this only moves bytes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use monoio::io::{CancelHandle, Canceller};
use monoio::net::udp::UdpSocket;

use super::flows::{FlowTable, Lookup};
use super::table::{Balancer, ServiceTree, UdpEntry, UdpTable};
use super::{MAX_DATAGRAM, MAX_FLOWS_PER_WORKER};

/// Reply buffers kept for reuse per entrypoint (more are freed after use).
const POOLED_BUFFERS: usize = 16;

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
    /// Stops the receive loop.
    receive: Canceller,
    /// Dropping it stops the sweeper.
    _sweeper: oneshot::Sender<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.entry.closed.set(true);
        std::mem::take(&mut self.receive).cancel();
        // Ends every reply loop (each flow's drop cancels its loop).
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
                    let receive = Canceller::new();
                    let (sweeper, sweeper_stop) = oneshot::channel();
                    monoio::spawn(receive_loop(Rc::clone(&entry), receive.handle()));
                    monoio::spawn(sweep_loop(Rc::clone(&entry), sweeper_stop));
                    self.running.insert(name, Running { entry, receive, _sweeper: sweeper });
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

/// One UDP entrypoint on one worker.
struct Entry {
    name: Rc<str>,
    /// Set when the entrypoint closes on this worker (the receive loop then ends).
    closed: std::cell::Cell<bool>,
    timeout: Duration,
    listener: UdpSocket,
    flows: RefCell<FlowTable<Flow>>,
    route: RefCell<Option<Route>>,
    buffers: RefCell<Vec<Vec<u8>>>,
}

struct Route {
    router: String,
    tree: Arc<ServiceTree>,
    balancer: Balancer,
}

/// A client's session: its connected upstream socket. Dropping it ends the reply loop.
struct Flow {
    upstream: Rc<UdpSocket>,
    reply: Canceller,
    _stop: oneshot::Sender<()>,
}

impl Drop for Flow {
    fn drop(&mut self) {
        std::mem::take(&mut self.reply).cancel();
    }
}

impl Entry {
    fn new(spec: &UdpEntry, listener: UdpSocket) -> Entry {
        let entry = Entry {
            name: Rc::from(spec.name.as_str()),
            closed: std::cell::Cell::new(false),
            timeout: spec.timeout,
            listener,
            flows: RefCell::new(FlowTable::new(spec.timeout, MAX_FLOWS_PER_WORKER)),
            route: RefCell::new(None),
            buffers: RefCell::new(Vec::new()),
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

    fn buffer(&self) -> Vec<u8> {
        self.buffers.borrow_mut().pop().unwrap_or_else(|| Vec::with_capacity(MAX_DATAGRAM))
    }

    fn recycle(&self, buf: Vec<u8>) {
        let mut pool = self.buffers.borrow_mut();
        if pool.len() < POOLED_BUFFERS {
            pool.push(buf);
        }
    }

    /// The upstream socket of `peer`'s flow, opening a flow (and picking a backend) when it
    /// has none; `None` drops the datagram (no router, no server, no socket).
    fn upstream_for(self: &Rc<Self>, peer: SocketAddr, now: Instant) -> Option<Rc<UdpSocket>> {
        if let Lookup::Live(flow) = self.flows.borrow_mut().lookup(peer, now) {
            return Some(Rc::clone(&flow.upstream));
        }
        let backend = self.route.borrow_mut().as_mut()?.balancer.pick()?;
        let upstream = match connect(backend) {
            Ok(s) => Rc::new(s),
            Err(e) => {
                tracing::debug!(entrypoint = %self.name, %backend, "cannot open a UDP flow: {e}");
                return None;
            }
        };
        let reply = Canceller::new();
        let (stop_tx, stop_rx) = oneshot::channel();
        monoio::spawn(reply_loop(Rc::clone(self), peer, Rc::clone(&upstream), reply.handle(), stop_rx));
        let flow = Flow { upstream: Rc::clone(&upstream), reply, _stop: stop_tx };
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

/// Client datagrams → their flow's upstream socket.
async fn receive_loop(entry: Rc<Entry>, cancel: CancelHandle) {
    let mut buf = Vec::with_capacity(MAX_DATAGRAM);
    loop {
        let (res, b) = entry.listener.cancelable_recv_from(buf, cancel.clone()).await;
        buf = b;
        let peer = match res {
            Ok((_, peer)) => peer,
            Err(_) if entry.closed.get() => return,
            Err(e) => {
                tracing::debug!(entrypoint = %entry.name, "UDP receive: {e}");
                monoio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let Some(upstream) = entry.upstream_for(peer, Instant::now()) else { continue };
        let (res, b) = upstream.send(buf).await;
        buf = b;
        if let Err(e) = res {
            // Typically ECONNREFUSED reported for an earlier datagram: UDP loses it, as Traefik does.
            tracing::debug!(entrypoint = %entry.name, %peer, "UDP send upstream: {e}");
        }
    }
}

/// Backend datagrams → the client, through the listener socket.
async fn reply_loop(
    entry: Rc<Entry>,
    peer: SocketAddr,
    upstream: Rc<UdpSocket>,
    cancel: CancelHandle,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        // Wait for data without holding a buffer, so idle flows cost no buffer memory.
        let readable = std::pin::pin!(upstream.readable(true));
        match select(readable, &mut stop).await {
            Either::Left((Ok(()), _)) => {}
            Either::Left((Err(_), _)) | Either::Right(_) => return,
        }
        let (res, buf) = upstream.cancelable_recv(entry.buffer(), cancel.clone()).await;
        match res {
            Ok(_) => {
                entry.flows.borrow_mut().touch(peer, Instant::now());
                let (res, buf) = entry.listener.send_to(buf, peer).await;
                entry.recycle(buf);
                if let Err(e) = res {
                    tracing::debug!(entrypoint = %entry.name, %peer, "UDP send to client: {e}");
                }
            }
            // The flow ended (its `Flow` dropped the sender).
            Err(_) if stop.try_recv().is_err() => return,
            // The backend's port is closed (ICMP): later datagrams may find it open again.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => entry.recycle(buf),
            Err(e) => {
                tracing::debug!(entrypoint = %entry.name, %peer, "UDP receive from backend: {e}");
                return;
            }
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
        let ended = entry.flows.borrow_mut().expire(Instant::now());
        drop(ended);
    }
}
