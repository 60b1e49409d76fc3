//! Prometheus metrics under Traefik's names and labels. Each worker counts into its own
//! [`Counters`] (a `RefCell` in the worker: no lock, no shared atomic per request); a scrape
//! reaches one worker, which asks every other worker for a copy of its counters over a channel
//! (see `scrape`), merges them and renders the text exposition (`render`).

pub mod ebpf;
mod render;
mod scrape;
pub mod tls;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;
use weir_proto::observability::Prometheus;

pub use render::{qualified, render};
pub use scrape::{gather, register_worker};

/// Traefik's `protocol` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// A WebSocket handshake.
    Websocket,
    /// `Accept: text/event-stream`.
    Sse,
    /// `Content-Type: application/grpc-web*`.
    GrpcWeb,
    /// `Content-Type: application/grpc*`.
    Grpc,
}

impl Protocol {
    /// Traefik's classification of a request, in its order.
    pub fn of(headers: &http::HeaderMap) -> Protocol {
        let has = |name: http::header::HeaderName, token: &str| {
            headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
        };
        let content_type = headers.get(http::header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
        if has(http::header::CONNECTION, "upgrade") && has(http::header::UPGRADE, "websocket") {
            Protocol::Websocket
        } else if has(http::header::ACCEPT, "text/event-stream") {
            Protocol::Sse
        } else if content_type.starts_with(b"application/grpc-web") {
            Protocol::GrpcWeb
        } else if content_type.starts_with(b"application/grpc") {
            Protocol::Grpc
        } else {
            Protocol::Http
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Websocket => "websocket",
            Protocol::Sse => "sse",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::Grpc => "grpc",
        }
    }
}

/// The labels every request series has besides its owner's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Labels {
    /// Status code (the gRPC status for gRPC requests, as Traefik).
    pub code: u16,
    /// Request method.
    pub method: Method,
    /// Protocol.
    pub protocol: Protocol,
    /// Values of the configured `headerLabels`, in label order (empty when none).
    pub headers: Vec<String>,
}

/// Counts of one series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Requests.
    pub requests: u64,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Response body bytes.
    pub response_bytes: u64,
    /// Observations per bucket (not cumulative; one more than the bounds, for `+Inf`).
    pub buckets: Vec<u64>,
    /// Sum of the durations, in seconds.
    pub sum: f64,
}

impl Series {
    fn observe(&mut self, bounds: &[f64], ex: &Exchange<'_>) {
        self.requests += 1;
        self.request_bytes += ex.request_bytes;
        self.response_bytes += ex.response_bytes;
        let secs = ex.duration.as_secs_f64();
        self.sum += secs;
        if self.buckets.len() != bounds.len() + 1 {
            self.buckets = vec![0; bounds.len() + 1];
        }
        let i = bounds.iter().position(|b| secs <= *b).unwrap_or(bounds.len());
        self.buckets[i] += 1;
    }

    fn merge(&mut self, other: &Series) {
        self.requests += other.requests;
        self.request_bytes += other.request_bytes;
        self.response_bytes += other.response_bytes;
        self.sum += other.sum;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
    }
}

/// Series of one owner (entrypoint, router or service) by labels.
pub type SeriesMap = HashMap<Labels, Series>;

/// TLS request counts of one owner by `(tls_version, tls_cipher)`.
pub type TlsCounts = HashMap<tls::TlsLabels, u64>;

