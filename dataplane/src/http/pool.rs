//! Per-worker pool of upstream connections. An HTTP/1.1 connection is parked in the pool when
//! its response head arrives and is taken again only once hyper says it can carry the next
//! request (the previous response body was read to the end) — no task waits for that. At most
//! `maxIdleConnsPerHost` are parked per server, and idle ones are closed after
//! `idleConnTimeout`; a pooled connection the backend closed meanwhile is detected when the
//! request comes back unsent, and the request goes out on a fresh connection instead. HTTP/2
//! connections (h2c, or TLS with ALPN h2) are shared by all requests to the server while they
//! live. Looking a connection up allocates nothing.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::{Either, FutureExt};
use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Uri};
use http::Version;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use weir_proto::snapshot::Scheme;

use super::transport::Transport;
use crate::service::body::UpstreamBody;

/// How often idle connections are checked against their transport's `idleConnTimeout`.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// Why a request did not get a response from the backend.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be made.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Backend address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The connection (or TLS handshake) did not complete within the dial timeout.
    #[error("connect to {addr}: dial timeout")]
    DialTimeout {
        /// Backend address.
        addr: SocketAddr,
    },
    /// The TLS handshake failed (certificate not trusted, protocol mismatch).
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// Backend address.
        addr: SocketAddr,
        /// rustls' reason.
        reason: String,
    },
    /// The server host name did not resolve when the snapshot applied.
    #[error("server {url}: host did not resolve")]
    Unresolved {
        /// Server URL.
        url: String,
    },
    /// No response head within `responseHeaderTimeout`.
    #[error("{addr}: no response head within the response header timeout")]
    ResponseHeaderTimeout {
        /// Backend address.
        addr: SocketAddr,
    },
    /// The HTTP exchange failed.
    #[error("exchange with {addr}: {source}")]
    Http {
        /// Backend address.
        addr: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
}

impl UpstreamError {
    /// Whether the request certainly never reached the server (safe to send elsewhere).
    pub fn before_sending(&self) -> bool {
        matches!(
            self,
            UpstreamError::Connect { .. }
                | UpstreamError::DialTimeout { .. }
                | UpstreamError::Tls { .. }
                | UpstreamError::Unresolved { .. }
        )
    }
}

/// A request that failed, with the request itself when it was never sent.
pub struct SendError {
    /// What went wrong.
    pub error: UpstreamError,
    /// The unsent request (to retry elsewhere).
    pub request: Option<Request<UpstreamBody>>,
}

/// A connection's sending half.
pub enum Sender {
    /// HTTP/1.1: one request at a time.
    H1(http1::SendRequest<UpstreamBody>),
    /// HTTP/2: multiplexed.
    H2(http2::SendRequest<UpstreamBody>),
}

/// Which pooled connections may carry a request. The transport is compared by identity (a
/// connection made under an older configuration of a transport is never reused); for `https`
/// the TLS server name is compared too, in the pooled entry, so that a lookup allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    transport: usize,
    addr: SocketAddr,
    scheme: Scheme,
}

impl Key {
    fn new(target: &Target<'_>) -> Key {
        Key { transport: Arc::as_ptr(target.transport) as usize, addr: target.addr, scheme: target.scheme }
    }
}

/// The TLS server name a connection to `target` is made with; empty for cleartext, where any
/// connection to the address will do.
fn tls_name<'a>(target: &Target<'a>) -> &'a str {
    if target.scheme == Scheme::Https {
        target.transport.server_name(target.host)
    } else {
        ""
    }
}

/// A live HTTP/2 connection.
struct Shared {
    sender: http2::SendRequest<UpstreamBody>,
    transport: Arc<Transport>,
    name: Box<str>,
}

/// An HTTP/1.1 connection parked in the pool: idle, or still delivering its last response
/// body (it becomes ready by itself once that body was read to the end).
struct Idle {
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
    transport: Arc<Transport>,
    name: Box<str>,
}

