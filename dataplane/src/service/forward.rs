//! Forwarding one request through a service tree, as Traefik's service handlers do: walk to a
//! server (weights, stickiness, health), rewrite `Host` when `passHostHeader` is false, send
//! through the worker's pool with the load balancer's servers transport, retry an idempotent
//! request once on another server when the first could not be connected to, copy it to the
//! mirrors that are due (their answers are drained and dropped), and map failures to
//! Traefik's statuses: 502 unreachable, 504 timeout, 503 no server, 418 `noop@internal`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use http::header::{HOST, SET_COOKIE};
use http::{Method, Request, Response};
use http_body_util::BodyExt;

use super::body::UpstreamBody;
use super::compiled::Service;
use super::state::{Stop, Walk};
use crate::http::pool::{SendError, Target, UpstreamError};
use crate::http::{hop, responses, Body};
use crate::table::ServiceId;
use crate::worker::{Generation, Worker};

/// Forwards `req` (headers already rewritten by the entrypoint) to service `id`; the client's
/// address (for `hrw`) is the request's [`crate::lb::ClientIp`] extension.
pub async fn forward(
    worker: Rc<Worker>,
    generation: Rc<Generation>,
    id: ServiceId,
    req: Request<UpstreamBody>,
) -> Response<Body> {
    let client_ip = req.extensions().get::<crate::lb::ClientIp>().map(|c| c.0);
    forward_from(worker, generation, id, client_ip, req).await
}

/// [`forward`] with the client's address given: the request handler's path without
/// middlewares passes it instead of inserting an extension (an allocation per request).
pub async fn forward_from(
    worker: Rc<Worker>,
    generation: Rc<Generation>,
    id: ServiceId,
    client_ip: Option<std::net::IpAddr>,
    mut req: Request<UpstreamBody>,
) -> Response<Body> {
    let services = &generation.table.services;
    let mut walk = Walk::default();
    walk.client_ip = client_ip;
    let (mut lb_id, mut index) = match generation.balancers.pick(services, id, req.headers(), &mut walk) {
        Ok(picked) => picked,
        Err(Stop::Noop) => return responses::teapot(),
        Err(Stop::NoServer) => return responses::no_available_server(),
        Err(Stop::Internal(kind)) => return crate::admin::serve(kind, &generation, &req),
    };
    let mirror = if walk.mirrors.is_empty() {
        None
    } else {
        match mirror_copy(&mut req, walk.mirror_body.unwrap_or((true, -1))).await {
            Ok(copy) => copy,
            Err(()) => return responses::internal_server_error(),
        }
    };
    // Traefik: a connect failure of an idempotent request is retried on another server of the
    // same load balancer, once, before any byte reached the client.
    let idempotent = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    let mut retried = false;
    let forward_start = std::time::Instant::now();
    let result = loop {
        let Service::LoadBalancer(lb) = &services[lb_id] else {
            break Err(UpstreamError::Unresolved { url: String::new() });
        };
        let server = &lb.servers[index];
        if !lb.pass_host_header {
            req.headers_mut().insert(HOST, server.authority.clone());
        }
        let sent = match server.resolved {
            None => Err(SendError {
                error: UpstreamError::Unresolved { url: server.url.clone() },
                request: Some(req),
            }),
            Some(addr) => {
                let target = Target {
                    transport: &lb.transport,
                    addr,
                    scheme: server.scheme,
                    host: &server.host,
                    authority: server.authority.to_str().unwrap_or(""),
                };
                // p2c and leasttime count requests in flight and time their first bytes.
                generation.balancers.started(lb_id, index);
                let start = std::time::Instant::now();
                let sent = worker.pool.send(&target, req).await;
                generation.balancers.finished(lb_id, index, sent.is_ok().then(|| start.elapsed()));
                sent
            }
        };
        match sent {
            Ok(resp) => break Ok(resp),
            Err(SendError { error, request: Some(back) })
                if idempotent && !retried && error.before_sending() =>
            {
                tracing::debug!("{error}; retrying on another server");
                retried = true;
                match generation.balancers.repick(services, lb_id, index, &mut walk) {
                    Ok((l, i)) => {
                        (lb_id, index, req) = (l, i, back);
                    }
                    Err(_) => break Err(error),
                }
            }
            Err(SendError { error, .. }) => break Err(error),
        }
    };
    if let Some((parts, body)) = mirror {
        for mirror_id in &walk.mirrors {
            let mut copy = Request::from_parts(parts.clone(), UpstreamBody::full(body.clone()));
            *copy.extensions_mut() = http::Extensions::new();
            monoio::spawn(send_mirror(Rc::clone(&worker), Rc::clone(&generation), *mirror_id, copy));
        }
    }
    match result {
        Ok(mut resp) => {
            hop::strip(resp.headers_mut(), false);
            for cookie in walk.set_cookies {
                resp.headers_mut().append(SET_COOKIE, cookie);
            }
            // The access log names the server that answered (Traefik's ServiceURL).
            if let Some(log) = &generation.table.observability.access_log {
                let status = resp.status().as_u16();
                let served =
                    crate::observe::ServedBy { service: lb_id, server: index, at: forward_start, status };
                resp.extensions_mut().insert(served);
                if crate::access_log::format::wants_headers(&log.fields) {
                    let origin = crate::observe::OriginHeaders(resp.headers().clone());
                    resp.extensions_mut().insert(origin);
                }
            }
            resp.map(Body::from)
        }
        Err(e) => {
            // Traefik logs TLS errors (a configuration problem) at error level, the rest at debug.
            if matches!(e, UpstreamError::Tls { .. }) {
                tracing::error!("upstream: {e}");
            } else {
                tracing::debug!("upstream: {e}");
            }
            let before_sending = e.before_sending();
            let mut resp = match e {
                UpstreamError::ResponseHeaderTimeout { .. } | UpstreamError::DialTimeout { .. } => {
                    responses::gateway_timeout()
                }
                UpstreamError::Tls { .. } => responses::internal_server_error(),
                _ => responses::bad_gateway(),
            };
            // The Retry middleware retries only what never reached a backend.
            resp.extensions_mut().insert(UpstreamFailure { before_sending });
            // Traefik's proxy writes this answer itself: the access log has origin fields.
            if generation.table.observability.access_log.is_some() {
                let status = resp.status().as_u16();
                let served =
                    crate::observe::ServedBy { service: lb_id, server: index, at: forward_start, status };
                resp.extensions_mut().insert(served);
            }
            resp
        }
    }
}

