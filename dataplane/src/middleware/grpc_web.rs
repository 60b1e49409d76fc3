//! GrpcWeb: Traefik's `grpcWeb` middleware (improbable-eng's `grpcweb.WrapHandler` with
//! `rs/cors` v1.7). A `POST` whose `Content-Type` starts with `application/grpc-web` becomes a
//! gRPC request (`application/grpc…`, no `Content-Length`; the `-text` variant's base64 body is
//! decoded); the backend's gRPC response goes back as gRPC-Web: `Content-Type`
//! `application/grpc-web…`, `Access-Control-Expose-Headers` naming every response header plus
//! `grpc-status` and `grpc-message`, and the trailers appended to the body as a frame flagged
//! `0x80` holding `name: value\r\n` lines (base64 again for `-text`). CORS for `allowOrigins`:
//! a preflight asking for `x-grpc-web` is answered here (200); other requests pass untouched.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper::body::{Frame, SizeHint};

use weir_proto::middleware::GrpcWeb as Config;

use super::{go_error, Exchange, Hook, Outcome};
use crate::http::body::BodyError;
use crate::http::Body;
use crate::service::UpstreamBody;

const GRPC: &str = "application/grpc";
const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";
/// improbable-eng's default CORS max age (10 minutes).
const MAX_AGE: &str = "600";
/// Largest `-text` request body decoded (browsers send unary or server-streaming calls only).
const MAX_TEXT_BODY: u64 = 4 << 20;
/// The gRPC-Web trailer frame flag (most significant bit of the frame's first byte).
const TRAILER_FLAG: u8 = 0x80;

/// A compiled GrpcWeb.
#[derive(Debug)]
pub struct GrpcWeb {
    allow_origins: Vec<String>,
}

/// What the response side needs.
#[derive(Debug)]
pub struct ResponseState {
    text: bool,
    /// The request's `Origin` when it is allowed (echoed, with credentials).
    origin: Option<HeaderValue>,
}

impl GrpcWeb {
    /// Builds it from its definition.
    pub fn new(c: &Config) -> GrpcWeb {
        GrpcWeb { allow_origins: c.allow_origins.clone() }
    }

    fn allowed(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o == origin)
    }

    /// The allowed `Origin`, if any.
    fn origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let v = headers.get(header::ORIGIN)?;
        let s = v.to_str().ok()?;
        (!s.is_empty() && self.allowed(s)).then(|| v.clone())
    }

    /// Answers the CORS preflight, turns a gRPC-Web request into gRPC, or passes it on.
    pub async fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        let content_type = ex.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let is_grpc_web = *ex.method == Method::POST && content_type.starts_with(GRPC_WEB);
        let is_preflight = *ex.method == Method::OPTIONS
            && ex
                .headers
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("x-grpc-web"));
        if is_preflight && ex.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Outcome::Respond(self.preflight(ex.headers));
        }
        if !is_grpc_web {
            return Outcome::Next;
        }
        let text = content_type.starts_with(GRPC_WEB_TEXT);
        let incoming = if text { GRPC_WEB_TEXT } else { GRPC_WEB };
        let translated = content_type.replacen(incoming, GRPC, 1);
        match HeaderValue::from_str(&translated) {
            Ok(v) => ex.headers.insert(header::CONTENT_TYPE, v),
            Err(_) => return Outcome::Respond(go_error(StatusCode::BAD_REQUEST, "Bad Request")),
        };
        ex.headers.remove(header::CONTENT_LENGTH);
        if text {
            let taken = std::mem::replace(ex.body, UpstreamBody::Full(None));
            let Ok(encoded) = super::buffering::read_all(taken, MAX_TEXT_BODY).await else {
                return Outcome::Respond(go_error(StatusCode::BAD_REQUEST, "Bad Request"));
            };
            let Some(decoded) = decode_text(&encoded) else {
                return Outcome::Respond(go_error(StatusCode::BAD_REQUEST, "Bad Request"));
            };
            *ex.body = UpstreamBody::full(Bytes::from(decoded));
        }
        // gRPC backends expect `te: trailers` (Go's HTTP/2 transport sends it for gRPC).
        ex.headers.insert(header::TE, HeaderValue::from_static("trailers"));
        Outcome::NextWith(Hook::GrpcWeb(ResponseState { text, origin: self.origin(ex.headers) }))
    }

    /// `rs/cors` v1.7 `handlePreflight` with improbable-eng's options: every requested header
    /// is allowed, credentials are, methods are GET, POST and HEAD (OPTIONS always).
    fn preflight(&self, req: &HeaderMap) -> Response<Body> {
        let mut resp = Response::new(Body::empty());
        let h = resp.headers_mut();
        for v in ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"] {
            h.append(header::VARY, HeaderValue::from_static(v));
        }
        let Some(origin) = self.origin(req) else { return resp };
        let method = req
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "HEAD" | "OPTIONS") {
            return resp;
        }
        let requested: Vec<String> = req
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(canonical)
            .collect();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if let Ok(v) = HeaderValue::from_str(&method) {
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        if let Ok(v) = HeaderValue::from_str(&requested.join(", ")) {
            if !requested.is_empty() {
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
            }
        }
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        resp
    }

    /// Turns the backend's gRPC response into gRPC-Web.
    pub fn response(&self, state: ResponseState, resp: Response<Body>) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        let h = &mut parts.headers;
        h.remove(header::TRAILER);
        h.remove(header::CONTENT_LENGTH);
        let web = if state.text { GRPC_WEB_TEXT } else { GRPC_WEB };
        if let Some(ct) = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
            if let Ok(v) = HeaderValue::from_str(&ct.replacen(GRPC, web, 1)) {
                h.insert(header::CONTENT_TYPE, v);
            }
        }
        // `rs/cors` handleActualRequest.
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = state.origin {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        let mut exposed: Vec<String> = h.keys().map(|k| canonical(k.as_str())).collect();
        exposed.sort();
        exposed.dedup();
        exposed.extend(["grpc-status".to_string(), "grpc-message".to_string()]);
        if let Ok(v) = HeaderValue::from_str(&exposed.join(", ")) {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
        let flushed: Vec<HeaderName> = h.keys().cloned().collect();
        let body = WebBody { inner: body, text: state.text, carry: Vec::new(), flushed, done: false };
        Response::from_parts(parts, Body::local(body))
    }
}

