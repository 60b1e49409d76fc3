//! The request handler: route on the current table, pick a server, rewrite headers as Traefik
//! does, forward through the worker's pool, and map failures to Traefik's statuses.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use http::header::{HeaderValue, HOST, UPGRADE};
use http::{Request, Response, Uri, Version};
use http_body_util::Either;
use hyper::body::Incoming;

use super::{forwarded, hop, path, responses, Body};
use crate::router::{canonical_host, RequestInfo};
use crate::worker::Worker;

/// Serves one request that arrived on entrypoint `entrypoint` from `peer`.
pub async fn handle(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // The table is fixed for the whole request: a new snapshot applies from the next one.
    let generation = worker.current();
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
    let info = RequestInfo {
        host: &host,
        path: &routing_path,
        method: req.method(),
        headers: req.headers(),
        query: query.as_deref(),
        client_ip: peer.ip(),
    };
    let Some(router) = ep.route(&info, false) else {
        return Ok(responses::not_found());
    };
    let Some((server, pass_host_header)) = generation.pick(router.target) else {
        return Ok(responses::no_available_server());
    };
    let addr = server.address;

    let websocket = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    hop::strip(req.headers_mut(), true);
    let cx = forwarded::Context {
        peer,
        trusted: ep.trusts(peer.ip()),
        host: raw_host.as_deref(),
        server: &worker.hostname,
        tls: false,
        websocket,
    };
    forwarded::apply(req.headers_mut(), &cx);
    if !pass_host_header {
        if let Ok(v) = HeaderValue::from_str(&addr.to_string()) {
            req.headers_mut().insert(HOST, v);
        }
    } else if let (Some(h), false) = (&raw_host, req.headers().contains_key(HOST)) {
        // Absolute-form request without Host header: give the backend one.
        if let Ok(v) = HeaderValue::from_str(h) {
            req.headers_mut().insert(HOST, v);
        }
    }
    // Backends get origin-form targets over HTTP/1.1.
    let origin = match &query {
        Some(q) => format!("{clean_path}?{q}"),
        None => clean_path,
    };
    match origin.parse::<Uri>() {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => return Ok(responses::bad_request()),
    }
    *req.version_mut() = Version::HTTP_11;

    match worker.pool.send(addr, req).await {
        Ok(mut resp) => {
            hop::strip(resp.headers_mut(), false);
            Ok(resp.map(Either::Left))
        }
        Err(e) => {
            tracing::debug!(router = %router.name, "bad gateway: {e}");
            Ok(responses::bad_gateway())
        }
    }
}
