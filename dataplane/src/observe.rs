//! The per-request hook of metrics and access logs. When a request arrives the proxy takes an
//! [`Arrival`] (only what the enabled outputs need; nothing at all when both are off); when
//! its response is ready, [`finish`] wraps the body so that the request is counted and logged
//! once the body has been sent (or dropped), as Traefik measures: duration and size include
//! the body.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Version};
use hyper::body::{Frame, SizeHint};

use crate::http::body::BodyError;
use crate::http::Body;
use crate::metrics::{Exchange, Labels, Protocol};
use crate::router::index::IndexedRouter;
use crate::table::ServiceId;
use crate::worker::{Generation, Worker};

/// An accepted connection, counted in `traefik_open_connections` (per worker) and in the
/// process-wide count the graceful shutdown waits on, until dropped.
pub struct OpenConnection {
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    _drain: crate::shutdown::ConnectionGuard,
}

impl OpenConnection {
    /// Counts a connection accepted on `entrypoint`.
    pub fn new(worker: &Rc<Worker>, entrypoint: &Rc<str>) -> OpenConnection {
        worker.metrics.connection(entrypoint, 1);
        OpenConnection {
            worker: Rc::clone(worker),
            entrypoint: Rc::clone(entrypoint),
            _drain: crate::shutdown::ConnectionGuard::open(),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.worker.metrics.connection(&self.entrypoint, -1);
    }
}

/// What the proxy learnt while routing, for the hook.
#[derive(Debug, Default)]
pub struct Routed<'g> {
    /// The router that matched.
    pub router: Option<&'g IndexedRouter<ServiceId>>,
}

/// The response headers as the server sent them, before middlewares rewrote them (set by the
/// service only when the access log keeps some header: Traefik's `origin_<Header>` fields).
#[derive(Debug, Clone)]
pub struct OriginHeaders(pub HeaderMap);

/// The user BasicAuth or DigestAuth accepted (Traefik's ClientUsername).
#[derive(Debug, Clone)]
pub struct ClientUsername(pub String);

/// Retries the Retry middleware made before this response (absent when none).
#[derive(Debug, Clone, Copy)]
pub struct Retried(pub u32);

/// The server a response came from (set by the service when an access log wants it).
#[derive(Debug, Clone, Copy)]
pub struct ServedBy {
    /// The load balancer (a service id of the table the request was served with).
    pub service: ServiceId,
    /// The server's position in it.
    pub server: usize,
    /// When forwarding to it began (Traefik's OriginDuration runs from there to the end of
    /// the body).
    pub at: Instant,
    /// The status the proxy got or made (Traefik's OriginStatus; middlewares such as Errors
    /// may send the client another).
    pub status: u16,
}

/// Access-log facts of a request, captured when it arrives.
struct LogArrival {
    start: SystemTime,
    peer: SocketAddr,
    path: String,
    version: Version,
    host: Option<String>,
    forwarded_for: Option<String>,
    tls: bool,
    tls_client_subject: Option<String>,
    headers: HeaderMap,
    count: u64,
}

/// A request being observed.
pub struct Arrival {
    at: Instant,
    method: Method,
    protocol: Protocol,
    request_bytes: u64,
    header_values: Vec<String>,
    tls: Option<crate::metrics::tls::TlsLabels>,
    log: Option<Box<LogArrival>>,
}

/// Captures what the enabled outputs need; `None` when metrics and access logs are off.
pub fn arrive<B>(
    worker: &Worker,
    generation: &Generation,
    peer: SocketAddr,
    tls_conn: Option<&crate::tls::TlsConn>,
    req: &Request<B>,
) -> Option<Arrival> {
    let obs = &generation.table.observability;
    if obs.metrics.is_none() && obs.access_log.is_none() {
        return None;
    }
    let headers = req.headers();
    let request_bytes =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    let header_values = match &obs.metrics {
        Some(m) if !m.header_labels.is_empty() => m
            .header_labels
            .iter()
            .map(|(_, h)| headers.get(h.as_str()).and_then(|v| v.to_str().ok()).unwrap_or("").to_string())
            .collect(),
        _ => Vec::new(),
    };
    let log = obs.access_log.as_ref().map(|config| {
        let uri = req.uri();
        let path = match (config.fields.keep_query, uri.query()) {
            (true, Some(q)) => format!("{}?{q}", uri.path()),
            _ => uri.path().to_string(),
        };
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string));
        let forwarded_for = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_string);
        let kept = if crate::access_log::format::wants_headers(&config.fields) {
            headers.clone()
        } else {
            HeaderMap::new()
        };
        Box::new(LogArrival {
            start: SystemTime::now(),
            peer,
            path,
            version: req.version(),
            host,
            forwarded_for,
            tls: tls_conn.is_some(),
            tls_client_subject: tls_conn
                .and_then(|c| c.peer_certs.first())
                .and_then(|leaf| crate::access_log::subject::subject(leaf.as_ref())),
            headers: kept,
            count: worker.access_log.next_count(),
        })
    });
    Some(Arrival {
        at: Instant::now(),
        method: req.method().clone(),
        protocol: Protocol::of(headers),
        request_bytes,
        header_values,
        tls: tls_conn.map(|c| (c.version, c.cipher)),
        log,
    })
}

