//! ContentType: Traefik v3 sends responses without a `Content-Type` as they are; this
//! middleware re-enables Go's content sniffing for them: when the response has neither
//! `Content-Type` nor `Content-Encoding`, may have a body and its first bytes are not empty,
//! `Content-Type` is set from `http.DetectContentType` of the first (up to 512) bytes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};

use crate::http::body::BodyError;
use crate::http::Body;

/// Go sniffs at most this many bytes.
const SNIFF_LEN: usize = 512;

/// Sniffs the response's type when it has none.
pub async fn sniff(resp: Response<Body>, head: bool) -> Response<Body> {
    let status = resp.status();
    let body_allowed = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED);
    let h = resp.headers();
    let encoded = h.get(CONTENT_ENCODING).is_some_and(|v| !v.is_empty());
    if head || !body_allowed || h.contains_key(CONTENT_TYPE) || encoded {
        return resp;
    }
    let (mut parts, mut body) = resp.into_parts();
    // The first data frame is what Go's first Write hands the sniffer.
    let first = loop {
        match body.frame().await {
            None => break None,
            Some(Err(e)) => return Response::from_parts(parts, Body::local(Failed(Some(e)))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) if d.is_empty() => continue,
                Ok(d) => break Some(d),
                // Trailers before any data: nothing to sniff.
                Err(frame) => {
                    return Response::from_parts(
                        parts,
                        Body::local(Prefixed { frames: VecDeque::from([frame]), rest: body }),
                    )
                }
            },
        }
    };
    let Some(first) = first else {
        return Response::from_parts(parts, Body::empty());
    };
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static(detect(&first)));
    Response::from_parts(
        parts,
        Body::local(Prefixed { frames: VecDeque::from([Frame::data(first)]), rest: body }),
    )
}

/// Frames already read, then the rest of the body.
pub struct Prefixed {
    /// Frames to send first.
    pub frames: VecDeque<Frame<Bytes>>,
    /// The rest.
    pub rest: Body,
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match this.frames.pop_front() {
            Some(f) => Poll::Ready(Some(Ok(f))),
            None => Pin::new(&mut this.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let n: u64 = self.frames.iter().filter_map(|f| f.data_ref()).map(|d| d.len() as u64).sum();
        let mut hint = SizeHint::new();
        // Upper first: `set_lower` asserts it stays below the upper bound.
        if let Some(u) = rest.upper() {
            hint.set_upper(u + n);
        }
        hint.set_lower(rest.lower() + n);
        hint
    }
}

/// A body whose read already failed.
pub struct Failed(pub Option<BodyError>);

impl hyper::body::Body for Failed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Poll::Ready(self.get_mut().0.take().map(Err))
    }
}