/// One worker's counters; also the merged view a scrape renders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// By entrypoint.
    pub entrypoints: HashMap<Box<str>, SeriesMap>,
    /// By router, then by its service.
    pub routers: HashMap<Box<str>, HashMap<Box<str>, SeriesMap>>,
    /// By service.
    pub services: HashMap<Box<str>, SeriesMap>,
    /// Open connections by entrypoint.
    pub open_connections: HashMap<Box<str>, i64>,
    /// Retries by service.
    pub retries: HashMap<Box<str>, u64>,
    /// Requests that arrived over TLS, by entrypoint, then `(tls_version, tls_cipher)`.
    pub entrypoints_tls: HashMap<Box<str>, TlsCounts>,
    /// The same by router, then by its service.
    pub routers_tls: HashMap<Box<str>, HashMap<Box<str>, TlsCounts>>,
    /// The same by service.
    pub services_tls: HashMap<Box<str>, TlsCounts>,
    /// Requests served by this worker (`weir_worker_requests_total`), by worker index.
    pub worker_requests: HashMap<usize, u64>,
    /// Open connections by worker index (`weir_worker_open_connections`).
    pub worker_connections: HashMap<usize, i64>,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        fn merge_map(into: &mut HashMap<Box<str>, SeriesMap>, from: &HashMap<Box<str>, SeriesMap>) {
            for (name, series) in from {
                let target = into.entry(name.clone()).or_default();
                for (labels, s) in series {
                    target.entry(labels.clone()).or_default().merge(s);
                }
            }
        }
        merge_map(&mut self.entrypoints, &other.entrypoints);
        merge_map(&mut self.services, &other.services);
        for (router, by_service) in &other.routers {
            merge_map(self.routers.entry(router.clone()).or_default(), by_service);
        }
        for (ep, n) in &other.open_connections {
            *self.open_connections.entry(ep.clone()).or_default() += n;
        }
        for (service, n) in &other.retries {
            *self.retries.entry(service.clone()).or_default() += n;
        }
        fn merge_tls(into: &mut HashMap<Box<str>, TlsCounts>, from: &HashMap<Box<str>, TlsCounts>) {
            for (name, counts) in from {
                let target = into.entry(name.clone()).or_default();
                for (labels, n) in counts {
                    *target.entry(*labels).or_default() += n;
                }
            }
        }
        merge_tls(&mut self.entrypoints_tls, &other.entrypoints_tls);
        merge_tls(&mut self.services_tls, &other.services_tls);
        for (router, by_service) in &other.routers_tls {
            merge_tls(self.routers_tls.entry(router.clone()).or_default(), by_service);
        }
        for (w, n) in &other.worker_requests {
            *self.worker_requests.entry(*w).or_default() += n;
        }
        for (w, n) in &other.worker_connections {
            *self.worker_connections.entry(*w).or_default() += n;
        }
    }
}

/// What one finished request tells the metrics: built once per request by the proxy.
#[derive(Debug)]
pub struct Exchange<'a> {
    /// Entrypoint.
    pub entrypoint: &'a str,
    /// Router, when one matched.
    pub router: Option<&'a str>,
    /// The router's service, when one matched.
    pub service: Option<&'a str>,
    /// Code, method, protocol, header label values.
    pub labels: Labels,
    /// From the request's arrival to the end of the response body.
    pub duration: Duration,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Response body bytes.
    pub response_bytes: u64,
    /// Retries the Retry middleware made (`traefik_service_retries_total`).
    pub retries: u32,
    /// Version and cipher when the request arrived over TLS (`*_requests_tls_total`).
    pub tls: Option<tls::TlsLabels>,
}

/// A worker's metrics state.
#[derive(Debug, Default)]
pub struct WorkerMetrics {
    index: std::cell::Cell<usize>,
    counters: RefCell<Counters>,
}

fn series<'m>(map: &'m mut HashMap<Box<str>, SeriesMap>, name: &str, labels: &Labels) -> &'m mut Series {
    let by_labels = match map.get_mut(name) {
        Some(_) => map.get_mut(name).unwrap_or_else(|| unreachable!("present: just looked up")),
        None => map.entry(name.into()).or_default(),
    };
    if !by_labels.contains_key(labels) {
        by_labels.insert(labels.clone(), Series::default());
    }
    by_labels.get_mut(labels).unwrap_or_else(|| unreachable!("inserted above"))
}

/// `+1` on `map[name][labels]`, allocating the name only the first time it is seen.
fn bump_tls(map: &mut HashMap<Box<str>, TlsCounts>, name: &str, labels: tls::TlsLabels) {
    let counts = match map.get_mut(name) {
        Some(_) => map.get_mut(name).unwrap_or_else(|| unreachable!("present: just looked up")),
        None => map.entry(name.into()).or_default(),
    };
    *counts.entry(labels).or_default() += 1;
}

/// Traefik counts TLS requests at each level its labels are enabled for, like the others.
fn count_tls(c: &mut Counters, ex: &Exchange<'_>, labels: tls::TlsLabels, config: &Prometheus) {
    if config.add_entry_points_labels {
        bump_tls(&mut c.entrypoints_tls, ex.entrypoint, labels);
    }
    if let (Some(router), Some(service), true) = (ex.router, ex.service, config.add_routers_labels) {
        let by_service = match c.routers_tls.get_mut(router) {
            Some(_) => c.routers_tls.get_mut(router).unwrap_or_else(|| unreachable!("present")),
            None => c.routers_tls.entry(router.into()).or_default(),
        };
        bump_tls(by_service, service, labels);
    }
    if let (Some(service), true) = (ex.service, config.add_services_labels) {
        bump_tls(&mut c.services_tls, service, labels);
    }
}

impl WorkerMetrics {
    /// Sets the worker's index (its `worker` label).
    pub fn set_index(&self, index: usize) {
        self.index.set(index);
    }