/// Upstream connections of one worker.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<HashMap<Key, Vec<Idle>>>,
    h2: RefCell<HashMap<Key, Vec<Shared>>>,
    sweeping: Cell<bool>,
}

/// Where one request goes.
pub struct Target<'a> {
    /// The load balancer's transport.
    pub transport: &'a Arc<Transport>,
    /// Address to connect to.
    pub addr: SocketAddr,
    /// How to speak to it.
    pub scheme: Scheme,
    /// Host of the server URL (TLS server name, `:authority` fallback).
    pub host: &'a str,
    /// `host:port` of the server URL.
    pub authority: &'a str,
}

impl Pool {
    /// Sends `req` to the target on a pooled or new connection.
    pub async fn send(
        self: &Rc<Self>,
        target: &Target<'_>,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let key = Key::new(target);
        let name = tls_name(target);
        let addr = target.addr;
        let header_timeout = target.transport.response_header_timeout;
        let fail = |error| SendError { error, request: None };
        let http = |source| SendError { error: UpstreamError::Http { addr, source }, request: None };
        if let Some(mut sender) = self.take_h2(&key, target.transport, name) {
            to_h2(&mut req, target);
            return with_timeout(header_timeout, addr, sender.send_request(req))
                .await
                .map_err(fail)?
                .map_err(http);
        }
        while let Some(mut conn) = self.take(&key, target.transport, name) {
            match with_timeout(header_timeout, addr, try_send(&mut conn.sender, req)).await {
                Ok(Ok(resp)) => {
                    self.park(key, conn);
                    return Ok(resp);
                }
                // The pooled connection was dead before the request left: try the next one.
                Ok(Err(Ok(back))) => req = back,
                Ok(Err(Err(source))) => return Err(http(source)),
                Err(e) => return Err(fail(e)),
            }
        }
        // Boxed: connecting (TCP, TLS, HTTP handshakes) is rare on keep-alive and its future is
        // large; inline it would grow every request's future, which hyper moves several times.
        let connect = Box::pin(target.transport.connect(target.addr, target.scheme, target.host));
        let sender = match connect.await {
            Ok(s) => s,
            Err(error) => return Err(SendError { error, request: Some(req) }),
        };
        match sender {
            Sender::H2(mut sender) => {
                let shared = Shared {
                    sender: sender.clone(),
                    transport: Arc::clone(target.transport),
                    name: name.into(),
                };
                self.h2.borrow_mut().entry(key).or_default().push(shared);
                self.start_sweeper();
                to_h2(&mut req, target);
                with_timeout(header_timeout, addr, sender.send_request(req))
                    .await
                    .map_err(fail)?
                    .map_err(http)
            }
            Sender::H1(mut sender) => {
                let resp = with_timeout(header_timeout, addr, sender.send_request(req))
                    .await
                    .map_err(fail)?
                    .map_err(http)?;
                let conn = Idle {
                    sender,
                    since: Instant::now(),
                    transport: Arc::clone(target.transport),
                    name: name.into(),
                };
                self.park(key, conn);
                Ok(resp)
            }
        }
    }

    fn take_h2(
        &self,
        key: &Key,
        transport: &Arc<Transport>,
        name: &str,
    ) -> Option<http2::SendRequest<UpstreamBody>> {
        let mut h2 = self.h2.borrow_mut();
        let list = h2.get_mut(key)?;
        list.retain(|c| !c.sender.is_closed() && Arc::ptr_eq(&c.transport, transport));
        list.iter().find(|c| *c.name == *name).map(|c| c.sender.clone())
    }

