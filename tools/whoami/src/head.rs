//! The head of one HTTP/1.x request — request line and header fields — and what it decides about
//! the message: body framing, whether the connection stays open, `Expect: 100-continue`.
//! Sans-IO: takes the bytes read so far and answers "need more", "a head of n bytes" or
//! "bad request"; reading the socket belongs to `conn.rs`.

use std::ops::Range;

use crate::bad_request::BadRequest;

/// Largest request head accepted (Go's net/http default is 1 MiB; 64 KiB is plenty for tests).
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// The protocol version on the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Neither Content-Length nor Transfer-Encoding: no body.
    Empty,
    Length(u64),
    Chunked,
}

/// A parsed request head. Owns a copy of its bytes; every field is a range into them, so a head
/// costs two allocations however many headers it has.
#[derive(Debug)]
pub struct Head {
    raw: Vec<u8>,
    method: Range<usize>,
    target: Range<usize>,
    version: Version,
    /// (name, value) in the order received, value without surrounding whitespace.
    fields: Vec<(Range<usize>, Range<usize>)>,
    host: Option<Range<usize>>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

impl Head {
    /// Parses the head at the start of `buf`. `Ok(None)` means the head is not complete yet;
    /// `Ok(Some((head, n)))` means it took the first `n` bytes of `buf` (the body, or the next
    /// pipelined request, starts at `n`).
    pub fn parse(buf: &[u8]) -> Result<Option<(Head, usize)>, BadRequest> {
        // RFC 9112 section 2.2: a server should ignore empty lines received before the request line.
        let skip = buf.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        let Some(len) = head_len(&buf[skip..]) else {
            return if buf.len() >= MAX_HEAD_LEN { Err(BadRequest::HeadTooLarge) } else { Ok(None) };
        };
        if len > MAX_HEAD_LEN {
            return Err(BadRequest::HeadTooLarge);
        }
        let head = Head::from_raw(buf[skip..skip + len].to_vec())?;
        Ok(Some((head, skip + len)))
    }

