//! W10 (part): HTTP/2 abuse through a raw socket speaking h2c with prior knowledge, frames
//! written by hand. A rapid-reset flood (streams opened and cancelled at once, CVE-2023-44487)
//! and a CONTINUATION flood (a header block that never ends) must each end in a GOAWAY and a
//! closed connection, with the data plane's memory and CPU bounded and other clients served
//! throughout.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const CANCEL: u32 = 0x8;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn start() -> (Whoami, Weir) {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("PathPrefix(`/`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    (be, weir)
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame fits");
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK for `GET http://a.test/`: indexed `:method GET`, `:scheme http`, `:path /`, then
/// `:authority` as a literal without indexing (so every stream can reuse the block).
fn get_block() -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x84, 0x01, 6];
    b.extend_from_slice(b"a.test");
    b
}

/// Connects and writes the preface and an empty SETTINGS frame.
fn h2c(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = s.set_nodelay(true);
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    s.write_all(&hello).expect("preface");
    s
}

/// Frames read from the server, parsed as they arrive.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
    /// (kind, flags, stream, payload) of every complete frame so far.
    seen: Vec<(u8, u8, u32, Vec<u8>)>,
    closed: bool,
}

impl Frames {
    /// Reads what is there within `wait`; returns false when nothing came.
    fn pump(&mut self, s: &mut TcpStream, wait: Duration) -> bool {
        if self.closed {
            return false;
        }
        s.set_read_timeout(Some(wait)).expect("timeout");
        let mut chunk = [0u8; 65536];
        match s.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => self.closed = true,
        }
        while self.buf.len() >= 9 {
            let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
            if self.buf.len() < 9 + len {
                break;
            }
            let stream =
                u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) & 0x7fff_ffff;
            let f = (self.buf[3], self.buf[4], stream, self.buf[9..9 + len].to_vec());
            self.buf.drain(..9 + len);
            self.seen.push(f);
        }
        true
    }

    /// The GOAWAY's (last stream id, error code), if one came.
    fn goaway(&self) -> Option<(u32, u32)> {
        self.seen.iter().find(|f| f.0 == GOAWAY).map(|(_, _, _, p)| {
            let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
            (last, u32::from_be_bytes([p[4], p[5], p[6], p[7]]))
        })
    }

    /// Reads until the server closes (or `limit`).
    fn until_closed(&mut self, s: &mut TcpStream, limit: Duration) {
        let start = Instant::now();
        while !self.closed && start.elapsed() < limit {
            self.pump(s, Duration::from_millis(50));
        }
    }
}

/// One well-behaved h2c GET on a new connection: the `:status` 200 of its response (hyper's
/// encoder sends it as the indexed static entry 0x88) and a DATA frame on stream 1.
fn h2_get_ok(port: u16) -> bool {
    let mut s = h2c(port);
    s.write_all(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &get_block())).expect("request");
    let mut frames = Frames::default();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        frames.pump(&mut s, Duration::from_millis(50));
        let status =
            frames.seen.iter().find(|f| f.0 == HEADERS && f.2 == 1).map(|f| f.3.first() == Some(&0x88));
        let data = frames.seen.iter().any(|f| f.0 == DATA && f.2 == 1);
        if let (Some(ok), true) = (status, data) {
            return ok;
        }
        if frames.closed {
            return false;
        }
    }
    false
}

/// Resident memory and CPU time (user + system, in clock ticks) of a process.
fn rss_kib_and_cpu(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat.rsplit_once(") ").expect("stat layout").1.split_whitespace().collect();
    let cpu = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    (rss, cpu)
}

#[test]
fn rapid_reset_flood_gets_goaway_and_others_are_served() {
    let (_be, weir) = start();
    let pid = weir.dataplane_pid().expect("data plane pid");
    assert!(h2_get_ok(weir.port), "a plain h2c request works before the flood");
    let (rss_before, cpu_before) = rss_kib_and_cpu(pid);

    // Other clients keep being served while the flood runs.
    let port = weir.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bystander = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut ok, mut failed, mut slowest) = (0u32, 0u32, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                match weir_e2e::get(port, "a.test", "/") {
                    Ok(r) if r.status == 200 => ok += 1,
                    _ => failed += 1,
                }
                slowest = slowest.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            (ok, failed, slowest)
        })
    };

    // The flood, for two seconds: connection after connection sends HEADERS then
    // RST_STREAM(CANCEL) for stream after stream, in batches of 100 pairs, until weir's GOAWAY
    // (at most 20,000 streams per connection).
    let block = get_block();
    let (mut connections, mut total, mut most) = (0u32, 0u32, 0u32);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let mut s = h2c(weir.port);
        let mut frames = Frames::default();
        let mut sent = 0u32;
        for batch in 0..200u32 {
            let mut bytes = Vec::with_capacity(100 * 40);
            for i in 0..100 {
                let id = 2 * (batch * 100 + i) + 1;
                bytes.extend(frame(HEADERS, END_STREAM | END_HEADERS, id, &block));
                bytes.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
            }
            if s.write_all(&bytes).is_err() {
                break;
            }
            sent += 100;
            frames.pump(&mut s, Duration::from_millis(1));
            if frames.goaway().is_some() || frames.closed {
                break;
            }
        }
        frames.until_closed(&mut s, Duration::from_secs(10));
        let (_, code) = frames.goaway().unwrap_or_else(|| {
            panic!("no GOAWAY after {sent} reset streams on connection {connections}; log:\n{}", weir.log())
        });
        assert_eq!(code, ENHANCE_YOUR_CALM, "GOAWAY code after {sent} resets");
        assert!(frames.closed, "connection closed after the GOAWAY");
        connections += 1;
        total += sent;
        most = most.max(sent);
    }
    assert!(most <= 1000, "a GOAWAY came only after {most} streams");

    // A new connection, h2 or HTTP/1.1, is served.
    assert!(h2_get_ok(weir.port), "h2c request after the flood");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, slowest) = bystander.join().expect("bystander");
    assert_eq!(failed, 0, "bystander requests failed during the flood ({ok} ok)");
    assert!(ok > 0);
    let (rss_after, cpu_after) = rss_kib_and_cpu(pid);
    let grew = rss_after.saturating_sub(rss_before);
    assert!(grew < 32 * 1024, "data plane RSS grew by {grew} KiB");
    let ticks = cpu_after - cpu_before;
    assert!(ticks < 500, "data plane used {ticks} ticks of CPU during the flood");
    eprintln!(
        "rapid reset: {connections} connections in 2 s, each GOAWAY(ENHANCE_YOUR_CALM) after at most \
         {most} streams written ({total} in all); bystander {ok} ok, slowest {slowest:?}; RSS +{grew} KiB; \
         CPU {ticks} ticks"
    );
}