    /// The most recently parked ready connection for `key`; closed (or outdated) ones are
    /// dropped on the way, busy ones stay parked.
    fn take(&self, key: &Key, transport: &Arc<Transport>, name: &str) -> Option<Idle> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            let c = &list[i];
            // A connection made under an older configuration of the transport is not reused.
            if c.sender.is_closed() || !Arc::ptr_eq(&c.transport, transport) {
                list.swap_remove(i);
            } else if c.sender.is_ready() && *c.name == *name {
                return Some(list.swap_remove(i));
            }
        }
        None
    }

    /// Parks a connection whose response head just arrived. It is not ready before its body
    /// was read to the end; `take` skips it until then (hyper flips its readiness itself), so
    /// no task waits for it. At most `maxIdleConnsPerHost` are parked per server.
    fn park(self: &Rc<Self>, key: Key, mut conn: Idle) {
        let max = conn.transport.max_idle;
        if max == 0 {
            return;
        }
        conn.since = Instant::now();
        {
            let mut idle = self.idle.borrow_mut();
            let list = idle.entry(key).or_default();
            list.retain(|i| !i.sender.is_closed());
            if list.len() >= max {
                return;
            }
            list.push(conn);
        }
        self.start_sweeper();
    }

    /// Closes idle connections older than their transport's `idleConnTimeout` (dropping the
    /// last sender ends hyper's connection task, which closes the socket).
    fn start_sweeper(self: &Rc<Self>) {
        if self.sweeping.replace(true) {
            return;
        }
        let pool = Rc::downgrade(self);
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(SWEEP_EVERY).await;
                let Some(pool) = pool.upgrade() else { return };
                let now = Instant::now();
                pool.idle.borrow_mut().retain(|_, list| {
                    list.retain_mut(|i| {
                        if i.sender.is_closed() {
                            return false;
                        }
                        if !i.sender.is_ready() {
                            // Still delivering a response: its idle time starts once it is done.
                            i.since = now;
                            return true;
                        }
                        i.transport.idle_timeout.is_none_or(|t| now.duration_since(i.since) < t)
                    });
                    !list.is_empty()
                });
                pool.h2.borrow_mut().retain(|_, list| {
                    list.retain(|c| !c.sender.is_closed());
                    !list.is_empty()
                });
            }
        });
    }
}

/// `try_send_request`, giving the request back when it never left. Not an `async fn`: the
/// request would then be kept twice in the future (as the argument and inside hyper's future),
/// and every request's future is moved by hyper. The large `Err` is the unsent request itself,
/// handed back to be sent on another connection (boxing it would allocate per request).
#[allow(clippy::result_large_err)]
fn try_send(
    sender: &mut http1::SendRequest<UpstreamBody>,
    req: Request<UpstreamBody>,
) -> impl std::future::Future<Output = Result<Response<Incoming>, Result<Request<UpstreamBody>, hyper::Error>>>
{
    sender.try_send_request(req).map(|sent| {
        sent.map_err(|mut e| match e.take_message() {
            Some(back) => Ok(back),
            None => Err(e.into_error()),
        })
    })
}

/// Runs `fut` within the response header timeout, if there is one. Not an `async fn`, for the
/// same reason as [`try_send`]: `fut` is stored once, not as an argument and again as awaited.
fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    addr: SocketAddr,
    fut: F,
) -> impl std::future::Future<Output = Result<F::Output, UpstreamError>> {
    match limit {
        None => Either::Left(fut.map(Ok)),
        Some(limit) => Either::Right(
            monoio::time::timeout(limit, fut)
                .map(move |r| r.map_err(|_| UpstreamError::ResponseHeaderTimeout { addr })),
        ),
    }
}

/// HTTP/2 wants an absolute target: `:authority` from the Host the backend should see.
fn to_h2(req: &mut Request<UpstreamBody>, target: &Target<'_>) {
    let authority = req
        .headers_mut()
        .remove(HOST)
        .and_then(|h| Authority::try_from(h.as_bytes()).ok())
        .or_else(|| Authority::try_from(target.authority).ok());
    let scheme =
        if target.scheme == Scheme::Https { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP };
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(scheme);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
}
