//! What an accepted connection is, decided before HTTP sees it (Traefik's TCP router on a
//! shared entrypoint): the PROXY header is read first when the peer is trusted; then TCP routers
//! are tried before HTTP ones: a TLS ClientHello is matched (SNI, ALPN, client IP) against the
//! TLS TCP routers, cleartext against the `HostSNI(`*`)` ones; what no TCP router takes goes on
//! to HTTP/HTTPS with the bytes already read and the client address.
//!
//! Server-first protocols: when the entrypoint has only cleartext TCP routers (no TLS TCP router,
//! no HTTPS router) the connection is routed at once, without reading (Traefik does the same);
//! otherwise the first bytes are awaited for [`PEEK_TIMEOUT`], after which a silent client goes
//! to a matching `HostSNI(`*`)` router if there is one (Traefik would wait for its read timeout).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use monoio::io::{AsyncReadRent, IntoPollIo};
use monoio::net::TcpStream;
use weir_proto::client_hello::{self, Peek};
use weir_proto::proxy_protocol::{self, Decoded};

use super::router::ConnInfo;
use super::{proxy, Target, TcpRoute, TcpTable};
use crate::http::rewind::Rewind;
use crate::worker::Worker;

/// How long a connection may stay silent before it is treated as a server-first protocol.
pub const PEEK_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on waiting for a whole PROXY header or ClientHello once the first bytes arrived
/// (Traefik's entrypoint read timeout default).
const HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a TLS handshake (client side, for terminating routers; server side, for `tls`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What happens to the connection next.
pub enum Next {
    /// HTTP serves it: the stream, the client address (the PROXY header's source when there was
    /// one) and the bytes already read.
    Http(TcpStream, SocketAddr, Vec<u8>),
    /// A TCP router took it (or it was closed).
    Done,
}

/// Reads more bytes into `seen`; `Ok(false)` on EOF.
async fn read_more(stream: &mut TcpStream, seen: &mut Vec<u8>) -> std::io::Result<bool> {
    let buf = Vec::with_capacity(4096);
    let (res, buf) = stream.read(buf).await;
    let n = res?;
    seen.extend_from_slice(&buf[..n]);
    Ok(n > 0)
}

async fn read_more_within(stream: &mut TcpStream, seen: &mut Vec<u8>, limit: Duration) -> bool {
    matches!(monoio::time::timeout(limit, read_more(stream, seen)).await, Ok(Ok(true)))
}

/// Decides what `stream`, accepted on `entrypoint` from `peer`, is.
pub async fn dispatch(
    worker: &Rc<Worker>,
    entrypoint: &str,
    mut stream: TcpStream,
    peer: SocketAddr,
) -> Next {
    let generation = worker.current();
    let table: Arc<TcpTable> = Arc::clone(&generation.table.tcp);
    let tls = Arc::clone(&generation.table.tls);
    let has_https = generation.table.entrypoints.get(entrypoint).is_some_and(|e| !e.https.is_empty());
    drop(generation);
    let Some(ep) = table.entrypoints.get(entrypoint) else {
        return Next::Http(stream, peer, Vec::new());
    };
    let mut seen = Vec::new();
    let mut client = peer;
    if ep.proxy.as_ref().is_some_and(|p| p.trusts(peer.ip())) {
        loop {
            match proxy_protocol::decode(&seen) {
                Ok(Decoded::NeedMore) => {
                    if !read_more_within(&mut stream, &mut seen, HEADER_TIMEOUT).await {
                        return Next::Done;
                    }
                }
                Ok(Decoded::Absent) => break,
                Ok(Decoded::Header(header, len)) => {
                    if let Some(source) = header.source {
                        client = source;
                    }
                    seen.drain(..len);
                    break;
                }
                Err(e) => {
                    tracing::debug!(%peer, entrypoint, "{e}; connection closed");
                    return Next::Done;
                }
            }
        }
    }
    if ep.tls_routers.is_empty() && ep.plain_routers.is_empty() {
        return Next::Http(stream, client, seen);
    }
    let no_sni = ConnInfo { sni: None, alpn: &[], client_ip: client.ip() };
    // Traefik: only cleartext TCP routers here (no TLS one, no HTTPS router): no peek at all.
    if seen.is_empty() && ep.tls_routers.is_empty() && !has_https {
        if let Some(route) = ep.match_plain(&no_sni) {
            serve(&table, route, stream, client, seen, None).await;
            return Next::Done;
        }
    }
    if seen.is_empty() {
        match monoio::time::timeout(PEEK_TIMEOUT, read_more(&mut stream, &mut seen)).await {
            Ok(Ok(true)) => {}
            Ok(_) => return Next::Done,
            Err(_) => {
                // A silent client: a server-first protocol, for a `HostSNI(`*`)` router.
                if let Some(route) = ep.match_plain(&no_sni) {
                    serve(&table, route, stream, client, seen, None).await;
                    return Next::Done;
                }
                return Next::Http(stream, client, seen);
            }
        }
    }
    let hello = loop {
        match client_hello::peek(&seen) {
            Peek::NeedMore => {
                if !read_more_within(&mut stream, &mut seen, HEADER_TIMEOUT).await {
                    return Next::Done;
                }
            }
            Peek::NotTls => break None,
            Peek::Tls(hello) => break Some(hello),
            Peek::Malformed => break Some(client_hello::ClientHello::default()),
        }
    };
    match hello {
        None => match ep.match_plain(&no_sni) {
            Some(route) => {
                serve(&table, route, stream, client, seen, None).await;
                Next::Done
            }
            None => Next::Http(stream, client, seen),
        },
        Some(hello) => {
            let info =
                ConnInfo { sni: hello.server_name.as_deref(), alpn: &hello.alpn, client_ip: client.ip() };
            match ep.match_tls(&info) {
                Some(route) => {
                    let terminate = match &route.tls {
                        Some(t) if !t.passthrough => match tls.option_config(&t.option) {
                            Some(config) => Some(config),
                            None => {
                                tracing::debug!(router = %route.name, option = %t.option, "TLS options cannot be served; connection closed");
                                return Next::Done;
                            }
                        },
                        _ => None,
                    };
                    serve(&table, route, stream, client, seen, terminate).await;
                    Next::Done
                }
                // No TCP router: the HTTPS routers' TLS handshake.
                None => Next::Http(stream, client, seen),
            }
        }
    }
}

/// Serves a connection a TCP router took: middlewares, server choice, dial, optional PROXY
/// header and TLS on either side, then byte moving. `terminate` is the TLS configuration of a
/// terminating router.
async fn serve(
    table: &TcpTable,
    route: &TcpRoute,
    stream: TcpStream,
    client: SocketAddr,
    seen: Vec<u8>,
    terminate: Option<Arc<rustls::ServerConfig>>,
) {
    let mut slots = Vec::new();
    for m in &route.middlewares {
        match m.admit(client.ip()) {
            super::Admission::Admitted(slot) => slots.extend(slot),
            super::Admission::Refused => {
                tracing::debug!(router = %route.name, %client, "refused by a TCP middleware; connection closed");
                return;
            }
        }
    }
    let Some(target) = table.pick(route.service) else {
        tracing::debug!(router = %route.name, "no server; connection closed");
        return;
    };
    let local = stream.local_addr().unwrap_or(client);
    let server = match dial(&target, client, local).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(router = %route.name, server = %target.address, "{e}; connection closed");
            return;
        }
    };
    let delay = target.termination_delay;
    if terminate.is_none() && !target.tls {
        let mut server = server;
        if proxy::write_all(&mut server, seen).await.is_err() {
            return;
        }
        proxy::plain(stream, server, delay).await;
        drop(slots);
        return;
    }
    let Ok(client_io) = stream.into_poll_io() else { return };
    let client_io = Rewind::new(seen, client_io);
    let Ok(server_io) = server.into_poll_io() else { return };
    match terminate {
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match monoio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client_io)).await {
                Ok(Ok(client_tls)) => to_server(client_tls, server_io, &target).await,
                _ => tracing::debug!(router = %route.name, %client, "TLS handshake failed"),
            }
        }
        None => to_server(client_io, server_io, &target).await,
    }
    drop(slots);
}

