//! Serves one accepted connection: its first bytes tell a TLS ClientHello (0x16) from
//! cleartext, as Traefik does on every entrypoint; TLS picks its option from the SNI, then HTTP/2
//! or HTTP/1.1 by ALPN; cleartext is HTTP/2 with prior knowledge (h2c) when it opens with the
//! HTTP/2 preface, else HTTP/1.1. Each request is handed to [`crate::http::proxy::handle`] with
//! its connection's [`crate::http::proxy::Conn`] (client address, [`TlsConn`], upgrade id).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{Either, FutureExt};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use monoio::io::poll_io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use monoio::io::IntoPollIo;
use monoio_compat::hyper::{MonoioExecutor, MonoioIo, MonoioTimer};

use super::limits;
use super::rewind::Rewind;
use super::upgrade::{self, ConnId};
use crate::tls::TlsConn;
use crate::worker::Worker;

/// The HTTP/2 connection preface a prior-knowledge client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2: streams reset by the client before weir accepted them, at most, at any time.
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// HTTP/2: streams weir may reset for the client's protocol errors on one connection.
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// First byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// Traefik's `respondingTimeouts.readTimeout` default bounds the wait for the first bytes and
/// the TLS handshake.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(60);
/// Traefik's `http2.maxConcurrentStreams` default, for an entrypoint gone from the table.
const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 250;

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    Tls,
    H2c,
    Http1,
}

/// Reads until the opening is known; returns it with every byte read.
async fn opening<T: AsyncRead + Unpin>(io: &mut T, mut seen: Vec<u8>) -> std::io::Result<(Opening, Vec<u8>)> {
    // Bytes the TCP dispatch already read may decide it.
    if let Some(kind) = classify(&seen) {
        return Ok((kind, seen));
    }
    let mut chunk = [0u8; 1024];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&chunk[..n]);
        if let Some(kind) = classify(&seen) {
            return Ok((kind, seen));
        }
    }
}

/// The opening, if the bytes so far decide it.
fn classify(seen: &[u8]) -> Option<Opening> {
    match seen.first()? {
        &TLS_HANDSHAKE => Some(Opening::Tls),
        _ => {
            let n = seen.len().min(H2_PREFACE.len());
            if seen[..n] != H2_PREFACE[..n] {
                Some(Opening::Http1)
            } else if n == H2_PREFACE.len() {
                Some(Opening::H2c)
            } else {
                None
            }
        }
    }
}

/// Serves a connection accepted on `entrypoint`.
pub async fn serve(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
) {
    // The per-worker cap: beyond it the connection is closed before anything is read.
    let Some(_slot) = super::conn_limit::Slot::take(super::conn_limit::limit()) else {
        tracing::debug!(%peer, limit = super::conn_limit::limit(), "worker at its connection cap; closed");
        return;
    };
    // `traefik_open_connections` and the graceful-shutdown wait count it until it ends.
    let _open = crate::observe::OpenConnection::new(&worker, &entrypoint);
    let _ = stream.set_nodelay(true);
    // TCP routers first (and the PROXY header): what they leave is HTTP, with the bytes they
    // read and the client address.
    let (stream, peer, seen) = match crate::tcp::conn::dispatch(&worker, &entrypoint, stream, peer).await {
        crate::tcp::conn::Next::Http(stream, client, seen) => (stream, client, seen),
        crate::tcp::conn::Next::Done => return,
    };
    let mut io = match stream.into_poll_io() {
        Ok(io) => io,
        Err(e) => {
            tracing::warn!("cannot drive connection from {peer}: {e}");
            return;
        }
    };
    let (kind, seen) = match monoio::time::timeout(FIRST_BYTES_TIMEOUT, opening(&mut io, seen)).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "connection closed before a request: {e}");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "no request within {FIRST_BYTES_TIMEOUT:?}");
            return;
        }
    };
    let io = Rewind::new(seen, io);
    match kind {
        Opening::Http1 => serve_http(worker, entrypoint, peer, io, false, None).await,
        Opening::H2c => serve_http(worker, entrypoint, peer, io, true, None).await,
        Opening::Tls => {
            match monoio::time::timeout(FIRST_BYTES_TIMEOUT, handshake(&worker, &entrypoint, io)).await {
                Ok(Some((stream, conn))) => {
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_http(worker, entrypoint, peer, stream, h2, Some(conn)).await
                }
                Ok(None) => {}
                Err(_) => tracing::debug!(%peer, "TLS handshake not done within {FIRST_BYTES_TIMEOUT:?}"),
            }
        }
    }
}

