//! The bulk passthrough check shared by the W6 (splice) and W7 (sockmap) tests: many TLS-looking
//! connections of log-uniform random sizes echoed through weir, every byte compared with a
//! deterministic pattern and every close checked, plus the small helpers they need.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A minimal TLS 1.2/1.3-style ClientHello record with an SNI (enough for routing).
pub fn client_hello(sni: &str) -> Vec<u8> {
    let mut entry = vec![0u8];
    entry.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    entry.extend_from_slice(sni.as_bytes());
    let mut list = (entry.len() as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&entry);
    let mut exts = vec![0, 0];
    exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
    exts.extend_from_slice(&list);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    record.extend_from_slice(&msg);
    record
}

/// Deterministic bytes for connection `id` at `offset` (8-byte words: start on a word boundary).
pub fn fill(id: u64, offset: u64, out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut x = (id << 40) ^ (offset / 8 + i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

/// Open descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Sends `data`, half-closes, and reads everything until the peer closes.
pub fn exchange(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(data)?;
    s.shutdown(Shutdown::Write)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// A backend connection handler that echoes until the client's half-close arrives, counts it
/// in `eofs`, then closes its side.
pub fn half_close_echo(eofs: Arc<AtomicUsize>) -> impl Fn(TcpStream) + Send + Sync + 'static {
    move |mut conn: TcpStream| {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => {
                    eofs.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// `count` log-uniform sizes from 1 B to `max` bytes, from a fixed `seed`.
pub fn log_uniform_sizes(count: u64, max: usize, seed: u64) -> Vec<usize> {
    (0..count)
        .map(|i| {
            let mut x = (i + seed).wrapping_mul(0x2545_F491_4F6C_DD1D);
            x ^= x >> 33;
            let u = (x % 1_000_000) as f64 / 1_000_000.0;
            ((max as f64).powf(u)).round().max(1.0) as usize
        })
        .collect()
}

/// What [`echo_many`] moved.
#[derive(Debug, Clone, Copy)]
pub struct Echoed {
    /// Bytes sent (and received back) over all connections, `hello` excluded.
    pub bytes: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// Opens one connection per entry of `sizes` to `port`, `threads` at a time; each sends `hello`
/// then `size` pattern bytes and half-closes, and must read back exactly `hello` and the same
/// bytes followed by the peer's close. The first failure is returned with the connection's id.
pub fn echo_many(port: u16, hello: &[u8], sizes: Vec<usize>, threads: usize) -> Result<Echoed, String> {
    let bytes: usize = sizes.iter().sum();
    let sizes = Arc::new(sizes);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (sizes, next, hello) = (Arc::clone(&sizes), Arc::clone(&next), hello.to_vec());
            std::thread::spawn(move || -> Result<(), String> {
                loop {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&size) = sizes.get(id) else { return Ok(()) };
                    echo_one(port, &hello, id, size)?;
                }
            })
        })
        .collect();
    let mut first_error = None;
    for w in workers {
        let result = w.join().unwrap_or_else(|_| Err("a client thread panicked".to_string()));
        if let (Err(e), None) = (result, &first_error) {
            first_error = Some(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(Echoed { bytes, elapsed: start.elapsed() }),
    }
}

fn echo_one(port: u16, hello: &[u8], id: usize, size: usize) -> Result<(), String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("{id}: connect {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let head = hello.to_vec();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        w.write_all(&head)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut off = 0usize;
        while off < size {
            let n = (size - off).min(buf.len());
            fill(id as u64, off as u64, &mut buf[..n]);
            w.write_all(&buf[..n])?;
            off += n;
        }
        w.shutdown(Shutdown::Write)
    });
    let mut r = s;
    let mut got = vec![0u8; hello.len()];
    r.read_exact(&mut got).map_err(|e| format!("{id}: hello echo {e}"))?;
    if got != hello {
        return Err(format!("{id}: hello bytes differ"));
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut want = vec![0u8; 64 * 1024 + 8];
    let mut off = 0usize;
    loop {
        let n = r.read(&mut buf).map_err(|e| format!("{id}: read at {off}/{size}: {e}"))?;
        if n == 0 {
            break;
        }
        if off + n > size {
            return Err(format!("{id}: more bytes than sent ({} > {size})", off + n));
        }
        // `fill` works on 8-byte words: generate from the word boundary.
        let lead = off % 8;
        fill(id as u64, (off - lead) as u64, &mut want[..lead + n]);
        if buf[..n] != want[lead..lead + n] {
            return Err(format!("{id}: bytes differ at {off}"));
        }
        off += n;
    }
    if off != size {
        return Err(format!("{id}: got {off} of {size} bytes before the close"));
    }
    writer.join().map_err(|_| format!("{id}: writer panicked"))?.map_err(|e| format!("{id}: write {e}"))
}
