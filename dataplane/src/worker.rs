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
use hyper::server::conn::http1;
use hyper::service::service_fn;
use monoio_compat::hyper::{MonoioIo, MonoioTimer};

use crate::http::pool::Pool;
use crate::lb::wrr::Wrr;
use crate::table::{Server, Service, ServiceId, Table};

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
    lb: RefCell<Vec<Wrr>>,
}

impl Generation {
    fn new(table: Arc<Table>, previous: Option<&Generation>) -> Generation {
        // Carry round-robin positions over by service name when the weights did not change,
        // so a snapshot that does not touch a service does not reset its rotation.
        let prev_lb = previous.map(|p| p.lb.borrow());
        let old: HashMap<&str, &Wrr> = match (previous, &prev_lb) {
            (Some(p), Some(lb)) => p.table.service_names.iter().map(String::as_str).zip(lb.iter()).collect(),
            _ => HashMap::new(),
        };
        let lb = table
            .services
            .iter()
            .zip(&table.service_names)
            .map(|(svc, name)| {
                let weights = weights(svc);
                match old.get(name.as_str()) {
                    Some(w) if w.same_weights(weights.iter().copied()) => (*w).clone(),
                    _ => Wrr::new(weights),
                }
            })
            .collect();
        Generation { table, lb: RefCell::new(lb) }
    }

    /// Walks the service tree from `id` to a server, advancing round-robin state.
    /// `None` when a load balancer on the way has no server (503).
    pub fn pick(&self, mut id: ServiceId) -> Option<(&Server, bool)> {
        let mut lb = self.lb.borrow_mut();
        // The tree is acyclic (checked when the table was built), so this terminates.
        loop {
            let choice = lb[id].pick()?;
            match &self.table.services[id] {
                Service::LoadBalancer { servers, pass_host_header } => {
                    return servers.get(choice).map(|s| (s, *pass_host_header));
                }
                Service::Weighted(children) => id = children.get(choice)?.0,
            }
        }
    }
}

fn weights(svc: &Service) -> Vec<u32> {
    match svc {
        Service::LoadBalancer { servers, .. } => servers.iter().map(|s| s.weight).collect(),
        Service::Weighted(children) => children.iter().map(|c| c.1).collect(),
    }
}

/// Per-worker state shared by its connections.
pub struct Worker {
    current: RefCell<Rc<Generation>>,
    /// Keep-alive connections to backends.
    pub pool: Rc<Pool>,
    /// Value of `X-Forwarded-Server`.
    pub hostname: HeaderValue,
}

impl Worker {
    /// The generation new requests are served with.
    pub fn current(&self) -> Rc<Generation> {
        Rc::clone(&self.current.borrow())
    }
}

/// Starts a worker thread, pinned to `cpu` when given.
pub fn spawn(index: usize, cpu: Option<usize>, hostname: HeaderValue) -> std::io::Result<WorkerHandle> {
    let (tx, rx) = mpsc::unbounded();
    std::thread::Builder::new().name(format!("weir-worker-{index}")).spawn(move || {
        if let Some(cpu) = cpu {
            if let Err(e) = monoio::utils::bind_to_cpu_set([cpu]) {
                tracing::warn!(worker = index, cpu, "could not pin worker: {e:?}");
            }
        }
        let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
        match rt {
            Ok(mut rt) => rt.block_on(run(index, rx, hostname)),
            Err(e) => tracing::error!(worker = index, "cannot start runtime: {e}"),
        }
    })?;
    Ok(WorkerHandle { tx })
}

async fn run(index: usize, mut rx: mpsc::UnboundedReceiver<Apply>, hostname: HeaderValue) {
    let empty =
        Arc::new(Table { entrypoints: HashMap::new(), services: Vec::new(), service_names: Vec::new() });
    let worker = Rc::new(Worker {
        current: RefCell::new(Rc::new(Generation::new(empty, None))),
        pool: Rc::new(Pool::default()),
        hostname,
    });
    let mut listeners: HashMap<String, oneshot::Sender<()>> = HashMap::new();
    while let Some(apply) = rx.next().await {
        for name in &apply.close {
            // Dropping the sender stops that accept loop; open connections continue.
            listeners.remove(name);
        }
        let next = Generation::new(apply.table, Some(&worker.current()));
        *worker.current.borrow_mut() = Rc::new(next);
        for (name, std_listener) in apply.open {
            match monoio::net::TcpListener::from_std(std_listener) {
                Ok(l) => {
                    let (stop_tx, stop_rx) = oneshot::channel();
                    listeners.insert(name.clone(), stop_tx);
                    monoio::spawn(accept_loop(Rc::clone(&worker), Rc::from(name.as_str()), l, stop_rx));
                }
                Err(e) => tracing::error!(worker = index, entrypoint = %name, "cannot use listener: {e}"),
            }
        }
        let _ = apply.done.send(());
    }
}

async fn accept_loop(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    listener: monoio::net::TcpListener,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let accept = std::pin::pin!(listener.accept());
        match futures_util::future::select(accept, &mut stop).await {
            futures_util::future::Either::Left((Ok((stream, peer)), _)) => {
                monoio::spawn(serve(Rc::clone(&worker), Rc::clone(&entrypoint), stream, peer));
            }
            futures_util::future::Either::Left((Err(e), _)) => {
                tracing::warn!(entrypoint = %entrypoint, "accept: {e}");
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            futures_util::future::Either::Right(_) => return,
        }
    }
}

async fn serve(worker: Rc<Worker>, entrypoint: Rc<str>, stream: monoio::net::TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let io = match stream.try_into_poll_io() {
        Ok(io) => io,
        Err((e, _)) => {
            tracing::warn!("cannot drive connection from {peer}: {e}");
            return;
        }
    };
    let svc = service_fn(move |req| {
        crate::http::proxy::handle(Rc::clone(&worker), Rc::clone(&entrypoint), peer, req)
    });
    let conn = http1::Builder::new().timer(MonoioTimer).serve_connection(MonoioIo::new(io), svc);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}
