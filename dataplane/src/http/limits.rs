//! An entrypoint's transport options on one HTTP connection, as Go's `http.Server` applies
//! Traefik's: `respondingTimeouts.readTimeout` (a request's head must arrive within it, counted
//! from its first byte), `idleTimeout` (a keep-alive connection without a request in flight and
//! without traffic that long is closed), `writeTimeout` (a response not produced within it closes
//! the connection), `keepAliveMaxRequests` / `keepAliveMaxTime` (the response that reaches the
//! limit carries `Connection: close`, as Traefik's keep-alive middleware does), plus the
//! entrypoint's request checks: `http.underscoreHeadersStrategy` and `http.encodedCharacters`.
//! [`Tracked`] also answers the request heads Go refuses (`head_check::Framing` judges them)
//! with Go's bytes, written on the raw connection, in order after the earlier responses.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use http::{header, HeaderValue, Request, Response, StatusCode};
use monoio::io::poll_io::{AsyncRead, AsyncWrite, ReadBuf};
use weir_proto::entrypoint::{EntryPointOptions, UnderscoreHeaders};

use super::body::Body;
use super::head_check;

/// What the connection is doing, shared by its IO, its service and its watchdog.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    last_io: Cell<Instant>,
    /// When the first byte of a request head arrived, while that head is being read.
    head_since: Cell<Option<Instant>>,
    /// When the head of the request in flight started to arrive.
    request_since: Cell<Instant>,
    /// An HTTP/1.1 request body is still arriving (from [`head_check::Framing`]).
    body_pending: Cell<bool>,
    in_flight: Cell<u32>,
    requests: Cell<u64>,
}

impl Activity {
    /// A connection that starts now.
    pub fn new() -> Rc<Activity> {
        let now = Instant::now();
        Rc::new(Activity {
            started: now,
            last_io: Cell::new(now),
            head_since: Cell::new(None),
            request_since: Cell::new(now),
            body_pending: Cell::new(false),
            in_flight: Cell::new(0),
            requests: Cell::new(0),
        })
    }

    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = Instant::now();
        self.last_io.set(now);
        if self.in_flight.get() == 0 && self.head_since.get().is_none() {
            self.head_since.set(Some(now));
        }
    }

    fn wrote(&self) {
        self.last_io.set(Instant::now());
    }

    /// A request's head is in: it is in flight until the returned guard drops. Also says
    /// whether the response must close the connection (keep-alive limits).
    pub fn request(self: &Rc<Self>, opts: &EntryPointOptions) -> (InFlight, bool) {
        self.request_since.set(self.head_since.take().unwrap_or_else(Instant::now));
        self.in_flight.set(self.in_flight.get() + 1);
        let n = self.requests.get() + 1;
        self.requests.set(n);
        let too_many = opts.keep_alive_max_requests > 0 && n >= opts.keep_alive_max_requests;
        let too_old = opts.keep_alive_max_time_ms > 0
            && self.started.elapsed() > Duration::from_millis(opts.keep_alive_max_time_ms);
        (InFlight(Rc::clone(self)), too_many || too_old)
    }

    /// When the connection must be closed, given the options, if nothing happens before.
    fn deadline(&self, opts: &EntryPointOptions, h2: bool) -> Option<Instant> {
        let ms = Duration::from_millis;
        if self.in_flight.get() > 0 {
            // Traefik's readTimeout covers the whole request, body included: a body still
            // arriving that long after its head started closes the connection (slow uploads).
            return (self.body_pending.get() && opts.read_timeout_ms > 0)
                .then(|| self.request_since.get() + ms(opts.read_timeout_ms));
        }
        if let (Some(since), false) = (self.head_since.get(), h2) {
            if opts.read_timeout_ms > 0 {
                return Some(since + ms(opts.read_timeout_ms));
            }
            return None;
        }
        (opts.idle_timeout_ms > 0).then(|| self.last_io.get() + ms(opts.idle_timeout_ms))
    }
}

/// A request in flight.
pub struct InFlight(Rc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get().saturating_sub(1));
        self.0.last_io.set(Instant::now());
    }
}

/// How often a connection with requests in flight looks again.
const BUSY_RECHECK: Duration = Duration::from_millis(250);

/// Runs `conn` until it ends (`Some`) or the read or idle timeout closes it (`None`: it is
/// dropped, which closes the socket).
pub async fn watch<F: std::future::Future>(
    conn: F,
    activity: &Rc<Activity>,
    opts: &EntryPointOptions,
    h2: bool,
) -> Option<F::Output> {
    let conn = std::pin::pin!(conn);
    let watchdog = std::pin::pin!(async {
        loop {
            let wait = match activity.deadline(opts, h2) {
                Some(at) => {
                    let now = Instant::now();
                    if at <= now {
                        return;
                    }
                    at - now
                }
                None => BUSY_RECHECK,
            };
            monoio::time::sleep(wait).await;
        }
    });
    match futures_util::future::select(conn, watchdog).await {
        futures_util::future::Either::Left((out, _)) => Some(out),
        futures_util::future::Either::Right(_) => {
            tracing::debug!("connection closed by the entrypoint's read or idle timeout");
            None
        }
    }
}

