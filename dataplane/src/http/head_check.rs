//! The request-head checks hyper's parser does not make and that weir needs (W10: smuggling
//! vectors get 400 and a closed connection). Two halves:
//!
//! - [`Framing`] reads the raw HTTP/1.1 byte stream *before* hyper does, following request
//!   framing (heads, `Content-Length` bodies, chunked bodies) so that it looks at heads only.
//!   Where hyper would accept a head the issue says must be refused — a bare LF line ending,
//!   both `Content-Length` and `Transfer-Encoding` (hyper silently drops the length), several
//!   `Content-Length` lines, a malformed chunk size arriving with its head — it overwrites one
//!   byte of that head with NUL, so hyper's own parser refuses it: 400 and close, and the request
//!   never reaches a backend. Sans-IO: bytes in, bytes (maybe) changed; no allocation.
//! - [`check`] and [`check_target`] judge the parsed head as Go's `net/http` server does after
//!   parsing (so Traefik): exactly one well-formed `Host` on HTTP/1.1 ("missing required Host
//!   header", "too many Host headers", "malformed Host header": 400), a `Transfer-Encoding` that
//!   is one `chunked` and nothing else (501 "Unsupported transfer encoding"), and — stricter than
//!   Go — an absolute-form target whose host is not the `Host` header's (400). The answer closes
//!   the connection, as Go's does. HTTP/2 heads are the h2 crate's job.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri, Version};

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
    /// Both `Content-Length` and `Transfer-Encoding` (a smuggling vector: two framings).
    LengthAndCoding,
    /// An absolute-form target naming another host than the `Host` header.
    HostMismatch,
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
            Refusal::LengthAndCoding => {
                (StatusCode::BAD_REQUEST, "400 Bad Request: both Content-Length and Transfer-Encoding")
            }
            Refusal::HostMismatch => {
                (StatusCode::BAD_REQUEST, "400 Bad Request: Host does not match the request target")
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
        // hyper drops the length of such a head before weir sees it ([`Framing`] catches it in
        // the bytes); a head built some other way is judged the same.
        (Some(_), None) if headers.contains_key(header::CONTENT_LENGTH) => Err(Refusal::LengthAndCoding),
        (Some(v), None) if trim(v.as_bytes()).eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(Refusal::UnsupportedTransferEncoding),
    }
}

/// An HTTP/1.1 absolute-form target (`GET http://b.test/ HTTP/1.1`) must name the host the
/// `Host` header names (ports compared with the scheme's default filled in). RFC 9112 §3.2.2
/// lets a server ignore `Host` then, and Traefik routes on the target; a proxy and a backend
/// that disagree on which one wins is how requests reach a host they were not meant for, so
/// weir refuses the disagreement. Origin-form targets (all normal traffic) cost one branch.
pub fn check_target(
    version: Version,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let (Some(target), true) = (uri.host(), version == Version::HTTP_11 && method != Method::CONNECT) else {
        return Ok(());
    };
    let default_port = match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("https") => 443,
        _ => 80,
    };
    let target_port = uri.port_u16().unwrap_or(default_port);
    // A missing or doubled Host is [`check`]'s refusal.
    let Some(host) = headers.get(header::HOST) else { return Ok(()) };
    let (name, port) = split_host_port(host.as_bytes());
    let port = match port {
        None | Some(b"") => Some(default_port),
        Some(p) => std::str::from_utf8(p).ok().and_then(|p| p.parse::<u16>().ok()),
    };
    if name.eq_ignore_ascii_case(target.as_bytes()) && port == Some(target_port) {
        Ok(())
    } else {
        Err(Refusal::HostMismatch)
    }
}

