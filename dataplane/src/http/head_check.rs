//! The request-head checks Go's `net/http` server makes (so Traefik makes) that hyper's parser
//! does not: an HTTP/1.1 request needs exactly one well-formed `Host` header ("missing
//! required Host header", "too many Host headers", "malformed Host header": 400), and an
//! HTTP/1.1 `Transfer-Encoding` must be one `chunked` and nothing else (501 "Unsupported
//! transfer encoding"; `gzip, chunked` or two `Transfer-Encoding` lines are how requests get
//! smuggled past proxies that read them differently). Sans-IO: the parsed head in, a verdict
//! out; the answer closes the connection, as Go's does. HTTP/2 heads are the h2 crate's job.
//!
//! What Go accepts, weir accepts too: `Content-Length` with `Transfer-Encoding: chunked` (the
//! length is dropped and the body read as chunked; hyper does the same and closes the
//! connection after the response), repeated identical `Content-Length` values.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Version};

use super::Body;

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// HTTP/1.1 without `Host`.
    MissingHost,
    /// More than one `Host`.
    TooManyHosts,
    /// A `Host` with bytes Go's `httpguts.ValidHostHeader` refuses.
    MalformedHost,
    /// A transfer coding other than a single `chunked`.
    UnsupportedTransferEncoding,
}

impl Refusal {
    /// Go's answer, byte for byte in status, type and body (`Connection: close` included).
    pub fn response(self) -> Response<Body> {
        let (status, text) = match self {
            Refusal::MissingHost => {
                (StatusCode::BAD_REQUEST, "400 Bad Request: missing required Host header")
            }
            Refusal::TooManyHosts => (StatusCode::BAD_REQUEST, "400 Bad Request: too many Host headers"),
            Refusal::MalformedHost => (StatusCode::BAD_REQUEST, "400 Bad Request: malformed Host header"),
            Refusal::UnsupportedTransferEncoding => {
                (StatusCode::NOT_IMPLEMENTED, "Unsupported transfer encoding")
            }
        };
        let mut resp = Response::new(Body::full(Bytes::from_static(text.as_bytes())));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    }
}

/// Checks an HTTP/1.x request head as Go's server does after parsing it.
pub fn check(version: Version, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    if version != Version::HTTP_11 {
        // HTTP/1.0 may omit Host, and Go ignores its Transfer-Encoding; HTTP/2 is h2's.
        return Ok(());
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if method != Method::CONNECT => return Err(Refusal::MissingHost),
        (Some(_), Some(_)) => return Err(Refusal::TooManyHosts),
        (Some(h), None) if !h.as_bytes().iter().all(|&b| valid_host_byte(b)) => {
            return Err(Refusal::MalformedHost)
        }
        _ => {}
    }
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(v), None) if trim(v.as_bytes()).eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(Refusal::UnsupportedTransferEncoding),
    }
}

/// Go's `textproto.TrimString`: ASCII space and tab at both ends.
fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// `httpguts.validHostByte`.
fn valid_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'-'
                | b'.'
                | b':'
                | b';'
                | b'='
                | b'['
                | b']'
                | b'_'
                | b'~'
        )
}

/// Runs the check over a head written as `name: value` lines (the fuzz target's entry: any
/// bytes must give a verdict, never a panic).
pub fn check_lines(version: Version, lines: &[u8]) -> Result<(), Refusal> {
    let mut headers = HeaderMap::new();
    for line in lines.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name),
            HeaderValue::from_bytes(value.strip_suffix(b"\r").unwrap_or(value)),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    check(version, &Method::GET, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_as_go_judges_them() {
        use Refusal::*;
        type Case = (&'static str, Version, &'static [u8], Result<(), Refusal>);
        let cases: [Case; 12] = [
            ("plain", Version::HTTP_11, b"host: a.test\n", Ok(())),
            ("no host", Version::HTTP_11, b"x-a: 1\n", Err(MissingHost)),
            ("no host on 1.0", Version::HTTP_10, b"x-a: 1\n", Ok(())),
            ("two hosts", Version::HTTP_11, b"host: a.test\nhost: b.test\n", Err(TooManyHosts)),
            ("bad host byte", Version::HTTP_11, b"host: a.test/x\n", Err(MalformedHost)),
            ("ipv6 host", Version::HTTP_11, b"host: [::1]:80\n", Ok(())),
            ("chunked", Version::HTTP_11, b"host: a\ntransfer-encoding: Chunked \n", Ok(())),
            (
                "chunked and length",
                Version::HTTP_11,
                b"host: a\ntransfer-encoding: chunked\ncontent-length: 4\n",
                Ok(()),
            ),
            (
                "gzip then chunked",
                Version::HTTP_11,
                b"host: a\ntransfer-encoding: gzip, chunked\n",
                Err(UnsupportedTransferEncoding),
            ),
            (
                "two codings lines",
                Version::HTTP_11,
                b"host: a\ntransfer-encoding: chunked\ntransfer-encoding: chunked\n",
                Err(UnsupportedTransferEncoding),
            ),
            (
                "identity",
                Version::HTTP_11,
                b"host: a\ntransfer-encoding: identity\n",
                Err(UnsupportedTransferEncoding),
            ),
            ("coding ignored on 1.0", Version::HTTP_10, b"transfer-encoding: gzip\n", Ok(())),
        ];
        for (name, version, lines, want) in cases {
            assert_eq!(check_lines(version, lines), want, "case {name}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        assert_eq!(
            check(Version::HTTP_11, &Method::CONNECT, &HeaderMap::new()),
            Ok(()),
            "CONNECT needs no Host"
        );
        assert_eq!(check(Version::HTTP_2, &Method::GET, &HeaderMap::new()), Ok(()), "h2 is h2's");
    }

    #[test]
    fn answers_close_the_connection() {
        for (r, status) in [(Refusal::TooManyHosts, 400), (Refusal::UnsupportedTransferEncoding, 501)] {
            let resp = r.response();
            assert_eq!(resp.status(), status);
            assert_eq!(resp.headers()[header::CONNECTION], "close");
        }
    }
}