/// Wraps the response so the request is counted and logged when its body is done.
pub fn finish(
    arrival: Arrival,
    worker: &Rc<Worker>,
    generation: &Rc<Generation>,
    entrypoint: &Rc<str>,
    routed: &Routed<'_>,
    mut resp: Response<Body>,
) -> Response<Body> {
    let obs = &generation.table.observability;
    // Traefik leaves its internal services (API, dashboard, ping, metrics) out of metrics and
    // access logs unless `addInternals` is set.
    let internal = routed.router.is_some_and(|r| {
        matches!(generation.table.services.get(r.target), Some(crate::service::Service::Internal(_)))
    });
    if internal {
        return resp;
    }
    let want_router_name =
        obs.access_log.is_some() || obs.metrics.as_ref().is_some_and(|m| m.add_routers_labels);
    let router = routed.router.filter(|_| want_router_name).map(|r| r.name.clone());
    let service = routed.router.map(|r| r.target);
    let status = resp.status().as_u16();
    let grpc_status = resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok());
    let response_headers = match &obs.access_log {
        Some(c) if crate::access_log::format::wants_headers(&c.fields) => resp.headers().clone(),
        _ => HeaderMap::new(),
    };
    let served_by = resp.extensions_mut().remove::<ServedBy>();
    let retries = resp.extensions_mut().remove::<Retried>().map_or(0, |r| r.0);
    let username = resp.extensions_mut().remove::<ClientUsername>().map(|u| u.0);
    let origin_headers = resp.extensions_mut().remove::<OriginHeaders>().map(|h| h.0).unwrap_or_default();
    let pending = Pending {
        worker: Rc::clone(worker),
        generation: Rc::clone(generation),
        entrypoint: Rc::clone(entrypoint),
        router,
        service,
        arrival,
        status,
        grpc_status,
        response_headers,
        origin_headers,
        served_by,
        retries,
        username,
        sent: 0,
    };
    resp.map(|inner| Body::local(Observed { inner, pending: Some(pending) }))
}

/// Everything needed to count and log once the body is done.
struct Pending {
    worker: Rc<Worker>,
    generation: Rc<Generation>,
    entrypoint: Rc<str>,
    router: Option<String>,
    service: Option<ServiceId>,
    arrival: Arrival,
    status: u16,
    grpc_status: Option<u16>,
    response_headers: HeaderMap,
    origin_headers: HeaderMap,
    served_by: Option<ServedBy>,
    retries: u32,
    username: Option<String>,
    sent: u64,
}

impl Pending {
    fn record(self) {
        let duration = self.arrival.at.elapsed();
        let table = &self.generation.table;
        let service = self.service.and_then(|id| table.service_names.get(id)).map(String::as_str);
        if let Some(config) = &table.observability.metrics {
            // Traefik: gRPC requests are counted under their gRPC status (2, Unknown, without).
            let code = match self.arrival.protocol {
                Protocol::Grpc | Protocol::GrpcWeb => self.grpc_status.unwrap_or(2),
                _ => self.status,
            };
            let ex = Exchange {
                entrypoint: &self.entrypoint,
                router: self.router.as_deref(),
                service,
                labels: Labels {
                    code,
                    method: self.arrival.method.clone(),
                    protocol: self.arrival.protocol,
                    headers: self.arrival.header_values,
                },
                duration,
                request_bytes: self.arrival.request_bytes,
                response_bytes: self.sent,
                retries: self.retries,
                tls: self.arrival.tls,
            };
            self.worker.metrics.record(config, &ex);
        }
        if let (Some(config), Some(log)) = (&table.observability.access_log, &self.arrival.log) {
            let protocol = match log.version {
                Version::HTTP_10 => "HTTP/1.0",
                Version::HTTP_2 => "HTTP/2.0",
                Version::HTTP_3 => "HTTP/3.0",
                _ => "HTTP/1.1",
            };
            let service_url = self.served_by.and_then(|s| match table.services.get(s.service) {
                Some(crate::service::Service::LoadBalancer(lb)) => {
                    lb.servers.get(s.server).map(|v| v.url.as_str())
                }
                _ => None,
            });
            let service_addr =
                service_url.map(|u| u.split_once("://").map_or(u, |(_, rest)| rest).trim_end_matches('/'));
            let entry = crate::access_log::Entry {
                start: log.start,
                duration,
                origin_duration: self.served_by.as_ref().map(|s| s.at.elapsed()),
                client_addr: log.peer,
                forwarded_for: log.forwarded_for.as_deref(),
                host: log.host.as_deref(),
                method: self.arrival.method.as_str(),
                path: &log.path,
                protocol,
                scheme: if log.tls { "https" } else { "http" },
                status: self.status,
                origin_status: self.served_by.as_ref().map(|s| s.status),
                size: self.sent,
                request_size: self.arrival.request_bytes,
                count: log.count,
                entrypoint: &self.entrypoint,
                router: self.router.as_deref(),
                service,
                service_url,
                service_addr,
                retry_attempts: self.retries,
                request_headers: &log.headers,
                response_headers: &self.response_headers,
                origin_headers: &self.origin_headers,
                tls: self.arrival.tls,
                tls_client_subject: log.tls_client_subject.as_deref(),
                client_username: self.username.as_deref(),
            };
            self.worker.access_log.log(config, &entry);
        }
    }
}

/// The response body, counting what is sent; records the request when dropped.
struct Observed {
    inner: Body,
    pending: Option<Pending>,
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            p.record();
        }
    }
}

impl hyper::body::Body for Observed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(p)) = (&polled, this.pending.as_mut()) {
            if let Some(data) = frame.data_ref() {
                p.sent += data.len() as u64;
            } else if let Some(trailers) = frame.trailers_ref() {
                if let Some(s) = trailers.get("grpc-status").and_then(|v| v.to_str().ok()?.parse().ok()) {
                    p.grpc_status = Some(s);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