/// Go's `http.DetectContentType` (the WHATWG MIME sniffing subset Go implements).
pub fn detect(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    let ws = |b: &u8| matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ');
    let first_non_ws = data.iter().position(|b| !ws(b)).unwrap_or(data.len());
    let trimmed = &data[first_non_ws..];
    const HTML: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    for sig in HTML {
        if trimmed.len() > sig.len()
            && trimmed[..sig.len()].eq_ignore_ascii_case(sig)
            && matches!(trimmed[sig.len()], b' ' | b'>')
        {
            return "text/html; charset=utf-8";
        }
    }
    if trimmed.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let masked = |pat: &[u8], mask: &[u8]| {
        data.len() >= pat.len() && data.iter().zip(mask).zip(pat).all(|((d, m), p)| d & m == *p)
    };
    const EXACT: &[(&[u8], &str)] =
        &[(b"%PDF-", "application/pdf"), (b"%!PS-Adobe-", "application/postscript")];
    for (sig, ct) in EXACT {
        if data.starts_with(sig) {
            return ct;
        }
    }
    if masked(b"\xFE\xFF\x00\x00", b"\xFF\xFF\x00\x00") {
        return "text/plain; charset=utf-16be";
    }
    if masked(b"\xFF\xFE\x00\x00", b"\xFF\xFF\x00\x00") {
        return "text/plain; charset=utf-16le";
    }
    if masked(b"\xEF\xBB\xBF\x00", b"\xFF\xFF\xFF\x00") {
        return "text/plain; charset=utf-8";
    }
    const BINARY: &[(&[u8], &str)] = &[
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"\x00\x00\x02\x00", "image/x-icon"),
        (b"BM", "image/bmp"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
    ];
    for (sig, ct) in BINARY {
        if data.starts_with(sig) {
            return ct;
        }
    }
    let riff = |kind: &[u8]| {
        data.len() >= 8 + kind.len() && data.starts_with(b"RIFF") && data[8..].starts_with(kind)
    };
    if riff(b"WEBPVP") {
        return "image/webp";
    }
    if data.starts_with(b"\x89PNG\x0D\x0A\x1A\x0A") {
        return "image/png";
    }
    if data.starts_with(b"\xFF\xD8\xFF") {
        return "image/jpeg";
    }
    if data.len() >= 12 && data.starts_with(b"FORM") && &data[8..12] == b"AIFF" {
        return "audio/aiff";
    }
    if data.starts_with(b"ID3") {
        return "audio/mpeg";
    }
    if data.starts_with(b"OggS\x00") {
        return "application/ogg";
    }
    if data.starts_with(b"MThd\x00\x00\x00\x06") {
        return "audio/midi";
    }
    if riff(b"AVI ") {
        return "video/avi";
    }
    if riff(b"WAVE") {
        return "audio/wave";
    }
    if is_mp4(data) {
        return "video/mp4";
    }
    const REST: &[(&[u8], &str)] = &[
        (b"\x1A\x45\xDF\xA3", "video/webm"),
        (b"\x00\x01\x00\x00", "font/ttf"),
        (b"OTTO", "font/otf"),
        (b"ttcf", "font/collection"),
        (b"wOFF", "font/woff"),
        (b"wOF2", "font/woff2"),
        (b"\x1F\x8B\x08", "application/x-gzip"),
        (b"PK\x03\x04", "application/zip"),
        (b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
        (b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
        (b"\x00\x61\x73\x6D", "application/wasm"),
    ];
    if data.len() >= 36 && data[..34].iter().all(|b| *b == 0) && &data[34..36] == b"LP" {
        return "application/vnd.ms-fontobject";
    }
    for (sig, ct) in REST {
        if data.starts_with(sig) {
            return ct;
        }
    }
    if trimmed.iter().any(|b| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F)) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// Go's `mp4Sig`.
fn is_mp4(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let box_size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if data.len() < box_size || !box_size.is_multiple_of(4) || &data[4..8] != b"ftyp" {
        return false;
    }
    let mut st = 8;
    while st < box_size {
        if st == 12 {
            st += 4;
            continue;
        }
        if data.get(st..st + 3) == Some(b"mp4") {
            return true;
        }
        st += 4;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_like_go() {
        // (case, bytes, Go's answer)
        let cases: &[(&str, &[u8], &str)] = &[
            ("html", b"<html><body>x", "text/html; charset=utf-8"),
            ("html after spaces, any case", b"  \n<HtMl>", "text/html; charset=utf-8"),
            ("doctype", b"<!DOCTYPE html>\n<p>", "text/html; charset=utf-8"),
            ("tag needs a terminator", b"<htmlx", "text/plain; charset=utf-8"),
            ("xml", b"<?xml version=\"1.0\"?>", "text/xml; charset=utf-8"),
            ("json is text", b"{\"a\": 1}", "text/plain; charset=utf-8"),
            ("pdf", b"%PDF-1.4", "application/pdf"),
            ("png", b"\x89PNG\x0D\x0A\x1A\x0Axxxx", "image/png"),
            ("gif", b"GIF89a...", "image/gif"),
            ("jpeg", b"\xFF\xD8\xFF\xE0", "image/jpeg"),
            ("gzip", b"\x1F\x8B\x08\x00", "application/x-gzip"),
            ("zip", b"PK\x03\x04", "application/zip"),
            ("binary", b"\x00\x01\x02\x03\x04", "application/octet-stream"),
            ("utf-8 bom", b"\xEF\xBB\xBFhello", "text/plain; charset=utf-8"),
            ("webm", b"\x1A\x45\xDF\xA3", "video/webm"),
            ("wasm", b"\x00asm\x01", "application/wasm"),
            ("mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
        ];
        for (name, data, want) in cases {
            assert_eq!(detect(data), *want, "case {name}");
        }
    }

    #[test]
    fn sniffs_only_untyped_responses() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().build().expect("runtime");
        let resp = |ct: Option<&'static str>, body: &'static str| {
            let mut r = Response::new(Body::full(body));
            if let Some(ct) = ct {
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            r
        };
        // (case, response, HEAD, expected Content-Type)
        let cases = [
            ("untyped html", resp(None, "<html>"), false, Some("text/html; charset=utf-8")),
            ("typed kept", resp(Some("application/json"), "<html>"), false, Some("application/json")),
            ("empty body", resp(None, ""), false, None),
            ("head", resp(None, "<html>"), true, None),
        ];
        for (name, r, head, want) in cases {
            let out = rt.block_on(async {
                let out = sniff(r, head).await;
                let ct = out.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap_or("").to_string());
                let body = out.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                (ct, body)
            });
            assert_eq!(out.0.as_deref(), want, "case {name}");
            if name == "untyped html" {
                assert_eq!(out.1, Bytes::from_static(b"<html>"), "case {name}: body kept");
            }
        }
    }
}
