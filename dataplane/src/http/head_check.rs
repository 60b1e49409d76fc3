//! The request-head checks hyper's parser does not make and that weir needs, answered with the
//! bytes Go's `net/http` server (so Traefik) writes. Two halves:
//!
//! - [`Framing`] reads the raw HTTP/1.x byte stream *before* hyper does, following request
//!   framing (heads, `Content-Length` bodies, chunked bodies) so that it looks at heads only, and
//!   judges every head as Go's `readRequest` does: request line, header lines, `Host`,
//!   `Transfer-Encoding`, `Content-Length`, version, size. A head Go refuses never reaches hyper:
//!   the caller (`limits::Tracked`) passes on only the bytes before it and writes the
//!   [`GoAnswer`] itself. W10 additions (stricter than Go): a bare LF, both `Content-Length` and
//!   `Transfer-Encoding`, several `Content-Length` lines. A malformed chunk size arriving with its
//!   head spoils the head (one byte set to NUL) so hyper refuses it. Sans-IO, no allocation.
//! - [`check`] and [`check_target`] judge a head hyper parsed (the backstop for heads built some
//!   other way) and an absolute-form target whose host is not the `Host` header's (400, stricter
//!   than Go). HTTP/2 heads are the h2 crate's job.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Uri, Version};

use super::Body;

/// Go's answer to a request head it refuses: `(*conn).serve` writes it raw on the connection
/// (status line, `Content-Type`, `Connection: close`, no length, no date) and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoAnswer {
    /// Any parse error without a `statusError`: request line, header line, `Content-Length`,
    /// `too many Host headers`, a head cut by EOF.
    BadRequest,
    /// `badRequestError("missing required Host header")`.
    MissingHost,
    /// `badRequestError("malformed Host header")`.
    MalformedHost,
    /// `badRequestError("invalid header name")` (a space inside a header name).
    InvalidHeaderName,
    /// A transfer coding other than one `chunked` (`unsupportedTEError`).
    UnsupportedTransferEncoding,
    /// A version other than HTTP/1.x (`statusError{505, "unsupported protocol version"}`).
    VersionNotSupported,
    /// No complete head within `maxHeaderBytes + 4096` bytes (`errTooLarge`).
    HeadTooLarge,
}

/// Go's error response: status line and body from `$status` and `$body`.
macro_rules! go_bytes {
    ($status:literal, $body:literal) => {
        concat!(
            "HTTP/1.1 ",
            $status,
            "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n",
            $body
        )
        .as_bytes()
    };
    ($both:literal) => {
        go_bytes!($both, $both)
    };
}

impl GoAnswer {
    /// The bytes Go writes, byte for byte.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            GoAnswer::BadRequest => go_bytes!("400 Bad Request"),
            GoAnswer::MissingHost => go_bytes!("400 Bad Request: missing required Host header"),
            GoAnswer::MalformedHost => go_bytes!("400 Bad Request: malformed Host header"),
            GoAnswer::InvalidHeaderName => go_bytes!("400 Bad Request: invalid header name"),
            GoAnswer::UnsupportedTransferEncoding => {
                go_bytes!("501 Not Implemented", "Unsupported transfer encoding")
            }
            GoAnswer::VersionNotSupported => {
                go_bytes!("505 HTTP Version Not Supported: unsupported protocol version")
            }
            GoAnswer::HeadTooLarge => go_bytes!("431 Request Header Fields Too Large"),
        }
    }

    /// The status code.
    pub fn status(self) -> StatusCode {
        match self {
            GoAnswer::UnsupportedTransferEncoding => StatusCode::NOT_IMPLEMENTED,
            GoAnswer::VersionNotSupported => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            GoAnswer::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The body (what follows the empty line of [`GoAnswer::bytes`]).
    pub fn body(self) -> &'static [u8] {
        let b = self.bytes();
        let at = memchr::memmem::find(b, b"\r\n\r\n").map_or(b.len(), |at| at + 4);
        &b[at..]
    }
}