/// Moves bytes between `client` and the server, over TLS when the target says so.
async fn to_server<C>(client: C, server: monoio::net::tcp::stream_poll::TcpStreamPoll, target: &Target)
where
    C: monoio::io::poll_io::AsyncRead + monoio::io::poll_io::AsyncWrite + Unpin,
{
    let delay = target.termination_delay;
    if !target.tls {
        proxy::polled(client, server, delay).await;
        return;
    }
    let Some((config, server_name)) = &target.transport.tls else { return };
    let name = match server_name {
        Some(n) => rustls::pki_types::ServerName::try_from(n.clone()).ok(),
        None => Some(rustls::pki_types::ServerName::IpAddress(target.address.ip().into())),
    };
    let Some(name) = name else { return };
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    match monoio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, server)).await {
        Ok(Ok(tls)) => {
            proxy::polled(client, tls, delay).await;
        }
        _ => tracing::debug!(server = %target.address, "TLS handshake with the server failed"),
    }
}

/// Connects to the target and sends the PROXY header when asked.
async fn dial(target: &Target, client: SocketAddr, local: SocketAddr) -> std::io::Result<TcpStream> {
    let mut stream = monoio::time::timeout(target.transport.dial_timeout, TcpStream::connect(target.address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "dial timeout"))??;
    let _ = stream.set_nodelay(true);
    if let Some(period) = target.transport.keep_alive {
        let _ = stream.set_tcp_keepalive(Some(period), Some(period), None);
    }
    let header = match target.proxy_protocol {
        Some(1) => proxy_protocol::encode_v1(client, local),
        Some(_) => proxy_protocol::encode_v2(client, local),
        None => Vec::new(),
    };
    proxy::write_all(&mut stream, header).await?;
    Ok(stream)
}