/// hyper's HTTP/1.1 limit on a request head for `http.maxHeaderBytes`: Go's server allows
/// `MaxHeaderBytes + 4096` bytes (its bufio slack) before answering 431.
pub fn head_limit(opts: &EntryPointOptions) -> usize {
    usize::try_from(opts.max_header_bytes).unwrap_or(usize::MAX).saturating_add(4096)
}

/// hyper's read buffer must hold a head of [`head_limit`] (and never less than its default).
pub fn buffer_limit(opts: &EntryPointOptions) -> usize {
    head_limit(opts).saturating_add(8192).max(400 * 1024)
}

/// The entrypoint's request checks; the answer when the request is refused.
pub fn check<B>(opts: &EntryPointOptions, req: &mut Request<B>) -> Option<Response<Body>> {
    match opts.underscore_headers {
        UnderscoreHeaders::Keep => {}
        UnderscoreHeaders::Delete => {
            let names: Vec<header::HeaderName> =
                req.headers().keys().filter(|n| n.as_str().contains('_')).cloned().collect();
            for n in names {
                req.headers_mut().remove(n);
            }
        }
        UnderscoreHeaders::Reject => {
            if req.headers().keys().any(|n| n.as_str().contains('_')) {
                return Some(super::responses::bad_request());
            }
        }
    }
    if !opts.denied_encoded.is_empty() && !encoded_allowed(&opts.denied_encoded, req.uri().path()) {
        // As the EncodedCharacters middleware: a bare 400.
        let mut resp = Response::new(Body::full(bytes::Bytes::new()));
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        return Some(resp);
    }
    None
}

/// Whether the escaped path holds none of the denied escapes (upper-case hex).
fn encoded_allowed(denied: &[String], path: &str) -> bool {
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            i += 1;
            continue;
        }
        let Some(esc) = b.get(i + 1..i + 3) else {
            return false;
        };
        let esc = [esc[0].to_ascii_uppercase(), esc[1].to_ascii_uppercase()];
        if denied.iter().any(|d| d.as_bytes() == esc) {
            return false;
        }
        i += 3;
    }
    true
}