/// Why a parsed head is refused.
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
    /// Go's answer in status, type and body (`Connection: close` included). hyper writes it, so
    /// it also carries hyper's `content-length` and `date`; [`Framing`] refuses the same heads
    /// before hyper sees them, with Go's exact bytes.
    pub fn response(self) -> Response<Body> {
        let (status, text): (StatusCode, &'static [u8]) = match self {
            Refusal::HostMismatch => {
                (StatusCode::BAD_REQUEST, b"400 Bad Request: Host does not match the request target")
            }
            other => {
                let answer = match other {
                    Refusal::MissingHost => GoAnswer::MissingHost,
                    Refusal::MalformedHost => GoAnswer::MalformedHost,
                    Refusal::UnsupportedTransferEncoding => GoAnswer::UnsupportedTransferEncoding,
                    _ => GoAnswer::BadRequest,
                };
                (answer.status(), answer.body())
            }
        };
        let mut resp = Response::new(Body::full(Bytes::from_static(text)));
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
const fn valid_host_byte(b: u8) -> bool {
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

/// How much of a head line [`Framing`] keeps to read a method, a header's name and a
/// `Content-Length` or `Transfer-Encoding` value (longer lines are only counted).
const LINE_KEEP: usize = 48;

/// hyper's `DEFAULT_MAX_HEADERS`: a head with more header lines is refused by hyper (431).
const HYPER_MAX_FIELDS: usize = 100;

/// The head limit of Traefik's default `maxHeaderBytes` (1 MiB) plus Go's 4096 bytes of slack.
const DEFAULT_HEAD_LIMIT: usize = (1 << 20) + 4096;

/// Byte classes of a head, one table lookup per byte.
const TOKEN: u8 = 1;
/// Go's `validHeaderValueByte` (and httparse's): anything but controls, HTAB allowed.
const VALUE: u8 = 2;
/// httpguts' `validHostByte`.
const HOST: u8 = 4;
/// A byte the `http` crate takes in an origin-form path.
const PATH: u8 = 8;
/// A byte the `http` crate takes in a query.
const QUERY: u8 = 16;
/// A byte of a URI scheme after its first letter.
const SCHEME: u8 = 32;

static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            )
        {
            c |= TOKEN;
        }
        if (b >= 0x20 && b != 0x7f) || b == b'\t' {
            c |= VALUE;
        }
        if valid_host_byte(b) {
            c |= HOST;
        }
        if b > 0x20 && b != 0x7f && !matches!(b, b'<' | b'>' | b'`') {
            c |= PATH;
        }
        if b > 0x20 && b != 0x7f && !matches!(b, b'"' | b'<' | b'>') {
            c |= QUERY;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
            c |= SCHEME;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn is(b: u8, class: u8) -> bool {
    CLASSES[usize::from(b)] & class != 0
}

/// How many leading bytes of `bytes` are header-value bytes (`VALUE`, so no CR). Eight at a
/// time while no byte is a control or DEL (values rarely hold a tab): most of a head's bytes are
/// values, and this is what keeps the check near memchr's speed.
fn value_run(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut n = 0;
    for word in bytes.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_ne_bytes(w);
        // A byte below 0x20, or a DEL (zero after xor with 0x7f): exact, per Hacker's Delight.
        let below = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let del = (w ^ (ONES * 0x7f)).wrapping_sub(ONES) & !(w ^ (ONES * 0x7f)) & HIGH;
        if below | del != 0 {
            break;
        }
        n += 8;
    }
    n + bytes[n..].iter().take_while(|&&b| b != b'\r' && is(b, VALUE)).count()
}

/// What [`Framing::scan`] found in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Pass the bytes on to hyper.
    Pass,
    /// Pass them on: one byte of a head was set to NUL so that hyper refuses it (a malformed
    /// chunk arrived with its head).
    Spoiled,
    /// Go refuses the head that starts at `keep` in these bytes (`started_before`: it started in
    /// bytes already passed on, and `keep` is 0). Pass on only `bytes[..keep]`, then answer with
    /// [`Framing::answer`] once it is known (more bytes may be needed to tell which answer).
    Refuse { keep: usize, started_before: bool },
}

/// Follows the framing of the HTTP/1.x requests on one connection, as the bytes are read and
/// before hyper parses them, and judges each head as Go does (see the module header).
///
/// It agrees with hyper on where each request ends (hyper's chunked decoder is followed state for
/// state); whenever it cannot be sure — an `Upgrade` or `CONNECT` (the bytes after it are a
/// tunnel), a malformed body — it stops looking for the rest of the connection, so at worst a
/// later head goes unchecked, and a body byte is never touched.
#[derive(Debug, Clone)]
pub struct Framing {
    state: State,
    /// A head that does not end within this many bytes gets 431.
    limit: usize,
    /// The last request was a POST (Go skips up to 4 CR/LF bytes before the next one).
    after_post: bool,
}

#[derive(Debug, Clone)]
enum State {
    Head(Head),
    /// Bytes of a `Content-Length` body still to come.
    Body(u64),
    Chunked(Chunk),
    /// A refused head, read on until Go's answer to it is known.
    Doomed(Head),
    /// A refused head and Go's answer; nothing more is looked at.
    Refused(GoAnswer),
    Off,
}

/// Where a head's next byte goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Method,
    Target,
    Version,
    Fields,
}

/// Which header the current line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Other,
    Host,
    Length,
    Coding,
    Upgrade,
}

/// What one byte did to a head.
enum Feed {
    More,
    /// The empty line: the head is complete.
    End,
    /// Go refuses the head; its answer is known now.
    Bad(GoAnswer),
    /// Go refuses the head, and hyper would choke on this byte, but Go's answer depends on what
    /// follows (the version is checked after the header lines, a space in a name after `Host`).
    Doomed,
}

#[derive(Debug, Clone)]
struct Head {
    line: [u8; LINE_KEEP],
    /// Bytes of the current line so far (CR excluded), counted past `LINE_KEEP`.
    len: usize,
    /// The previous byte was CR.
    cr: bool,
    /// Bytes of this head so far.
    total: usize,
    /// Leading CR or LF bytes still to skip: Go discards up to 4 after a POST.
    skip: u8,
    part: Part,
    // The request line.
    target_len: usize,
    target_first: u8,
    /// Hex digits still due after a `%` in the path.
    pct: u8,
    query: bool,
    fragment: bool,
    /// Still in the scheme of an absolute-form target.
    scheme: bool,
    version: [u8; 8],
    version_len: usize,
    post: bool,
    connect: bool,
    pri: bool,
    // The header lines.
    colon: bool,
    name_space: bool,
    field: Field,
    fields: usize,
    /// A space inside a header name (Go: "invalid header name", checked last).
    bad_name: bool,
    /// Major version other than 1 (Go: 505, checked after the header lines).
    unsupported: bool,
    hosts: u8,
    host_bad: bool,
    /// In the current `Host` value: value bytes seen, then whitespace after them.
    host_seen: bool,
    host_ws: bool,
    length: Option<u64>,
    lengths: u8,
    length_bad: bool,
    codings: u8,
    chunked: bool,
    /// After this head the connection may stop being HTTP (`Upgrade`, `CONNECT`).
    tunnel: bool,
}

