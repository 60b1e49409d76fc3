//! The control thread: listens on the control socket, receives snapshots (sealed memfds),
//! builds tables, opens and closes listeners, hands both to the workers and answers
//! `applied N` or `rejected N: reason`. A rejected snapshot changes nothing. Every applied
//! snapshot is also written (atomically) to a state file, so a restarted data plane serves its
//! last configuration before the control plane is back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use weir_proto::channel::{read_sealed, ChannelError, Conn, Listener};
use weir_proto::{Frame, Snapshot};

use crate::table::Table;
use crate::worker::{Apply, WorkerHandle};

/// State owned by the control thread.
pub struct Control {
    workers: Vec<WorkerHandle>,
    /// Open listeners: entrypoint name → address.
    listeners: HashMap<String, SocketAddr>,
    generation: u64,
    /// Where the last applied snapshot is kept across restarts.
    state: Option<PathBuf>,
}

impl Control {
    /// Control state over running workers, persisting applied snapshots to `state`.
    pub fn new(workers: Vec<WorkerHandle>, state: Option<PathBuf>) -> Control {
        Control { workers, listeners: HashMap::new(), generation: 0, state }
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

    /// Serves the control socket forever, one control-plane connection at a time.
    pub fn serve(&mut self, path: &Path) -> Result<(), ChannelError> {
        let listener = Listener::bind(path)?;
        tracing::info!(socket = %path.display(), "waiting for the control plane");
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
        loop {
            let reply = match conn.recv() {
                Ok((Frame::Snapshot { generation, size }, Some(fd))) => {
                    match self.apply(generation, size, fd) {
                        Ok(()) => {
                            tracing::info!(generation, "applied generation {generation}");
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
        }
    }

    fn apply(&mut self, generation: u64, size: u64, fd: OwnedFd) -> Result<(), String> {
        let bytes = read_sealed(&fd, size).map_err(|e| e.to_string())?;
        self.apply_bytes(generation, &bytes)?;
        self.persist(&bytes);
        Ok(())
    }

    fn apply_bytes(&mut self, generation: u64, bytes: &[u8]) -> Result<(), String> {
        let snapshot = Snapshot::decode(bytes).map_err(|e| e.to_string())?;
        if snapshot.generation != generation {
            return Err(format!("frame says generation {generation}, snapshot says {}", snapshot.generation));
        }
        let table = Arc::new(Table::build(&snapshot).map_err(|e| e.to_string())?);

        // Bind every new listener before touching anything, so a bind failure rejects cleanly.
        // One SO_REUSEPORT socket per worker and new entrypoint.
        let mut open: Vec<Vec<(String, std::net::TcpListener)>> =
            self.workers.iter().map(|_| Vec::new()).collect();
        for ep in &snapshot.entrypoints {
            if self.listeners.get(&ep.name) != Some(&ep.address) {
                for slot in open.iter_mut() {
                    let sock = reuseport_listener(ep.address).map_err(|e| {
                        format!("entrypoint {}: cannot listen on {}: {e}", ep.name, ep.address)
                    })?;
                    slot.push((ep.name.clone(), sock));
                }
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

        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for ((i, w), mine) in self.workers.iter().enumerate().zip(open) {
            let cmd =
                Apply { table: Arc::clone(&table), close: close.clone(), open: mine, done: done_tx.clone() };
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
        self.listeners = snapshot.entrypoints.iter().map(|e| (e.name.clone(), e.address)).collect();
        self.generation = generation;
        // Health checks follow the table now served (one checker per server, see `health`).
        crate::health::publish(&table.health_targets);
        Ok(())
    }
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
