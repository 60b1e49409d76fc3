//! The control thread: listens on the control socket, receives snapshots (sealed memfds),
//! builds tables, opens and closes listeners, hands both to the workers and answers
//! `applied N` or `rejected N: reason`. A rejected snapshot changes nothing. Every applied
//! snapshot is also written (atomically) to a state file, so a restarted data plane serves its
//! last configuration before the control plane is back. Endpoint churn arrives as an
//! `Endpoints` delta on top of the served snapshot: only services are rebuilt, and a delta
//! whose base is not the served generation is rejected (the control plane then sends the
//! full snapshot).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use weir_proto::channel::{read_sealed, ChannelError, Conn, Listener};
use weir_proto::{ConfigDelta, DeltaBody, EndpointsDelta, Frame, Snapshot};

use crate::table::{Reuse, Table};
use crate::worker::{Apply, WorkerHandle};

/// State owned by the control thread.
pub struct Control {
    workers: Vec<WorkerHandle>,
    /// Open listeners: entrypoint name → address.
    listeners: HashMap<String, SocketAddr>,
    generation: u64,
    /// Where the last applied snapshot is kept across restarts.
    state: Option<PathBuf>,
    /// The snapshot served and its table: the base endpoints deltas apply to.
    current: Option<(Snapshot, Arc<Table>)>,
    /// Open UDP entrypoint sockets.
    udp: crate::udp::UdpSockets,
    /// eBPF per-core steering of the listener groups (off until `set_steering`).
    steering: crate::steering::Steering,
    /// Listening sockets reported to, and handed back by, the control plane.
    handover: crate::handover::Handover,
}

impl Control {
    /// Control state over running workers, persisting applied snapshots to `state`.
    pub fn new(workers: Vec<WorkerHandle>, state: Option<PathBuf>) -> Control {
        let steering = crate::steering::Steering::disabled();
        Control {
            workers,
            listeners: HashMap::new(),
            generation: 0,
            state,
            current: None,
            steering,
            udp: crate::udp::UdpSockets::default(),
            handover: crate::handover::Handover::default(),
        }
    }

    /// Steers the listener groups opened from now on (see `steering`).
    pub fn set_steering(&mut self, steering: crate::steering::Steering) {
        self.steering = steering;
    }

