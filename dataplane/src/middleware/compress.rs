//! Compress: Traefik's response compression with gzip, brotli and zstd. The request picks the
//! encoding (highest `q`; on ties `*` first, then the configured `encodings` order, `identity`
//! last; `q=0` refused; no `Accept-Encoding` → `defaultEncoding` or nothing). HEAD requests and
//! requests whose own `Content-Type` is excluded are left alone. The response gets
//! `Vary: Accept-Encoding`, and is compressed unless it already has a `Content-Encoding`, its
//! type is excluded (or not included), or its body ends below `minResponseBodyBytes`: the body
//! is held until that many bytes arrived, then streamed through the encoder (flushed whenever
//! the backend pauses, so streamed responses keep flowing), without `Content-Length`.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{HeaderValue, Method, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};

use weir_proto::middleware as cfg;
use weir_proto::mime::{parse_media_type, MediaType};

use super::content_type::{Failed, Prefixed};
use super::{Exchange, Hook, Outcome};
use crate::http::body::BodyError;
use crate::http::Body;

/// A content coding weir produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip`.
    Gzip,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Encoding {
    fn parse(name: &str) -> Option<Encoding> {
        match name {
            "gzip" => Some(Encoding::Gzip),
            "br" => Some(Encoding::Brotli),
            "zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }

    /// The `Content-Encoding` token.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }
}

/// A compiled Compress.
#[derive(Debug)]
pub struct Compress {
    /// Request and response types left alone (essences; `application/grpc` included).
    request_excludes: Vec<String>,
    excluded: Vec<MediaType>,
    included: Vec<MediaType>,
    min_size: usize,
    encodings: Vec<Encoding>,
    default_encoding: Option<Encoding>,
}

impl Compress {
    /// Compiles the definition.
    pub fn new(c: &cfg::Compress) -> Result<Compress, String> {
        let parse = |l: &[String]| -> Result<Vec<MediaType>, String> {
            l.iter().map(|t| parse_media_type(t).map_err(|e| format!("{t}: {e}"))).collect()
        };
        let mut excluded = vec![MediaType { essence: "application/grpc".into(), params: Vec::new() }];
        excluded.extend(parse(&c.excluded_content_types)?);
        let included = parse(&c.included_content_types)?;
        let encodings = c
            .encodings
            .iter()
            .map(|e| Encoding::parse(e).ok_or_else(|| format!("unsupported encoding: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if encodings.is_empty() {
            return Err("at least one encoding must be specified".into());
        }
        let default_encoding = match c.default_encoding.as_str() {
            "" => None,
            e => Some(Encoding::parse(e).ok_or_else(|| format!("unsupported default encoding: {e}"))?),
        };
        Ok(Compress {
            request_excludes: excluded.iter().map(|m| m.essence.clone()).collect(),
            // Traefik: with an included list, only that list decides.
            excluded: if included.is_empty() { excluded } else { Vec::new() },
            included,
            min_size: usize::try_from(c.min_response_body_bytes).unwrap_or(usize::MAX),
            encodings,
            default_encoding,
        })
    }

    /// Request side: picks the encoding the response will get, if any.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        if *ex.method == Method::HEAD {
            return Outcome::Next;
        }
        let req_type = ex.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = parse_media_type(req_type).map(|m| m.essence).unwrap_or_default();
        if self.request_excludes.contains(&essence) {
            return Outcome::Next;
        }
        let lines: Vec<&str> =
            ex.headers.get_all(ACCEPT_ENCODING).iter().map(|v| v.to_str().unwrap_or("")).collect();
        let chosen = if lines.is_empty() { self.default_encoding } else { self.choose(&lines) };
        match chosen {
            Some(e) => Outcome::NextWith(Hook::Compress(e)),
            None => Outcome::Next,
        }
    }

    /// Traefik's `getCompressionEncoding`; `None` is identity or nothing acceptable.
    pub fn choose(&self, lines: &[&str]) -> Option<Encoding> {
        if lines == [""] {
            return None;
        }
        // Priority: `*` first, then the configured order, `identity` last.
        let priority = |name: &str| -> Option<i64> {
            match name {
                "*" => Some(-1),
                "identity" => Some(self.encodings.len() as i64),
                n => Encoding::parse(n)
                    .and_then(|e| self.encodings.iter().position(|x| *x == e))
                    .map(|i| i as i64),
            }
        };
        let mut acceptable: Vec<(&str, f64, i64)> = Vec::new();
        for line in lines {
            let line = line.replace(' ', "");
            for item in line.split(',') {
                let (name, params) = item.split_once(';').unwrap_or((item, ""));
                let Some(p) = priority(name) else { continue };
                let mut weight = 1.0;
                if let Some(q) = params.strip_prefix("q=") {
                    weight = q.parse::<f64>().unwrap_or(0.0);
                    if weight == 0.0 {
                        continue;
                    }
                }
                let name = match name {
                    "*" => "*",
                    "identity" => "identity",
                    other => Encoding::parse(other).map(Encoding::name).unwrap_or(""),
                };
                acceptable.push((name, weight, p));
            }
        }
        let best = acceptable.iter().min_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)))?;
        match best.0 {
            "*" => Some(self.default_encoding.unwrap_or(self.encodings[0])),
            name => Encoding::parse(name),
        }
    }

    fn compressible(&self, resp: &Response<Body>) -> bool {
        let status = resp.status();
        if status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || status == http::StatusCode::NOT_MODIFIED
        {
            // No body: nothing to compress (Go's writer never sees data).
            return false;
        }
        let h = resp.headers();
        if h.get(CONTENT_ENCODING).is_some_and(|v| !v.is_empty()) {
            return false;
        }
        if let Some(ct) = h.get(CONTENT_TYPE).filter(|v| !v.is_empty()) {
            let Ok(t) = parse_media_type(ct.to_str().unwrap_or("")) else { return false };
            if !self.included.is_empty() && !self.included.iter().any(|i| i.matches(&t)) {
                return false;
            }
            if self.excluded.iter().any(|e| e.matches(&t)) {
                return false;
            }
        }
        let declared = h.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        declared.is_none_or(|n| n >= self.min_size)
    }

    /// Response side for the encoding chosen on the way in.
    pub async fn response(&self, encoding: Encoding, resp: Response<Body>) -> Response<Body> {
        let (mut parts, mut body) = resp.into_parts();
        parts.headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
        let resp = Response::from_parts(parts, Body::empty());
        if !self.compressible(&resp) {
            return resp.map(|_| body);
        }
        let (mut parts, _) = resp.into_parts();
        let mut held = BytesMut::new();
        while held.len() < self.min_size {
            match body.frame().await {
                None => return Response::from_parts(parts, Body::full(held.freeze())),
                Some(Err(e)) => {
                    let frames = VecDeque::from([Frame::data(held.freeze())]);
                    let rest = Body::local(Failed(Some(e)));
                    return Response::from_parts(parts, Body::local(Prefixed { frames, rest }));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(d) => held.extend_from_slice(&d),
                    // Trailers before the threshold: the body is complete and small.
                    Err(trailers) => {
                        let frames = VecDeque::from([Frame::data(held.freeze()), trailers]);
                        return Response::from_parts(parts, Body::local(Prefixed { frames, rest: body }));
                    }
                },
            }
        }
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
        let mut encoder = Encoder::new(encoding);
        if let Err(e) = encoder.write(&held) {
            return Response::from_parts(parts, Body::local(Failed(Some(Box::new(e)))));
        }
        let compressing = Compressing { inner: body, encoder: Some(encoder), dirty: true, trailers: None };
        Response::from_parts(parts, Body::local(compressing))
    }
}

