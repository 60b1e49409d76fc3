//! Per-worker pool of keep-alive HTTP/1.1 connections to backends. A connection returns to the
//! pool only once hyper says it can take the next request (the previous response body was read
//! to the end); a pooled connection the backend closed meanwhile is detected when the request
//! comes back unsent, and the request goes out on a fresh connection instead.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use monoio_compat::hyper::MonoioIo;

/// Traefik's `serversTransport.maxIdleConnsPerHost` default.
const MAX_IDLE_PER_HOST: usize = 200;
/// Traefik's `forwardingTimeouts.dialTimeout` default.
const DIAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request did not get a response from the backend.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The TCP connection could not be made.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Backend address.
        addr: SocketAddr,
        /// OS error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("exchange with {addr}: {source}")]
    Http {
        /// Backend address.
        addr: SocketAddr,
        /// hyper's error.
        source: hyper::Error,
    },
}

/// Idle connections by backend address.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<HashMap<SocketAddr, Vec<SendRequest<Incoming>>>>,
}

impl Pool {
    /// Sends `req` to `addr` on a pooled or new connection.
    pub async fn send(
        self: &Rc<Self>,
        addr: SocketAddr,
        mut req: Request<Incoming>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        while let Some(mut sender) = self.take(addr) {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.recycle(addr, sender);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    // The pooled connection was dead before the request left: try the next one.
                    Some(back) => req = back,
                    None => return Err(UpstreamError::Http { addr, source: e.into_error() }),
                },
            }
        }
        let mut sender = connect(addr).await?;
        match sender.try_send_request(req).await {
            Ok(resp) => {
                self.recycle(addr, sender);
                Ok(resp)
            }
            Err(e) => Err(UpstreamError::Http { addr, source: e.into_error() }),
        }
    }

    fn take(&self, addr: SocketAddr) -> Option<SendRequest<Incoming>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&addr)?;
        while let Some(s) = list.pop() {
            if s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    fn recycle(self: &Rc<Self>, addr: SocketAddr, mut sender: SendRequest<Incoming>) {
        let pool = Rc::clone(self);
        monoio::spawn(async move {
            if sender.ready().await.is_ok() {
                let mut idle = pool.idle.borrow_mut();
                let list = idle.entry(addr).or_default();
                list.retain(|s| !s.is_closed());
                if list.len() < MAX_IDLE_PER_HOST {
                    list.push(sender);
                }
            }
        });
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Incoming>, UpstreamError> {
    let err = |source| UpstreamError::Connect { addr, source };
    let stream = monoio::time::timeout(DIAL_TIMEOUT, monoio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| err(std::io::Error::new(std::io::ErrorKind::TimedOut, "dial timeout")))?
        .map_err(err)?;
    let _ = stream.set_nodelay(true);
    let io = stream.try_into_poll_io().map_err(|(e, _)| err(e))?;
    let (sender, conn) = http1::Builder::new()
        .handshake(MonoioIo::new(io))
        .await
        .map_err(|source| UpstreamError::Http { addr, source })?;
    monoio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%addr, "upstream connection ended: {e}");
        }
    });
    Ok(sender)
}