    /// Serves the snapshot persisted by a previous run, if there is one. A missing file is
    /// normal (first start); an unreadable or invalid one is logged and ignored.
    pub fn restore(&mut self) {
        let Some(path) = self.state.clone() else { return };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(state = %path.display(), "cannot read the persisted snapshot: {e}");
                return;
            }
        };
        let generation = match Snapshot::decode(&bytes) {
            Ok(s) => s.generation,
            Err(e) => {
                tracing::warn!(state = %path.display(), "persisted snapshot ignored: {e}");
                return;
            }
        };
        match self.apply_bytes(generation, &bytes) {
            Ok(()) => {
                tracing::info!(generation, state = %path.display(), "serving persisted generation {generation}")
            }
            Err(e) => tracing::warn!(state = %path.display(), "persisted snapshot not applied: {e}"),
        }
    }

    /// Persists the snapshot served (after an endpoints delta, which only the data plane has
    /// whole).
    fn persist_served(&self) {
        match self.current.as_ref().map(|(s, _)| s.encode()) {
            Some(Ok(bytes)) => self.persist(&bytes),
            Some(Err(e)) => tracing::warn!("cannot persist the snapshot: {e}"),
            None => {}
        }
    }

    /// Writes the snapshot next to its final name, then renames it into place.
    fn persist(&self, bytes: &[u8]) {
        let Some(path) = &self.state else { return };
        let tmp = path.with_extension("tmp");
        // The snapshot holds private keys (TLS): only our uid may read it. A stale temporary
        // file would keep its old mode, so it goes first.
        let _ = std::fs::remove_file(&tmp);
        let written = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new().write(true).create(true).truncate(true),
            0o600,
        )
        .open(&tmp)
        .and_then(|mut f| {
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::warn!(state = %path.display(), "cannot persist the snapshot: {e}");
        }
    }

    /// Serves the control socket forever, one control-plane connection at a time. A data
    /// plane that serves nothing yet first gives a control plane `RESTORE_GRACE` to connect
    /// (it may hold the sockets of the previous data plane, see `handover`), then serves the
    /// persisted snapshot.
    pub fn serve(&mut self, path: &Path) -> Result<(), ChannelError> {
        let listener = Listener::bind(path)?;
        tracing::info!(socket = %path.display(), "waiting for the control plane");
        if self.current.is_none() && !control_plane_knocks(&listener, RESTORE_GRACE) {
            self.restore();
        }
        loop {
            let conn = match listener.accept() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("refused control connection: {e}");
                    continue;
                }
            };
            tracing::info!(generation = self.generation, "control plane connected");
            match self.session(&conn) {
                Err(ChannelError::Closed) => {}
                Err(e) => tracing::warn!("control connection failed: {e}"),
                Ok(()) => {}
            }
            tracing::info!(generation = self.generation, "control plane disconnected; still serving");
        }
    }

    fn session(&mut self, conn: &Conn) -> Result<(), ChannelError> {
        conn.send(&Frame::Hello { generation: self.generation }, None)?;
        // The control plane learns which sockets we serve (none: it may hand some over).
        self.report_listeners(conn, true)?;
        loop {
            let received = match conn.recv_fds() {
                Ok((Frame::Listeners { entries, .. }, fds)) => {
                    self.handover.inherit(entries, fds);
                    continue;
                }
                Ok((frame, fds)) => Ok((frame, fds.into_iter().next())),
                Err(e) => Err(e),
            };
            // Persisting (encode, write, fsync) waits until the ack is out: "applied" means every
            // worker serves the generation, and the file only matters to a restarted data plane.
            let mut persist: Option<Persist> = None;
            let reply = match received {
                Ok((Frame::Snapshot { generation, size }, Some(fd))) => {
                    let started = std::time::Instant::now();
                    match self.apply(generation, size, fd) {
                        Ok(bytes) => {
                            tracing::info!(
                                generation,
                                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                                "applied generation {generation}"
                            );
                            persist = Some(Persist::Bytes(bytes));
                            Frame::Applied { generation }
                        }
                        Err(reason) => {
                            tracing::error!(generation, "rejected generation {generation}: {reason}");
                            Frame::Rejected { generation, reason }
                        }
                    }
                }
                Ok((Frame::Snapshot { generation, .. }, None)) => {
                    Frame::Rejected { generation, reason: "snapshot frame without a memfd".into() }
                }
                Ok((Frame::Endpoints { generation, body }, fd)) => {
                    match self.apply_endpoints(generation, body, fd) {
                        Ok(services) => {
                            tracing::info!(
                                generation,
                                services,
                                "applied generation {generation} (endpoints delta)"
                            );
                            persist = Some(Persist::Served);
                            Frame::Applied { generation }
                        }
                        Err(reason) => {
                            tracing::warn!(generation, "rejected endpoints delta {generation}: {reason}");
                            Frame::Rejected { generation, reason }
                        }
                    }
                }
                Ok((Frame::Delta { generation, body }, fd)) => {
                    let started = std::time::Instant::now();
                    match self.apply_delta(generation, body, fd) {
                        Ok(items) => {
                            tracing::info!(
                                generation,
                                items,
                                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                                "applied generation {generation} (configuration delta)"
                            );
                            persist = Some(Persist::Served);
                            Frame::Applied { generation }
                        }
                        Err(reason) => {
                            tracing::warn!(generation, "rejected configuration delta {generation}: {reason}");
                            Frame::Rejected { generation, reason }
                        }
                    }
                }
                Ok((other, _)) => {
                    tracing::warn!("unexpected frame from the control plane: {other:?}");
                    continue;
                }
                Err(ChannelError::Frame(e)) => {
                    // Not a panic, not a silent drop: tell the peer what we could not read.
                    tracing::error!("undecodable frame from the control plane: {e}");
                    Frame::Rejected { generation: 0, reason: e.to_string() }
                }
                Err(e) => return Err(e),
            };
            conn.send(&reply, None)?;
            match persist {
                Some(Persist::Bytes(bytes)) => self.persist(&bytes),
                Some(Persist::Served) => self.persist_served(),
                None => {}
            }
            self.report_listeners(conn, false)?;
        }
    }

    /// Sends the control plane the listening sockets served, when they changed (or `force`).
    fn report_listeners(&mut self, conn: &Conn, force: bool) -> Result<(), ChannelError> {
        for (frame, fds) in self.handover.report(force) {
            conn.send_fds(&frame, &fds)?;
        }
        Ok(())
    }

    /// Applies a full snapshot; returns its bytes, to persist once the ack is sent.
    fn apply(&mut self, generation: u64, size: u64, fd: OwnedFd) -> Result<Vec<u8>, String> {
        let bytes = read_sealed(&fd, size).map_err(|e| e.to_string())?;
        self.apply_bytes(generation, &bytes)?;
        Ok(bytes)
    }

    /// Takes the served snapshot and table out, for a delta numbered `delta_generation` (which
    /// must be the frame's `generation`) on top of `base`; the caller puts them back or
    /// replaces them.
    fn take_served(
        &mut self,
        generation: u64,
        delta_generation: u64,
        base: u64,
    ) -> Result<(Snapshot, Arc<Table>), String> {
        if delta_generation != generation {
            return Err(format!("frame says generation {generation}, delta says {delta_generation}"));
        }
        self.current
            .take()
            .ok_or_else(|| format!("no snapshot is served to apply a delta based on {base} to"))
    }

    /// Applies a configuration delta on top of the served snapshot; returns how many routers,
    /// services and middlewares it changed. A delta that does not fit changes nothing; one that
    /// fits but whose result does not build leaves no served snapshot behind (the workers keep
    /// serving the previous table), so later deltas are refused until the control plane sends
    /// a full snapshot, which it does for any rejected delta.
    fn apply_delta(
        &mut self,
        generation: u64,
        body: DeltaBody,
        fd: Option<OwnedFd>,
    ) -> Result<usize, String> {
        let delta = ConfigDelta::decode(&delta_bytes(body, fd)?).map_err(|e| e.to_string())?;
        let (mut next, table) = self.take_served(generation, delta.generation, delta.base_generation)?;
        let items = delta.routers.len() + delta.services.len() + delta.middlewares.len();
        let changed: std::collections::HashSet<String> =
            delta.changed_services().map(str::to_string).collect();
        if let Err(e) = delta.apply_to(&mut next) {
            self.current = Some((next, table));
            return Err(e.to_string());
        }
        let unchanged = |svc: &weir_proto::snapshot::Service| !changed.contains(svc.name.as_str());
        self.apply_snapshot(generation, next, Some(Reuse { table: &table, unchanged: &unchanged }))?;
        drop_later(table);
        Ok(items)
    }

    /// Applies an endpoints delta on top of the served snapshot; returns how many services
    /// it changed. Nothing changes unless it applies whole. The new snapshot is persisted by
    /// the caller, after the ack.
    fn apply_endpoints(
        &mut self,
        generation: u64,
        body: DeltaBody,
        fd: Option<OwnedFd>,
    ) -> Result<usize, String> {
        let delta = EndpointsDelta::decode(&delta_bytes(body, fd)?).map_err(|e| e.to_string())?;
        let (mut served, table) = self.take_served(generation, delta.generation, delta.base_generation)?;
        // Changed in place (not copied: 10,000 services take milliseconds to clone); the
        // delta checks everything before it changes anything.
        if let Err(e) = delta.apply_to(&mut served) {
            self.current = Some((served, table));
            return Err(e.to_string());
        }
        let changed: std::collections::HashSet<&str> = delta.service_names().collect();
        let unchanged = |svc: &weir_proto::snapshot::Service| !changed.contains(svc.name.as_str());
        let next = match table.with_servers(&served, &unchanged) {
            Ok(next) => Arc::new(next),
            // The served snapshot now has the delta's servers and the workers the old table:
            // forget the snapshot, so the control plane's answer is a full one.
            Err(e) => return Err(e.to_string()),
        };
        // A delta never changes UDP (`EndpointsDelta::between` requires it equal).
        self.hand_to_workers(generation, &next, Vec::new(), Vec::new(), None);
        self.generation = generation;
        crate::health::publish(&next.health_targets);
        self.current = Some((served, next));
        drop_later(table);
        Ok(delta.services.len())
    }

    /// Sends `table` (and listener changes) to every worker and waits, bounded, for each to
    /// serve it.
    fn hand_to_workers(
        &self,
        generation: u64,
        table: &Arc<Table>,
        close: Vec<String>,
        open: Vec<Vec<(String, std::net::TcpListener)>>,
        udp: Option<(Arc<crate::udp::UdpTable>, crate::udp::sockets::UdpChange)>,
    ) {
        let mut open = open.into_iter();
        let (udp_table, udp_close, mut udp_open) = match udp {
            Some((table, change)) => (Some(table), change.close, change.open.into_iter()),
            None => (None, Vec::new(), Vec::new().into_iter()),
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for (i, w) in self.workers.iter().enumerate() {
            let mine = open.next().unwrap_or_default();
            let udp = udp_table.as_ref().map(|t| crate::udp::UdpApply {
                table: Arc::clone(t),
                close: udp_close.clone(),
                open: udp_open.next().unwrap_or_default(),
            });
            let cmd = Apply {
                table: Arc::clone(table),
                close: close.clone(),
                open: mine,
                done: done_tx.clone(),
                udp,
            };
            if w.tx.unbounded_send(cmd).is_err() {
                tracing::error!(worker = i, "worker is gone");
            }
        }
        drop(done_tx);
        for _ in 0..self.workers.len() {
            if done_rx.recv_timeout(Duration::from_secs(5)).is_err() {
                tracing::warn!(generation, "a worker did not confirm generation {generation} in 5 s");
                break;
            }
        }
    }

    /// UDP socket groups are steered by flow hash (see `Steering::attach_by_flow`).
    fn steer_udp(&mut self, udp: &weir_proto::udp::Udp, change: &crate::udp::sockets::UdpChange) {
        for name in &change.close {
            if !udp.entrypoints.iter().any(|e| &e.name == name) {
                self.steering.detach(name);
            }
        }
        for (name, _) in change.open.first().into_iter().flatten() {
            let group: Vec<_> = change
                .open
                .iter()
                .filter_map(|slot| slot.iter().find(|(n, _)| n == name))
                .map(|(_, sock)| std::os::fd::AsFd::as_fd(sock))
                .collect();
            self.steering.attach_by_flow(name, &group);
        }
    }

    fn apply_bytes(&mut self, generation: u64, bytes: &[u8]) -> Result<(), String> {
        let snapshot = Snapshot::decode(bytes).map_err(|e| e.to_string())?;
        if snapshot.generation != generation {
            return Err(format!("frame says generation {generation}, snapshot says {}", snapshot.generation));
        }
        let old = self.current.take();
        let result = match &old {
            Some((served, table)) => {
                let defs: HashMap<&str, &weir_proto::snapshot::Service> =
                    served.services.iter().map(|s| (s.name.as_str(), &**s)).collect();
                let unchanged = |svc: &weir_proto::snapshot::Service| {
                    defs.get(svc.name.as_str()).is_some_and(|d| *d == svc)
                };
                self.apply_snapshot(generation, snapshot, Some(Reuse { table, unchanged: &unchanged }))
            }
            None => self.apply_snapshot(generation, snapshot, None),
        };
        match result {
            Ok(()) => {
                drop_later(old);
                Ok(())
            }
            Err(e) => {
                self.current = old;
                Err(e)
            }
        }
    }

    /// Serves `snapshot`: builds its table (sharing what `previous` allows), binds new
    /// listeners, hands the table to every worker and makes it the served snapshot. Nothing
    /// changes when it fails.
    fn apply_snapshot(
        &mut self,
        generation: u64,
        snapshot: Snapshot,
        previous: Option<Reuse<'_>>,
    ) -> Result<(), String> {
        let started = std::time::Instant::now();
        let table = Arc::new(Table::build_after(&snapshot, previous).map_err(|e| e.to_string())?);
        let udp_table = Arc::new(crate::udp::UdpTable::build(&snapshot.udp).map_err(|e| e.to_string())?);
        // UDP sockets are bound before anything changes too.
        let udp_change = self.udp.prepare(&snapshot.udp, self.workers.len())?;
        self.steer_udp(&snapshot.udp, &udp_change);

        // Bind every new listener before touching anything, so a bind failure rejects cleanly.
        // One SO_REUSEPORT socket per worker and new entrypoint.
        let mut open: Vec<Vec<(String, std::net::TcpListener)>> =
            self.workers.iter().map(|_| Vec::new()).collect();
        for ep in &snapshot.entrypoints {
            if self.listeners.get(&ep.name) != Some(&ep.address) {
                for slot in open.iter_mut() {
                    // A socket the control plane kept from the previous data plane first: its
                    // accept queue holds the connections made while no data plane ran.
                    let sock = match self.handover.take(&ep.name, ep.address) {
                        Some(sock) => sock,
                        None => reuseport_listener(ep.address).map_err(|e| {
                            format!("entrypoint {}: cannot listen on {}: {e}", ep.name, ep.address)
                        })?,
                    };
                    self.handover.hold(&ep.name, ep.address, &sock);
                    slot.push((ep.name.clone(), sock));
                }
                let group: Vec<_> = open
                    .iter()
                    .filter_map(|slot| slot.iter().find(|(name, _)| *name == ep.name))
                    .map(|(_, sock)| std::os::fd::AsFd::as_fd(sock))
                    .collect();
                self.steering.attach(&ep.name, &group);
            }
        }
        let close: Vec<String> = self
            .listeners
            .iter()
            .filter(|(name, addr)| {
                !snapshot.entrypoints.iter().any(|e| &e.name == *name && e.address == **addr)
            })
            .map(|(name, _)| name.clone())
            .collect();

        for name in &close {
            let moved_to = snapshot.entrypoints.iter().find(|e| &e.name == name).map(|e| e.address);
            self.handover.release(name, moved_to);
            if !snapshot.entrypoints.iter().any(|e| &e.name == name) {
                self.steering.detach(name);
            }
        }
        self.handover.drop_unadopted();
        self.hand_to_workers(generation, &table, close, open, Some((udp_table, udp_change)));
        self.udp.commit(&snapshot.udp);
        self.listeners = snapshot.entrypoints.iter().map(|e| (e.name.clone(), e.address)).collect();
        self.generation = generation;
        // Health checks follow the table now served (one checker per server, see `health`).
        crate::health::publish(&table.health_targets);
        // Graceful shutdown follows the lifeCycle of the entrypoints now served.
        let longest = |f: fn(&weir_proto::entrypoint::EntryPointOptions) -> u64| {
            snapshot.entrypoints.iter().map(|e| f(&e.options)).max()
        };
        crate::shutdown::configure(
            Duration::from_millis(longest(|o| o.request_accept_grace_timeout_ms).unwrap_or(0)),
            Duration::from_millis(
                longest(|o| o.grace_timeout_ms).unwrap_or(weir_proto::entrypoint::DEFAULT_GRACE_TIMEOUT_MS),
            ),
        );
        crate::metrics::process::applied(generation, started.elapsed());
        drop_later(self.current.replace((snapshot, table)));
        Ok(())
    }
}

