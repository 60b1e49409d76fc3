//! One client connection, served on its own thread: read a head, read its body, answer, and
//! repeat while the connection is persistent (pipelined requests included). Only moves bytes;
//! parsing lives in `head.rs` and `chunked.rs`, replies in `respond.rs`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use crate::bad_request::{BadRequest, MAX_BODY_LEN};
use crate::chunked::ChunkedDecoder;
use crate::head::{Framing, Head, Version};
use crate::respond::{self, Identity, Persistence};
use crate::route::Route;

/// How long a closing connection keeps draining what the client still sends, so that unread
/// bytes do not turn our FIN into a RST that destroys the response in flight.
const LINGER: Duration = Duration::from_secs(1);

/// Serves `stream` until the client closes it, asks to close, or breaks the protocol.
pub fn serve(mut stream: TcpStream, identity: &Identity) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    stream.set_nodelay(true)?;
    let mut input = InputBuffer::default();
    let mut body = Vec::new();
    let mut page = Vec::new();
    let mut out = Vec::new();
    loop {
        let head = loop {
            match Head::parse(input.filled()) {
                Ok(Some((head, used))) => {
                    input.consume(used);
                    break head;
                }
                Ok(None) => {
                    if input.fill(&mut stream)? == 0 {
                        // Clean close between requests, or a truncated head: nothing to answer.
                        return Ok(());
                    }
                }
                Err(fault) => return refuse(stream, identity, &fault),
            }
        };
        let route = match Route::of(&head) {
            Ok(route) => route,
            Err(fault) => return refuse(stream, identity, &fault),
        };

        body.clear();
        match read_body(&mut stream, &mut input, &head, &mut body) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(BodyError::Io(e)) => return Err(e),
            Err(BodyError::Bad(fault)) => return refuse(stream, identity, &fault),
        }

        let persistence = match (head.keep_alive(), head.version()) {
            (false, _) => Persistence::Close,
            (true, Version::Http10) => Persistence::KeepAlive10,
            (true, Version::Http11) => Persistence::KeepAlive,
        };
        let send_body = head.method() != b"HEAD";
        out.clear();
        match route {
            Route::Bench => respond::bench(&mut out, send_body, persistence),
            Route::Whoami { wait, status } => {
                if !wait.is_zero() {
                    thread::sleep(wait);
                }
                page.clear();
                respond::whoami_page(&mut page, identity, peer, &head, &body);
                respond::text(&mut out, status, &identity.name, &page, send_body, persistence);
            }
        }
        stream.write_all(&out)?;
        if persistence == Persistence::Close {
            linger_close(stream);
            return Ok(());
        }
    }
}

enum BodyError {
    Io(io::Error),
    Bad(BadRequest),
}

impl From<io::Error> for BodyError {
    fn from(e: io::Error) -> Self {
        BodyError::Io(e)
    }
}

