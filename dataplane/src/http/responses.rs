//! The responses weir generates itself, byte for byte as Traefik sends them (Go's
//! `http.NotFound` / `http.Error` add `X-Content-Type-Options: nosniff` and a trailing newline;
//! the proxy's error handler writes the bare status text).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::Body;

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

fn text(status: StatusCode, body: &'static str, nosniff: bool) -> Response<Body> {
    let mut resp = Response::new(Body::full(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, TEXT_PLAIN);
    if nosniff {
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    resp
}

/// No router matched: Traefik's `404 page not found`.
pub fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "404 page not found\n", true)
}

/// A TLS request whose handshake used another TLS option than its router's (Traefik's SNI
/// check, Go's `http.Error(w, "Misdirected Request", 421)`).
pub fn misdirected_request() -> Response<Body> {
    text(StatusCode::MISDIRECTED_REQUEST, "Misdirected Request\n", true)
}

/// The service has no server to send to.
pub fn no_available_server() -> Response<Body> {
    text(StatusCode::SERVICE_UNAVAILABLE, "no available server\n", true)
}

/// The backend could not be reached or broke before answering.
pub fn bad_gateway() -> Response<Body> {
    text(StatusCode::BAD_GATEWAY, "Bad Gateway", false)
}

/// The request cannot be routed (malformed host or target). Like Go's server, weir closes
/// the connection after it: what follows a malformed request cannot be trusted.
pub fn bad_request() -> Response<Body> {
    let mut resp = text(StatusCode::BAD_REQUEST, "400 Bad Request", false);
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// No response head within the servers transport's `responseHeaderTimeout`, or the dial timed
/// out: Traefik's proxy error handler writes the status text.
pub fn gateway_timeout() -> Response<Body> {
    text(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout", false)
}

/// An upstream failure Traefik does not classify as a network error (a TLS certificate the
/// transport does not trust): the status text.
pub fn internal_server_error() -> Response<Body> {
    text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", false)
}

/// `noop@internal`: 418 with an empty body.
pub fn teapot() -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::IM_A_TEAPOT;
    resp
}
