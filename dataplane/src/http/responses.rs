//! The responses weir generates itself, byte for byte as Traefik sends them (Go's
//! `http.NotFound` / `http.Error` add `X-Content-Type-Options: nosniff` and a trailing newline;
//! the proxy's error handler writes the bare status text).

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use super::Body;

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

fn text(status: StatusCode, body: &'static str, nosniff: bool) -> Response<Body> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from_static(body.as_bytes()))));
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
