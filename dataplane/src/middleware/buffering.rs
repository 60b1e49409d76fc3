//! Buffering (oxy `buffer`): reads the whole request body before the service is called and
//! the whole response before it is sent. A request over `maxRequestBodyBytes` (by its
//! `Content-Length`, or as it is read) gets **413** `Request Entity Too Large`; a response over
//! `maxResponseBodyBytes` gets **500** `Internal Server Error`. The backend receives a
//! `Content-Length` body, never chunked; the client gets a `Content-Length` response. weir keeps
//! buffered bodies in memory (`mem*BodyBytes`, Traefik's spill-to-disk thresholds, are
//! accepted and have no effect).

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;

use weir_proto::middleware as cfg;
use weir_proto::retry_expression::RetryExpr;

use super::{status_text, Exchange};
use crate::http::Body;
use crate::service::UpstreamBody;

/// A compiled Buffering.
#[derive(Debug)]
pub struct Buffering {
    /// Request limit (0 = none).
    pub max_request: u64,
    /// Response limit (0 = none).
    pub max_response: u64,
    /// `retryExpression`: when it holds after an attempt, the buffered request is sent again
    /// (oxy: at most 10 retries).
    pub retry: Option<RetryExpr>,
}

/// oxy's `DefaultMaxRetryAttempts`: attempt 11 is answered whatever the expression says.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

/// Why a body could not be buffered.
#[derive(Debug, PartialEq)]
pub enum BufferError {
    /// Over the limit.
    TooLarge,
    /// The body could not be read.
    Read,
}

impl Buffering {
    /// Compiles the definition.
    pub fn new(c: &cfg::Buffering) -> Buffering {
        Buffering {
            max_request: u64::try_from(c.max_request_body_bytes).unwrap_or(0),
            max_response: u64::try_from(c.max_response_body_bytes).unwrap_or(0),
            // The control plane validated it; an expression that does not parse retries nothing.
            retry: (!c.retry_expression.is_empty())
                .then(|| RetryExpr::parse(&c.retry_expression).ok())
                .flatten(),
        }
    }

    /// Reads the request body into memory; `Err` is the answer.
    pub async fn request(&self, ex: &mut Exchange<'_>) -> Result<(), Response<Body>> {
        let declared = ex.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if self.max_request > 0 && declared.is_some_and(|n| n > self.max_request) {
            return Err(too_large());
        }
        let had_body = declared.is_some() || ex.headers.contains_key(TRANSFER_ENCODING);
        let taken = std::mem::replace(ex.body, UpstreamBody::Full(None));
        let bytes = match read_all(taken, self.max_request).await {
            Ok(b) => b,
            Err(BufferError::TooLarge) => return Err(too_large()),
            Err(BufferError::Read) => return Err(status_text(StatusCode::INTERNAL_SERVER_ERROR)),
        };
        ex.headers.remove(TRANSFER_ENCODING);
        if had_body || !bytes.is_empty() {
            ex.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        *ex.body = UpstreamBody::full(bytes);
        Ok(())
    }

    /// Reads the response into memory; an oversized or broken one becomes a 500.
    pub async fn response(&self, resp: Response<Body>) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        match read_all(body, self.max_response).await {
            Ok(bytes) => {
                parts.headers.remove(TRANSFER_ENCODING);
                parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                Response::from_parts(parts, Body::full(bytes))
            }
            Err(_) => status_text(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// oxy's `SizeErrHandler`: 413 with Go's status text.
fn too_large() -> Response<Body> {
    status_text(StatusCode::PAYLOAD_TOO_LARGE)
}

/// Reads a body to its end, refusing more than `max` bytes (0 = no limit).
pub async fn read_all<B>(mut body: B, max: u64) -> Result<Bytes, BufferError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut all = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BufferError::Read)?;
        if let Ok(data) = frame.into_data() {
            if max > 0 && (all.len() + data.len()) as u64 > max {
                return Err(BufferError::TooLarge);
            }
            all.extend_from_slice(&data);
        }
    }
    Ok(all.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_within_limits() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build().expect("runtime");
        // (case, body, limit, expected)
        type Case = (&'static str, &'static [u8], u64, Result<&'static [u8], BufferError>);
        let cases: [Case; 4] = [
            ("no limit", b"hello", 0, Ok(b"hello")),
            ("at the limit", b"hello", 5, Ok(b"hello")),
            ("over the limit", b"hello!", 5, Err(BufferError::TooLarge)),
            ("empty", b"", 1, Ok(b"")),
        ];
        for (name, input, max, want) in cases {
            let got = rt.block_on(read_all(Body::full(Bytes::from_static(input)), max));
            assert_eq!(
                got.as_deref().map_err(|e| format!("{e:?}")),
                want.map_err(|e| format!("{e:?}")),
                "case {name}"
            );
        }
        let b = Buffering::new(&cfg::Buffering {
            max_request_body_bytes: 0,
            mem_request_body_bytes: 0,
            max_response_body_bytes: 4,
            mem_response_body_bytes: 0,
            retry_expression: String::new(),
        });
        let big = rt.block_on(b.response(Response::new(Body::full("12345"))));
        assert_eq!(big.status(), 500);
        let ok = rt.block_on(b.response(Response::new(Body::full("1234"))));
        assert_eq!(ok.headers()["content-length"], "4");
        let refused = too_large();
        let text = rt.block_on(refused.into_body().collect()).map(|c| c.to_bytes()).unwrap_or_default();
        assert_eq!(text, Bytes::from_static(b"Request Entity Too Large"), "Go's status text");
    }
}