    /// Counts a finished request.
    pub fn record(&self, config: &Prometheus, ex: &Exchange<'_>) {
        let mut c = self.counters.borrow_mut();
        *c.worker_requests.entry(self.index.get()).or_default() += 1;
        let bounds = &config.buckets;
        if config.add_entry_points_labels {
            series(&mut c.entrypoints, ex.entrypoint, &ex.labels).observe(bounds, ex);
        }
        if let (Some(router), Some(service), true) = (ex.router, ex.service, config.add_routers_labels) {
            let by_service = match c.routers.get_mut(router) {
                Some(_) => c.routers.get_mut(router).unwrap_or_else(|| unreachable!("present")),
                None => c.routers.entry(router.into()).or_default(),
            };
            series(by_service, service, &ex.labels).observe(bounds, ex);
        }
        if let Some(labels) = ex.tls {
            count_tls(&mut c, ex, labels, config);
        }
        if let (Some(service), true) = (ex.service, config.add_services_labels) {
            series(&mut c.services, service, &ex.labels).observe(bounds, ex);
            if ex.retries > 0 {
                match c.retries.get_mut(service) {
                    Some(n) => *n += u64::from(ex.retries),
                    None => {
                        c.retries.insert(service.into(), u64::from(ex.retries));
                    }
                }
            }
        }
    }

    /// A connection opened (`+1`) or closed (`-1`) on `entrypoint`.
    pub fn connection(&self, entrypoint: &str, delta: i64) {
        let mut c = self.counters.borrow_mut();
        match c.open_connections.get_mut(entrypoint) {
            Some(n) => *n += delta,
            None => {
                c.open_connections.insert(entrypoint.into(), delta);
            }
        }
        *c.worker_connections.entry(self.index.get()).or_default() += delta;
    }

    /// A copy of the counters (for a scrape).
    pub fn snapshot(&self) -> Counters {
        self.counters.borrow().clone()
    }
}

/// The `/metrics` response of `prometheus@internal`: the headers at once, the body once
/// every worker has answered (so a synchronous caller can hand it out).
pub fn response(generation: &crate::worker::Generation) -> http::Response<crate::http::Body> {
    let Some(config) = generation.table.observability.metrics.clone() else {
        return crate::http::responses::not_found();
    };
    let gauges = gauges(generation);
    let text = Box::pin(async move {
        let counters = gather().await;
        bytes::Bytes::from(render(&config, &counters, &gauges) + &ebpf::render().await)
    });
    let mut resp = http::Response::new(crate::http::Body::local(GatheredBody { text: Some(text) }));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// A body that is one chunk produced by a future.
struct GatheredBody {
    text: Option<std::pin::Pin<Box<dyn std::future::Future<Output = bytes::Bytes>>>>,
}

impl hyper::body::Body for GatheredBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>>> {
        let Some(fut) = self.text.as_mut() else { return std::task::Poll::Ready(None) };
        match fut.as_mut().poll(cx) {
            std::task::Poll::Ready(text) => {
                self.text = None;
                std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(text))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.text.is_none()
    }
}

/// Health of health-checked servers, from the table now served.
fn gauges(generation: &crate::worker::Generation) -> render::Gauges {
    let table = &generation.table;
    let mut g = render::Gauges::default();
    for (id, service) in table.services.iter().enumerate() {
        if let crate::service::Service::LoadBalancer(lb) = service {
            if lb.health_check.is_none() {
                continue;
            }
            let name = table.service_names.get(id).cloned().unwrap_or_default();
            for server in &lb.servers {
                g.server_up.push((name.clone(), server.url.clone(), server.healthy()));
            }
        }
    }
    g.certs = table
        .tls
        .cert_expiries
        .iter()
        .map(|e| (e.cn.clone(), e.serial.clone(), e.sans.clone(), e.not_after))
        .collect();
    g
}

/// Process-wide facts the control thread updates (never on the request path).
pub mod process {
    use super::*;

    pub(super) static RELOADS: AtomicU64 = AtomicU64::new(0);
    pub(super) static LAST_SUCCESS_SECS: AtomicU64 = AtomicU64::new(0);
    pub(super) static GENERATION: AtomicU64 = AtomicU64::new(0);
    pub(super) static APPLY_MICROS: AtomicU64 = AtomicU64::new(0);

    /// A snapshot was applied (`traefik_config_reloads_total`, `..._last_reload_success`).
    pub fn applied(generation: u64, took: Duration) {
        RELOADS.fetch_add(1, Ordering::Relaxed);
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        LAST_SUCCESS_SECS.store(now, Ordering::Relaxed);
        GENERATION.store(generation, Ordering::Relaxed);
        APPLY_MICROS.store(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