/// Reads the ClientHello, picks the TLS option for its SNI on this entrypoint, and completes
/// the handshake. `None` when the handshake fails or is refused (broken option, strict SNI).
async fn handshake<T: AsyncRead + AsyncWrite + Unpin>(
    worker: &Worker,
    entrypoint: &str,
    io: T,
) -> Option<(tokio_rustls::server::TlsStream<T>, TlsConn)> {
    let acceptor = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
    let start = match acceptor.await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(entrypoint, "bad TLS ClientHello: {e}");
            return None;
        }
    };
    let server_name: Option<Arc<str>> = start
        .client_hello()
        .server_name()
        .map(|n| Arc::from(n.trim_end_matches('.').to_ascii_lowercase().as_str()));
    let selected = worker.current().table.tls.select(entrypoint, server_name.as_deref())?;
    let Some(config) = selected.config else {
        tracing::debug!(entrypoint, option = %selected.option, ?server_name, "TLS options are broken; connection closed");
        return None;
    };
    match start.into_stream(config).await {
        Ok(stream) => {
            // Kept for PassTLSClientCert (and whatever else reads the client's identity).
            let peer_certs = stream.get_ref().1.peer_certificates().map_or_else(|| Arc::from([]), Arc::from);
            let (version, cipher) = crate::metrics::tls::labels(stream.get_ref().1);
            Some((stream, TlsConn { option: selected.option, server_name, peer_certs, version, cipher }))
        }
        Err(e) => {
            tracing::debug!(entrypoint, ?server_name, "TLS handshake failed: {e}");
            None
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on an established stream.
async fn serve_http<T>(
    worker: Rc<Worker>,
    entrypoint: Rc<str>,
    peer: SocketAddr,
    io: T,
    h2: bool,
    tls: Option<TlsConn>,
) where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let max_streams = worker
        .current()
        .table
        .entrypoints
        .get(&*entrypoint)
        .map_or(DEFAULT_MAX_CONCURRENT_STREAMS, |e| e.http2_max_concurrent_streams);
    // The entrypoint's transport options and request limits (see `limits`).
    let opts = worker
        .current()
        .table
        .entrypoints
        .get(&*entrypoint)
        .map(|e| Arc::clone(&e.options))
        .unwrap_or_default();
    let activity = limits::Activity::new();
    // HTTP/1.1 bytes go through the pre-parse head checks (bare LF, two framings, ...).
    let framing = if h2 {
        super::head_check::Framing::off()
    } else {
        super::head_check::Framing::new().with_head_limit(limits::head_limit(&opts))
    };
    let io = limits::Tracked::new(io, Rc::clone(&activity), framing);
    let (opts_svc, activity_svc) = (Arc::clone(&opts), Rc::clone(&activity));
    // HTTP/1.1 connections may be switched (WebSocket): their requests carry the connection's
    // id, under which the upstream side of a switched request waits.
    let conn_id = (!h2).then(ConnId::next);
    // Requests in flight, so that a graceful shutdown closes the connection between requests.
    let busy = crate::shutdown::Busy::default();
    let busy_svc = busy.clone();
    // Shared by the connection's requests (a reference count each, no extension map).
    let tls = tls.map(Rc::new);
    let svc = service_fn(move |mut req| {
        let guard = busy_svc.enter();
        let (in_flight, close) = activity_svc.request(&opts_svc);
        // An absolute-form target naming another host than `Host` is refused first (W10).
        let refused =
            match super::head_check::check_target(req.version(), req.method(), req.uri(), req.headers()) {
                Err(refusal) => Some(refusal.response()),
                Ok(()) => limits::check(&opts_svc, &mut req),
            };
        let write_timeout = Duration::from_millis(opts_svc.write_timeout_ms);
        let conn = crate::http::proxy::Conn { peer, tls: tls.clone(), id: conn_id };
        let (worker, entrypoint) = (Rc::clone(&worker), Rc::clone(&entrypoint));
        // The handler's future is made inside this block and awaited at one place: held both
        // as a variable and inside the write-timeout wrapper, it was stored twice, and hyper
        // copies this block several times per request (callgrind: a ~14.5 KB memcpy each).
        async move {
            let mut resp = match refused {
                Some(refused) => refused,
                None => {
                    // Built in place and awaited directly (no variable the compiler might keep).
                    let answered = (if write_timeout.is_zero() {
                        Either::Left(
                            crate::http::proxy::handle(worker, entrypoint, conn, req)
                                .map(Ok::<_, monoio::time::error::Elapsed>),
                        )
                    } else {
                        Either::Right(monoio::time::timeout(
                            write_timeout,
                            crate::http::proxy::handle(worker, entrypoint, conn, req),
                        ))
                    })
                    .await;
                    match answered {
                        Ok(Ok(resp)) => resp,
                        // Go's writeTimeout: the connection is closed without an answer.
                        Err(_) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "entrypoint writeTimeout",
                            ))
                        }
                    }
                }
            };
            if close {
                limits::close_after(&mut resp);
            }
            drop((guard, in_flight));
            Ok::<_, std::io::Error>(resp)
        }
    });
    let io = MonoioIo::new(io);
    if h2 {
        let conn = http2::Builder::new(MonoioExecutor)
            .timer(MonoioTimer)
            .max_concurrent_streams(max_streams)
            .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX))
            // Rapid reset (CVE-2023-44487) and error-reset floods: a client that keeps
            // resetting streams, or makes weir reset them, gets GOAWAY.
            .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
            .serve_connection(io, svc);
        // Graceful shutdown: GOAWAY, then the streams in flight finish.
        let conn = crate::shutdown::graceful_at_drain(conn, |c| c.graceful_shutdown());
        let Some(result) = limits::watch(conn, &activity, &opts, true).await else {
            return;
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
        return;
    }
    // Without shutdown: after a `101` hyper hands the client's IO back instead of closing it.
    // The head timeout is `limits::watch`'s (hyper's would also cut idle keep-alive connections).
    let conn = http1::Builder::new()
        .timer(MonoioTimer)
        .header_read_timeout(None)
        .max_header_size(limits::head_limit(&opts))
        .max_buf_size(limits::buffer_limit(&opts))
        .serve_connection(io, svc)
        .without_shutdown();
    // Graceful shutdown: an idle connection is closed; a busy one answers with
    // `Connection: close` (see `proxy::handle`) and ends after that response.
    let conn = limits::watch(conn, &activity, &opts, false);
    let Some(Some(result)) = crate::shutdown::unless_idle_at_drain(conn, &busy).await else {
        return;
    };
    match result {
        Ok(parts) => {
            let mut io = parts.io.inner();
            match conn_id.and_then(upgrade::take) {
                Some(upstream) => upgrade::tunnel(Rewind::new(parts.read_buf.to_vec(), io), upstream).await,
                None => {
                    let _ = io.shutdown().await;
                }
            }
        }
        Err(e) => {
            // An upstream parked for a switch this connection can no longer make is dropped.
            drop(conn_id.and_then(upgrade::take));
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings() {
        let cases: [(&str, &[u8], Option<Opening>); 7] = [
            ("TLS record", b"\x16\x03\x01\x02\x00", Some(Opening::Tls)),
            ("HTTP/1.1 request", b"GET / HTTP/1.1\r\n", Some(Opening::Http1)),
            ("one byte of a method", b"G", Some(Opening::Http1)),
            ("preface so far", b"PRI * HTTP/2", None),
            ("whole preface", H2_PREFACE, Some(Opening::H2c)),
            ("a method starting like the preface", b"PRIX", Some(Opening::Http1)),
            ("nothing yet", b"", None),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(classify(bytes), want, "case {name}");
        }
    }
}
