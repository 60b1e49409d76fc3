//! The request handler: route on the current table, pick a server, rewrite headers as Traefik
//! does, forward through the worker's pool, and map failures to Traefik's statuses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use http::header::{HeaderValue, HOST, UPGRADE};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;

use super::{forwarded, hop, path, responses, Body};
use crate::middleware;
use crate::router::{canonical_host, RequestInfo};
use crate::worker::Worker;

/// Serves one request that arrived on entrypoint `entrypoint` from `peer`.
pub async fn handle(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // Go's server refuses these heads before Traefik sees them (hyper lets them through).
    if let Err(refusal) = super::head_check::check(req.version(), req.method(), req.headers()) {
        return Ok(refusal.response());
    }
    // The table is fixed for the whole request: a new snapshot applies from the next one.
    let generation = worker.current();
    // Metrics and access logs: one capture here, one hook on the response (nothing when off).
    let arrival = crate::observe::arrive(&worker, &generation, peer, &req);
    let mut routed = crate::observe::Routed::default();
    let resp = route(Rc::clone(&worker), &generation, Rc::clone(&entrypoint), peer, req, &mut routed).await?;
    let mut resp = match arrival {
        Some(arrival) => crate::observe::finish(arrival, &worker, &generation, &entrypoint, &routed, resp),
        None => resp,
    };
    // Graceful shutdown: HTTP/1.1 clients are told to go elsewhere after this response.
    if crate::shutdown::draining() && resp.version() != Version::HTTP_2 {
        resp.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(resp)
}

/// Routes and forwards; `routed` learns the router that matched.
async fn route<'g>(
    worker: Rc<Worker>,
    generation: &'g Rc<crate::worker::Generation>,
    entrypoint: Rc<str>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
    routed: &mut crate::observe::Routed<'g>,
) -> Result<Response<Body>, Infallible> {
    let Some(ep) = generation.table.entrypoints.get(&*entrypoint) else {
        return Ok(responses::not_found());
    };
    // Traefik: an absolute-form target's host wins over the Host header.
    let raw_host: Option<String> = match req.uri().authority() {
        Some(a) => Some(a.as_str().to_string()),
        None => match req.headers().get(HOST).map(|h| h.to_str()) {
            Some(Ok(h)) => Some(h.to_string()),
            Some(Err(_)) => return Ok(responses::bad_request()),
            None => None,
        },
    };
    let host = canonical_host(raw_host.as_deref().unwrap_or(""));
    // Traefik: the entrypoint cleans the path (and the backend gets the cleaned one), then
    // routes on it with non-reserved escapes decoded; a malformed escape is a 400.
    let clean_path = path::sanitize(req.uri().path()).into_owned();
    let query = req.uri().query().map(str::to_owned);
    if !query.as_deref().is_none_or(path::valid_escapes) {
        return Ok(responses::bad_request());
    }
    let Ok(routing_path) = path::routing_path(&clean_path) else {
        return Ok(responses::bad_request());
    };
    // Set by the connection server on requests that arrived over TLS.
    let tls_conn = req.extensions_mut().remove::<crate::tls::TlsConn>();
    let tls = tls_conn.is_some();
    // Set on HTTP/1.1 connections, which may be switched by an `Upgrade` (WebSocket).
    let conn_id = req.extensions_mut().remove::<super::upgrade::ConnId>();
    let upgrade = conn_id.and_then(|_| super::upgrade::requested(req.headers()));
    let info = RequestInfo {
        host: &host,
        path: &routing_path,
        method: req.method(),
        headers: req.headers(),
        query: query.as_deref(),
        client_ip: peer.ip(),
    };
    let Some(router) = ep.route(&info, tls) else {
        return Ok(responses::not_found());
    };
    routed.router = Some(router);
    // Traefik's SNI check: the handshake's TLS option must be the one the router expects.
    if let Some(conn) = &tls_conn {
        if !generation.table.tls.router_accepts(&entrypoint, &router.name, &conn.option) {
            return Ok(responses::misdirected_request());
        }
    }
    let websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    // Traefik: hop-by-hop removal and the entrypoint's forwarded headers come before the
    // router's middlewares, which see (and may change) their result.
    hop::strip(req.headers_mut(), true);
    if let Some(value) = &upgrade {
        // Go's reverse proxy: an upgrade request keeps `Connection: Upgrade` and its `Upgrade`.
        super::upgrade::restore(req.headers_mut(), value.clone());
    }
    let cx = forwarded::Context {
        peer,
        trusted: ep.trusts(peer.ip()),
        host: raw_host.as_deref(),
        server: &worker.hostname,
        tls,
        websocket,
    };
    forwarded::apply_entrypoint(req.headers_mut(), &cx);
    // The router's middlewares, outermost first: they may answer, rewrite the request, and
    // leave rewrites for the response.
    let table = &generation.table;
    let chain = if table.chains.is_empty() { None } else { table.chains.get(&router.name) };
    let mut req = req.map(crate::service::UpstreamBody::from);
    // The `hrw` load-balancing strategy hashes the client's IP.
    req.extensions_mut().insert(crate::lb::ClientIp(peer.ip()));
    let (clean_path, query, after, append_xff) = match chain {
        None => (clean_path, query, None, true),
        Some(chain) => {
            let method = req.method().clone();
            let (mut parts, mut body) = req.into_parts();
            let mut ex = middleware::Exchange {
                method: &method,
                headers: &mut parts.headers,
                body: &mut body,
                path: clean_path,
                query,
                host: raw_host.clone().unwrap_or_default(),
                peer,
                tls,
                client_certs: tls_conn.as_ref().map_or(&[], |c| &c.peer_certs[..]),
                suppress_xff: false,
            };
            let cx = middleware::Cx { worker: &worker, generation };
            let outcome = middleware::run(chain, &table.middlewares, &cx, &mut ex).await;
            let (path, query, suppress_xff) = (ex.path, ex.query, ex.suppress_xff);
            req = Request::from_parts(parts, body);
            match outcome {
                Ok(after) => (path, query, Some(after), !suppress_xff),
                Err(resp) => return Ok(*resp),
            }
        }
    };
    if append_xff {
        forwarded::append_for(req.headers_mut(), peer);
    }
    if let (Some(h), false) = (&raw_host, req.headers().contains_key(HOST)) {
        // Absolute-form request without Host header: give the backend one (the service
        // replaces it when its load balancer does not pass the Host header).
        if let Ok(v) = HeaderValue::from_str(h) {
            req.headers_mut().insert(HOST, v);
        }
    }
    // Backends get origin-form targets over HTTP/1.1 (Go: an empty path is sent as `/`).
    let clean_path = if clean_path.is_empty() { "/".to_string() } else { clean_path };
    let origin = match &query {
        Some(q) => format!("{clean_path}?{q}"),
        None => clean_path,
    };
    match origin.parse::<Uri>() {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => return Ok(responses::bad_request()),
    }
    *req.version_mut() = Version::HTTP_11;

    // The service tree (load balancing, stickiness, health, mirroring, transports, upstream
    // errors) is `service::forward`'s.
    let resp = match (&upgrade, conn_id) {
        (Some(_), Some(id)) => super::upgrade::forward(Rc::clone(generation), router.target, req, id).await,
        _ => {
            // Through the router's Retry, when it has one.
            let (worker, generation) = (Rc::clone(&worker), Rc::clone(generation));
            middleware::call_service(
                after.as_ref(),
                &table.middlewares,
                worker,
                generation,
                router.target,
                req,
            )
            .await
        }
    };
    Ok(match after {
        Some(after) => {
            let cx = middleware::Cx { worker: &worker, generation };
            after.finish(&table.middlewares, &cx, resp).await
        }
        None => resp,
    })
}