/// One streaming encoder writing into a buffer the body drains.
enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// Go's defaults: gzip level 6, brotli quality 6 (window 22), zstd's default level.
    fn new(e: Encoding) -> Encoder {
        match e {
            Encoding::Gzip => {
                Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6)))
            }
            Encoding::Brotli => {
                Encoder::Brotli(Box::new(brotli::CompressorWriter::new(Vec::new(), 4096, 6, 22)))
            }
            Encoding::Zstd => match zstd::stream::write::Encoder::new(Vec::new(), 0) {
                Ok(z) => Encoder::Zstd(z),
                // Only fails when zstd cannot allocate its context.
                Err(_) => {
                    Encoder::Gzip(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6)))
                }
            },
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(w) => w.write_all(data),
            Encoder::Brotli(w) => w.write_all(data),
            Encoder::Zstd(w) => w.write_all(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(w) => w.flush(),
            Encoder::Brotli(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }

    /// Output produced so far.
    fn take(&mut self) -> Vec<u8> {
        let out = match self {
            Encoder::Gzip(w) => w.get_mut(),
            Encoder::Brotli(w) => w.get_mut(),
            Encoder::Zstd(w) => w.get_mut(),
        };
        std::mem::take(out)
    }

    /// Ends the stream; the rest of the output.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(w) => w.finish(),
            Encoder::Brotli(w) => Ok(w.into_inner()),
            Encoder::Zstd(w) => w.finish(),
        }
    }
}