/// Marks a response as the connection's last (keep-alive limit reached).
pub fn close_after(resp: &mut Response<Body>) {
    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// An IO that reports its traffic to an [`Activity`] and passes what it reads through the
/// connection's [`head_check::Framing`] before hyper sees it. A head Go would refuse is not
/// passed on: this IO writes Go's answer itself and ends the connection (see [`Refusing`]).
#[derive(Debug)]
pub struct Tracked<T> {
    inner: T,
    activity: Rc<Activity>,
    framing: head_check::Framing,
    refusing: Option<Refusing>,
}

/// How long a refused connection keeps reading (and dropping) what the client still sends
/// after Go's answer, so that closing does not reset the answer away (Go's `closeWriteAndWait`
/// waits 500 ms after a 431).
const LINGER: Duration = Duration::from_millis(500);

/// A refused head being answered. Ordering: Go answers after the responses to the requests
/// before the refused one, so the answer is written only when hyper is parsing the refused
/// head's place in the stream — which it does only once the earlier responses are flushed.
/// hyper reads while a response is in flight too (to notice a close), but only with an empty
/// buffer; hence the one-byte marker: a read that finds hyper's buffer holding part of a head
/// (the refused head's first bytes, or the marker) comes from hyper's head parser.
#[derive(Debug)]
struct Refusing {
    /// hyper holds the refused head's first bytes (or the marker).
    hyper_has_head: bool,
    /// Bytes of the answer written.
    written: usize,
    /// The write side is shut; lingering until this sleep ends or the client closes.
    linger: Option<Pin<Box<monoio::time::Sleep>>>,
    done: bool,
}

/// What hyper is given in place of a refused head that it has no byte of: a method's first
/// byte, so that it parses (and waits for more) instead of seeing the end of the stream.
const MARKER: &[u8] = b"G";

impl<T> Tracked<T> {
    /// `inner`, reporting to `activity`, its reads checked by `framing`.
    pub fn new(inner: T, activity: Rc<Activity>, framing: head_check::Framing) -> Tracked<T> {
        Tracked { inner, activity, framing, refusing: None }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Tracked<T> {
    /// Answers a refused head as Go does, then fails hyper's read: hyper drops the connection
    /// without writing anything of its own (an IO error mid-parse has no automatic response).
    fn poll_refuse(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let refused =
            || Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "request head refused")));
        loop {
            let Some(r) = self.refusing.as_mut() else { return refused() };
            if r.done {
                return refused();
            }
            let Some(answer) = self.framing.answer() else {
                // Go's answer depends on bytes still to come (the rest of the head): read them,
                // hyper gets none of them.
                let mut scratch = [0u8; 2048];
                let mut rb = ReadBuf::new(&mut scratch);
                ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    let _ = self.framing.eof();
                } else {
                    self.activity.read(n);
                    let _ = self.framing.scan(rb.filled_mut());
                }
                continue;
            };
            if !r.hyper_has_head {
                r.hyper_has_head = true;
                if buf.remaining() >= MARKER.len() {
                    buf.put_slice(MARKER);
                }
                return Poll::Ready(Ok(()));
            }
            let bytes = answer.bytes();
            while r.written < bytes.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[r.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                r.written += n;
                self.activity.wrote();
            }
            if r.linger.is_none() {
                ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
                // FIN now: the client reads the answer to its end at once.
                let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
                tracing::debug!(status = %answer.status(), "request head refused as Go refuses it");
                r.linger = Some(Box::pin(monoio::time::sleep(LINGER)));
            }
            loop {
                if r.linger.as_mut().is_some_and(|s| s.as_mut().poll(cx).is_ready()) {
                    break;
                }
                let mut scratch = [0u8; 2048];
                let mut rb = ReadBuf::new(&mut scratch);
                match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) if !rb.filled().is_empty() => {}
                    Poll::Ready(_) => break,
                }
            }
            r.done = true;
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.refusing.is_some() {
            return this.poll_refuse(cx, buf);
        }
        if buf.remaining() == 0 {
            // Nothing can be read: a zero-byte result would not be the end of the stream.
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let n = buf.filled().len() - before;
        if n == 0 {
            // The client closed its side: Go answers a head cut short (hyper holds its bytes).
            if this.framing.eof().is_none() {
                return Poll::Ready(Ok(()));
            }
            this.refusing = Some(Refusing::new(true));
            return this.poll_refuse(cx, buf);
        }
        this.activity.read(n);
        match this.framing.scan(&mut buf.filled_mut()[before..]) {
            head_check::Scan::Pass => {}
            head_check::Scan::Spoiled => {
                tracing::debug!("request head refused before parsing (malformed chunk)")
            }
            head_check::Scan::Refuse { keep, started_before } => {
                buf.set_filled(before + keep);
                this.refusing = Some(Refusing::new(started_before));
                if keep == 0 {
                    return this.poll_refuse(cx, buf);
                }
            }
        }
        this.activity.body_pending.set(this.framing.body_pending());
        Poll::Ready(Ok(()))
    }
}

impl Refusing {
    fn new(hyper_has_head: bool) -> Refusing {
        Refusing { hyper_has_head, written: 0, linger: None, done: false }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let out = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = out {
            self.activity.wrote();
        }
        out
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let out = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(_)) = out {
            self.activity.wrote();
        }
        out
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded() {
        let denied = vec!["2F".to_string(), "23".to_string()];
        let cases = [
            ("/a/b", true),
            ("/a%2Fb", false),
            ("/a%2fb", false),
            ("/a%20b", true),
            ("/a%23", false),
            ("/trunc%2", false),
        ];
        for (path, want) in cases {
            assert_eq!(encoded_allowed(&denied, path), want, "{path}");
        }
        assert!(encoded_allowed(&[], "/%2F"));
    }

    #[test]
    fn deadlines() {
        let opts = EntryPointOptions { read_timeout_ms: 1000, idle_timeout_ms: 5000, ..Default::default() };
        let a = Activity::new();
        let idle = a.deadline(&opts, false).expect("idle deadline");
        assert!(idle >= a.started + Duration::from_millis(5000));
        a.read(3);
        let head = a.deadline(&opts, false).expect("head deadline");
        assert!(head < idle, "a head being read is bounded by readTimeout");
        assert!(a.deadline(&opts, true).is_some(), "h2 ignores the head timer");
        let (guard, close) = a.request(&opts);
        assert!(!close);
        assert_eq!(a.deadline(&opts, false), None, "busy connections are not timed out");
        drop(guard);
        // A body still arriving is bounded by readTimeout from its head's first byte.
        let b = Activity::new();
        b.read(10);
        let (guard, _) = b.request(&opts);
        b.body_pending.set(true);
        let body = b.deadline(&opts, false).expect("body deadline");
        assert!(body <= Instant::now() + Duration::from_millis(1000), "counted from the head");
        b.body_pending.set(false);
        assert_eq!(b.deadline(&opts, false), None, "body complete: the response may take its time");
        drop(guard);
        let limited = EntryPointOptions { keep_alive_max_requests: 2, ..Default::default() };
        assert!(a.request(&limited).1, "second request reaches the limit");
    }
}
