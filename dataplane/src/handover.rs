//! Listener handover with the control plane, so that a data plane that dies drops no
//! connection that had not reached it yet. The data plane reports every listening socket it
//! serves (`Listeners` frames with the descriptors attached); the control plane keeps copies.
//! When the data plane dies its sockets stay open in the control plane, with their accept
//! queues, and the kernel keeps completing handshakes into them; the next data plane gets them
//! back (a `Listeners` frame from the control plane) and accepts what queued, instead of
//! binding new sockets. Only connections already accepted by the dead process are lost.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use weir_proto::frame::{ListenerEntry, MAX_FDS_PER_FRAME};
use weir_proto::Frame;

/// The data plane's side of the handover.
#[derive(Default)]
pub struct Handover {
    /// Copies of the listening sockets being served, reported to the control plane.
    held: Vec<(ListenerEntry, OwnedFd)>,
    /// Sockets the control plane handed over, not adopted yet.
    inherited: Vec<(ListenerEntry, OwnedFd)>,
    /// `held` changed since the last report.
    changed: bool,
}

impl Handover {
    /// Takes an inherited socket for `entrypoint` bound to `address`, if one was handed over.
    pub fn take(&mut self, entrypoint: &str, address: SocketAddr) -> Option<std::net::TcpListener> {
        let i =
            self.inherited.iter().position(|(e, _)| e.entrypoint == entrypoint && e.address == address)?;
        let (_, fd) = self.inherited.swap_remove(i);
        let listener = std::net::TcpListener::from(fd);
        // The socket may come from a process that used it blocking; the workers need it not.
        listener.set_nonblocking(true).ok()?;
        Some(listener)
    }

    /// Records a socket now served for `entrypoint` (a copy is kept to report).
    pub fn hold(&mut self, entrypoint: &str, address: SocketAddr, listener: &std::net::TcpListener) {
        match listener.as_fd().try_clone_to_owned() {
            Ok(fd) => {
                self.held.push((ListenerEntry { entrypoint: entrypoint.to_string(), address }, fd));
                self.changed = true;
            }
            Err(e) => tracing::warn!(entrypoint, "cannot keep a copy of a listener for handover: {e}"),
        }
    }

    /// Forgets the sockets of a closed entrypoint (except those bound to `keep`, its new
    /// address if it moved), so that no copy keeps them listening.
    pub fn release(&mut self, entrypoint: &str, keep: Option<SocketAddr>) {
        let before = self.held.len();
        self.held.retain(|(e, _)| e.entrypoint != entrypoint || Some(e.address) == keep);
        self.changed |= self.held.len() != before;
    }

    /// Keeps the sockets the control plane handed over, to adopt when their entrypoint is
    /// (re)opened; those of entrypoints already served are closed at once.
    pub fn inherit(&mut self, entries: Vec<ListenerEntry>, fds: Vec<OwnedFd>) {
        if entries.len() != fds.len() {
            tracing::warn!(
                entries = entries.len(),
                fds = fds.len(),
                "listener handover with a wrong count; ignored"
            );
            return;
        }
        for (entry, fd) in entries.into_iter().zip(fds) {
            if self.held.iter().any(|(e, _)| e.entrypoint == entry.entrypoint) {
                continue;
            }
            self.inherited.push((entry, fd));
        }
        tracing::info!(sockets = self.inherited.len(), "listening sockets handed over by the control plane");
    }

    /// Drops inherited sockets nothing adopted (their entrypoint is gone or was bound anew).
    pub fn drop_unadopted(&mut self) {
        if !self.inherited.is_empty() {
            tracing::info!(sockets = self.inherited.len(), "closing handed-over sockets no entrypoint uses");
            self.inherited.clear();
        }
    }

    /// Whether nothing is served yet (a fresh data plane).
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The frames that report the served sockets, when they changed since the last report
    /// (or always, with `force`).
    pub fn report(&mut self, force: bool) -> Vec<(Frame, Vec<BorrowedFd<'_>>)> {
        if !self.changed && !force {
            return Vec::new();
        }
        self.changed = false;
        report(&self.held)
    }
}

/// Frames carrying `sockets` (several when they exceed one frame's descriptors).
pub fn report(sockets: &[(ListenerEntry, OwnedFd)]) -> Vec<(Frame, Vec<BorrowedFd<'_>>)> {
    if sockets.is_empty() {
        return vec![(Frame::Listeners { replace: true, entries: Vec::new() }, Vec::new())];
    }
    sockets
        .chunks(MAX_FDS_PER_FRAME)
        .enumerate()
        .map(|(i, chunk)| {
            let entries = chunk.iter().map(|(e, _)| e.clone()).collect();
            let fds = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
            (Frame::Listeners { replace: i == 0, entries }, fds)
        })
        .collect()
}
