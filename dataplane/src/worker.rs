//! Workers: one thread per worker, pinned to a CPU, running its own monoio runtime with its
//! own SO_REUSEPORT listeners, upstream pool and load-balancing state. The control thread sends
//! each worker `Apply` commands; the worker swaps its table between requests and acknowledges.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;
use http::HeaderValue;

use crate::http::pool::Pool;
use crate::service::Balancers;
use crate::table::Table;

/// A change for one worker.
pub struct Apply {
    /// The table to serve from now on.
    pub table: Arc<Table>,
    /// Entrypoints whose listeners close (before `open` is processed).
    pub close: Vec<String>,
    /// New listeners for this worker, by entrypoint name.
    pub open: Vec<(String, std::net::TcpListener)>,
    /// Signalled once the worker serves `table`.
    pub done: std::sync::mpsc::Sender<()>,
    /// UDP entrypoints to close, open and re-route; `None` leaves UDP as it is.
    pub udp: Option<crate::udp::UdpApply>,
}

/// The control thread's handle on a worker.
pub struct WorkerHandle {
    /// Command channel.
    pub tx: mpsc::UnboundedSender<Apply>,
}

/// A table plus this worker's load-balancing state for it.
pub struct Generation {
    /// Shared routing table.
    pub table: Arc<Table>,
    /// This worker's balancing state over the table's services (round-robin positions carry
    /// over by service name when the weights did not change, so a snapshot that does not
    /// touch a service does not reset its rotation).
    pub balancers: Balancers,
}

impl Generation {
    fn new(table: Arc<Table>, previous: Option<&Generation>) -> Generation {
        let balancers = Balancers::new(&table, previous.map(|p| (&*p.table, &p.balancers)));
        Generation { table, balancers }
    }
}

/// Per-worker state shared by its connections.
pub struct Worker {
    current: RefCell<Rc<Generation>>,
    /// Keep-alive connections to backends.
    pub pool: Rc<Pool>,
    /// Value of `X-Forwarded-Server`.
    pub hostname: HeaderValue,
    /// Middleware state: the instance's shared limits and this worker's own.
    pub middleware_state: crate::middleware::WorkerState,
    /// This worker's metrics counters (summed over workers at scrape time).
    pub metrics: crate::metrics::WorkerMetrics,
    /// This worker's access-log buffer.
    pub access_log: crate::access_log::WorkerLog,
}

impl Worker {
    /// The generation new requests are served with.
    pub fn current(&self) -> Rc<Generation> {
        Rc::clone(&self.current.borrow())
    }
}

/// Starts a worker thread, pinned to `cpu` when given. `limits` is the instance's one copy of the
/// RateLimit/InFlightReq/CircuitBreaker state, the same for every worker.
pub fn spawn(
    index: usize,
    cpu: Option<usize>,
    hostname: HeaderValue,
    limits: Arc<crate::middleware::shared::SharedLimits>,
) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = mpsc::unbounded();
    std::thread::Builder::new().name(format!("weir-worker-{index}")).spawn(move || {
        if let Some(cpu) = cpu {
            if let Err(e) = monoio::utils::bind_to_cpu_set([cpu]) {
                tracing::warn!(worker = index, cpu, "could not pin worker: {e:?}");
            }
        }
        let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
        match rt {
            Ok(mut rt) => rt.block_on(run(index, rx, hostname, limits)),
            Err(e) => tracing::error!(worker = index, "cannot start runtime: {e}"),
        }
    })?;
    Ok(WorkerHandle { tx })
}

async fn run(
    index: usize,
    mut rx: mpsc::UnboundedReceiver<Apply>,
    hostname: HeaderValue,
    limits: Arc<crate::middleware::shared::SharedLimits>,
) {
    let empty = Arc::new(Table {
        entrypoints: Arc::default(),
        services: Vec::new(),
        service_names: Vec::new(),
        health_targets: Vec::new(),
        middlewares: Arc::default(),
        chains: Arc::default(),
        tls: Arc::default(),
        tcp: Arc::default(),
        observability: Arc::default(),
        admin: Arc::default(),
    });
    let worker = Rc::new(Worker {
        current: RefCell::new(Rc::new(Generation::new(empty, None))),
        pool: Rc::new(Pool::default()),
        hostname,
        middleware_state: crate::middleware::WorkerState { limits, ..Default::default() },
        metrics: Default::default(),
        access_log: Default::default(),
    });
    worker.metrics.set_index(index);
    crate::metrics::register_worker(Rc::clone(&worker));
    crate::shutdown::register_worker();
    monoio::spawn(crate::access_log::flusher(Rc::clone(&worker)));
    let mut listeners: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    let mut udp = crate::udp::WorkerUdp::default();
    while let Some(apply) = rx.next().await {
        if let Some(change) = apply.udp {
            udp.apply(index, change);
        }
        for name in &apply.close {
            // Dropping the sender stops that accept loop; open connections continue.
            listeners.remove(name);
        }
        let next = Generation::new(apply.table, Some(&worker.current()));
        // The previous generation is freed after the confirmation below (at 10,000 services
        // freeing its balancers is a few milliseconds the apply need not wait for).
        let previous = std::mem::replace(&mut *worker.current.borrow_mut(), Rc::new(next));
        for (name, std_listener) in apply.open {
            if crate::shutdown::draining() {
                continue;
            }
            // A second handle on the socket, to stop it listening when the worker drains.
            let stopper = std_listener.try_clone().ok();
            match monoio::net::TcpListener::from_std(std_listener) {
                Ok(l) => {
                    let (stop_tx, stop_rx) = oneshot::channel();
                    listeners.insert(name.clone(), stop_tx);
                    monoio::spawn(accept_loop(
                        Rc::clone(&worker),
                        Rc::from(name.as_str()),
                        l,
                        stop_rx,
                        stopper,
                    ));
                }
                Err(e) => tracing::error!(worker = index, entrypoint = %name, "cannot use listener: {e}"),
            }
        }
        let _ = apply.done.send(());
        drop(previous);
    }
}

async fn accept_loop(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    listener: monoio::net::TcpListener,
    mut stop: oneshot::Receiver<()>,
    stopper: Option<std::net::TcpListener>,
) {
    let mut drained = std::pin::pin!(crate::shutdown::drained());
    loop {
        let accept = std::pin::pin!(listener.accept());
        let stop_or_drain = futures_util::future::select(&mut stop, drained.as_mut());
        match futures_util::future::select(accept, stop_or_drain).await {
            futures_util::future::Either::Left((Ok((stream, peer)), _)) => {
                monoio::spawn(serve(Rc::clone(&worker), Rc::clone(&entrypoint), stream, peer));
            }
            futures_util::future::Either::Left((Err(e), _)) => {
                tracing::warn!(entrypoint = %entrypoint, "accept: {e}");
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            futures_util::future::Either::Right((futures_util::future::Either::Right(_), _)) => {
                // Graceful shutdown: the socket stops listening at once, for every handle on it
                // (the copies kept for handover too), so new connections are refused.
                if let Some(s) = &stopper {
                    let _ = rustix::net::shutdown(s, rustix::net::Shutdown::Read);
                }
                return;
            }
            futures_util::future::Either::Right(_) => return,
        }
    }
}

async fn serve(worker: Rc<Worker>, entrypoint: Rc<str>, stream: monoio::net::TcpStream, peer: SocketAddr) {
    // TLS or cleartext, HTTP/1.1 or HTTP/2: decided by the connection's first bytes.
    crate::http::server::serve(worker, entrypoint, stream, peer).await
}