/// Reads the body `head` announces into `body`. `Ok(false)`: the client closed mid-body.
fn read_body(
    stream: &mut TcpStream,
    input: &mut InputBuffer,
    head: &Head,
    body: &mut Vec<u8>,
) -> Result<bool, BodyError> {
    let framing = head.framing();
    if let Framing::Length(n) = framing {
        if n > MAX_BODY_LEN {
            return Err(BodyError::Bad(BadRequest::BodyTooLarge));
        }
    }
    // Only now that the body is known to be acceptable, invite the client to send it.
    let announces_body =
        matches!(framing, Framing::Chunked) || matches!(framing, Framing::Length(n) if n > 0);
    if head.expect_continue() && announces_body && input.filled().is_empty() {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    match framing {
        Framing::Empty => Ok(true),
        Framing::Length(n) => {
            // n <= MAX_BODY_LEN, which fits in usize on every target this runs on.
            let n = n as usize;
            let buffered = n.min(input.filled().len());
            body.extend_from_slice(&input.filled()[..buffered]);
            input.consume(buffered);
            body.resize(n, 0);
            match stream.read_exact(&mut body[buffered..]) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::default();
            loop {
                let used = decoder.decode(input.filled(), body).map_err(BodyError::Bad)?;
                input.consume(used);
                if body.len() as u64 > MAX_BODY_LEN {
                    return Err(BodyError::Bad(BadRequest::BodyTooLarge));
                }
                if decoder.is_done() {
                    return Ok(true);
                }
                if input.fill(stream)? == 0 {
                    return Ok(false);
                }
            }
        }
    }
}

/// Answers `fault` and closes: after a framing error the rest of the stream is not trustworthy.
fn refuse(mut stream: TcpStream, identity: &Identity, fault: &BadRequest) -> io::Result<()> {
    let mut out = Vec::new();
    respond::bad_request(&mut out, &identity.name, fault);
    stream.write_all(&out)?;
    linger_close(stream);
    Ok(())
}

/// Half-closes, then drains what the client still sends for a moment (RFC 9112 section 9.6).
fn linger_close(mut stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() || stream.set_read_timeout(Some(LINGER)).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < (1 << 20) {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Bytes read from the socket and not yet parsed.
struct InputBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for InputBuffer {
    fn default() -> Self {
        InputBuffer { data: vec![0; 16 * 1024], start: 0, end: 0 }
    }
}

impl InputBuffer {
    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end, "consumed more than was filled");
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads once from `from` after the buffered bytes; returns how many arrived (0 at EOF).
    /// Grows only while a head is incomplete, which `Head::parse` bounds to `MAX_HEAD_LEN`.
    fn fill(&mut self, from: &mut impl Read) -> io::Result<usize> {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                self.data.resize(self.data.len() * 2, 0);
            }
        }
        loop {
            match from.read(&mut self.data[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    /// A client connection to `serve` running on its own thread.
    fn connect() -> (TcpStream, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let identity = Identity { name: "w".into(), hostname: "h".into() };
            let _ = serve(stream, &identity);
        });
        let client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (client, server)
    }

    /// Sends `request`, half-closes, and returns everything the server wrote before closing.
    fn exchange(request: &[u8]) -> String {
        let (mut client, server) = connect();
        client.write_all(request).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        server.join().unwrap();
        String::from_utf8(answer).unwrap()
    }

    /// Status codes of the status lines in `answer` ("HTTP/1.1 " then three digits and a space).
    fn statuses(answer: &str) -> Vec<&str> {
        answer
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| answer.get(i + 9..i + 13))
            .filter(|s| s.ends_with(' ') && s[..3].bytes().all(|b| b.is_ascii_digit()))
            .map(|s| &s[..3])
            .collect()
    }

    #[test]
    fn connections() {
        // (case, bytes the client sends, statuses answered in order, text the answer contains)
        let cases: &[(&str, &str, &[&str], &[&str])] = &[
            (
                "pipelined keep-alive until the client closes",
                "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /bench HTTP/1.1\r\nHost: x\r\n\r\nGET /?status=503 HTTP/1.1\r\nHost: x\r\n\r\n",
                &["200", "200", "503"],
                &["GET /a HTTP/1.1\n", "\r\n\r\nok", "GET /?status=503 HTTP/1.1\n"],
            ),
            (
                "connection close ends the connection",
                "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                &["200"],
                &["Connection: close\r\n", "GET /a HTTP/1.1\n"],
            ),
            (
                "HTTP/1.0 closes after one response",
                "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
                &["200"],
                &["Connection: close\r\n", "GET /a HTTP/1.0\n"],
            ),
            (
                "HTTP/1.0 keep-alive",
                "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
                &["200", "200"],
                &["Connection: keep-alive\r\n", "GET /b HTTP/1.0\n"],
            ),
            (
                "bodies by length and chunked are echoed and framing stays in sync",
                "PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
                 POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nwor\r\n2\r\nld\r\n0\r\n\r\n\
                 GET /c HTTP/1.1\r\nHost: x\r\n\r\n",
                &["200", "200", "200"],
                &["\n\nhello", "\n\nworld", "GET /c HTTP/1.1\n"],
            ),
            (
                "HEAD gets no body",
                "HEAD /bench HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /bench HTTP/1.1\r\nHost: x\r\n\r\n",
                &["200", "200", "200"],
                &["Content-Length: 2\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type", "X-Whoami-Name: w\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            ),
            (
                "bad request answers and closes",
                "GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
                &["400"],
                &["missing Host header", "Connection: close\r\n"],
            ),
            (
                "body over the limit is refused before it is sent",
                "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\nExpect: 100-continue\r\n\r\n",
                &["413"],
                &["Connection: close\r\n"],
            ),
            ("truncated body gets no answer", "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel", &[], &[]),
        ];
        for (name, request, want_statuses, want_texts) in cases {
            let answer = exchange(request.as_bytes());
            assert_eq!(statuses(&answer), *want_statuses, "case {name}: {answer}");
            for text in *want_texts {
                assert!(answer.contains(text), "case {name}: {text:?} not in {answer:?}");
            }
        }
    }

    #[test]
    fn expect_continue_invites_the_body() {
        let (mut client, server) = connect();
        client
            .write_all(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
        let mut interim = [0u8; 25];
        client.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        client.write_all(b"hi").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        server.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\n\nhi"), "{answer}");
    }
}