impl Head {
    fn new(after_post: bool) -> Head {
        Head {
            line: [0; LINE_KEEP],
            len: 0,
            cr: false,
            total: 0,
            skip: if after_post { 4 } else { 0 },
            part: Part::Method,
            target_len: 0,
            target_first: 0,
            pct: 0,
            query: false,
            fragment: false,
            scheme: false,
            version: [0; 8],
            version_len: 0,
            post: false,
            connect: false,
            pri: false,
            colon: false,
            name_space: false,
            field: Field::Other,
            fields: 0,
            bad_name: false,
            unsupported: false,
            hosts: 0,
            host_bad: false,
            host_seen: false,
            host_ws: false,
            length: None,
            lengths: 0,
            length_bad: false,
            codings: 0,
            chunked: false,
            tunnel: false,
        }
    }

    /// Major and minor version (only meaningful once the request line is complete).
    fn version(&self) -> (u8, u8) {
        (self.version[5].wrapping_sub(b'0'), self.version[7].wrapping_sub(b'0'))
    }

    /// Go's `ProtoAtLeast(1, 1)`.
    fn at_least_11(&self) -> bool {
        let (major, minor) = self.version();
        major > 1 || (major == 1 && minor >= 1)
    }

    /// Takes the leading bytes of `bytes` that need no decision — the rest of a token (method,
    /// path, query, name, value), a plain version, the colon after a name, a header line's CRLF,
    /// a name's first byte — and returns how many; `feed` takes the others one by one.
    fn run(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while !self.cr && self.skip == 0 && i < bytes.len() {
            let rest = &bytes[i..];
            let n = match self.part {
                Part::Method => {
                    let n = rest.iter().take_while(|&&b| is(b, TOKEN)).count();
                    self.keep_run(&rest[..n]);
                    n
                }
                Part::Target
                    if self.target_first == b'/'
                        && self.pct == 0
                        && !self.fragment
                        && self.target_len > 0 =>
                {
                    let n = if self.query {
                        rest.iter().take_while(|&&b| is(b, QUERY) && b != b'#').count()
                    } else {
                        rest.iter().take_while(|&&b| is(b, PATH) && !matches!(b, b'%' | b'?' | b'#')).count()
                    };
                    self.target_len += n;
                    n
                }
                Part::Version
                    if self.version_len == 0
                        && (rest.starts_with(b"HTTP/1.1") || rest.starts_with(b"HTTP/1.0")) =>
                {
                    self.version.copy_from_slice(&rest[..8]);
                    self.version_len = 8;
                    8
                }
                Part::Fields if !self.colon && self.len > 0 => {
                    let n = rest.iter().take_while(|&&b| is(b, TOKEN)).count();
                    self.keep_run(&rest[..n]);
                    if rest.get(n) == Some(&b':') {
                        self.name_end();
                        n + 1
                    } else {
                        n
                    }
                }
                Part::Fields if !self.colon => {
                    // A name's first byte (not an empty name, not a fold, within hyper's count).
                    if !is(rest[0], TOKEN) || self.fields >= HYPER_MAX_FIELDS {
                        0
                    } else {
                        self.fields += 1;
                        self.keep(rest[0]);
                        1
                    }
                }
                Part::Fields => {
                    let n = match self.field {
                        Field::Other | Field::Upgrade => {
                            let n = value_run(rest);
                            self.len += n;
                            n
                        }
                        Field::Host if !self.host_ws => {
                            let n = rest.iter().take_while(|&&b| is(b, HOST)).count();
                            self.host_seen |= n > 0;
                            n
                        }
                        _ => 0,
                    };
                    if rest[n..].starts_with(b"\r\n") {
                        let _ = self.line_end();
                        n + 2
                    } else {
                        n
                    }
                }
                _ => 0,
            };
            if n == 0 {
                break;
            }
            self.total += n;
            i += n;
        }
        i
    }

    fn keep_run(&mut self, run: &[u8]) {
        if self.len < LINE_KEEP {
            let k = run.len().min(LINE_KEEP - self.len);
            self.line[self.len..self.len + k].copy_from_slice(&run[..k]);
        }
        self.len += run.len();
    }

    fn keep(&mut self, b: u8) {
        if self.len < LINE_KEEP {
            self.line[self.len] = b;
        }
        self.len += 1;
    }

    /// One byte of the head (it may be rewritten: an HTTP/1.2+ minor version becomes 1, which
    /// is what Go makes of it and the only minor hyper takes besides 0).
    fn feed(&mut self, byte: &mut u8) -> Feed {
        let b = *byte;
        self.total += 1;
        if self.cr {
            self.cr = false;
            // CR must end a line (Go: a CR inside a line is a bad byte wherever it is).
            return if b == b'\n' { self.line_end() } else { Feed::Bad(GoAnswer::BadRequest) };
        }
        if b == b'\r' {
            if self.skip > 0 && self.part == Part::Method && self.len == 0 {
                self.skip -= 1;
                return Feed::More;
            }
            self.cr = true;
            return Feed::More;
        }
        if b == b'\n' {
            if self.skip > 0 && self.part == Part::Method && self.len == 0 {
                self.skip -= 1;
                return Feed::More;
            }
            // A bare LF: Go takes it for a line end, hyper too; W10 refuses it.
            return Feed::Bad(GoAnswer::BadRequest);
        }
        self.skip = 0;
        match self.part {
            Part::Method => {
                if b == b' ' {
                    if self.len == 0 {
                        return Feed::Bad(GoAnswer::BadRequest);
                    }
                    let method = &self.line[..self.len.min(LINE_KEEP)];
                    self.post = method == b"POST";
                    self.connect = method == b"CONNECT";
                    self.pri = method == b"PRI";
                    self.part = Part::Target;
                    return Feed::More;
                }
                if !is(b, TOKEN) {
                    return Feed::Bad(GoAnswer::BadRequest);
                }
                self.keep(b);
                Feed::More
            }
            Part::Target => self.target_byte(b),
            Part::Version => {
                let i = self.version_len;
                if i >= 8 {
                    return Feed::Bad(GoAnswer::BadRequest);
                }
                self.version_len += 1;
                let ok = match i {
                    0..=4 => b == b"HTTP/"[i],
                    5 | 7 => b.is_ascii_digit(),
                    _ => b == b'.',
                };
                if !ok {
                    return Feed::Bad(GoAnswer::BadRequest);
                }
                let mut b = b;
                if i == 7 && self.version[5] == b'1' && b > b'1' {
                    *byte = b'1';
                    b = b'1';
                }
                self.version[i] = b;
                if i == 5 && b != b'1' {
                    // hyper takes HTTP/1.x only; Go answers 505 after reading the header lines,
                    // but passes `PRI * HTTP/2.0` on (hyper's to handle, see docs).
                    if self.pri && self.target_len == 1 && self.target_first == b'*' && b == b'2' {
                        return Feed::More;
                    }
                    self.unsupported = true;
                    return Feed::Doomed;
                }
                Feed::More
            }
            Part::Fields => self.field_byte(b),
        }
    }