/// Decodes a `-text` body: base64 (padded segments may be concatenated, as clients flush).
fn decode_text(encoded: &[u8]) -> Option<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let clean: Vec<u8> = encoded.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    // Split after each padded quantum so concatenated segments decode.
    let mut start = 0;
    for (i, chunk) in clean.chunks(4).enumerate() {
        if chunk.len() == 4 && chunk[3] == b'=' {
            let end = i * 4 + 4;
            out.extend(b64.decode(&clean[start..end]).ok()?);
            start = end;
        }
    }
    if start < clean.len() {
        out.extend(b64.decode(&clean[start..]).ok()?);
    }
    Some(out)
}

/// The trailer frame: flag, big-endian length, lower-case `name: value\r\n` lines sorted by
/// name (Go's `Header.Write`), without the headers already sent.
pub fn trailer_frame(trailers: &HeaderMap, flushed: &[HeaderName]) -> Bytes {
    let mut lines: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (k, v) in trailers {
        if flushed.contains(k) || k == header::TRAILER {
            continue;
        }
        lines.entry(k.as_str()).or_default().push(v.as_bytes());
    }
    let mut payload = BytesMut::new();
    for (k, values) in lines {
        for v in values {
            payload.put_slice(k.as_bytes());
            payload.put_slice(b": ");
            payload.put_slice(v);
            payload.put_slice(b"\r\n");
        }
    }
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(TRAILER_FLAG);
    frame.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    frame.put_slice(&payload);
    frame.freeze()
}

/// The gRPC response body as gRPC-Web: data passed on (base64 for `-text`, whole quanta as
/// they come, the rest padded at the end of the data), then the trailer frame.
struct WebBody {
    inner: Body,
    text: bool,
    /// `-text`: bytes not yet encoded (fewer than 3).
    carry: Vec<u8>,
    flushed: Vec<HeaderName>,
    done: bool,
}

