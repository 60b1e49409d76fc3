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

/// What went wrong when `got`, read at stream offset `off` of connection `id`, is not the
/// pattern: the exact offset of the first differing byte, a few bytes either way, and where
/// the bytes that came instead belong (the pattern is invertible, so a word names its
/// connection and offset): further on in the same stream is a loss, earlier a duplicate,
/// another connection a cross-over.
pub fn explain_mismatch(id: u64, off: u64, got: &[u8]) -> String {
    let lead = (off % 8) as usize;
    let mut want = vec![0u8; lead + got.len()];
    fill(id, off - lead as u64, &mut want);
    let want = &want[lead..];
    let Some(first) = got.iter().zip(want).position(|(g, w)| g != w) else {
        return format!("{id}: read at {off}: no byte differs");
    };
    let at = off + first as u64;
    let show = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join("");
    let end = (first + 16).min(got.len());
    let mut out = format!(
        "{id}: first differing byte at stream offset {at} (read of {} bytes at {off}); expected {} got {}",
        got.len(),
        show(&want[first..end]),
        show(&got[first..end]),
    );
    // Where the bytes from the first difference on come from: try each alignment.
    let origin = (0..8usize).find_map(|shift| {
        let start = first + shift;
        let word = got.get(start..start + 8)?;
        let (src, word_index) = origin_of(u64::from_le_bytes(word.try_into().ok()?), id)?;
        // The stream offset that word was written at, and where it was read.
        Some((src, word_index * 8, off + start as u64))
    });
    match origin {
        Some((src, written_at, read_at)) => {
            let delta = written_at as i128 - read_at as i128;
            let what = if src != id {
                format!("connection {src}'s bytes (crossed over)")
            } else if delta > 0 {
                format!("{delta} bytes missing (written later in this stream)")
            } else {
                format!("{} bytes repeated (written earlier in this stream)", -delta)
            };
            out.push_str(&format!(
                "; the bytes read at {read_at} were written by connection {src} at {written_at}: {what}"
            ));
        }
        None => out.push_str("; the bytes that came are no connection's pattern"),
    }
    out
}

/// The (connection, word index) whose pattern word is `word`, trying `id` first and then the
/// ids the tests use; None when it is no plausible one.
fn origin_of(word: u64, id: u64) -> Option<(u64, u64)> {
    // Undo `fill`'s mixing steps in reverse (each is a bijection on u64).
    let unshift = |x: u64, s: u32| {
        let mut y = x;
        for _ in 0..(64 / s + 1) {
            y = x ^ (y >> s);
        }
        y
    };
    let inverse = |a: u64| {
        // Newton's iteration for the inverse of an odd number modulo 2^64.
        let mut x = a;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x
    };
    let mixed = unshift(word, 29).wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9));
    let x0 = unshift(mixed, 31);
    let golden_inv = inverse(0x9E37_79B9_7F4A_7C15);
    let candidates =
        std::iter::once(id).chain(0..1000).chain(1_000_000..1_000_010).chain(2_000_000..2_100_000);
    for c in candidates {
        let index = (x0 ^ (c << 40)).wrapping_mul(golden_inv);
        // Streams here stay below 2^40 bytes.
        if index < 1 << 37 {
            return Some((c, index));
        }
    }
    None
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
            return Err(format!("bytes differ: {}", explain_mismatch(id as u64, off as u64, &buf[..n])));
        }
        off += n;
    }
    if off != size {
        return Err(format!("{id}: got {off} of {size} bytes before the close"));
    }
    writer.join().map_err(|_| format!("{id}: writer panicked"))?.map_err(|e| format!("{id}: write {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_the_offset_and_where_the_bytes_came_from() {
        let mut lost = vec![0u8; 4096];
        // A read at 65,536 that got the bytes from 65,536 + 1,000 on: 1,000 bytes lost.
        fill(1_000_000, 65_536 + 1000, &mut lost);
        let why = explain_mismatch(1_000_000, 65_536, &lost);
        assert!(why.contains("first differing byte at stream offset 65536"), "{why}");
        assert!(why.contains("1000 bytes missing"), "{why}");
        // 3 good bytes, then bytes repeated from 20 bytes earlier.
        let mut repeated = vec![0u8; 4096];
        fill(7, 96, &mut repeated[..8]);
        let mut earlier = vec![0u8; 4096 + 8];
        fill(7, 72, &mut earlier);
        repeated[3..].copy_from_slice(&earlier[7..7 + 4093]);
        let why = explain_mismatch(7, 99 - 3, &repeated);
        assert!(why.contains("first differing byte at stream offset 99"), "{why}");
        assert!(why.contains("bytes repeated"), "{why}");
        // Another connection's bytes.
        let mut other = vec![0u8; 64];
        fill(2_000_123, 4096, &mut other);
        let why = explain_mismatch(5, 0, &other);
        assert!(why.contains("connection 2000123's bytes"), "{why}");
    }
}