    fn target_byte(&mut self, b: u8) -> Feed {
        if b == b' ' {
            if self.target_len == 0 || self.pct > 0 || self.scheme {
                return Feed::Bad(GoAnswer::BadRequest);
            }
            self.part = Part::Version;
            return Feed::More;
        }
        if b < 0x20 || b == 0x7f {
            // Go's url.Parse: "invalid control character in URL".
            return Feed::Bad(GoAnswer::BadRequest);
        }
        let first = self.target_len == 0;
        self.target_len += 1;
        if first {
            self.target_first = b;
            if self.connect && b != b'/' {
                // Authority form: Go parses it as a host.
                return Feed::More;
            }
            return match b {
                b'/' | b'*' => Feed::More,
                b if b.is_ascii_alphabetic() => {
                    self.scheme = true;
                    Feed::More
                }
                // Not `/`, not `*`, not a scheme: Go's "invalid URI for request".
                _ => Feed::Bad(GoAnswer::BadRequest),
            };
        }
        if self.target_first == b'*' {
            return Feed::Bad(GoAnswer::BadRequest);
        }
        if self.scheme {
            if b == b':' {
                self.scheme = false;
            } else if !is(b, SCHEME) {
                return Feed::Bad(GoAnswer::BadRequest);
            }
            return Feed::More;
        }
        if self.pct > 0 {
            if !b.is_ascii_hexdigit() {
                return Feed::Bad(GoAnswer::BadRequest);
            }
            self.pct -= 1;
            return Feed::More;
        }
        if self.fragment || (self.connect && self.target_first != b'/') {
            return Feed::More;
        }
        if self.query {
            // The `http` crate refuses these in a query (Go takes them): answered as Go answers
            // a bad target, since hyper cannot serve the request.
            if b == b'#' {
                self.fragment = true;
            } else if !is(b, QUERY) && b < 0x80 {
                return Feed::Bad(GoAnswer::BadRequest);
            }
            return Feed::More;
        }
        match b {
            b'%' => self.pct = 2,
            b'?' => self.query = true,
            b'#' => self.fragment = true,
            b if self.target_first == b'/' && b < 0x80 && !is(b, PATH) => {
                return Feed::Bad(GoAnswer::BadRequest)
            }
            _ => {}
        }
        Feed::More
    }

    fn field_byte(&mut self, b: u8) -> Feed {
        if !self.colon {
            if self.len == 0 {
                self.fields += 1;
                if self.fields > HYPER_MAX_FIELDS {
                    // Go takes any number; hyper refuses more than 100 (see docs).
                    return Feed::Bad(GoAnswer::HeadTooLarge);
                }
                // A line starting with whitespace: obs-fold (or Go's "malformed MIME header
                // initial line"); an empty name.
                if b == b' ' || b == b'\t' || b == b':' {
                    return Feed::Bad(GoAnswer::BadRequest);
                }
            }
            if b == b':' {
                self.name_end();
                return Feed::More;
            }
            if b == b' ' {
                // Go keeps such a name (not canonical) and refuses it after the `Host` checks;
                // httparse refuses it at once.
                self.name_space = true;
                if !self.bad_name {
                    self.bad_name = true;
                    return Feed::Doomed;
                }
                return Feed::More;
            }
            if !is(b, TOKEN) {
                return Feed::Bad(GoAnswer::BadRequest);
            }
            self.keep(b);
            return Feed::More;
        }
        if !is(b, VALUE) {
            return Feed::Bad(GoAnswer::BadRequest);
        }
        match self.field {
            Field::Other | Field::Upgrade => self.len += 1,
            Field::Host => {
                // Go trims the value's leading and trailing whitespace, then every byte must be
                // a host byte.
                if b == b' ' || b == b'\t' {
                    self.host_ws = self.host_seen;
                } else {
                    if self.host_ws || !is(b, HOST) {
                        self.host_bad = true;
                    }
                    self.host_seen = true;
                }
            }
            Field::Length | Field::Coding => {
                if !(self.len == 0 && (b == b' ' || b == b'\t')) {
                    self.keep(b);
                }
            }
        }
        Feed::More
    }

    /// The colon after a header name: which header the line is.
    fn name_end(&mut self) {
        self.colon = true;
        let name = &self.line[..self.len.min(LINE_KEEP)];
        self.field = if self.name_space || self.len > LINE_KEEP {
            Field::Other
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts = self.hosts.saturating_add(1);
            self.host_seen = false;
            self.host_ws = false;
            Field::Host
        } else if name.eq_ignore_ascii_case(b"content-length") {
            Field::Length
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            Field::Coding
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            Field::Upgrade
        } else {
            Field::Other
        };
        self.len = 0;
    }

