//! One health check of one server, as Traefik sends it: a request (`method`, `path`,
//! `hostname`, `headers`) on a fresh connection through the load balancer's transport, within
//! `timeout`; healthy when the status is the expected one, or any 2xx/3xx when none is set.
//! Redirects to a path (or to the same host) are followed, up to Go's 10, when
//! `followRedirects` is on. In `grpc` mode the request is the gRPC health protocol's
//! `Check` (empty service name) and healthy means `SERVING`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, LOCATION, TE};
use http::{Method, Request, Uri};
use http_body_util::BodyExt;
use weir_proto::snapshot::Scheme;

use crate::http::pool::Sender;
use crate::service::body::UpstreamBody;
use crate::service::compiled::HealthTarget;

/// Go's `http.Client` redirect limit.
const MAX_REDIRECTS: usize = 10;

/// Runs one check; `true` when the server is healthy.
pub async fn run(t: &HealthTarget) -> bool {
    let timeout = Duration::from_millis(t.check.timeout_ms.max(1));
    match monoio::time::timeout(timeout, check(t)).await {
        Ok(Ok(())) => true,
        Ok(Err(reason)) => {
            tracing::debug!(service = %t.key.0, url = %t.key.1, "health check failed: {reason}");
            false
        }
        Err(_) => {
            tracing::debug!(service = %t.key.0, url = %t.key.1, "health check timed out");
            false
        }
    }
}

async fn check(t: &HealthTarget) -> Result<(), String> {
    let Some(mut addr) = t.address else { return Err("server host did not resolve".into()) };
    if t.check.port != 0 {
        addr = SocketAddr::new(addr.ip(), t.check.port);
    }
    let scheme = match t.check.scheme.as_deref() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => t.scheme,
    };
    let host = t.check.hostname.clone().unwrap_or_else(|| match t.host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("[{}]:{}", t.host, addr.port()),
        Err(_) => format!("{}:{}", t.host, addr.port()),
    });
    if t.check.grpc {
        return grpc(t, addr, scheme, &host).await;
    }
    let mut path = t.check.path.clone();
    for _ in 0..=MAX_REDIRECTS {
        let status_and_location = exchange(t, addr, scheme, &host, &path).await?;
        let (status, location) = status_and_location;
        let redirect = (300..400).contains(&status) && status != 304;
        if redirect && t.check.follow_redirects {
            if let Some(next) = location.as_deref().and_then(|l| same_server_path(l, &host)) {
                path = next;
                continue;
            }
        }
        let ok = if t.check.status != 0 { status == t.check.status } else { (200..400).contains(&status) };
        return if ok { Ok(()) } else { Err(format!("status {status}")) };
    }
    Err("too many redirects".into())
}

async fn exchange(
    t: &HealthTarget,
    addr: SocketAddr,
    scheme: Scheme,
    host: &str,
    path: &str,
) -> Result<(u16, Option<String>), String> {
    let method = Method::from_bytes(t.check.method.as_bytes()).map_err(|e| e.to_string())?;
    let uri: Uri = if path.starts_with('/') { path.parse() } else { format!("/{path}").parse() }
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .body(UpstreamBody::Full(None))
        .map_err(|e| e.to_string())?;
    for (k, v) in &t.check.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            req.headers_mut().insert(k, v);
        }
    }
    req.headers_mut().insert(HOST, HeaderValue::from_str(host).map_err(|e| e.to_string())?);
    let resp = send(t, addr, scheme, host, req).await?;
    let status = resp.status().as_u16();
    let location = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let _ = resp.into_body().collect().await;
    Ok((status, location))
}

async fn send(
    t: &HealthTarget,
    addr: SocketAddr,
    scheme: Scheme,
    host: &str,
    mut req: Request<UpstreamBody>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    match t.transport.connect(addr, scheme, &t.host).await.map_err(|e| e.to_string())? {
        Sender::H1(mut s) => s.send_request(req).await.map_err(|e| e.to_string()),
        Sender::H2(mut s) => {
            let authority = req.headers_mut().remove(HOST);
            let scheme = if scheme == Scheme::Https { "https" } else { "http" };
            let authority = authority.as_ref().and_then(|a| a.to_str().ok()).unwrap_or(host);
            let target =
                format!("{scheme}://{authority}{}", req.uri().path_and_query().map_or("/", |p| p.as_str()));
            *req.uri_mut() = target.parse().map_err(|e: http::uri::InvalidUri| e.to_string())?;
            *req.version_mut() = http::Version::HTTP_2;
            s.send_request(req).await.map_err(|e| e.to_string())
        }
    }
}

/// The path to request next for a redirect that stays on the checked server.
fn same_server_path(location: &str, host: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_string());
    }
    let uri: Uri = location.parse().ok()?;
    (uri.authority()?.as_str().eq_ignore_ascii_case(host))
        .then(|| uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string()))
}

/// gRPC health protocol: `grpc.health.v1.Health/Check` with an empty request; healthy when
/// `grpc-status` is 0 and the response's status field is `SERVING` (1).
async fn grpc(t: &HealthTarget, addr: SocketAddr, scheme: Scheme, host: &str) -> Result<(), String> {
    // h2c for http servers: gRPC needs HTTP/2.
    let scheme = if scheme == Scheme::Http { Scheme::H2c } else { scheme };
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/grpc.health.v1.Health/Check")
        .body(UpstreamBody::full(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .map_err(|e| e.to_string())?;
    req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    req.headers_mut().insert(TE, HeaderValue::from_static("trailers"));
    req.headers_mut().insert(HOST, HeaderValue::from_str(host).map_err(|e| e.to_string())?);
    let resp = send(t, addr, scheme, host, req).await?;
    let header_status = resp.headers().get("grpc-status").cloned();
    let collected = resp.into_body().collect().await.map_err(|e| e.to_string())?;
    let status = collected.trailers().and_then(|t| t.get("grpc-status").cloned()).or(header_status);
    if status.as_ref().and_then(|s| s.to_str().ok()) != Some("0") {
        return Err(format!("grpc-status {status:?}"));
    }
    let body = collected.to_bytes();
    // 5-byte gRPC frame header, then field 1 (varint) = 1 (SERVING).
    if body.len() >= 7 && body[5] == 0x08 && body[6] == 0x01 {
        Ok(())
    } else {
        Err("not SERVING".into())
    }
}