    fn from_raw(raw: Vec<u8>) -> Result<Head, BadRequest> {
        let mut lines = Lines { raw: &raw, pos: 0 };
        let request_line = lines.next().ok_or(BadRequest::RequestLine)?;
        let (method, target, version) = parse_request_line(&raw, request_line)?;

        let mut fields = Vec::with_capacity(16);
        let mut host = None;
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding = TransferCoding::Absent;
        let mut close = false;
        let mut keep_alive_token = false;
        let mut expect_continue = false;
        for (index, line) in (&mut lines).enumerate() {
            if line.is_empty() {
                break;
            }
            let (name, value) = parse_field(&raw, line).ok_or(BadRequest::HeaderField { line: index + 2 })?;
            let name_bytes = &raw[name.clone()];
            let value_bytes = &raw[value.clone()];
            if name_bytes.eq_ignore_ascii_case(b"host") {
                if host.is_some() {
                    return Err(BadRequest::DuplicateHost);
                }
                host = Some(value.clone());
            } else if name_bytes.eq_ignore_ascii_case(b"content-length") {
                content_length = Some(merge_content_length(content_length, value_bytes)?);
            } else if name_bytes.eq_ignore_ascii_case(b"transfer-encoding") {
                transfer_encoding = transfer_encoding.merge(value_bytes);
            } else if name_bytes.eq_ignore_ascii_case(b"connection") {
                for token in list_items(value_bytes) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if name_bytes.eq_ignore_ascii_case(b"expect") {
                expect_continue = value_bytes.eq_ignore_ascii_case(b"100-continue");
            }
            fields.push((name, value));
        }

        if version == Version::Http11 && host.is_none() {
            return Err(BadRequest::MissingHost);
        }
        let framing = match (transfer_encoding, content_length) {
            (TransferCoding::Absent, None) => Framing::Empty,
            (TransferCoding::Absent, Some(n)) => Framing::Length(n),
            // A Transfer-Encoding in an HTTP/1.0 request is faulty framing (RFC 9112 section 6.1).
            (TransferCoding::Chunked, _) if version == Version::Http11 => Framing::Chunked,
            _ => return Err(BadRequest::TransferEncoding),
        };
        // RFC 9112 section 6.3: with both Transfer-Encoding and Content-Length, chunked wins and
        // the server must close the connection after responding.
        if framing == Framing::Chunked && content_length.is_some() {
            close = true;
        }
        let keep_alive = !close && (version == Version::Http11 || keep_alive_token);
        Ok(Head {
            raw,
            method,
            target,
            version,
            fields,
            host,
            framing,
            keep_alive,
            expect_continue: expect_continue && version == Version::Http11,
        })
    }

    pub fn method(&self) -> &[u8] {
        &self.raw[self.method.clone()]
    }

    /// The request target as sent (`/path?query` in origin form).
    pub fn target(&self) -> &[u8] {
        &self.raw[self.target.clone()]
    }

    pub fn path(&self) -> &[u8] {
        let target = self.target();
        target.split(|b| *b == b'?').next().unwrap_or(target)
    }

    /// The value of the first `name=value` pair in the query, undecoded.
    pub fn query_param(&self, name: &[u8]) -> Option<&[u8]> {
        let target = self.target();
        let query = &target[target.iter().position(|b| *b == b'?')? + 1..];
        query.split(|b| *b == b'&').find_map(|pair| {
            let (key, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            (key == name).then_some(value)
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The Host header's value, empty when an HTTP/1.0 request has none.
    pub fn host(&self) -> &[u8] {
        self.host.clone().map_or(&[][..], |r| &self.raw[r])
    }

    /// Every header field as received, in order: (name as spelled, value trimmed).
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the connection may carry another request after this one's response.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The client waits for `100 Continue` before sending the body.
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }
}

/// Length of the head including its terminating empty line, if `buf` holds all of it.
/// Lines end with CRLF or, leniently (RFC 9112 section 2.2), a bare LF.
fn head_len(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(lf) = buf[from..].iter().position(|b| *b == b'\n') {
        let next_line = from + lf + 1;
        match &buf[next_line..] {
            [b'\n', ..] => return Some(next_line + 1),
            [b'\r', b'\n', ..] => return Some(next_line + 2),
            _ => from = next_line,
        }
    }
    None
}

/// Lines of a head as ranges into it, without their CRLF / LF.
struct Lines<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let start = self.pos;
        let lf = start + self.raw.get(start..)?.iter().position(|b| *b == b'\n')?;
        self.pos = lf + 1;
        let end = if lf > start && self.raw[lf - 1] == b'\r' { lf - 1 } else { lf };
        Some(start..end)
    }
}

fn parse_request_line(
    raw: &[u8],
    line: Range<usize>,
) -> Result<(Range<usize>, Range<usize>, Version), BadRequest> {
    let bytes = &raw[line.clone()];
    let mut parts = bytes.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::RequestLine);
    };
    if method.is_empty() || !method.iter().copied().all(is_tchar) {
        return Err(BadRequest::RequestLine);
    }
    if target.is_empty() || target.iter().any(|b| b.is_ascii_control() || *b == b' ' || *b >= 0x80) {
        return Err(BadRequest::RequestLine);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(BadRequest::Version)
        }
        _ => return Err(BadRequest::RequestLine),
    };
    let method_range = line.start..line.start + method.len();
    let target_start = method_range.end + 1;
    Ok((method_range, target_start..target_start + target.len(), version))
}

/// Splits `name: value` into ranges; `None` when the line is not a valid field line (including
/// obsolete line folding and whitespace before the colon, both rejected by RFC 9112 section 5).
fn parse_field(raw: &[u8], line: Range<usize>) -> Option<(Range<usize>, Range<usize>)> {
    let bytes = &raw[line.clone()];
    let colon = bytes.iter().position(|b| *b == b':')?;
    let name = &bytes[..colon];
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return None;
    }
    let value = &bytes[colon + 1..];
    // Field values may hold visible ASCII, spaces, tabs and obs-text, never other controls.
    if value.iter().any(|b| (b.is_ascii_control() && *b != b'\t') || *b == 0x7f) {
        return None;
    }
    let lead = value.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let trail = value[lead..].iter().rev().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let value_start = line.start + colon + 1 + lead;
    Some((line.start..line.start + colon, value_start..line.end - trail))
}

/// RFC 9110 section 5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Comma-separated list members, trimmed, empty members skipped.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(|item| item.trim_ascii()).filter(|item| !item.is_empty())
}

/// Content-Length may repeat (as fields or as a list) only with one value (RFC 9110 section 8.6).
fn merge_content_length(seen: Option<u64>, value: &[u8]) -> Result<u64, BadRequest> {
    let mut merged = seen;
    let mut any = false;
    for item in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
        any = true;
        if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
            return Err(BadRequest::ContentLength);
        }
        let n = item.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if merged.is_some_and(|m| m != n) {
            return Err(BadRequest::ContentLength);
        }
        merged = Some(n);
    }
    match (any, merged) {
        (true, Some(n)) => Ok(n),
        _ => Err(BadRequest::ContentLength),
    }
}