    /// A CRLF.
    fn line_end(&mut self) -> Feed {
        match self.part {
            Part::Method | Part::Target => Feed::Bad(GoAnswer::BadRequest),
            Part::Version => {
                if self.version_len != 8 {
                    return Feed::Bad(GoAnswer::BadRequest);
                }
                self.part = Part::Fields;
                self.tunnel = self.connect;
                self.len = 0;
                Feed::More
            }
            Part::Fields if self.len == 0 && !self.colon => {
                // The empty line: the head ends here.
                Feed::End
            }
            Part::Fields => {
                if !self.colon {
                    return Feed::Bad(GoAnswer::BadRequest);
                }
                let value = trim(&self.line[..self.len.min(LINE_KEEP)]);
                match self.field {
                    Field::Length => {
                        self.lengths = self.lengths.saturating_add(1);
                        // Go's strconv.ParseUint(v, 10, 63) on the trimmed value.
                        let parsed = (self.len <= LINE_KEEP && !value.is_empty())
                            .then(|| {
                                value.iter().try_fold(0u64, |n, &b| {
                                    b.is_ascii_digit().then_some(())?;
                                    n.checked_mul(10)?
                                        .checked_add(u64::from(b - b'0'))
                                        .filter(|&n| n < 1 << 63)
                                })
                            })
                            .flatten();
                        match parsed {
                            Some(n) => self.length = Some(n),
                            None => self.length_bad = true,
                        }
                    }
                    Field::Coding => {
                        self.codings = self.codings.saturating_add(1);
                        self.chunked = self.len <= LINE_KEEP && value.eq_ignore_ascii_case(b"chunked");
                    }
                    Field::Upgrade => self.tunnel = true,
                    Field::Host | Field::Other => {}
                }
                self.len = 0;
                self.colon = false;
                self.name_space = false;
                self.field = Field::Other;
                Feed::More
            }
        }
    }

    /// Go's checks on a complete head, in Go's order (`readRequest`, `readTransfer`, then
    /// `(*conn).readRequest`), with W10's two framings in between.
    fn verdict(&self) -> Result<(), GoAnswer> {
        if self.hosts > 1 {
            // Go: `fmt.Errorf("too many Host headers")`, no status error: a plain 400.
            return Err(GoAnswer::BadRequest);
        }
        if self.codings > 0 {
            if !self.at_least_11() {
                // Go ignores it on HTTP/1.0; hyper refuses it (see docs).
                return Err(GoAnswer::BadRequest);
            }
            if self.codings > 1 || !self.chunked {
                return Err(GoAnswer::UnsupportedTransferEncoding);
            }
            if self.lengths > 0 {
                // W10: two framings. Go drops the length.
                return Err(GoAnswer::BadRequest);
            }
        }
        if self.length_bad || self.lengths > 1 {
            // W10 refuses equal duplicates too (Go keeps one).
            return Err(GoAnswer::BadRequest);
        }
        if self.unsupported {
            return Err(GoAnswer::VersionNotSupported);
        }
        if self.at_least_11() && self.hosts == 0 && !self.connect && !self.pri {
            return Err(GoAnswer::MissingHost);
        }
        if self.hosts == 1 && self.host_bad {
            return Err(GoAnswer::MalformedHost);
        }
        if self.bad_name {
            return Err(GoAnswer::InvalidHeaderName);
        }
        Ok(())
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
    /// A connection whose first byte starts a request head, with Traefik's default
    /// `maxHeaderBytes`.
    pub fn new() -> Framing {
        Framing { state: State::Head(Head::new(false)), limit: DEFAULT_HEAD_LIMIT, after_post: false }
    }

    /// Heads that do not end within `limit` bytes get 431 (`limits::head_limit`).
    pub fn with_head_limit(mut self, limit: usize) -> Framing {
        self.limit = limit.max(1);
        self
    }

    /// A connection this does not look at (HTTP/2).
    pub fn off() -> Framing {
        Framing { state: State::Off, limit: DEFAULT_HEAD_LIMIT, after_post: false }
    }

    /// Whether the current request's body is still arriving (the read timeout covers it).
    pub fn body_pending(&self) -> bool {
        matches!(self.state, State::Body(_) | State::Chunked(_))
    }

    /// Go's answer to the refused head, once known.
    pub fn answer(&self) -> Option<GoAnswer> {
        match self.state {
            State::Refused(a) => Some(a),
            _ => None,
        }
    }

    /// The client closed its side. Go answers a head cut short with 400 (`io.ErrUnexpectedEOF`
    /// is not one of the read errors it leaves unanswered) and says nothing when no byte of a
    /// request came. Returns the answer, if any.
    pub fn eof(&mut self) -> Option<GoAnswer> {
        match &self.state {
            State::Head(h) if h.total > 0 && !(h.part == Part::Method && h.len == 0 && !h.cr) => {}
            State::Doomed(_) => {}
            State::Refused(a) => return Some(*a),
            _ => return None,
        }
        self.state = State::Refused(GoAnswer::BadRequest);
        Some(GoAnswer::BadRequest)
    }

    /// Follows `bytes`, just read from the client and not yet seen by hyper.
    pub fn scan(&mut self, bytes: &mut [u8]) -> Scan {
        let mut i = 0;
        // Where the current head starts in `bytes`, if it does.
        let mut head_start: Option<usize> = match &self.state {
            State::Head(h) if h.total == 0 => Some(0),
            _ => None,
        };
        // Where the last head that ended in `bytes` has its final LF.
        let mut head_end: Option<usize> = None;
        // A head refused in earlier bytes: nothing of these is for hyper.
        let mut refused = matches!(self.state, State::Doomed(_) | State::Refused(_)).then_some(None);
        while i < bytes.len() {
            match &mut self.state {
                State::Off | State::Refused(_) => break,
                State::Body(left) => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len() - i);
                    *left -= take as u64;
                    i += take;
                    if *left == 0 {
                        self.state = State::Head(Head::new(self.after_post));
                        head_start = Some(i);
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
                        Step::Done => {
                            self.state = State::Head(Head::new(self.after_post));
                            head_start = Some(i + 1);
                        }
                        Step::Malformed => {
                            self.state = State::Off;
                            // Still unparsed by hyper: refuse the whole request, before any of
                            // it reaches a backend. Later, hyper's body error ends it.
                            return match head_end {
                                Some(at) => {
                                    bytes[at] = 0;
                                    Scan::Spoiled
                                }
                                None => Scan::Pass,
                            };
                        }
                    }
                    i += 1;
                }
                State::Doomed(head) => {
                    let feed = head.feed(&mut bytes[i]);
                    i += 1;
                    let answer = match feed {
                        Feed::More | Feed::Doomed if head.total >= self.limit => GoAnswer::HeadTooLarge,
                        Feed::More | Feed::Doomed => continue,
                        Feed::Bad(a) => a,
                        Feed::End => head.verdict().err().unwrap_or(GoAnswer::BadRequest),
                    };
                    self.state = State::Refused(answer);
                }
                State::Head(head) => {
                    // Most bytes of a head sit in runs (method, path, names, values) that are
                    // checked in tight loops; the bytes between runs go through `feed`.
                    let room = self.limit.saturating_sub(head.total).max(1);
                    let end = bytes.len().min(i + room);
                    i += head.run(&bytes[i..end]);
                    if head.total >= self.limit {
                        self.state = State::Refused(GoAnswer::HeadTooLarge);
                        refused = Some(head_start);
                        break;
                    }
                    if i == bytes.len() {
                        break;
                    }
                    let feed = head.feed(&mut bytes[i]);
                    i += 1;
                    let answer = match feed {
                        Feed::More if head.total < self.limit => continue,
                        Feed::More => Some(GoAnswer::HeadTooLarge),
                        Feed::Bad(a) => Some(a),
                        Feed::Doomed => None,
                        Feed::End => match head.verdict() {
                            Err(a) => Some(a),
                            Ok(()) => {
                                head_end = Some(i - 1);
                                let post = head.post;
                                self.after_post = post;
                                self.state = match (head.tunnel, head.chunked, head.length) {
                                    (true, _, _) => State::Off,
                                    (_, true, _) => State::Chunked(Chunk::Start),
                                    (_, _, Some(n)) if n > 0 => State::Body(n),
                                    _ => State::Head(Head::new(post)),
                                };
                                head_start = Some(i);
                                continue;
                            }
                        },
                    };
                    refused = Some(head_start);
                    self.state = match answer {
                        Some(a) => State::Refused(a),
                        None => {
                            let State::Head(head) = std::mem::replace(&mut self.state, State::Off) else {
                                unreachable!("in the head state")
                            };
                            State::Doomed(head)
                        }
                    };
                    // A doomed head is read on (below) until its answer is known.
                    if matches!(self.state, State::Refused(_)) {
                        break;
                    }
                }
            }
        }
        match refused {
            Some(start) => Scan::Refuse { keep: start.unwrap_or(0), started_before: start.is_none() },
            None => Scan::Pass,
        }
    }
}