/// The response body, compressed as it streams.
struct Compressing {
    inner: Body,
    /// `None` once the stream is finished.
    encoder: Option<Encoder>,
    /// Input written since the last flush.
    dirty: bool,
    trailers: Option<Frame<Bytes>>,
}

impl Compressing {
    fn finish(&mut self) -> Result<Bytes, BodyError> {
        match self.encoder.take() {
            Some(e) => Ok(Bytes::from(e.finish()?)),
            None => Ok(Bytes::new()),
        }
    }
}

impl hyper::body::Body for Compressing {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(Ok));
            };
            let out = encoder.take();
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        if let Err(e) = encoder.write(&data) {
                            return Poll::Ready(Some(Err(Box::new(e))));
                        }
                        this.dirty = true;
                    }
                    Err(trailers) => {
                        this.trailers = Some(trailers);
                        return Poll::Ready(Some(this.finish().map(Frame::data)));
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(Some(this.finish().map(Frame::data))),
                Poll::Pending if this.dirty => {
                    // The backend paused: push out what the encoder holds.
                    this.dirty = false;
                    if let Err(e) = encoder.flush() {
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn compress(
        encodings: &[&str],
        default: &str,
        excluded: &[&str],
        included: &[&str],
        min: u64,
    ) -> Compress {
        Compress::new(&cfg::Compress {
            excluded_content_types: excluded.iter().map(|s| s.to_string()).collect(),
            included_content_types: included.iter().map(|s| s.to_string()).collect(),
            min_response_body_bytes: min,
            encodings: encodings.iter().map(|s| s.to_string()).collect(),
            default_encoding: default.into(),
        })
        .expect("valid")
    }

    #[test]
    fn encoding_choice_follows_traefik() {
        let all = compress(&["gzip", "br", "zstd"], "", &[], &[], 1024);
        let zstd_first = compress(&["zstd", "gzip"], "", &[], &[], 1024);
        let with_default = compress(&["gzip", "br", "zstd"], "br", &[], &[], 1024);
        use Encoding::*;
        // (case, middleware, Accept-Encoding lines, choice)
        let cases: Vec<(&str, &Compress, Vec<&str>, Option<Encoding>)> = vec![
            ("ties follow the configured order", &all, vec!["br, zstd, gzip"], Some(Gzip)),
            ("highest q wins", &all, vec!["gzip;q=0.5, br;q=0.9"], Some(Brotli)),
            ("q=0 refuses", &all, vec!["gzip;q=0, br"], Some(Brotli)),
            ("other order", &zstd_first, vec!["gzip, zstd"], Some(Zstd)),
            ("not configured", &zstd_first, vec!["br"], None),
            ("wildcard takes the first encoding", &all, vec!["*"], Some(Gzip)),
            ("wildcard takes the default", &with_default, vec!["*"], Some(Brotli)),
            ("wildcard beats a tie", &all, vec!["gzip, *"], Some(Gzip)),
            ("identity only when strictly preferred", &all, vec!["identity, gzip"], Some(Gzip)),
            ("identity preferred", &all, vec!["identity;q=1, gzip;q=0.5"], None),
            ("empty header", &all, vec![""], None),
            ("unknown only", &all, vec!["deflate"], None),
            ("several lines", &all, vec!["deflate", "zstd"], Some(Zstd)),
            ("case sensitive", &all, vec!["GZIP"], None),
        ];
        for (name, m, lines, want) in cases {
            assert_eq!(m.choose(&lines), want, "case {name}");
        }
    }

    fn decode(encoding: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            "gzip" => flate2::read::GzDecoder::new(data).read_to_end(&mut out).map(drop),
            "br" => brotli::Decompressor::new(data, 4096).read_to_end(&mut out).map(drop),
            "zstd" => {
                zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut out)).map(drop)
            }
            _ => {
                out.extend_from_slice(data);
                Ok(())
            }
        }
        .expect("decodes");
        out
    }

    #[test]
    fn responses_compressed_only_when_they_should_be() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build().expect("runtime");
        let m = compress(&["gzip", "br", "zstd"], "", &["text/event-stream"], &[], 10);
        let only_json = compress(&["gzip"], "", &[], &["application/json"], 10);
        let long = "x".repeat(100);
        let resp = |ct: Option<&'static str>, ce: Option<&'static str>, body: &str| {
            let mut r = Response::new(Body::full(body.to_string()));
            if let Some(ct) = ct {
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            if let Some(ce) = ce {
                r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static(ce));
            }
            r
        };
        // (case, middleware, encoding, response, Content-Encoding expected)
        let cases = [
            ("gzip", &m, Encoding::Gzip, resp(Some("text/plain"), None, &long), Some("gzip")),
            ("brotli", &m, Encoding::Brotli, resp(None, None, &long), Some("br")),
            ("zstd", &m, Encoding::Zstd, resp(None, None, &long), Some("zstd")),
            ("small", &m, Encoding::Gzip, resp(None, None, "tiny"), None),
            ("already encoded", &m, Encoding::Gzip, resp(None, Some("br"), &long), Some("br")),
            ("excluded", &m, Encoding::Gzip, resp(Some("text/event-stream"), None, &long), None),
            ("grpc always excluded", &m, Encoding::Gzip, resp(Some("application/grpc"), None, &long), None),
            (
                "included",
                &only_json,
                Encoding::Gzip,
                resp(Some("application/json"), None, &long),
                Some("gzip"),
            ),
            ("not included", &only_json, Encoding::Gzip, resp(Some("text/html"), None, &long), None),
        ];
        for (name, m, enc, r, want) in cases {
            let (ce, vary, body) = rt.block_on(async {
                let out = m.response(enc, r).await;
                let h = out.headers();
                let ce = h.get(CONTENT_ENCODING).map(|v| v.to_str().unwrap_or("").to_string());
                let vary = h.get(VARY).map(|v| v.to_str().unwrap_or("").to_string());
                let body = out.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                (ce, vary, body)
            });
            assert_eq!(ce.as_deref(), want, "case {name}");
            assert_eq!(vary.as_deref(), Some("Accept-Encoding"), "case {name}");
            let plain = decode(if want == Some(enc.name()) { enc.name() } else { "" }, &body);
            if want.is_none() || want == Some(enc.name()) {
                assert!(plain == long.as_bytes() || plain == b"tiny", "case {name}: body round-trips");
            }
        }
    }
}
