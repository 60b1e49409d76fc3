//! What the server answers: the whoami echo page, the `/bench` reply and error replies, each
//! serialized into a caller-owned buffer so a connection reuses its buffers across requests.
//! Decides nothing about the connection; `conn.rs` says whether it closes.

use std::io::Write as _;
use std::net::SocketAddr;

use crate::bad_request::BadRequest;
use crate::head::Head;

/// Who this server says it is on every whoami page.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub hostname: String,
}

/// The `Connection` header a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// The connection closes after this response: `Connection: close`.
    Close,
    /// An HTTP/1.0 client asked for keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// HTTP/1.1 default persistence: no header.
    KeepAlive,
}

/// `/bench`: the smallest complete response, for load tests. `send_body` is false for HEAD.
pub fn bench(out: &mut Vec<u8>, send_body: bool, persistence: Persistence) {
    out.extend_from_slice(match persistence {
        Persistence::KeepAlive => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
        Persistence::KeepAlive10 => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n",
        Persistence::Close => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
    });
    if send_body {
        out.extend_from_slice(b"ok");
    }
}

/// The whoami page: who answered, who asked, and the request as received. Lines end in LF;
/// a request body follows after an empty line, verbatim (decoded from chunked if it was).
pub fn whoami_page(page: &mut Vec<u8>, identity: &Identity, peer: SocketAddr, head: &Head, body: &[u8]) {
    // Writes into a Vec cannot fail.
    let _ = writeln!(page, "Name: {}", identity.name);
    let _ = writeln!(page, "Hostname: {}", identity.hostname);
    let _ = writeln!(page, "RemoteAddr: {peer}");
    for part in [
        head.method(),
        b" ",
        head.target(),
        b" ",
        head.version().as_str().as_bytes(),
        b"\nHost: ",
        head.host(),
    ] {
        page.extend_from_slice(part);
    }
    page.push(b'\n');
    for (name, value) in head.fields().filter(|(name, _)| !name.eq_ignore_ascii_case(b"host")) {
        for part in [name, b": ", value, b"\n"] {
            page.extend_from_slice(part);
        }
    }
    if !body.is_empty() {
        page.push(b'\n');
        page.extend_from_slice(body);
    }
}

/// A full response with a text body. `send_body` is false for HEAD, which gets the headers a GET
/// would have had.
pub fn text(
    out: &mut Vec<u8>,
    status: u16,
    name: &str,
    body: &[u8],
    send_body: bool,
    persistence: Persistence,
) {
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    // RFC 9110 section 6.4.1: 204 and 304 responses have no content.
    let has_content = !matches!(status, 204 | 304);
    if has_content {
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    let _ = write!(out, "X-Whoami-Name: {name}\r\n");
    out.extend_from_slice(match persistence {
        Persistence::Close => b"Connection: close\r\n\r\n",
        Persistence::KeepAlive10 => b"Connection: keep-alive\r\n\r\n",
        Persistence::KeepAlive => b"\r\n",
    });
    if has_content && send_body {
        out.extend_from_slice(body);
    }
}

/// The response to a request this server refuses; the connection closes after it.
pub fn bad_request(out: &mut Vec<u8>, name: &str, fault: &BadRequest) {
    let body = format!("{fault}\n");
    text(out, fault.status(), name, body.as_bytes(), true, Persistence::Close);
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        // The reason phrase may be empty (RFC 9112 section 4).
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        Head::parse(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn whoami_pages() {
        let identity = Identity { name: "whoami-1".into(), hostname: "box".into() };
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let cases: &[(&str, &str, &[u8], &str)] = &[
            (
                "host first, other fields in order",
                "GET /a?b=c HTTP/1.1\r\nUser-Agent: curl\r\nhost: x.localhost\r\nAccept: */*\r\n\r\n",
                b"",
                "Name: whoami-1\nHostname: box\nRemoteAddr: 127.0.0.1:40000\nGET /a?b=c HTTP/1.1\n\
                 Host: x.localhost\nUser-Agent: curl\nAccept: */*\n",
            ),
            (
                "HTTP/1.0 without host",
                "GET / HTTP/1.0\r\n\r\n",
                b"",
                "Name: whoami-1\nHostname: box\nRemoteAddr: 127.0.0.1:40000\nGET / HTTP/1.0\nHost: \n",
            ),
            (
                "body after an empty line",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                b"hello",
                "Name: whoami-1\nHostname: box\nRemoteAddr: 127.0.0.1:40000\nPOST / HTTP/1.1\nHost: a\n\
                 Content-Length: 5\n\nhello",
            ),
        ];
        for (name, raw, body, want) in cases {
            let mut page = Vec::new();
            whoami_page(&mut page, &identity, peer, &head(raw), body);
            assert_eq!(String::from_utf8_lossy(&page), *want, "case {name}");
        }
    }

    #[test]
    fn bench_responses() {
        let cases: &[(&str, bool, Persistence, &str)] = &[
            ("keep-alive", true, Persistence::KeepAlive, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            (
                "close",
                true,
                Persistence::Close,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            ),
            ("HEAD", false, Persistence::KeepAlive, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"),
        ];
        for (name, send_body, persistence, want) in cases {
            let mut out = Vec::new();
            bench(&mut out, *send_body, *persistence);
            assert_eq!(String::from_utf8_lossy(&out), *want, "case {name}");
        }
    }

    #[test]
    fn text_responses() {
        let cases: &[(&str, u16, bool, Persistence, &str)] = &[
            (
                "keep-alive",
                200,
                true,
                Persistence::KeepAlive,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\
                 X-Whoami-Name: w\r\n\r\nhi",
            ),
            (
                "close",
                503,
                true,
                Persistence::Close,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: 2\r\nX-Whoami-Name: w\r\nConnection: close\r\n\r\nhi",
            ),
            (
                "HTTP/1.0 keep-alive",
                200,
                true,
                Persistence::KeepAlive10,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\
                 X-Whoami-Name: w\r\nConnection: keep-alive\r\n\r\nhi",
            ),
            (
                "HEAD keeps the length, drops the body",
                200,
                false,
                Persistence::KeepAlive,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\
                 X-Whoami-Name: w\r\n\r\n",
            ),
            (
                "204 has no content",
                204,
                true,
                Persistence::KeepAlive,
                "HTTP/1.1 204 No Content\r\nX-Whoami-Name: w\r\n\r\n",
            ),
            (
                "unknown status has an empty reason",
                599,
                true,
                Persistence::KeepAlive,
                "HTTP/1.1 599 \r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\
                 X-Whoami-Name: w\r\n\r\nhi",
            ),
        ];
        for (name, status, send_body, persistence, want) in cases {
            let mut out = Vec::new();
            text(&mut out, *status, "w", b"hi", *send_body, *persistence);
            assert_eq!(String::from_utf8_lossy(&out), *want, "case {name}");
        }
    }
}