/// The bytes of a delta, inline or in the attached memfd.
fn delta_bytes(body: DeltaBody, fd: Option<OwnedFd>) -> Result<Vec<u8>, String> {
    match (body, fd) {
        (DeltaBody::Inline(bytes), _) => Ok(bytes),
        (DeltaBody::Memfd { size }, Some(fd)) => read_sealed(&fd, size).map_err(|e| e.to_string()),
        (DeltaBody::Memfd { .. }, None) => Err("delta frame without a memfd".into()),
    }
}

/// Frees `value` on a background thread: freeing the snapshot and table of 10,000 routes
/// takes ~20 ms, which the ack of the next generation should not wait for.
fn drop_later<T: Send + 'static>(value: T) {
    static REAPER: std::sync::OnceLock<std::sync::mpsc::Sender<Box<dyn Send>>> = std::sync::OnceLock::new();
    let reaper = REAPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn Send>>();
        let spawned = std::thread::Builder::new().name("weir-reaper".into()).spawn(move || {
            for garbage in rx {
                drop(garbage);
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the reaper thread ({e}); old generations are freed inline");
        }
        tx
    });
    // Without the thread the value comes back in the error and is dropped here.
    drop(reaper.send(Box::new(value)));
}

/// What to persist after an ack.
enum Persist {
    /// The bytes of the full snapshot just applied.
    Bytes(Vec<u8>),
    /// The served snapshot (after a delta), encoded.
    Served,
}