/// A HEADERS frame without END_HEADERS whose block starts a literal header with a value of
/// `value_len` bytes, none of which is ever sent in full: CONTINUATION frames of `piece` bytes
/// follow, paced so that the moment weir gives up can be measured. Returns (bytes of header
/// block sent before the GOAWAY arrived, GOAWAY code).
fn continuation_flood(port: u16, piece: usize) -> (usize, u32) {
    let mut s = h2c(port);
    let mut block = get_block();
    // Literal header without indexing, new name `x-flood`, value length 64 MiB (HPACK integer,
    // 7-bit prefix: 127 then 7-bit groups; h2 refuses integers past 2^28 outright).
    block.extend_from_slice(&[0x00, 7]);
    block.extend_from_slice(b"x-flood");
    let mut n: u64 = (64 << 20) - 127;
    block.push(0x7f);
    while n >= 128 {
        block.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    block.push(n as u8);
    s.write_all(&frame(HEADERS, END_STREAM, 1, &block)).expect("headers");
    let mut frames = Frames::default();
    let fragment = frame(CONTINUATION, 0, 1, &vec![b'a'; piece]);
    let mut sent = block.len();
    // At most 64 MiB: weir must have given up long before.
    while sent < 64 << 20 {
        if s.write_all(&fragment).is_err() {
            break;
        }
        sent += piece;
        frames.pump(&mut s, Duration::from_millis(2));
        if frames.goaway().is_some() || frames.closed {
            break;
        }
    }
    frames.until_closed(&mut s, Duration::from_secs(10));
    let (_, code) = frames.goaway().unwrap_or_else(|| panic!("no GOAWAY after {sent} bytes of header block"));
    assert!(frames.closed, "connection closed after the GOAWAY");
    (sent, code)
}

#[test]
fn continuation_flood_is_cut_at_max_header_bytes() {
    let (_be, weir) = start();
    let pid = weir.dataplane_pid().expect("data plane pid");
    let (rss_before, _) = rss_kib_and_cpu(pid);
    // Traefik's default http.maxHeaderBytes: 1 MiB, announced as SETTINGS_MAX_HEADER_LIST_SIZE.
    let max_header_bytes = 1 << 20;

    // Big fragments: the block outgrows maxHeaderBytes.
    let (big, big_code) = continuation_flood(weir.port, 16 * 1024);
    assert!(
        big_code == ENHANCE_YOUR_CALM || big_code == COMPRESSION_ERROR,
        "GOAWAY code {big_code:#x} after {big} bytes"
    );
    // h2 allows the frames a full list needs plus 25 %; the pacing adds a frame or two.
    assert!(big <= max_header_bytes * 3 / 2, "weir buffered {big} bytes of one header block");

    // Tiny fragments: the number of CONTINUATION frames is what is bounded.
    let (tiny, tiny_code) = continuation_flood(weir.port, 8);
    assert_eq!(tiny_code, ENHANCE_YOUR_CALM, "GOAWAY code after {tiny} bytes in 8-byte frames");
    assert!(tiny <= 8 * 1024, "weir read {tiny} bytes of 8-byte CONTINUATION frames");

    let (rss_after, _) = rss_kib_and_cpu(pid);
    let grew = rss_after.saturating_sub(rss_before);
    assert!(grew < 32 * 1024, "data plane RSS grew by {grew} KiB");
    assert!(h2_get_ok(weir.port), "h2c request after the floods");
    assert_eq!(weir.get("a.test", "/").expect("request").status, 200);
    eprintln!(
        "CONTINUATION flood: 16 KiB frames cut after {big} bytes (code {big_code:#x}), 8-byte frames \
         after {tiny} bytes (code {tiny_code:#x}); RSS +{grew} KiB"
    );
}