/// Marks a response weir made because the upstream exchange failed.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamFailure {
    /// The request certainly never reached a backend.
    pub before_sending: bool,
}

/// A mirror's copy: forwarded like any request, its response read to the end and dropped.
fn send_mirror(
    worker: Rc<Worker>,
    generation: Rc<Generation>,
    id: ServiceId,
    req: Request<UpstreamBody>,
) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let resp = forward(worker, generation, id, req).await;
        let _ = resp.into_body().collect().await;
    })
}

type MirrorCopy = Option<(http::request::Parts, Bytes)>;

/// Prepares the copy mirrors get: the request head and, with `mirrorBody`, the whole body
/// (read here, then sent to the main service from memory). A body above `maxBodySize` is not
/// mirrored at all and goes to the main service unchanged (Traefik). `Err` when the client's
/// body could not be read.
async fn mirror_copy(
    req: &mut Request<UpstreamBody>,
    (mirror_body, max): (bool, i64),
) -> Result<MirrorCopy, ()> {
    let (parts, body) = std::mem::replace(req, Request::new(UpstreamBody::Full(None))).into_parts();
    let mut head = parts.clone();
    if !mirror_body {
        // The copy goes without the body, so it must not announce one: a kept Content-Length
        // would leave the mirror waiting for bytes that never come.
        head.headers.remove(http::header::CONTENT_LENGTH);
        head.headers.remove(http::header::TRANSFER_ENCODING);
        *req = Request::from_parts(parts, body);
        return Ok(Some((head, Bytes::new())));
    }
    let mut incoming = match body {
        UpstreamBody::Incoming(b) => b,
        UpstreamBody::Full(b) => {
            let bytes = b.clone().unwrap_or_default();
            *req = Request::from_parts(parts, UpstreamBody::Full(b));
            return Ok(Some((head, bytes)));
        }
        other => {
            *req = Request::from_parts(parts, other);
            return Ok(None);
        }
    };
    let mut chunks = VecDeque::new();
    let mut total: u64 = 0;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|_| ())?;
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            chunks.push_back(data);
            if max >= 0 && total > max as u64 {
                *req = Request::from_parts(parts, UpstreamBody::Prefixed { prefix: chunks, rest: incoming });
                return Ok(None);
            }
        }
    }
    let mut all = bytes::BytesMut::with_capacity(total as usize);
    for c in chunks {
        all.extend_from_slice(&c);
    }
    let all = all.freeze();
    *req = Request::from_parts(parts, UpstreamBody::full(all.clone()));
    Ok(Some((head, all)))
}
