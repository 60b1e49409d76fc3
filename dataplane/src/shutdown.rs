//! Graceful shutdown, Traefik's lifeCycle: on SIGTERM or SIGINT the process reports itself
//! terminating (ping answers `terminatingStatusCode`), keeps accepting for
//! `requestAcceptGraceTimeout`, then every worker stops listening, HTTP/1.1 connections close
//! after their current response (`Connection: close`), HTTP/2 ones get GOAWAY, and the process
//! exits 0 once no connection is left or `graceTimeOut` has passed. SIGUSR1 reopens the access
//! log files (Traefik's rotation signal). The per-request path reads one thread-local flag.

use std::cell::{Cell, RefCell};
use std::future::Future as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use futures_util::future::{FutureExt, Shared};
use futures_util::StreamExt as _;

/// Traefik's `lifeCycle.graceTimeOut` default.
pub const DEFAULT_GRACE_TIMEOUT: Duration = Duration::from_secs(10);

static TERMINATING: AtomicBool = AtomicBool::new(false);
/// Connections open in all workers (changed once per connection, never per request).
static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
/// Incremented by SIGUSR1; each worker's access log compares it with the value it opened at.
static REOPEN: AtomicU64 = AtomicU64::new(0);
/// `requestAcceptGraceTimeout` in milliseconds, the longest of the entrypoints.
static ACCEPT_GRACE_MS: AtomicU64 = AtomicU64::new(0);
/// `graceTimeOut` in milliseconds, the longest of the entrypoints.
static GRACE_MS: AtomicU64 = AtomicU64::new(DEFAULT_GRACE_TIMEOUT.as_millis() as u64);
/// Most workers a process runs (one per core).
pub const MAX_WORKERS: usize = 1024;
/// One drain trigger per worker, filled as workers start (no lock: slots are set once).
static WORKERS: [OnceLock<mpsc::UnboundedSender<()>>; MAX_WORKERS] = [const { OnceLock::new() }; MAX_WORKERS];
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static DRAIN: RefCell<Option<Shared<oneshot::Receiver<()>>>> = const { RefCell::new(None) };
    static DRAINING: Cell<bool> = const { Cell::new(false) };
}

/// Whether a shutdown signal arrived (ping reports it).
pub fn is_terminating() -> bool {
    TERMINATING.load(Ordering::Relaxed)
}

/// Whether this worker is draining: responses carry `Connection: close`.
pub fn draining() -> bool {
    DRAINING.with(Cell::get)
}

/// Registers the calling worker thread (on its runtime); its connections and listeners
/// watch [`drained`].
pub fn register_worker() {
    let (local_tx, local_rx) = oneshot::channel();
    DRAIN.with(|d| *d.borrow_mut() = Some(local_rx.shared()));
    let slot = REGISTERED.fetch_add(1, Ordering::Relaxed);
    let Some(cell) = WORKERS.get(slot) else {
        tracing::error!(slot, "more than {MAX_WORKERS} workers: this one will not drain gracefully");
        return;
    };
    let (tx, mut rx) = mpsc::unbounded();
    let _ = cell.set(tx);
    monoio::spawn(async move {
        let _ = rx.next().await;
        let _ = local_tx.send(());
    });
}

/// Resolves when this worker drains (never, on a thread that did not register).
pub async fn drained() {
    let signal = DRAIN.with(|d| d.borrow().clone());
    match signal {
        Some(s) => {
            let _ = s.await;
            DRAINING.with(|d| d.set(true));
        }
        None => futures_util::future::pending().await,
    }
}

/// Counts an open connection until the guard is dropped.
pub struct ConnectionGuard(());

impl ConnectionGuard {
    /// A connection was accepted.
    pub fn open() -> ConnectionGuard {
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The SIGUSR1 count, for access logs to notice a rotation.
pub fn reopen_generation() -> u64 {
    REOPEN.load(Ordering::Relaxed)
}

/// Records the lifeCycle timeouts of the snapshot now served (the longest of its entrypoints).
pub fn configure(request_accept_grace: Duration, grace: Duration) {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ACCEPT_GRACE_MS.store(ms(request_accept_grace), Ordering::Relaxed);
    GRACE_MS.store(ms(grace), Ordering::Relaxed);
}

/// Installs the signal handlers on a thread of their own. `on_exit` runs just before the
/// process exits (e.g. to remove the control socket).
pub fn install(on_exit: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1])?;
    std::thread::Builder::new().name("weir-signals".into()).spawn(move || {
        let mut on_exit = Some(on_exit);
        for signal in signals.forever() {
            if signal == SIGUSR1 {
                REOPEN.fetch_add(1, Ordering::Relaxed);
                tracing::info!("SIGUSR1: reopening access log files");
                continue;
            }
            if TERMINATING.swap(true, Ordering::Relaxed) {
                continue;
            }
            // Ping answers `terminatingStatusCode` from now on.
            crate::admin::set_terminating();
            let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
            // A second signal during the drain does not cut it short (Traefik neither).
            let exit = on_exit.take();
            std::thread::spawn(move || {
                drain(name);
                if let Some(f) = exit {
                    f();
                }
                std::process::exit(0);
            });
        }
    })?;
    Ok(())
}

