//! The publisher: keeps one connection to the data plane and sends it every new snapshot, each
//! with the next generation, the bytes in a sealed memfd. On connect the data plane says which
//! generation it serves (`Hello`); the current snapshot is sent at once, numbered past both
//! sides' counters. Acks (`Applied` / `Rejected`) are logged. While idle the socket is watched
//! so a data plane that dies is noticed at once and replaced through the supervisor.

use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tokio::time::Instant;
use weir_proto::channel::{self, ChannelError, Conn};
use weir_proto::snapshot::SnapshotError;
use weir_proto::{Frame, Snapshot};

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
}

impl Publisher {
    /// A publisher that has sent nothing.
    pub fn new() -> Publisher {
        Publisher::default()
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
        mut snapshots: watch::Receiver<Snapshot>,
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
        snapshots: &mut watch::Receiver<Snapshot>,
    ) -> Result<SessionEnd, PublishError> {
        conn.set_nonblocking()?;
        let fd = register(conn)?;
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, recv(&fd)).await {
            Err(_) => return Err(PublishError::NoHello(HELLO_TIMEOUT)),
            Ok(Err(PublishError::Channel(ChannelError::Closed))) => return Ok(SessionEnd::Closed),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Frame::Hello { generation })) => generation,
            Ok(Ok(other)) => return Err(PublishError::UnexpectedFrame(other)),
        };
        tracing::info!(serving = hello, "connected to dataplane");
        // Past both counters, so the data plane never sees a generation go backwards.
        self.generation = self.generation.max(hello);
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
                    Ok(Frame::Applied { generation }) => tracing::info!("applied generation {generation}"),
                    Ok(Frame::Rejected { generation, reason }) => tracing::error!(
                        "dataplane rejected generation {generation} (the previous one keeps serving): {reason}"
                    ),
                    Ok(other) => tracing::warn!("unexpected frame from dataplane: {other:?}"),
                    Err(PublishError::Channel(ChannelError::Closed)) => return Ok(SessionEnd::Closed),
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// Numbers `snapshot` with the next generation and sends it.
    async fn send(&mut self, fd: &AsyncFd<Conn>, mut snapshot: Snapshot) -> Result<(), PublishError> {
        let generation = self.generation + 1;
        snapshot.generation = generation;
        let bytes = snapshot.encode()?;
        let memfd = channel::sealed_memfd(&bytes)?;
        let frame = Frame::Snapshot { generation, size: bytes.len() as u64 };
        loop {
            let mut guard = fd.writable().await.map_err(PublishError::Poll)?;
            let sent = guard.try_io(|inner| match inner.get_ref().send(&frame, Some(memfd.as_fd())) {
                Err(e) if Conn::would_block(&e) => Err(std::io::ErrorKind::WouldBlock.into()),
                other => Ok(other),
            });
            match sent {
                Ok(Ok(result)) => result?,
                Ok(Err(e)) => return Err(PublishError::Poll(e)),
                Err(_would_block) => continue,
            }
            break;
        }
        self.generation = generation;
        tracing::info!(
            routers = snapshot.routers.len(),
            services = snapshot.services.len(),
            bytes = bytes.len(),
            "sent generation {generation} to dataplane"
        );
        Ok(())
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

/// Receives one frame; any descriptor attached is dropped (the data plane sends none).
async fn recv(fd: &AsyncFd<Conn>) -> Result<Frame, PublishError> {
    loop {
        let mut guard = fd.readable().await.map_err(PublishError::Poll)?;
        let received = guard.try_io(|inner| match inner.get_ref().recv() {
            Err(e) if Conn::would_block(&e) => Err(std::io::ErrorKind::WouldBlock.into()),
            other => Ok(other),
        });
        match received {
            Ok(Ok(result)) => return Ok(result?.0),
            Ok(Err(e)) => return Err(PublishError::Poll(e)),
            Err(_would_block) => continue,
        }
    }
}