/// `host[:port]` or `[v6][:port]`, without allocating.
fn split_host_port(b: &[u8]) -> (&[u8], Option<&[u8]>) {
    if b.first() == Some(&b'[') {
        return match b.iter().position(|&c| c == b']') {
            Some(end) => {
                let rest = &b[end + 1..];
                (&b[..=end], rest.strip_prefix(b":"))
            }
            None => (b, None),
        };
    }
    match b.iter().rposition(|&c| c == b':') {
        Some(colon) => (&b[..colon], Some(&b[colon + 1..])),
        None => (b, None),
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

/// How much of a head line [`Framing`] keeps to read a header's name and a `Content-Length`
/// value (longer lines are only counted).
const LINE_KEEP: usize = 48;

/// Follows the framing of the HTTP/1.1 requests on one connection, as the bytes are read and
/// before hyper parses them, and spoils the heads weir refuses (see the module header).
///
/// It agrees with hyper on where each request ends (hyper's chunked decoder is followed state for
/// state); whenever it cannot be sure — a refused head, an `Upgrade` or `CONNECT` (the bytes
/// after it are a tunnel), a malformed body — it stops looking for the rest of the connection,
/// so at worst a later head goes unchecked, and a body byte is never touched.
#[derive(Debug, Clone)]
pub struct Framing {
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Head(Head),
    /// Bytes of a `Content-Length` body still to come.
    Body(u64),
    Chunked(Chunk),
    Off,
}

#[derive(Debug, Clone)]
struct Head {
    line: [u8; LINE_KEEP],
    /// Bytes of the current line so far (CR excluded), counted past `LINE_KEEP`.
    len: usize,
    /// The previous byte was CR.
    cr: bool,
    /// The request line was seen (empty lines before it are allowed, RFC 9112 §2.2).
    started: bool,
    length: Option<u64>,
    lengths: u8,
    chunked: bool,
    /// After this head the connection may stop being HTTP (`Upgrade`, `CONNECT`).
    tunnel: bool,
    /// A `Content-Length` hyper will refuse anyway: framing unknown.
    unsure: bool,
}

impl Head {
    fn new() -> Head {
        Head {
            line: [0; LINE_KEEP],
            len: 0,
            cr: false,
            started: false,
            length: None,
            lengths: 0,
            chunked: false,
            tunnel: false,
            unsure: false,
        }
    }

    /// A line ended (its CR, if any, not kept).
    fn line_done(&mut self) {
        let kept = &self.line[..self.len.min(LINE_KEEP)];
        if !self.started {
            self.started = true;
            self.tunnel = kept.starts_with(b"CONNECT ");
            return;
        }
        let Some(colon) = kept.iter().position(|&b| b == b':') else { return };
        let name = &kept[..colon];
        if name.eq_ignore_ascii_case(b"content-length") {
            self.lengths = self.lengths.saturating_add(1);
            let value = trim(&kept[colon + 1..]);
            let parsed = (self.len <= LINE_KEEP && !value.is_empty())
                .then(|| {
                    value.iter().try_fold(0u64, |n, &b| {
                        b.is_ascii_digit().then_some(())?;
                        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
                    })
                })
                .flatten();
            match parsed {
                Some(n) => self.length = Some(n),
                None => self.unsure = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Anything but one `chunked` is refused after parsing ([`check`]) and the connection
            // closed, so what follows does not matter.
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.tunnel = true;
        }
    }
}

/// hyper's `ChunkedState`, minus what only matters for decoding.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    EndCr,
    EndLf,
    Trailer,
    TrailerLf,
}

/// What a byte of a chunked body does to the framing.
enum Step {
    Next(Chunk),
    Done,
    Malformed,
}

impl Chunk {
    fn step(self, b: u8) -> Step {
        use Chunk::*;
        let hex = |b: u8| char::from(b).to_digit(16).map(u64::from);
        let grow = |size: u64, d: u64| size.checked_mul(16).and_then(|s| s.checked_add(d));
        match (self, b) {
            (Start, b) => match hex(b) {
                Some(d) => Step::Next(Size(d)),
                None => Step::Malformed,
            },
            (Size(n), b'\t' | b' ') => Step::Next(SizeLws(n)),
            (Size(n) | SizeLws(n), b';') | (Extension(n), _) if b != b'\r' && b != b'\n' => {
                Step::Next(Extension(n))
            }
            (Size(n) | SizeLws(n) | Extension(n), b'\r') => Step::Next(SizeLf(n)),
            (Size(n), b) => match hex(b).and_then(|d| grow(n, d)) {
                Some(n) => Step::Next(Size(n)),
                None => Step::Malformed,
            },
            (SizeLws(n), b'\t' | b' ') => Step::Next(SizeLws(n)),
            (SizeLf(0), b'\n') => Step::Next(EndCr),
            (SizeLf(n), b'\n') => Step::Next(Data(n)),
            (DataCr, b'\r') => Step::Next(DataLf),
            (DataLf, b'\n') => Step::Next(Start),
            (EndCr, b'\r') => Step::Next(EndLf),
            (Trailer, b'\r') => Step::Next(TrailerLf),
            (EndCr | Trailer, _) => Step::Next(Trailer),
            (TrailerLf, b'\n') => Step::Next(EndCr),
            (EndLf, b'\n') => Step::Done,
            // `Data` is skipped in bulk by the caller.
            _ => Step::Malformed,
        }
    }
}

impl Default for Framing {
    fn default() -> Framing {
        Framing::new()
    }
}

impl Framing {
    /// A connection whose first byte starts a request head.
    pub fn new() -> Framing {
        Framing { state: State::Head(Head::new()) }
    }

    /// A connection this does not look at (HTTP/2).
    pub fn off() -> Framing {
        Framing { state: State::Off }
    }

    /// Whether the current request's body is still arriving (the read timeout covers it).
    pub fn body_pending(&self) -> bool {
        matches!(self.state, State::Body(_) | State::Chunked(_))
    }

    /// Follows `bytes`, just read from the client and not yet seen by hyper, and spoils a head
    /// weir refuses. Returns whether it did.
    pub fn scan(&mut self, bytes: &mut [u8]) -> bool {
        let mut i = 0;
        // Where the last head that ended in `bytes` has its final LF.
        let mut head_end: Option<usize> = None;
        while i < bytes.len() {
            match &mut self.state {
                State::Off => return false,
                State::Body(left) => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len() - i);
                    *left -= take as u64;
                    i += take;
                    if *left == 0 {
                        self.state = State::Head(Head::new());
                    }
                }
                State::Chunked(Chunk::Data(left)) => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len() - i);
                    *left -= take as u64;
                    i += take;
                    if *left == 0 {
                        self.state = State::Chunked(Chunk::DataCr);
                    }
                }
                State::Chunked(chunk) => {
                    match chunk.step(bytes[i]) {
                        Step::Next(next) => *chunk = next,
                        Step::Done => self.state = State::Head(Head::new()),
                        Step::Malformed => {
                            self.state = State::Off;
                            // Still unparsed by hyper: refuse the whole request, before any of
                            // it reaches a backend. Later, hyper's body error ends it.
                            return head_end.map(|at| spoil(bytes, at)).is_some();
                        }
                    }
                    i += 1;
                }
                State::Head(head) => {
                    // The bytes of a line up to its CR or LF are only counted (the first
                    // `LINE_KEEP` kept): one search per line, not one step per byte.
                    let rest = &bytes[i..];
                    let run = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                    if run > 0 {
                        // A CR inside a line: httparse refuses it itself.
                        head.cr = false;
                        if let Some(room) = LINE_KEEP.checked_sub(head.len).filter(|&r| r > 0) {
                            let keep = run.min(room);
                            head.line[head.len..head.len + keep].copy_from_slice(&rest[..keep]);
                        }
                        head.len = head.len.saturating_add(run);
                        i += run;
                        continue;
                    }
                    let b = rest[0];
                    if b == b'\n' {
                        if !head.cr {
                            // A bare LF: hyper (httparse) takes it for a line end.
                            self.state = State::Off;
                            spoil(bytes, i);
                            return true;
                        }
                        if head.len > 0 {
                            head.line_done();
                        } else if head.started {
                            // The empty line: the head ends here.
                            if head.lengths > 0 && head.chunked || head.lengths > 1 {
                                self.state = State::Off;
                                spoil(bytes, i);
                                return true;
                            }
                            head_end = Some(i);
                            self.state = match (head.tunnel || head.unsure, head.chunked, head.length) {
                                (true, _, _) => State::Off,
                                (_, true, _) => State::Chunked(Chunk::Start),
                                (_, _, Some(n)) if n > 0 => State::Body(n),
                                _ => State::Head(Head::new()),
                            };
                            i += 1;
                            continue;
                        }
                        head.len = 0;
                        head.cr = false;
                    } else {
                        head.cr = true;
                    }
                    i += 1;
                }
            }
        }
        false
    }
}