/// The shutdown sequence after a signal; returns when the process may exit.
fn drain(signal: &str) {
    let accept_grace = Duration::from_millis(ACCEPT_GRACE_MS.load(Ordering::Relaxed));
    let grace = Duration::from_millis(GRACE_MS.load(Ordering::Relaxed));
    tracing::info!(?accept_grace, ?grace, "{signal} received; draining");
    std::thread::sleep(accept_grace);
    let deadline = Instant::now() + grace;
    for cell in WORKERS.iter().take(REGISTERED.load(Ordering::Relaxed)) {
        if let Some(tx) = cell.get() {
            let _ = tx.unbounded_send(());
        }
    }
    tracing::info!("listeners closed; waiting for open connections");
    loop {
        let open = CONNECTIONS.load(Ordering::Relaxed);
        if open == 0 {
            tracing::info!("no connection left; exiting");
            break;
        }
        if Instant::now() >= deadline {
            tracing::info!(open, "graceTimeOut passed; exiting with connections still open");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Access logs flush on their next tick once the workers drain.
    std::thread::sleep(Duration::from_millis(150));
}

/// Requests in flight on one HTTP/1.1 connection, so a drain closes it only between requests
/// (Go's `Server.Shutdown` closes idle connections and lets busy ones finish).
#[derive(Clone, Default)]
pub struct Busy(std::rc::Rc<BusyState>);

#[derive(Default)]
struct BusyState {
    count: Cell<u32>,
    waker: Cell<Option<std::task::Waker>>,
}

/// Held while a request is being answered.
pub struct BusyGuard(std::rc::Rc<BusyState>);

impl Busy {
    /// A request starts.
    pub fn enter(&self) -> BusyGuard {
        self.0.count.set(self.0.count.get() + 1);
        BusyGuard(std::rc::Rc::clone(&self.0))
    }

    /// Resolves once no request is in flight.
    async fn idle(&self) {
        std::future::poll_fn(|cx| {
            if self.0.count.get() == 0 {
                std::task::Poll::Ready(())
            } else {
                self.0.waker.set(Some(cx.waker().clone()));
                std::task::Poll::Pending
            }
        })
        .await
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let n = self.0.count.get().saturating_sub(1);
        self.0.count.set(n);
        if n == 0 {
            if let Some(w) = self.0.waker.take() {
                w.wake();
            }
        }
    }
}

/// Runs an HTTP/1.1 connection; `None` when the worker drained while it was idle (it is
/// dropped, which closes it).
pub async fn unless_idle_at_drain<F: std::future::Future>(conn: F, busy: &Busy) -> Option<F::Output> {
    let conn = std::pin::pin!(conn);
    let idle_after_drain = std::pin::pin!(async {
        drained().await;
        busy.idle().await;
    });
    match futures_util::future::select(conn, idle_after_drain).await {
        futures_util::future::Either::Left((out, _)) => Some(out),
        futures_util::future::Either::Right(_) => None,
    }
}

/// Runs a connection and calls `graceful` on it (HTTP/2: GOAWAY) when the worker drains.
pub async fn graceful_at_drain<F: std::future::Future>(
    conn: F,
    graceful: impl FnOnce(std::pin::Pin<&mut F>),
) -> F::Output {
    let mut conn = std::pin::pin!(conn);
    let mut graceful = Some(graceful);
    let mut drain = std::pin::pin!(drained().fuse());
    std::future::poll_fn(|cx| {
        if graceful.is_some() && drain.as_mut().poll(cx).is_ready() {
            if let Some(g) = graceful.take() {
                g(conn.as_mut());
            }
        }
        conn.as_mut().poll(cx)
    })
    .await
}