/// What the Transfer-Encoding fields, taken together, say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransferCoding {
    Absent,
    /// Exactly one coding, `chunked`.
    Chunked,
    /// Anything else (another coding, chunked twice, chunked not last): not served.
    Unsupported,
}

impl TransferCoding {
    fn merge(self, value: &[u8]) -> TransferCoding {
        list_items(value).fold(self, |state, coding| match state {
            TransferCoding::Absent if coding.eq_ignore_ascii_case(b"chunked") => TransferCoding::Chunked,
            _ => TransferCoding::Unsupported,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test expects from a complete head.
    #[derive(Debug, PartialEq)]
    struct Seen {
        method: &'static str,
        target: &'static str,
        version: Version,
        host: &'static str,
        fields: Vec<(&'static str, &'static str)>,
        framing: Framing,
        keep_alive: bool,
        expect_continue: bool,
    }

    fn seen(head: &Head) -> Seen {
        let leak = |b: &[u8]| -> &'static str { String::from_utf8(b.to_vec()).unwrap().leak() };
        Seen {
            method: leak(head.method()),
            target: leak(head.target()),
            version: head.version(),
            host: leak(head.host()),
            fields: head.fields().map(|(n, v)| (leak(n), leak(v))).collect(),
            framing: head.framing(),
            keep_alive: head.keep_alive(),
            expect_continue: head.expect_continue(),
        }
    }

    fn get(fields: Vec<(&'static str, &'static str)>) -> Seen {
        Seen {
            method: "GET",
            target: "/",
            version: Version::Http11,
            host: "a",
            fields,
            framing: Framing::Empty,
            keep_alive: true,
            expect_continue: false,
        }
    }

    #[test]
    fn complete_heads() {
        let cases: Vec<(&str, &str, Seen)> = vec![
            ("minimal HTTP/1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", get(vec![("Host", "a")])),
            (
                "fields kept in order and spelling",
                "GET / HTTP/1.1\r\nx-B: 2\r\nHost: a\r\nX-a: 1\r\nx-b: 3\r\n\r\n",
                get(vec![("x-B", "2"), ("Host", "a"), ("X-a", "1"), ("x-b", "3")]),
            ),
            (
                "value whitespace trimmed, inner kept",
                "GET / HTTP/1.1\r\nHost: a\r\nX:  \t two  words \t\r\n\r\n",
                get(vec![("Host", "a"), ("X", "two  words")]),
            ),
            ("empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n\r\n", get(vec![("Host", "a"), ("X", "")])),
            ("bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n", get(vec![("Host", "a")])),
            (
                "leading empty lines skipped",
                "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
                get(vec![("Host", "a")]),
            ),
            (
                "target with query",
                "POST /p/q?wait=1s&status=503 HTTP/1.1\r\nHost: h:8\r\n\r\n",
                Seen {
                    method: "POST",
                    target: "/p/q?wait=1s&status=503",
                    host: "h:8",
                    ..get(vec![("Host", "h:8")])
                },
            ),
            (
                "connection close",
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n",
                Seen { keep_alive: false, ..get(vec![("Host", "a"), ("Connection", "Close")]) },
            ),
            (
                "close among connection tokens",
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, close\r\n\r\n",
                Seen { keep_alive: false, ..get(vec![("Host", "a"), ("Connection", "upgrade, close")]) },
            ),
            (
                "HTTP/1.0 closes by default and needs no Host",
                "GET / HTTP/1.0\r\n\r\n",
                Seen { version: Version::Http10, host: "", keep_alive: false, ..get(vec![]) },
            ),
            (
                "HTTP/1.0 keep-alive",
                "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                Seen { version: Version::Http10, host: "", ..get(vec![("Connection", "Keep-Alive")]) },
            ),
            (
                "content length",
                "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n",
                Seen {
                    method: "PUT",
                    framing: Framing::Length(12),
                    ..get(vec![("Host", "a"), ("Content-Length", "12")])
                },
            ),
            (
                "repeated equal content length",
                "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\n",
                Seen {
                    method: "PUT",
                    framing: Framing::Length(3),
                    ..get(vec![("Host", "a"), ("Content-Length", "3, 3"), ("content-length", "3")])
                },
            ),
            (
                "chunked",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
                Seen {
                    method: "POST",
                    framing: Framing::Chunked,
                    ..get(vec![("Host", "a"), ("Transfer-Encoding", "Chunked")])
                },
            ),
            (
                "chunked wins over content length and closes",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Seen {
                    method: "POST",
                    framing: Framing::Chunked,
                    keep_alive: false,
                    ..get(vec![("Host", "a"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
                },
            ),
            (
                "expect continue",
                "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n",
                Seen {
                    method: "PUT",
                    framing: Framing::Length(1),
                    expect_continue: true,
                    ..get(vec![("Host", "a"), ("Content-Length", "1"), ("Expect", "100-Continue")])
                },
            ),
        ];
        for (name, input, want) in cases {
            let (head, used) = Head::parse(input.as_bytes())
                .unwrap_or_else(|e| panic!("case {name}: {e}"))
                .unwrap_or_else(|| panic!("case {name}: incomplete"));
            assert_eq!(used, input.len(), "case {name}: bytes used");
            assert_eq!(seen(&head), want, "case {name}");
        }
    }

    #[test]
    fn head_stops_at_empty_line() {
        let input = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.1\r\n";
        let (_, used) = Head::parse(input).unwrap().unwrap();
        assert_eq!(&input[used..], b"bodyGET / HTTP/1.1\r\n");
    }

    #[test]
    fn incomplete_heads() {
        let cases: &[(&str, &[u8])] = &[
            ("nothing", b""),
            ("only empty lines", b"\r\n\r\n"),
            ("request line only", b"GET / HTTP/1.1\r\n"),
            ("mid field", b"GET / HTTP/1.1\r\nHost: a"),
            ("missing final LF", b"GET / HTTP/1.1\r\nHost: a\r\n\r"),
        ];
        for (name, input) in cases {
            assert!(matches!(Head::parse(input), Ok(None)), "case {name}");
        }
    }

    #[test]
    fn bad_heads() {
        let huge = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "x".repeat(MAX_HEAD_LEN));
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "x".repeat(MAX_HEAD_LEN));
        let cases: Vec<(&str, &str, BadRequest)> = vec![
            ("two spaces in request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", BadRequest::RequestLine),
            ("missing version", "GET /\r\nHost: a\r\n\r\n", BadRequest::RequestLine),
            ("lowercase protocol", "GET / http/1.1\r\nHost: a\r\n\r\n", BadRequest::RequestLine),
            ("control in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", BadRequest::RequestLine),
            ("HTTP/2.0 on the wire", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", BadRequest::Version),
            ("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: 1\r\n\r\n", BadRequest::MissingHost),
            ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", BadRequest::DuplicateHost),
            ("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", BadRequest::HeaderField { line: 2 }),
            ("no colon", "GET / HTTP/1.1\r\nHost: a\r\nnonsense\r\n\r\n", BadRequest::HeaderField { line: 3 }),
            ("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", BadRequest::HeaderField { line: 4 }),
            ("bare CR in value", "GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", BadRequest::HeaderField { line: 2 }),
            ("negative length", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", BadRequest::ContentLength),
            ("empty length", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", BadRequest::ContentLength),
            ("plus length", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", BadRequest::ContentLength),
            (
                "conflicting lengths",
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                BadRequest::ContentLength,
            ),
            (
                "length overflow",
                "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
                BadRequest::ContentLength,
            ),
            (
                "gzip coding",
                "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                BadRequest::TransferEncoding,
            ),
            (
                "chunked not last",
                "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
                BadRequest::TransferEncoding,
            ),
            (
                "chunked twice",
                "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                BadRequest::TransferEncoding,
            ),
            (
                "transfer encoding in HTTP/1.0",
                "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                BadRequest::TransferEncoding,
            ),
            ("head too large", &huge, BadRequest::HeadTooLarge),
            ("unterminated head too large", &endless, BadRequest::HeadTooLarge),
        ];
        for (name, input, want) in cases {
            match Head::parse(input.as_bytes()) {
                Err(got) => assert_eq!(got, want, "case {name}"),
                Ok(got) => panic!("case {name}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn query_params() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("present", "/?wait=2s", "wait", Some("2s")),
            ("second of several", "/x?a=1&status=503&b", "status", Some("503")),
            ("first of repeated", "/?status=500&status=200", "status", Some("500")),
            ("without value", "/?wait", "wait", Some("")),
            ("absent", "/?waiting=1", "wait", None),
            ("no query", "/wait=1", "wait", None),
        ];
        for (name, target, key, want) in cases {
            let input = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            let (head, _) = Head::parse(input.as_bytes()).unwrap().unwrap();
            assert_eq!(head.query_param(key.as_bytes()), want.map(str::as_bytes), "case {name}");
        }
    }
}