/// Runs the judgement of [`Framing`] over one head (the fuzz target's and the tests' entry):
/// the head's verdict, `None` when it is incomplete.
pub fn judge(head: &[u8]) -> Option<Result<(), GoAnswer>> {
    let mut f = Framing::new();
    let mut bytes = head.to_vec();
    match f.scan(&mut bytes) {
        Scan::Refuse { .. } => Some(Err(f.answer()?)),
        Scan::Pass | Scan::Spoiled => match f.state {
            State::Head(h) if h.total == 0 => Some(Ok(())),
            State::Body(_) | State::Chunked(_) | State::Off => Some(Ok(())),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_as_go_judges_them() {
        use GoAnswer::*;
        type Case = (&'static str, &'static [u8], Option<Result<(), GoAnswer>>);
        let cases: &[Case] = &[
            ("plain", b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", Some(Ok(()))),
            ("HTTP/1.0 without host", b"GET / HTTP/1.0\r\n\r\n", Some(Ok(()))),
            ("incomplete", b"GET / HTTP/1.1\r\nHost: a", None),
            ("no host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", Some(Err(MissingHost))),
            ("CONNECT needs no host", b"CONNECT a.test:443 HTTP/1.1\r\n\r\n", Some(Ok(()))),
            ("two hosts", b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", Some(Err(BadRequest))),
            ("two hosts on 1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", Some(Err(BadRequest))),
            ("bad host byte", b"GET / HTTP/1.1\r\nHost: a.test/x\r\n\r\n", Some(Err(MalformedHost))),
            ("space inside host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Some(Err(MalformedHost))),
            ("host padded", b"GET / HTTP/1.1\r\nHost: \t a.test \t\r\n\r\n", Some(Ok(()))),
            ("empty host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", Some(Ok(()))),
            ("ipv6 host", b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Some(Ok(()))),
            ("chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n", Some(Ok(()))),
            ("gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Some(Err(UnsupportedTransferEncoding))),
            ("identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", Some(Err(UnsupportedTransferEncoding))),
            (
                "two coding lines",
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some(Err(UnsupportedTransferEncoding)),
            ),
            ("coding before host check", b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", Some(Err(UnsupportedTransferEncoding))),
            ("coding on 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Some(Err(BadRequest))),
            (
                "length and coding",
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some(Err(BadRequest)),
            ),
            ("two lengths", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Some(Err(BadRequest))),
            ("signed length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", Some(Err(BadRequest))),
            ("empty length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", Some(Err(BadRequest))),
            ("huge length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", Some(Err(BadRequest))),
            ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Some(Err(VersionNotSupported))),
            ("HTTP/0.9", b"GET / HTTP/0.9\r\n\r\n", Some(Err(VersionNotSupported))),
            ("505 after the header lines", b"GET / HTTP/3.0\r\nX-A: \x01\r\n\r\n", Some(Err(BadRequest))),
            ("505 before the host check", b"GET / HTTP/2.0\r\n\r\n", Some(Err(VersionNotSupported))),
            ("HTTP/1.2 is 1.x", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Some(Ok(()))),
            ("HTTP/1.10", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("http/1.1", b"GET / http/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("no version", b"GET /\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("two spaces", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("trailing space", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("bad method byte", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("lower-case method", b"get / HTTP/1.1\r\nHost: a\r\n\r\n", Some(Ok(()))),
            ("target not a path", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("bad escape", b"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("short escape", b"GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("escape in query not checked", b"GET /a?%zz HTTP/1.1\r\nHost: a\r\n\r\n", Some(Ok(()))),
            ("asterisk", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Some(Ok(()))),
            ("asterisk and more", b"OPTIONS *a HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("absolute form", b"GET http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n", Some(Ok(()))),
            ("control byte in target", b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("empty first line", b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("bare LF", b"GET / HTTP/1.1\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("bare CR", b"GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", Some(Err(BadRequest))),
            ("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n", Some(Err(BadRequest))),
            ("empty name", b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", Some(Err(BadRequest))),
            ("bad name byte", b"GET / HTTP/1.1\r\nHost: a\r\nX(A: x\r\n\r\n", Some(Err(BadRequest))),
            ("space in a name", b"GET / HTTP/1.1\r\nHost: a\r\nX-A : x\r\n\r\n", Some(Err(InvalidHeaderName))),
            ("space in the host name", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Some(Err(MissingHost))),
            ("control byte in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n", Some(Err(BadRequest))),
            ("obs-text in a value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \xe9t\xe9\r\n\r\n", Some(Ok(()))),
            ("first line folded", b"GET / HTTP/1.1\r\n X-A: 1\r\nHost: a\r\n\r\n", Some(Err(BadRequest))),
            ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", Some(Err(BadRequest))),
        ];
        for (name, head, want) in cases {
            assert_eq!(judge(head), *want, "case {name}");
        }
    }

    #[test]
    fn a_head_over_the_limit_gets_431() {
        let head = |n: usize| format!("GET / HTTP/1.1\r\nHost: a\r\nX-A: {}\r\n\r\n", "a".repeat(n));
        let exact = head(10);
        for (name, limit, input, want) in [
            ("fits exactly", exact.len(), exact.clone(), Some(Ok(()))),
            ("one byte over", exact.len() - 1, exact.clone(), Some(Err(GoAnswer::HeadTooLarge))),
            (
                "long request line",
                64,
                format!("GET /{} HTTP/1.1\r\n", "a".repeat(100)),
                Some(Err(GoAnswer::HeadTooLarge)),
            ),
        ] {
            for step in [1, 7, input.len()] {
                let mut f = Framing::new().with_head_limit(limit);
                let mut bytes = input.clone().into_bytes();
                let mut refused = false;
                for piece in bytes.chunks_mut(step) {
                    refused |= matches!(f.scan(piece), Scan::Refuse { .. });
                }
                let got = if refused { Some(Err(f.answer().expect("answer"))) } else { Some(Ok(())) };
                assert_eq!(got, want, "case {name} (step {step})");
            }
        }
        let too_many: String = std::iter::once("GET / HTTP/1.1\r\nHost: a\r\n".to_string())
            .chain((0..100).map(|i| format!("X-{i}: 1\r\n")))
            .collect();
        assert_eq!(
            judge(format!("{too_many}\r\n").as_bytes()),
            Some(Err(GoAnswer::HeadTooLarge)),
            "hyper's 100 lines"
        );
    }

    /// Feeds `input` to a new [`Framing`] in pieces of `step` bytes; returns the bytes hyper
    /// would get (up to a refused head), the scan results that were not `Pass`, and the answer.
    fn framed(input: &[u8], step: usize) -> (Vec<u8>, Vec<Scan>, Option<GoAnswer>) {
        let mut f = Framing::new();
        let mut out = Vec::new();
        let mut scans = Vec::new();
        for piece in input.chunks(step) {
            let mut piece = piece.to_vec();
            match f.scan(&mut piece) {
                Scan::Pass => out.extend_from_slice(&piece),
                s @ Scan::Spoiled => {
                    out.extend_from_slice(&piece);
                    scans.push(s);
                }
                s @ Scan::Refuse { keep, .. } => {
                    out.extend_from_slice(&piece[..keep]);
                    scans.push(s);
                }
            }
        }
        (out, scans, f.answer())
    }

    #[test]
    fn refused_heads_never_reach_hyper() {
        let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice();
        let cat = |parts: &[&[u8]]| parts.concat();
        type Case = (&'static str, Vec<u8>, usize, Option<GoAnswer>);
        let cases: Vec<Case> = vec![
            ("plain", get.to_vec(), get.len(), None),
            ("two pipelined", cat(&[get, get]), 2 * get.len(), None),
            ("second pipelined has no host", cat(&[get, b"GET / HTTP/1.1\r\n\r\n"]), get.len(), Some(GoAnswer::MissingHost)),
            ("sized body then a bad head", cat(&[b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na\nb", b"GET / HTTP/2.0\r\n\r\n"]), 50, Some(GoAnswer::VersionNotSupported)),
            (
                "chunks and trailers then a request",
                cat(&[b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\na\nb\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n", get]),
                126,
                None,
            ),
            ("CRLF after a POST", cat(&[b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx", b"\r\n", get]), 77, None),
            ("CRLF after a GET", cat(&[get, b"\r\n", get]), get.len(), Some(GoAnswer::BadRequest)),
            ("after a tunnel opened", b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n\n\n".to_vec(), 49, None),
        ];
        for (name, input, passed, answer) in cases {
            for step in [1, 5, input.len()] {
                let (out, _, got) = framed(&input, step);
                assert_eq!(got, answer, "case {name} (step {step})");
                // Bytes of a refused head read before it was judged were passed on (hyper
                // holds an incomplete head); its end never is. Each case's refused head is last.
                assert_eq!(out, input[..out.len()], "case {name} (step {step}): bytes passed on");
                assert!(out.len() >= passed, "case {name} (step {step}): earlier requests held back");
                if step == input.len() {
                    assert_eq!(out.len(), passed, "case {name}: read whole");
                }
                if answer.is_some() {
                    assert!(out.len() < input.len(), "case {name} (step {step}): refused head passed on");
                }
            }
        }
        // The minor version of HTTP/1.2+ is rewritten: hyper takes 1.0 and 1.1 only.
        let (out, _, answer) = framed(b"GET / HTTP/1.7\r\nHost: a\r\n\r\n", 3);
        assert_eq!((out.as_slice(), answer), (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice(), None));
    }

    #[test]
    fn a_bad_chunk_read_with_its_head_spoils_the_head() {
        let mut f = Framing::new();
        let mut both = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec();
        assert_eq!(f.scan(&mut both), Scan::Spoiled);
        assert_eq!(both[55], 0);
        // A bad chunk after the head was parsed is hyper's to refuse: nothing to spoil here.
        let mut f = Framing::new();
        assert_eq!(
            f.scan(&mut b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
            Scan::Pass
        );
        assert!(f.body_pending());
        let mut bad = b"zz\r\n".to_vec();
        assert_eq!(f.scan(&mut bad), Scan::Pass);
        assert_eq!(bad, b"zz\r\n", "body bytes are never changed");
        assert!(!f.body_pending(), "framing unknown: stops looking");
    }

    #[test]
    fn eof_inside_a_head_is_answered() {
        for (name, input, want) in [
            ("nothing", b"".as_slice(), None),
            ("part of a request line", b"GET / HT", Some(GoAnswer::BadRequest)),
            ("part of the header lines", b"GET / HTTP/1.1\r\nHost: a\r\n", Some(GoAnswer::BadRequest)),
            ("between requests", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
        ] {
            let mut f = Framing::new();
            let _ = f.scan(&mut input.to_vec());
            assert_eq!(f.eof(), want, "case {name}");
        }
    }

    #[test]
    fn framing_changes_only_spoiled_or_rewritten_bytes() {
        // Random streams over an alphabet that makes heads, lengths, codings and chunks.
        let words: [&[u8]; 16] = [
            b"\r\n",
            b"\n",
            b"\r",
            b"POST / HTTP/1.1",
            b"GET / HTTP/1.3",
            b"Host: a",
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
        for _ in 0..3000 {
            let input: Vec<u8> =
                (0..next() % 40).flat_map(|_| words[next() % words.len()].to_vec()).collect();
            let step = 1 + next() % 16;
            let (out, scans, _) = framed(&input, step);
            assert!(out.len() <= input.len());
            for (at, (&was, &now)) in input.iter().zip(&out).enumerate() {
                assert!(
                    was == now || (was, now) == (b'\n', 0) || (was.is_ascii_digit() && now == b'1'),
                    "byte {at} {was} -> {now} in {:?} ({scans:?})",
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }

    #[test]
    fn go_answers_byte_for_byte() {
        assert_eq!(
            GoAnswer::MissingHost.bytes(),
            b"HTTP/1.1 400 Bad Request: missing required Host header\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request: missing required Host header"
        );
        assert_eq!(
            GoAnswer::UnsupportedTransferEncoding.bytes(),
            b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nUnsupported transfer encoding"
        );
        assert_eq!(GoAnswer::HeadTooLarge.body(), b"431 Request Header Fields Too Large");
        for (r, status) in [(Refusal::TooManyHosts, 400), (Refusal::UnsupportedTransferEncoding, 501)] {
            let resp = r.response();
            assert_eq!(resp.status(), status);
            assert_eq!(resp.headers()[header::CONNECTION], "close");
        }
    }

    #[test]
    fn parsed_heads_as_go_judges_them() {
        use Refusal::*;
        type Case = (&'static str, Version, &'static [u8], Result<(), Refusal>);
        let cases: [Case; 6] = [
            ("plain", Version::HTTP_11, b"host: a.test\n", Ok(())),
            ("no host", Version::HTTP_11, b"x-a: 1\n", Err(MissingHost)),
            ("no host on 1.0", Version::HTTP_10, b"x-a: 1\n", Ok(())),
            ("two hosts", Version::HTTP_11, b"host: a.test\nhost: b.test\n", Err(TooManyHosts)),
            ("bad host byte", Version::HTTP_11, b"host: a.test/x\n", Err(MalformedHost)),
            (
                "gzip then chunked",
                Version::HTTP_11,
                b"host: a\ntransfer-encoding: gzip, chunked\n",
                Err(UnsupportedTransferEncoding),
            ),
        ];
        for (name, version, lines, want) in cases {
            assert_eq!(check_lines(version, lines), want, "case {name}");
        }
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
    }
}