/// How long a data plane that serves nothing waits for a control plane before it serves the
/// persisted snapshot (a control plane that started it connects within tens of milliseconds).
const RESTORE_GRACE: Duration = Duration::from_millis(500);

/// Whether a control plane connects to `listener` within `wait`.
fn control_plane_knocks(listener: &Listener, wait: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let timeout = rustix::event::Timespec::try_from(wait).ok();
    matches!(poll(&mut fds, timeout.as_ref()), Ok(n) if n > 0)
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(false)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::snapshot::{LoadBalancer, Scheme, Server, Service, ServiceKind};

    fn server(port: u16) -> Server {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        Server {
            url: format!("http://{address}"),
            address,
            weight: 1,
            scheme: Scheme::Http,
            hostname: None,
            fenced: false,
        }
    }

    fn snapshot(generation: u64) -> Snapshot {
        let lb = |name: &str, port| Service {
            name: name.into(),
            kind: ServiceKind::LoadBalancer(LoadBalancer {
                servers: vec![server(port)],
                pass_host_header: true,
                sticky: None,
                health_check: None,
                servers_transport: None,
                flush_interval_ms: 100,
                strategy: Default::default(),
            }),
        };
        // Eight more services after those two, so a delta of a few changes stays a delta.
        let mut services = vec![lb("a", 1), lb("b", 2)];
        services.extend((0..8).map(|i| lb(&format!("z{i}"), 100 + i)));
        Snapshot { generation, services: services.into_iter().map(Arc::new).collect(), ..Default::default() }
    }

    fn ports(control: &Control, service: usize) -> Vec<u16> {
        let (_, table) = control.current.as_ref().expect("a table is served");
        match &table.services[service] {
            crate::table::Service::LoadBalancer(lb) => lb.servers.iter().map(|s| s.address.port()).collect(),
            _ => panic!("test snapshot: service {service} is a load balancer"),
        }
    }

    fn inline(delta: &EndpointsDelta) -> DeltaBody {
        DeltaBody::Inline(delta.encode().expect("encodes"))
    }

    #[test]
    fn endpoints_delta_changes_only_servers_and_is_persisted() {
        let dir = std::env::temp_dir().join(format!("weir-dp-delta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let state = dir.join("state");
        let mut control = Control::new(Vec::new(), Some(state.clone()));
        let bytes = snapshot(1).encode().expect("encodes");
        control.apply_bytes(1, &bytes).expect("base applies");
        let before = Arc::clone(&control.current.as_ref().expect("served").1);

        let delta = EndpointsDelta {
            base_generation: 1,
            generation: 2,
            services: vec![("b".into(), vec![server(3), server(4)])],
        };
        assert_eq!(control.apply_endpoints(2, inline(&delta), None), Ok(1));
        control.persist_served();
        assert_eq!(control.generation, 2);
        assert_eq!((ports(&control, 0), ports(&control, 1)), (vec![1], vec![3, 4]));
        let after = &control.current.as_ref().expect("served").1;
        assert!(Arc::ptr_eq(&before.entrypoints, &after.entrypoints), "routers are shared");
        assert!(Arc::ptr_eq(&before.middlewares, &after.middlewares), "middlewares are shared");
        assert!(Arc::ptr_eq(&before.tls, &after.tls), "TLS is shared");
        let persisted = Snapshot::decode(&std::fs::read(&state).expect("state file")).expect("decodes");
        let mut want = snapshot(2);
        want.services[1] = after_services_b(&[3, 4]).into();
        assert_eq!(persisted, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn after_services_b(ports: &[u16]) -> Service {
        let mut s = Service::clone(&snapshot(0).services[1]);
        if let ServiceKind::LoadBalancer(lb) = &mut s.kind {
            lb.servers = ports.iter().map(|p| server(*p)).collect();
        }
        s
    }

    #[test]
    fn delta_that_does_not_fit_is_rejected_and_changes_nothing() {
        let delta = |base, generation, name: &str| EndpointsDelta {
            base_generation: base,
            generation,
            services: vec![(name.into(), vec![server(9)])],
        };
        let cases: [(&str, Option<u64>, u64, EndpointsDelta, &str); 4] = [
            ("nothing served", None, 2, delta(1, 2, "a"), "no snapshot is served"),
            ("stale base", Some(5), 7, delta(4, 7, "a"), "based on generation 4"),
            ("unknown service", Some(5), 6, delta(5, 6, "zz"), "service zz"),
            ("generation mismatch", Some(5), 6, delta(5, 7, "a"), "frame says generation 6"),
        ];
        for (name, served, generation, d, want) in cases {
            let mut control = Control::new(Vec::new(), None);
            if let Some(g) = served {
                control.apply_bytes(g, &snapshot(g).encode().expect("encodes")).expect("base applies");
            }
            let err = control.apply_endpoints(generation, inline(&d), None).expect_err(name);
            assert!(err.contains(want), "case {name}: {err}");
            assert_eq!(control.generation, served.unwrap_or(0), "case {name}");
            if served.is_some() {
                assert_eq!(ports(&control, 0), vec![1], "case {name}: servers unchanged");
            }
        }
        let mut control = Control::new(Vec::new(), None);
        control.apply_bytes(1, &snapshot(1).encode().expect("encodes")).expect("base applies");
        let err = control
            .apply_endpoints(2, DeltaBody::Memfd { size: 10 }, None)
            .expect_err("memfd body without a memfd");
        assert!(err.contains("without a memfd"), "{err}");
    }

    fn lb_of(control: &Control, service: usize) -> Arc<crate::service::compiled::LoadBalancer> {
        let (_, table) = control.current.as_ref().expect("a table is served");
        match &table.services[service] {
            crate::table::Service::LoadBalancer(lb) => Arc::clone(lb),
            _ => panic!("test snapshot: service {service} is a load balancer"),
        }
    }

    #[test]
    fn configuration_delta_applies_by_name_and_shares_unchanged_services() {
        let dir = std::env::temp_dir().join(format!("weir-dp-config-delta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let state = dir.join("state");
        let mut control = Control::new(Vec::new(), Some(state.clone()));
        control.apply_bytes(1, &snapshot(1).encode().expect("encodes")).expect("base applies");
        let a_before = lb_of(&control, 0);
        let b_before = lb_of(&control, 1);
        // Service b gets other servers and a service c appears: a is untouched.
        let mut want = snapshot(2);
        want.services[1] = after_services_b(&[7]).into();
        let mut c = after_services_b(&[8]);
        c.name = "c".into();
        want.services.insert(2, c.into());
        let delta = ConfigDelta::between(&snapshot(1), &want).expect("a delta");
        let body = DeltaBody::Inline(delta.encode().expect("encodes"));
        assert_eq!(control.apply_delta(2, body, None), Ok(2));
        control.persist_served();
        assert_eq!(control.generation, 2);
        assert_eq!((ports(&control, 0), ports(&control, 1), ports(&control, 2)), (vec![1], vec![7], vec![8]));
        assert!(Arc::ptr_eq(&a_before, &lb_of(&control, 0)), "unchanged load balancer shared");
        assert!(!Arc::ptr_eq(&b_before, &lb_of(&control, 1)), "changed load balancer compiled again");
        let persisted = Snapshot::decode(&std::fs::read(&state).expect("state file")).expect("decodes");
        assert_eq!(persisted, want);
        // A full snapshot shares unchanged load balancers too.
        let a_now = lb_of(&control, 0);
        let mut full = want.clone();
        full.generation = 3;
        control.apply_bytes(3, &full.encode().expect("encodes")).expect("applies");
        assert!(Arc::ptr_eq(&a_now, &lb_of(&control, 0)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn configuration_delta_that_does_not_fit_changes_nothing() {
        let mut next = snapshot(2);
        next.services.remove(1);
        let delta = ConfigDelta::between(&snapshot(1), &next).expect("a delta");
        let body = || DeltaBody::Inline(delta.encode().expect("encodes"));
        // Nothing served.
        let mut control = Control::new(Vec::new(), None);
        let err = control.apply_delta(2, body(), None).expect_err("nothing served");
        assert!(err.contains("no snapshot is served"), "{err}");
        // Another base served: refused, still served and still usable.
        control.apply_bytes(5, &snapshot(5).encode().expect("encodes")).expect("base applies");
        let err = control.apply_delta(2, body(), None).expect_err("stale base");
        assert!(err.contains("based on generation 1"), "{err}");
        assert_eq!(control.generation, 5);
        assert_eq!((ports(&control, 0), ports(&control, 1)), (vec![1], vec![2]));
        let err = control.apply_delta(3, body(), None).expect_err("generation mismatch");
        assert!(err.contains("frame says generation 3"), "{err}");
        let err = control.apply_delta(2, DeltaBody::Inline(vec![0xff; 3]), None).expect_err("garbage");
        assert!(err.contains("does not decode"), "{err}");
        assert!(control.current.is_some(), "the served snapshot is kept");
    }
}
