//! Moves bytes between a client connection and a server connection until both directions are
//! done, as Traefik's TCP proxy does: when one side stops sending (EOF), the other side's write
//! half is shut (the half-close is propagated), and the remaining direction is cut after the
//! termination delay (`None`: it may run to its own end). Between two plain sockets the bytes go
//! through a pipe with `splice` (no copy to userspace) unless `WEIR_TCP_COPY=userspace` is set or
//! the kernel refuses; anything with TLS on a side goes through userspace buffers.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::future::{select, Either};
use monoio::io::splice::{SpliceDestination, SpliceSource};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;

/// Bytes moved per read or splice.
const CHUNK: usize = 64 * 1024;

/// Whether plain-socket copies use `splice` (decided once per process).
fn splice_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("WEIR_TCP_COPY").map_or(true, |v| v != "userspace"))
}

/// Proxies between two plain sockets; returns (client → server, server → client) byte counts.
pub async fn plain(
    client: TcpStream,
    mut server: TcpStream,
    termination_delay: Option<Duration>,
) -> (u64, u64) {
    // --experimental.sockmap: the kernel moves the bytes; None when it is off or refused.
    if let Some(moved) = super::sockmap::splice(&client, &mut server, termination_delay).await {
        return moved;
    }
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    both(one_way(cr, sw), one_way(sr, cw), termination_delay).await
}

async fn one_way(mut r: TcpOwnedReadHalf, mut w: TcpOwnedWriteHalf) -> u64 {
    let moved =
        if splice_enabled() { splice_copy(&mut r, &mut w).await } else { user_copy(&mut r, &mut w).await };
    // The reader sent FIN (or failed): pass the half-close on.
    let _ = w.shutdown().await;
    moved
}

/// Copies through a pipe with `splice`; falls back to userspace when the first splice is
/// refused (no pipe, no kernel support).
async fn splice_copy(r: &mut TcpOwnedReadHalf, w: &mut TcpOwnedWriteHalf) -> u64 {
    let Ok((mut pipe_r, mut pipe_w)) = monoio::net::unix::new_pipe() else {
        return user_copy(r, w).await;
    };
    let mut moved = 0u64;
    loop {
        let n = match r.splice_to_pipe(&mut pipe_w, CHUNK as u32).await {
            Ok(0) => return moved,
            Ok(n) => n,
            // EINVAL, ENOSYS: this kernel or socket cannot splice.
            Err(e) if moved == 0 && matches!(e.raw_os_error(), Some(22 | 38)) => {
                return user_copy(r, w).await;
            }
            Err(_) => return moved,
        };
        let mut left = n;
        while left > 0 {
            match w.splice_from_pipe(&mut pipe_r, left).await {
                Ok(0) | Err(_) => return moved,
                Ok(m) => left -= m,
            }
        }
        moved += u64::from(n);
    }
}

async fn user_copy<R: AsyncReadRent, W: AsyncWriteRent>(r: &mut R, w: &mut W) -> u64 {
    let mut buf = Vec::with_capacity(CHUNK);
    let mut moved = 0u64;
    loop {
        buf.clear();
        let (res, b) = r.read(buf).await;
        buf = b;
        match res {
            Ok(0) | Err(_) => return moved,
            Ok(n) => {
                let (res, b) = w.write_all(buf).await;
                buf = b;
                if res.is_err() {
                    return moved;
                }
                moved += n as u64;
            }
        }
    }
}

/// Proxies between two poll-style streams (TLS on either side).
pub async fn polled<C, S>(client: C, server: S, termination_delay: Option<Duration>) -> (u64, u64)
where
    C: monoio::io::poll_io::AsyncRead + monoio::io::poll_io::AsyncWrite + Unpin,
    S: monoio::io::poll_io::AsyncRead + monoio::io::poll_io::AsyncWrite + Unpin,
{
    let (cr, cw) = monoio::io::poll_io::split(client);
    let (sr, sw) = monoio::io::poll_io::split(server);
    both(polled_one_way(cr, sw), polled_one_way(sr, cw), termination_delay).await
}

async fn polled_one_way<R, W>(mut r: R, mut w: W) -> u64
where
    R: monoio::io::poll_io::AsyncRead + Unpin,
    W: monoio::io::poll_io::AsyncWrite + Unpin,
{
    use monoio::io::poll_io::AsyncWriteExt;
    let moved = monoio::io::poll_io::copy(&mut r, &mut w).await.unwrap_or(0);
    let _ = w.shutdown().await;
    moved
}

/// Runs both directions; once one is done the other gets `termination_delay` to finish.
async fn both<A, B>(up: A, down: B, termination_delay: Option<Duration>) -> (u64, u64)
where
    A: Future<Output = u64>,
    B: Future<Output = u64>,
{
    let (up, down) = (pin!(up), pin!(down));
    match select(up, down).await {
        Either::Left((u, rest)) => (u, finish(rest, termination_delay).await),
        Either::Right((d, rest)) => (finish(rest, termination_delay).await, d),
    }
}

async fn finish<F: Future<Output = u64> + Unpin>(f: F, delay: Option<Duration>) -> u64 {
    match delay {
        None => f.await,
        Some(d) => monoio::time::timeout(d, f).await.unwrap_or(0),
    }
}

/// Writes `bytes` to a plain socket.
pub async fn write_all(stream: &mut TcpStream, bytes: Vec<u8>) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let (res, _) = stream.write_all(bytes).await;
    res.map(drop)
}
