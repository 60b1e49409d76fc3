//! The request handler: route on the current table, pick a server, rewrite headers as Traefik
//! does, forward through the worker's pool, and map failures to Traefik's statuses.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;

use http::header::{HeaderValue, HOST, UPGRADE};
use http::uri::Parts;
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;

use super::{forwarded, hop, path, responses, Body};
use crate::middleware;
use crate::router::{canonical_host, RequestInfo};
use crate::tls::TlsConn;
use crate::worker::Worker;

/// What a request knows of the connection it arrived on. Passed as an argument, not as request
/// extensions: each extension insert costs allocations (the map's box, its table, the value's
/// box) on every request.
pub struct Conn {
    /// The client's address (after a PROXY header, the one it announced).
    pub peer: SocketAddr,
    /// Set when the connection is TLS.
    pub tls: Option<Rc<TlsConn>>,
    /// Set on HTTP/1.1 connections, which may be switched by an `Upgrade` (WebSocket).
    pub id: Option<super::upgrade::ConnId>,
}

/// Serves one request that arrived on entrypoint `entrypoint` over `conn`.
pub async fn handle(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    conn: Conn,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // Go's server refuses these heads before Traefik sees them (hyper lets them through).
    if let Err(refusal) = super::head_check::check(req.version(), req.method(), req.headers()) {
        return Ok(refusal.response());
    }
    // The table is fixed for the whole request: a new snapshot applies from the next one.
    let generation = worker.current();
    // Metrics and access logs: one capture here, one hook on the response (nothing when off).
    let arrival = crate::observe::arrive(&worker, &generation, conn.peer, conn.tls.as_deref(), &req);
    let mut routed = crate::observe::Routed::default();
    let resp = route(Rc::clone(&worker), &generation, Rc::clone(&entrypoint), conn, req, &mut routed).await?;
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
    conn: Conn,
    mut req: Request<Incoming>,
    routed: &mut crate::observe::Routed<'g>,
) -> Result<Response<Body>, Infallible> {
    let Conn { peer, tls: tls_conn, id: conn_id } = conn;
    let Some(ep) = generation.table.entrypoints.get(&*entrypoint) else {
        return Ok(responses::not_found());
    };
    // The target is taken out of the request (leaving `/`, which costs nothing) so that the
    // host, path and query can be borrowed from it while the headers are rewritten; the
    // backend's target is made from it at the end.
    let uri = std::mem::take(req.uri_mut());
    // A clone of the `Host` value is a reference count, and it is reused as `X-Forwarded-Host`.
    let host_value = if uri.authority().is_none() { req.headers().get(HOST).cloned() } else { None };
    // Traefik: an absolute-form target's host wins over the Host header.
    let raw_host: Option<&str> = match (uri.authority(), &host_value) {
        (Some(a), _) => Some(a.as_str()),
        (None, Some(h)) => match h.to_str() {
            Ok(h) => Some(h),
            Err(_) => return Ok(responses::bad_request()),
        },
        (None, None) => None,
    };
    let host = canonical_host(raw_host.unwrap_or(""));
    // Traefik: the entrypoint cleans the path (and the backend gets the cleaned one), then
    // routes on it with non-reserved escapes decoded; a malformed escape is a 400.
    let clean_path = path::sanitize(uri.path());
    let query = uri.query();
    if !query.is_none_or(path::valid_escapes) {
        return Ok(responses::bad_request());
    }
    let Ok(routing_path) = path::routing_path(&clean_path) else {
        return Ok(responses::bad_request());
    };
    let tls = tls_conn.is_some();
    let upgrade = conn_id.and_then(|_| super::upgrade::requested(req.headers()));
    let info = RequestInfo {
        host: &host,
        path: &routing_path,
        method: req.method(),
        headers: req.headers(),
        query,
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
        host: raw_host,
        host_value: host_value.as_ref(),
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
    // The middlewares work on owned copies of the path and query; without them the backend's
    // target is the client's, unless cleaning changed the path.
    let (rewritten, after, append_xff) = match chain {
        None => (None, None, true),
        Some(chain) => {
            // The `hrw` load-balancing strategy hashes the client's IP; past the middlewares
            // (Retry, Errors) `service::forward` finds it on the request.
            req.extensions_mut().insert(crate::lb::ClientIp(peer.ip()));
            let method = req.method().clone();
            let (mut parts, mut body) = req.into_parts();
            let mut ex = middleware::Exchange {
                method: &method,
                headers: &mut parts.headers,
                body: &mut body,
                path: clean_path.to_string(),
                query: query.map(str::to_owned),
                host: raw_host.unwrap_or_default().to_string(),
                peer,
                tls,
                client_certs: tls_conn.as_ref().map_or(&[], |c| &c.peer_certs[..]),
                suppress_xff: false,
            };
            let cx = middleware::Cx { worker: &worker, generation };
            // Boxed (one allocation, only with middlewares): inline, the chain's future would
            // make every request's future larger, and hyper moves that future several times
            // per request (callgrind: ~10 KB memcpy'd per move before the cold paths were boxed).
            let outcome = Box::pin(middleware::run(chain, &table.middlewares, &cx, &mut ex)).await;
            let (path, query, suppress_xff) = (ex.path, ex.query, ex.suppress_xff);
            req = Request::from_parts(parts, body);
            match outcome {
                Ok(after) => (Some((path, query)), Some(after), !suppress_xff),
                Err(resp) => return Ok(*resp),
            }
        }
    };
    if append_xff {
        forwarded::append_for(req.headers_mut(), peer);
    }
    if let (Some(h), false) = (raw_host, req.headers().contains_key(HOST)) {
        // Absolute-form request without Host header: give the backend one (the service
        // replaces it when its load balancer does not pass the Host header).
        if let Ok(v) = HeaderValue::from_str(h) {
            req.headers_mut().insert(HOST, v);
        }
    }
    // Backends get origin-form targets over HTTP/1.1 (Go: an empty path is sent as `/`).
    let target = match rewritten {
        Some((path, query)) => origin_form(&path, query.as_deref()),
        None => match clean_path {
            Cow::Owned(path) => origin_form(&path, query),
            Cow::Borrowed(_) => origin_of(uri),
        },
    };
    match target {
        Ok(u) => *req.uri_mut() = u,
        Err(()) => return Ok(responses::bad_request()),
    }
    *req.version_mut() = Version::HTTP_11;

    // The service tree (load balancing, stickiness, health, mirroring, transports, upstream
    // errors) is `service::forward`'s.
    let resp = match (&upgrade, conn_id) {
        (Some(_), Some(id)) => {
            Box::pin(super::upgrade::forward(Rc::clone(generation), router.target, req, id)).await
        }
        _ => {
            let (worker, generation) = (Rc::clone(&worker), Rc::clone(generation));
            match &after {
                // Without middlewares, `call_service` is `forward`: called directly, the
                // request's future does not embed the Retry and Buffering loops (each holding
                // another `forward`), which hyper would copy on every move.
                None => {
                    crate::service::forward::forward_from(
                        worker,
                        generation,
                        router.target,
                        Some(peer.ip()),
                        req,
                    )
                    .await
                }
                // Through the router's Retry, when it has one (boxed: see the chain above).
                Some(after) => {
                    Box::pin(middleware::call_service(
                        Some(after),
                        &table.middlewares,
                        worker,
                        generation,
                        router.target,
                        req,
                    ))
                    .await
                }
            }
        }
    };
    Ok(match after {
        Some(after) => {
            let cx = middleware::Cx { worker: &worker, generation };
            Box::pin(after.finish(&table.middlewares, &cx, resp)).await
        }
        None => resp,
    })
}

/// The origin-form target `path?query` (an empty path is `/`).
fn origin_form(path: &str, query: Option<&str>) -> Result<Uri, ()> {
    let path = if path.is_empty() { "/" } else { path };
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    target.parse::<Uri>().map_err(|_| ())
}

/// The client's own target in origin form: its path and query, shared (no copy), without the
/// scheme and authority of an absolute-form request.
fn origin_of(uri: Uri) -> Result<Uri, ()> {
    let Some(pq) = uri.path_and_query().filter(|pq| pq.as_str().starts_with('/')) else {
        // `http://host` or `http://host?q`: Go sends the path as `/`.
        return origin_form(uri.path(), uri.query());
    };
    if uri.scheme().is_none() && uri.authority().is_none() {
        return Ok(uri);
    }
    let mut parts = Parts::default();
    parts.path_and_query = Some(pq.clone());
    Uri::from_parts(parts).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_targets() {
        // (client target, target the backend gets when cleaning left the path alone)
        let cases = [
            ("/a/b?x=1", "/a/b?x=1"),
            ("/a?", "/a?"),
            ("/", "/"),
            ("http://example.com/a?b", "/a?b"),
            ("http://example.com", "/"),
            ("http://example.com?q", "/?q"),
        ];
        for (client, want) in cases {
            let uri: Uri = client.parse().expect("valid target");
            assert_eq!(origin_of(uri).map(|u| u.to_string()), Ok(want.to_string()), "{client}");
        }
        assert_eq!(origin_form("", Some("q")).map(|u| u.to_string()), Ok("/?q".to_string()));
        assert_eq!(origin_form("/p", None).map(|u| u.to_string()), Ok("/p".to_string()));
    }
}
