//! HTTP/1.1 `Upgrade` pass-through (WebSocket), as Go's reverse proxy does it: the request keeps
//! `Connection: Upgrade` and its `Upgrade` value, goes to the picked server on a connection of
//! its own (never pooled), and when the server answers `101 Switching Protocols` the client's
//! and the server's connections are joined and bytes flow both ways until each side closes.
//!
//! hyper's own upgrade support needs `Send` IO, which monoio's streams are not; so both hyper
//! connections run "without shutdown" and hand their IO back once the 101 has passed. The
//! upstream IO waits, parked under the client connection's id, until the connection server
//! takes the client IO back and calls [`tunnel`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::{Request, Response, StatusCode};
use hyper::client::conn::http1;
use monoio::io::poll_io::{AsyncRead, AsyncWrite};
use monoio::io::IntoPollIo;
use monoio_compat::hyper::MonoioIo;
use rustls::pki_types::ServerName;
use weir_proto::snapshot::Scheme;

use super::rewind::Rewind;
use super::{hop, responses, Body};
use crate::service::state::{Stop, Walk};
use crate::service::{Service, UpstreamBody};
use crate::table::ServiceId;
use crate::worker::Generation;

/// Any byte stream weir can tunnel.
pub trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// An upstream connection after its `101`, with the bytes hyper had read past the head.
type Upstream = Rewind<Box<dyn Io>>;

/// Identifies an HTTP/1.1 client connection; its requests are handed it (`proxy::Conn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
    /// Upstream connections waiting for their client connection to be handed back.
    static PARKED: RefCell<HashMap<ConnId, Upstream>> = RefCell::new(HashMap::new());
}

impl ConnId {
    /// A fresh id for a connection served on this worker.
    pub fn next() -> ConnId {
        NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id.wrapping_add(1));
            ConnId(id)
        })
    }
}

/// The `Upgrade` value of a request that asks for one (`Connection` names `upgrade`), as Go's
/// `upgradeType` reads it.
pub fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let wants = headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))));
    wants.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// Puts back what hop-by-hop stripping removed from an upgrade request.
pub fn restore(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, upgrade);
}

/// The upstream connection parked for `conn`, if its request was switched.
pub fn take(conn: ConnId) -> Option<Upstream> {
    PARKED.with(|p| p.borrow_mut().remove(&conn))
}

/// Joins the client and the upstream connection until both directions are closed.
pub async fn tunnel<C: AsyncRead + AsyncWrite + Unpin>(mut client: C, mut upstream: Upstream) {
    match monoio::io::poll_io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => tracing::debug!(up, down, "upgraded connection closed"),
        Err(e) => tracing::debug!("upgraded connection ended: {e}"),
    }
}

/// Forwards an upgrade request to a server of service `id` on a connection of its own; on
/// `101` the upstream connection is parked for `conn` and the 101 goes to the client.
pub async fn forward(
    generation: Rc<Generation>,
    id: ServiceId,
    mut req: Request<UpstreamBody>,
    conn: ConnId,
) -> Response<Body> {
    let services = &generation.table.services;
    let mut walk = Walk::default();
    let (lb_id, index) = match generation.balancers.pick(services, id, req.headers(), &mut walk) {
        Ok(picked) => picked,
        Err(Stop::Noop) => return responses::teapot(),
        Err(Stop::NoServer) => return responses::no_available_server(),
        Err(Stop::Internal(kind)) => return crate::admin::serve(kind, &generation, &req),
    };
    let Service::LoadBalancer(lb) = &services[lb_id] else { return responses::bad_gateway() };
    let server = &lb.servers[index];
    if !lb.pass_host_header {
        req.headers_mut().insert(HOST, server.authority.clone());
    }
    let Some(addr) = server.resolved else { return responses::bad_gateway() };
    let connect =
        monoio::time::timeout(lb.transport.dial_timeout, monoio::net::TcpStream::connect(addr)).await;
    let tcp = match connect {
        Err(_) => return responses::gateway_timeout(),
        Ok(Err(e)) => {
            tracing::debug!(%addr, "upgrade: connect: {e}");
            return responses::bad_gateway();
        }
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let Ok(tcp) = tcp.into_poll_io() else { return responses::bad_gateway() };
    let io: Box<dyn Io> = match server.scheme {
        Scheme::Https => {
            let name = lb.transport.server_name(&server.host).trim_start_matches('[').trim_end_matches(']');
            let Ok(name) = ServerName::try_from(name.to_string()) else { return responses::bad_gateway() };
            let connector = tokio_rustls::TlsConnector::from(lb.transport.http1_tls());
            match connector.connect(name, tcp).await {
                Ok(tls) => Box::new(tls),
                Err(e) => {
                    tracing::error!(%addr, "upgrade: TLS: {e}");
                    return responses::internal_server_error();
                }
            }
        }
        // Upgrades are HTTP/1.1: an h2c server is spoken to in HTTP/1.1 here.
        Scheme::Http | Scheme::H2c => Box::new(tcp),
    };
    let (mut sender, connection) =
        match http1::Builder::new().handshake::<_, UpstreamBody>(MonoioIo::new(io)).await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(%addr, "upgrade: handshake: {e}");
                return responses::bad_gateway();
            }
        };
    let (parts_tx, parts_rx) = futures_channel::oneshot::channel();
    monoio::spawn(async move {
        let _ = parts_tx.send(connection.without_shutdown().await);
    });
    let mut resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%addr, "upgrade: exchange: {e}");
            return responses::bad_gateway();
        }
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // Refused: an ordinary response, streamed; the connection closes after it.
        hop::strip(resp.headers_mut(), false);
        return resp.map(Body::from);
    }
    let upgrade = resp.headers().get(UPGRADE).cloned();
    drop(sender);
    match parts_rx.await {
        Ok(Ok(parts)) => {
            let io: Box<dyn Io> = parts.io.inner();
            let upstream = Rewind::new(parts.read_buf.to_vec(), io);
            PARKED.with(|p| p.borrow_mut().insert(conn, upstream));
        }
        _ => return responses::bad_gateway(),
    }
    // The 101 goes back with the server's headers, hop-by-hop ones removed but the upgrade's.
    let (mut head, _) = resp.into_parts();
    hop::strip(&mut head.headers, false);
    if let Some(u) = upgrade {
        restore(&mut head.headers, u);
    }
    Response::from_parts(head, Body::empty())
}

/// A servers transport's TLS configuration restricted to HTTP/1.1 (upgrades do not use h2).
pub fn http1_only(config: &Arc<rustls::ClientConfig>) -> Arc<rustls::ClientConfig> {
    let mut c = (**config).clone();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_requests() {
        type Headers = &'static [(&'static str, &'static str)];
        let cases: [(&str, Headers, Option<&str>); 5] = [
            ("websocket", &[("connection", "Upgrade"), ("upgrade", "websocket")], Some("websocket")),
            (
                "token list",
                &[("connection", "keep-alive, upgrade"), ("upgrade", "websocket")],
                Some("websocket"),
            ),
            ("no connection token", &[("upgrade", "websocket")], None),
            ("no upgrade value", &[("connection", "upgrade")], None),
            ("other token", &[("connection", "close"), ("upgrade", "h2c")], None),
        ];
        for (name, headers, want) in cases {
            let mut h = HeaderMap::new();
            for (k, v) in headers {
                h.append(*k, HeaderValue::from_static(v));
            }
            assert_eq!(requested(&h).as_ref().and_then(|v| v.to_str().ok()), want, "case {name}");
        }
    }
}