impl WebBody {
    fn encode(&mut self, data: &[u8], last: bool) -> Bytes {
        if !self.text {
            return Bytes::copy_from_slice(data);
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        self.carry.extend_from_slice(data);
        let whole = if last { self.carry.len() } else { self.carry.len() / 3 * 3 };
        let out = b64.encode(&self.carry[..whole]);
        self.carry.drain(..whole);
        Bytes::from(out)
    }

    fn finish(&mut self, trailers: &HeaderMap) -> Bytes {
        let mut out = BytesMut::new();
        out.put_slice(&self.encode(&[], true));
        let frame = trailer_frame(trailers, &self.flushed);
        if self.text {
            out.put_slice(base64::engine::general_purpose::STANDARD.encode(&frame).as_bytes());
        } else {
            out.put_slice(&frame);
        }
        self.done = true;
        out.freeze()
    }
}

impl hyper::body::Body for WebBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.encode(&data, false);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        return Poll::Ready(Some(Ok(Frame::data(this.finish(&trailers)))));
                    }
                },
                Poll::Ready(None) => {
                    return Poll::Ready(Some(Ok(Frame::data(this.finish(&HeaderMap::new())))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Go's `http.CanonicalHeaderKey`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn web(origins: &[&str]) -> GrpcWeb {
        GrpcWeb::new(&Config { allow_origins: origins.iter().map(|s| s.to_string()).collect() })
    }

    #[test]
    fn trailer_frames() {
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t.insert("grpc-message", HeaderValue::from_static("ok"));
        let cases: [(&str, &[HeaderName], &[u8]); 2] = [
            ("sorted lines", &[], b"\x80\x00\x00\x00\x22grpc-message: ok\r\ngrpc-status: 0\r\n"),
            (
                "flushed headers are left out",
                &[HeaderName::from_static("grpc-message")],
                b"\x80\x00\x00\x00\x10grpc-status: 0\r\n",
            ),
        ];
        for (name, flushed, want) in cases {
            assert_eq!(&trailer_frame(&t, flushed)[..], want, "case {name}");
        }
    }

    #[test]
    fn text_bodies_decode() {
        type Case = (&'static str, &'static [u8], Option<&'static [u8]>);
        let cases: [Case; 4] = [
            ("one segment", b"AAAAAAJoaQ==", Some(b"\x00\x00\x00\x00\x02hi")),
            ("two padded segments", b"aGk=aGk=", Some(b"hihi")),
            ("unpadded is refused, as Go's StdEncoding", b"aGk", None),
            ("garbage", b"!!!!", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(decode_text(input).as_deref(), want, "case {name}");
        }
    }

    #[test]
    fn preflight_for_allowed_origins_only() {
        let mut req = HeaderMap::new();
        req.insert(header::ORIGIN, HeaderValue::from_static("https://app.test"));
        req.insert(header::ACCESS_CONTROL_REQUEST_METHOD, HeaderValue::from_static("POST"));
        req.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("x-grpc-web,content-type"),
        );
        let cases = [
            ("listed", vec!["https://app.test"], Some("https://app.test")),
            ("star", vec!["*"], Some("https://app.test")),
            ("other", vec!["https://other.test"], None),
        ];
        for (name, origins, want) in cases {
            let resp = web(&origins).preflight(&req);
            assert_eq!(resp.status(), 200, "case {name}");
            let get = |h| resp.headers().get(h).and_then(|v| v.to_str().ok());
            assert_eq!(get(header::ACCESS_CONTROL_ALLOW_ORIGIN), want, "case {name}");
            if want.is_some() {
                assert_eq!(get(header::ACCESS_CONTROL_ALLOW_HEADERS), Some("X-Grpc-Web, Content-Type"));
                assert_eq!(get(header::ACCESS_CONTROL_ALLOW_METHODS), Some("POST"));
                assert_eq!(get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS), Some("true"));
            }
        }
    }

    #[test]
    fn responses_become_grpc_web() {
        let run = |text: bool| {
            let mut resp = Response::new(Body::full(Bytes::from_static(b"\x00\x00\x00\x00\x02hi")));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc+proto"));
            let state = ResponseState { text, origin: Some(HeaderValue::from_static("https://app.test")) };
            let out = web(&["*"]).response(state, resp);
            let (parts, body) = out.into_parts();
            let bytes = futures_util::FutureExt::now_or_never(body.collect())
                .expect("a full body is ready")
                .expect("body")
                .to_bytes();
            (parts.headers, bytes)
        };
        let (h, bytes) = run(false);
        assert_eq!(h[header::CONTENT_TYPE], "application/grpc-web+proto");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.test");
        assert_eq!(
            h[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "Access-Control-Allow-Credentials, Access-Control-Allow-Origin, Content-Type, Vary, grpc-status, grpc-message"
        );
        assert_eq!(&bytes[..], b"\x00\x00\x00\x00\x02hi\x80\x00\x00\x00\x00");
        let (h, bytes) = run(true);
        assert_eq!(h[header::CONTENT_TYPE], "application/grpc-web-text+proto");
        assert_eq!(decode_text(&bytes).as_deref(), Some(&b"\x00\x00\x00\x00\x02hi\x80\x00\x00\x00\x00"[..]));
    }
}
