//! Serves one accepted connection: its first bytes tell a TLS ClientHello (0x16) from
//! cleartext, as Traefik does on every entrypoint; TLS picks its option from the SNI, then HTTP/2
//! or HTTP/1.1 by ALPN; cleartext is HTTP/2 with prior knowledge (h2c) when it opens with the
//! HTTP/2 preface, else HTTP/1.1. Requests that arrived over TLS carry a [`TlsConn`].

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use monoio::io::poll_io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use monoio::io::IntoPollIo;
use monoio_compat::hyper::{MonoioExecutor, MonoioIo, MonoioTimer};

use super::rewind::Rewind;
use super::upgrade::{self, ConnId};
use crate::tls::TlsConn;
use crate::worker::Worker;

/// The HTTP/2 connection preface a prior-knowledge client opens with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
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
async fn opening<T: AsyncRead + Unpin>(io: &mut T) -> std::io::Result<(Opening, Vec<u8>)> {
    let mut seen = Vec::with_capacity(1024);
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
    let _ = stream.set_nodelay(true);
    let mut io = match stream.into_poll_io() {
        Ok(io) => io,
        Err(e) => {
            tracing::warn!("cannot drive connection from {peer}: {e}");
            return;
        }
    };
    let (kind, seen) = match monoio::time::timeout(FIRST_BYTES_TIMEOUT, opening(&mut io)).await {
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
        Ok(stream) => Some((stream, TlsConn { option: selected.option, server_name })),
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
    // HTTP/1.1 connections may be switched (WebSocket): their requests carry the connection's
    // id, under which the upstream side of a switched request waits.
    let conn_id = (!h2).then(ConnId::next);
    let svc = service_fn(move |mut req| {
        if let Some(t) = &tls {
            req.extensions_mut().insert(t.clone());
        }
        if let Some(id) = conn_id {
            req.extensions_mut().insert(id);
        }
        crate::http::proxy::handle(Rc::clone(&worker), Rc::clone(&entrypoint), peer, req)
    });
    let io = MonoioIo::new(io);
    if h2 {
        let result = http2::Builder::new(MonoioExecutor)
            .timer(MonoioTimer)
            .max_concurrent_streams(max_streams)
            .serve_connection(io, svc)
            .await;
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
        return;
    }
    // Without shutdown: after a `101` hyper hands the client's IO back instead of closing it.
    match http1::Builder::new().timer(MonoioTimer).serve_connection(io, svc).without_shutdown().await {
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
