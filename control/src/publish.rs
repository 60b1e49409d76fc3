//! The publisher: keeps one connection to the data plane and sends it every new snapshot, each
//! with the next generation, the bytes in a sealed memfd. On connect the data plane says which
//! generation it serves (`Hello`); the current snapshot is sent at once, numbered past both
//! sides' counters. Acks (`Applied` / `Rejected`) are logged. While idle the socket is watched
//! so a data plane that dies is noticed at once and replaced through the supervisor.
//! Within a session, a snapshot that differs from the last one sent only in load balancers'
//! servers goes out as an `Endpoints` delta (the snapshot is still computed whole, so the delta
//! is correct by construction); a rejected delta is answered with the full snapshot.
//! The data plane reports the listening sockets it serves (`Listeners`, descriptors attached);
//! the publisher keeps them, so when the data plane dies its sockets stay open with their
//! accept queues, and hands them to the next data plane before its first snapshot.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;
use weir_proto::channel::{self, ChannelError, Conn};
use weir_proto::frame::{ListenerEntry, MAX_FDS_PER_FRAME, MAX_INLINE_DELTA};
use weir_proto::snapshot::SnapshotError;
use weir_proto::{ConfigDelta, DeltaBody, Frame, Snapshot};

use crate::supervise::{Launcher, SuperviseError, Supervisor};