/// Makes hyper's parser refuse the head whose byte `at` is: a NUL is valid nowhere in a head.
fn spoil(bytes: &mut [u8], at: usize) {
    bytes[at] = 0;
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
                Err(LengthAndCoding),
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
    fn absolute_form_targets_must_name_the_host() {
        type Case = (&'static str, &'static str, &'static str, bool);
        let cases: [Case; 9] = [
            ("origin form", "/x", "b.test", true),
            ("same host", "http://a.test/x", "a.test", true),
            ("host case", "http://A.test/x", "a.TEST", true),
            ("default port written", "http://a.test:80/", "a.test", true),
            ("https default port", "https://a.test/", "a.test:443", true),
            ("other host", "http://b.test/x", "a.test", false),
            ("other port", "http://a.test:8080/", "a.test", false),
            ("userinfo does not count", "http://a.test@b.test/", "a.test", false),
            ("ipv6", "http://[::1]:8080/", "[::1]:8080", true),
        ];
        for (name, target, host, ok) in cases {
            let uri: Uri = target.parse().expect("uri");
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static(host));
            let got = check_target(Version::HTTP_11, &Method::GET, &uri, &h);
            assert_eq!(got.is_ok(), ok, "case {name}: {got:?}");
        }
        let uri: Uri = "b.test:443".parse().expect("authority form");
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a.test"));
        assert_eq!(check_target(Version::HTTP_11, &Method::CONNECT, &uri, &h), Ok(()), "CONNECT");
    }

    /// Feeds `input` to a new [`Framing`] in pieces of `step` bytes; returns the bytes hyper
    /// would get and whether a head was spoiled.
    fn framed(input: &[u8], step: usize) -> (Vec<u8>, bool) {
        let mut f = Framing::new();
        let mut out = input.to_vec();
        let mut spoiled = false;
        for piece in out.chunks_mut(step) {
            spoiled |= f.scan(piece);
        }
        (out, spoiled)
    }

    #[test]
    fn framing_spoils_only_refused_heads() {
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
        type Case = (&'static str, Vec<u8>, Option<usize>);
        let cat = |parts: &[&[u8]]| parts.concat();
        let cases: Vec<Case> = vec![
            ("plain", get.to_vec(), None),
            ("leading empty line", cat(&[b"\r\n", get]), None),
            ("bare LF in the request line", b"GET / HTTP/1.1\nHost: a\r\n\r\n".to_vec(), Some(14)),
            ("bare LF ends the head", b"GET / HTTP/1.1\r\nHost: a\r\n\n".to_vec(), Some(25)),
            (
                "length and coding",
                b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
                Some(65),
            ),
            (
                "coding then length",
                b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n".to_vec(),
                Some(65),
            ),
            (
                "two equal lengths",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx".to_vec(),
                Some(56),
            ),
            // Bodies are skipped: a bare LF inside one is data.
            (
                "bare LF in a sized body, then a request",
                cat(&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb", get]),
                None,
            ),
            (
                "bare LF in chunks and trailers, then a request",
                cat(&[
                    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\na\nb\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
                    get,
                ]),
                None,
            ),
            (
                "bare LF after a tunnel opened",
                b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\n\n".to_vec(),
                None,
            ),
            (
                "bare LF in the second pipelined head",
                cat(&[get, b"GET / HTTP/1.1\nHost: a\r\n\r\n"]),
                Some(get.len() + 14),
            ),
        ];
        for (name, input, want) in cases {
            for step in [1, 5, input.len()] {
                let (out, spoiled) = framed(&input, step);
                let changed: Vec<usize> = (0..input.len()).filter(|&i| out[i] != input[i]).collect();
                match want {
                    None => assert!(!spoiled && changed.is_empty(), "case {name} (step {step}): {changed:?}"),
                    Some(at) => {
                        assert!(spoiled, "case {name} (step {step}): not spoiled");
                        assert_eq!(changed, [at], "case {name} (step {step})");
                        assert_eq!(out[at], 0, "case {name} (step {step})");
                    }
                }
            }
        }
    }

    #[test]
    fn framing_tracks_bodies_in_flight() {
        let mut f = Framing::new();
        let mut head = b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab".to_vec();
        assert!(!f.scan(&mut head));
        assert!(f.body_pending(), "two of four body bytes read");
        assert!(!f.scan(&mut b"cd".to_vec()));
        assert!(!f.body_pending(), "body complete");
        // A bad chunk read with its head: the head is spoiled, so the request is refused whole.
        let mut f = Framing::new();
        let mut both = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec();
        assert!(f.scan(&mut both));
        assert_eq!(both[46], 0);
        // A bad chunk after the head was parsed is hyper's to refuse: nothing to spoil here.
        let mut f = Framing::new();
        assert!(!f.scan(&mut b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()));
        assert!(f.body_pending());
        let mut bad = b"zz\r\n".to_vec();
        assert!(!f.scan(&mut bad));
        assert_eq!(bad, b"zz\r\n", "body bytes are never changed");
        assert!(!f.body_pending(), "framing unknown: stops looking");
    }

    #[test]
    fn framing_changes_at_most_one_line_feed_of_any_input() {
        // Random streams over an alphabet that makes heads, lengths, codings and chunks.
        let words: [&[u8]; 14] = [
            b"\r\n",
            b"\n",
            b"\r",
            b"POST / HTTP/1.1",
            b"content-length: ",
            b"Transfer-Encoding: chunked",
            b"upgrade: x",
            b"3",
            b"0",
            b"ff",
            b";e",
            b" ",
            b"abc",
            b"\r\n\r\n",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize
        };
        for _ in 0..2000 {
            let input: Vec<u8> =
                (0..next() % 40).flat_map(|_| words[next() % words.len()].to_vec()).collect();
            let step = 1 + next() % 16;
            let (out, spoiled) = framed(&input, step);
            let changed: Vec<usize> = (0..input.len()).filter(|&i| out[i] != input[i]).collect();
            assert!(changed.len() <= 1, "{changed:?} in {:?}", String::from_utf8_lossy(&input));
            assert_eq!(spoiled, changed.len() == 1);
            if let [at] = changed[..] {
                assert_eq!((input[at], out[at]), (b'\n', 0));
            }
        }
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