/// How long a data plane has to say `Hello` after the connection is made.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// A session shorter than this counts as a failure, so a crash loop backs off.
const HEALTHY_SESSION: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why publishing stopped or a session ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The control channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Polling the socket failed.
    #[error("polling the control socket: {0}")]
    Poll(std::io::Error),
    /// The data plane did not greet in time.
    #[error("data plane sent no Hello within {0:?}")]
    NoHello(Duration),
    /// The data plane sent something else than `Hello` first.
    #[error("data plane sent {0:?} where Hello was expected")]
    UnexpectedFrame(Frame),
    /// The snapshot does not encode.
    #[error(transparent)]
    Encode(#[from] SnapshotError),
    /// No data plane could be reached.
    #[error(transparent)]
    Supervise(#[from] SuperviseError),
}

/// How a session ended when it did not fail.
enum SessionEnd {
    /// The data plane closed the connection.
    Closed,
    /// No more snapshots will come (weir is shutting down).
    Shutdown,
}

/// Numbers snapshots and sends them to whichever data plane is connected.
#[derive(Debug, Default)]
pub struct Publisher {
    /// Last generation sent (0 = none yet).
    generation: u64,
    /// The last snapshot sent in this session and the generation it went out as: the base of
    /// the next delta.
    last: Option<(u64, Arc<Snapshot>)>,
    /// Generation of the last full snapshot sent: every later generation was a delta.
    last_full: u64,
    /// Send deltas at all (`WEIR_ENDPOINT_DELTAS=0` turns them off, for measurements).
    deltas: bool,
    /// Copies of the data plane's listening sockets, as it last reported them.
    listeners: Vec<(ListenerEntry, OwnedFd)>,
}

impl Publisher {
    /// A publisher that has sent nothing.
    pub fn new() -> Publisher {
        let deltas = std::env::var("WEIR_ENDPOINT_DELTAS").map_or(true, |v| v != "0");
        Publisher { deltas, ..Publisher::default() }
    }

    /// The last generation sent.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Publishes every snapshot from `snapshots` for as long as it has a sender. The first
    /// connection failing is an error (weir cannot serve); later failures are logged and
    /// retried with backoff.
    pub async fn run<L: Launcher>(
        &mut self,
        supervisor: &mut Supervisor<L>,
        mut snapshots: watch::Receiver<Arc<Snapshot>>,
    ) -> Result<(), PublishError> {
        let mut conn = Some(supervisor.connect().await?);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let conn = match conn.take() {
                Some(c) => c,
                None => match supervisor.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!("{e}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            let started = Instant::now();
            match self.session(conn, &mut snapshots).await {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Closed) => tracing::warn!("dataplane closed the control connection"),
                Err(e) => tracing::error!("control connection to dataplane failed: {e}"),
            }
            if started.elapsed() >= HEALTHY_SESSION {
                backoff = FIRST_BACKOFF;
            } else {
                tracing::warn!("dataplane connection lasted {:?}; waiting {backoff:?}", started.elapsed());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// One connection: greet, send the current snapshot, then every new one, logging acks.
    async fn session(
        &mut self,
        conn: Conn,
        snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    ) -> Result<SessionEnd, PublishError> {
        conn.set_nonblocking()?;
        let fd = register(conn)?;
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, recv(&fd)).await {
            Err(_) => return Err(PublishError::NoHello(HELLO_TIMEOUT)),
            Ok(Err(PublishError::Channel(ChannelError::Closed))) => return Ok(SessionEnd::Closed),
            Ok(Err(e)) => return Err(e),
            Ok(Ok((Frame::Hello { generation }, _))) => generation,
            Ok(Ok((other, _))) => return Err(PublishError::UnexpectedFrame(other)),
        };
        tracing::info!(serving = hello, "connected to dataplane");
        // Its listening sockets follow the Hello: a data plane serving none gets those of the
        // data plane before it, which kept queueing connections while none ran.
        match tokio::time::timeout(HELLO_TIMEOUT, recv(&fd)).await {
            Ok(Ok((Frame::Listeners { replace, entries }, fds))) => {
                if entries.is_empty() && !self.listeners.is_empty() {
                    self.hand_over_listeners(&fd).await?;
                } else {
                    self.keep_listeners(replace, entries, fds);
                }
            }
            Ok(Ok((other, _))) => {
                tracing::warn!("dataplane sent {other:?} where its listeners were expected")
            }
            Ok(Err(PublishError::Channel(ChannelError::Closed))) => return Ok(SessionEnd::Closed),
            Ok(Err(e)) => return Err(e),
            Err(_) => tracing::warn!("dataplane did not report its listeners"),
        }
        // Past both counters, so the data plane never sees a generation go backwards.
        self.generation = self.generation.max(hello);
        // A new data plane (or the same one after a reconnect) gets a full snapshot first.
        self.last = None;
        let current = snapshots.borrow_and_update().clone();
        self.send(&fd, current).await?;
        loop {
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        return Ok(SessionEnd::Shutdown);
                    }
                    let next = snapshots.borrow_and_update().clone();
                    self.send(&fd, next).await?;
                }
                frame = recv(&fd) => match frame {
                    Ok((Frame::Listeners { replace, entries }, fds)) => self.keep_listeners(replace, entries, fds),
                    Ok((Frame::Applied { generation }, _)) => tracing::info!("applied generation {generation}"),
                    Ok((Frame::Rejected { generation, reason }, _)) if generation > self.last_full => {
                        // A delta the data plane could not apply (it serves another base):
                        // the full snapshot repairs it.
                        tracing::warn!("dataplane rejected delta {generation} ({reason}); sending the full snapshot");
                        if let Some((_, full)) = self.last.take() {
                            self.send(&fd, full).await?;
                        }
                    }
                    Ok((Frame::Rejected { generation, reason }, _)) => tracing::error!(
                        "dataplane rejected generation {generation} (the previous one keeps serving): {reason}"
                    ),
                    Ok((other, _)) => tracing::warn!("unexpected frame from dataplane: {other:?}"),
                    Err(PublishError::Channel(ChannelError::Closed)) => return Ok(SessionEnd::Closed),
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// Keeps the listening sockets the data plane reported (`replace`: a new set starts).
    fn keep_listeners(&mut self, replace: bool, entries: Vec<ListenerEntry>, fds: Vec<OwnedFd>) {
        if entries.len() != fds.len() {
            tracing::warn!(
                entries = entries.len(),
                fds = fds.len(),
                "listener report with a wrong count; ignored"
            );
            return;
        }
        if replace {
            self.listeners.clear();
        }
        self.listeners.extend(entries.into_iter().zip(fds));
        tracing::debug!(sockets = self.listeners.len(), "holding the dataplane's listening sockets");
    }

    /// Hands the kept listening sockets to a data plane that serves none.
    async fn hand_over_listeners(&mut self, fd: &AsyncFd<Conn>) -> Result<(), PublishError> {
        tracing::info!(
            sockets = self.listeners.len(),
            "handing the previous dataplane's listening sockets over"
        );
        for (i, chunk) in self.listeners.chunks(MAX_FDS_PER_FRAME).enumerate() {
            let entries = chunk.iter().map(|(e, _)| e.clone()).collect();
            let fds: Vec<_> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
            send_frame_fds(fd, &Frame::Listeners { replace: i == 0, entries }, &fds).await?;
        }
        Ok(())
    }

    /// Numbers `snapshot` with the next generation and sends it: as an endpoints delta on top
    /// of the last snapshot sent when only servers changed, else whole. The snapshot itself is
    /// shared with the compiler and never copied: the generation is written into the encoding.
    async fn send(&mut self, fd: &AsyncFd<Conn>, snapshot: Arc<Snapshot>) -> Result<(), PublishError> {
        let started = Instant::now();
        let generation = self.generation + 1;
        // One diff by name against the last snapshot sent (routers, services and middlewares
        // are sorted by name); when it only changes load balancers' servers it goes out as the
        // smaller endpoints delta.
        let config = match &self.last {
            Some((base, last)) if self.deltas => ConfigDelta::between(last, &snapshot).map(|mut d| {
                d.base_generation = *base;
                d.generation = generation;
                d
            }),
            _ => None,
        };
        let delta = match (&config, &self.last) {
            (Some(c), Some((_, last))) => c.endpoints_only(last),
            _ => None,
        };
        if let Some(delta) = delta {
            let (body, memfd) = delta_body(delta.encode()?)?;
            send_frame(fd, &Frame::Endpoints { generation, body }, memfd.as_ref()).await?;
            self.generation = generation;
            self.last = Some((generation, snapshot));
            tracing::info!(
                base = delta.base_generation,
                services = delta.services.len(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "sent generation {generation} to dataplane (endpoints delta)"
            );
            return Ok(());
        }
        // Anything else changed: the routers, services and middlewares that changed, by name
        // (plus the other sections when they changed), unless most of it changed.
        if let Some(delta) = config.filter(|d| d.is_small(&snapshot)) {
            let (body, memfd) = delta_body(delta.encode()?)?;
            send_frame(fd, &Frame::Delta { generation, body }, memfd.as_ref()).await?;
            self.generation = generation;
            self.last = Some((generation, snapshot));
            tracing::info!(
                base = delta.base_generation,
                routers = delta.routers.len(),
                services = delta.services.len(),
                middlewares = delta.middlewares.len(),
                sections = delta.sections.is_some(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "sent generation {generation} to dataplane (configuration delta)"
            );
            return Ok(());
        }
        let bytes = encode_numbered(&snapshot, generation)?;
        let memfd = channel::sealed_memfd(&bytes)?;
        let frame = Frame::Snapshot { generation, size: bytes.len() as u64 };
        send_frame(fd, &frame, Some(&memfd)).await?;
        self.generation = generation;
        self.last_full = generation;
        tracing::info!(
            routers = snapshot.routers.len(),
            services = snapshot.services.len(),
            bytes = bytes.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "sent generation {generation} to dataplane"
        );
        self.last = Some((generation, snapshot));
        Ok(())
    }
}

/// Where an encoded delta travels: inline when it fits a frame, else in a sealed memfd.
fn delta_body(bytes: Vec<u8>) -> Result<(DeltaBody, Option<OwnedFd>), PublishError> {
    if bytes.len() <= MAX_INLINE_DELTA {
        Ok((DeltaBody::Inline(bytes), None))
    } else {
        Ok((DeltaBody::Memfd { size: bytes.len() as u64 }, Some(channel::sealed_memfd(&bytes)?)))
    }
}

/// `snapshot` encoded as if its `generation` were `generation`, without copying it. postcard
/// (whose wire format is stable since 1.0) writes a struct as its fields in order, and a `u64`
/// as a LEB128 varint; `generation` is the snapshot's first field, so only that prefix differs.
/// A test checks this against encoding a numbered copy.
fn encode_numbered(snapshot: &Snapshot, generation: u64) -> Result<Vec<u8>, PublishError> {
    let mut bytes = snapshot.encode()?;
    if snapshot.generation != generation {
        let old = varint(snapshot.generation);
        debug_assert!(bytes.starts_with(&old), "postcard writes the generation first");
        bytes.splice(0..old.len(), varint(generation));
    }
    Ok(bytes)
}

/// LEB128, as postcard writes unsigned integers.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Sends one frame, with `memfd` attached when given, waiting while the socket is full.
async fn send_frame(
    fd: &AsyncFd<Conn>,
    frame: &Frame,
    memfd: Option<&std::os::fd::OwnedFd>,
) -> Result<(), PublishError> {
    let fds: Vec<_> = memfd.map(|m| m.as_fd()).into_iter().collect();
    send_frame_fds(fd, frame, &fds).await
}

/// Sends one frame with `fds` attached, waiting while the socket is full.
async fn send_frame_fds(
    fd: &AsyncFd<Conn>,
    frame: &Frame,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> Result<(), PublishError> {
    loop {
        let mut guard = fd.writable().await.map_err(PublishError::Poll)?;
        let sent = guard.try_io(|inner| match inner.get_ref().send_fds(frame, fds) {
            Err(e) if Conn::would_block(&e) => Err(std::io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        });
        match sent {
            Ok(Ok(result)) => result?,
            Ok(Err(e)) => return Err(PublishError::Poll(e)),
            Err(_would_block) => continue,
        }
        return Ok(());
    }
}

/// Registers the connection with the reactor.
#[allow(unsafe_code)]
fn register(conn: Conn) -> Result<AsyncFd<Conn>, PublishError> {
    // SAFETY: `Conn` owns its descriptor (an `OwnedFd`) and always returns that one from
    // `as_raw_fd`; the `AsyncFd` owns the `Conn`, so the descriptor stays open and the same for
    // the registration's whole life.
    unsafe { AsyncFd::register(conn) }.map_err(|e| PublishError::Poll(e.into()))
}

/// Receives one frame and the descriptors attached to it (listening sockets, with `Listeners`).
async fn recv(fd: &AsyncFd<Conn>) -> Result<(Frame, Vec<OwnedFd>), PublishError> {
    loop {
        let mut guard = fd.readable().await.map_err(PublishError::Poll)?;
        let received = guard.try_io(|inner| match inner.get_ref().recv_fds() {
            Err(e) if Conn::would_block(&e) => Err(std::io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        });
        match received {
            Ok(Ok(result)) => return Ok(result?),
            Ok(Err(e)) => return Err(PublishError::Poll(e)),
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::channel::{read_sealed, Listener};
    use weir_proto::snapshot::{LoadBalancer, Scheme, Server, Service, ServiceKind};
    use weir_proto::EndpointsDelta;

    struct NoLauncher;
    impl Launcher for NoLauncher {
        fn launch(&mut self) -> Result<tokio::sync::oneshot::Receiver<String>, SuperviseError> {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let _ = tx.send("test: no dataplane to launch".to_string());
            Ok(rx)
        }
    }

    fn snapshot(port: u16) -> Snapshot {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let server = Server {
            url: format!("http://{address}"),
            address,
            weight: 1,
            scheme: Scheme::Http,
            hostname: None,
            fenced: false,
        };
        Snapshot {
            services: vec![std::sync::Arc::new(Service {
                name: "app".into(),
                kind: ServiceKind::LoadBalancer(LoadBalancer {
                    servers: vec![server],
                    pass_host_header: true,
                    sticky: None,
                    health_check: None,
                    servers_transport: None,
                    flush_interval_ms: 100,
                    strategy: Default::default(),
                }),
            })],
            ..Default::default()
        }
    }

    /// A fake data plane: serves one connection, answers with `answer`, says on `received`
    /// after each frame, and returns what it got.
    fn fake_dataplane(
        listener: Listener,
        frames: usize,
        received: std::sync::mpsc::Sender<()>,
        answer: fn(&Frame) -> Frame,
    ) -> Vec<(Frame, Option<Snapshot>)> {
        let conn = listener.accept().expect("accept");
        conn.send(&Frame::Hello { generation: 0 }, None).expect("hello");
        conn.send(&Frame::Listeners { replace: true, entries: Vec::new() }, None).expect("listeners");
        let mut got = Vec::new();
        for _ in 0..frames {
            let (frame, fd) = conn.recv().expect("frame");
            let snapshot = match (&frame, fd) {
                (Frame::Snapshot { size, .. }, Some(fd)) => {
                    Some(Snapshot::decode(&read_sealed(&fd, *size).expect("sealed")).expect("decodes"))
                }
                _ => None,
            };
            conn.send(&answer(&frame), None).expect("answer");
            got.push((frame, snapshot));
            let _ = received.send(());
        }
        got
    }

    #[tokio::test(flavor = "current_thread")]
    async fn endpoint_change_goes_as_a_delta_and_a_rejected_delta_is_repaired_with_the_full_snapshot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dp.sock");
        let listener = Listener::bind(&path).expect("bind");
        // Applies snapshots, rejects every delta (as a data plane serving another base does).
        let (received_tx, received) = std::sync::mpsc::channel();
        let dataplane = std::thread::spawn(move || {
            fake_dataplane(listener, 3, received_tx, |f| match f {
                Frame::Endpoints { generation, .. } => {
                    Frame::Rejected { generation: *generation, reason: "wrong base".into() }
                }
                other => Frame::Applied { generation: other.generation() },
            })
        });
        let (tx, rx) = watch::channel(Arc::new(snapshot(1)));
        let publisher = tokio::spawn(async move {
            let mut supervisor = Supervisor::new(path, NoLauncher);
            let mut publisher = Publisher { deltas: true, ..Publisher::default() };
            publisher.run(&mut supervisor, rx).await
        });
        // The change comes once the first snapshot is in, so it cannot replace it.
        tokio::task::spawn_blocking(move || received.recv_timeout(Duration::from_secs(10)))
            .await
            .expect("join")
            .expect("the first snapshot arrives");
        tx.send(Arc::new(snapshot(2))).expect("publisher listens");
        let got = tokio::task::spawn_blocking(move || dataplane.join().expect("fake dataplane"))
            .await
            .expect("join");
        // The fake data plane has hung up; the publisher would now reconnect forever.
        publisher.abort();
        drop(tx);

        let kinds: Vec<String> = got
            .iter()
            .map(|(f, _)| match f {
                Frame::Snapshot { generation, .. } => format!("snapshot {generation}"),
                Frame::Endpoints { generation, body: DeltaBody::Inline(_) } => {
                    format!("inline delta {generation}")
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["snapshot 1", "inline delta 2", "snapshot 3"]);
        if let (Frame::Endpoints { body: DeltaBody::Inline(bytes), .. }, _) = &got[1] {
            let delta = EndpointsDelta::decode(bytes).expect("decodes");
            assert_eq!((delta.base_generation, delta.generation), (1, 2));
            assert_eq!(delta.service_names().collect::<Vec<_>>(), ["app"]);
        }
        let mut want = snapshot(2);
        want.generation = 3;
        assert_eq!(got[2].1.as_ref(), Some(&want), "the repair is the full current snapshot");
    }

    #[test]
    fn numbered_encoding_equals_encoding_a_numbered_copy() {
        for (from, to) in [(0u64, 1u64), (0, 127), (0, 128), (5, 300), (300, 2), (0, u64::MAX), (9, 9)] {
            let mut original = snapshot(1);
            original.generation = from;
            let mut copy = original.clone();
            copy.generation = to;
            let bytes = encode_numbered(&original, to).expect("encodes");
            assert_eq!(bytes, copy.encode().expect("encodes"), "{from} -> {to}");
            assert_eq!(Snapshot::decode(&bytes).expect("decodes"), copy);
        }
    }
}
