//! In-kernel splice of TCP passthrough connections (experimental, `--experimental.sockmap`):
//! the `sk_skb` stream verdict program of `bpf/splice.bpf.c` redirects every segment one joined
//! socket receives to the egress of its peer. The kernel moves the payload; the caller keeps the
//! duties the program cannot do, and this module gives it what it needs for them:
//! - **Bytes the caller consumed** (a peeked ClientHello it read) are written to the peer by
//!   hand *before* [`Splicer::join`]; bytes still unread at the join stay in the receive queue
//!   and [`Splicer::join`] makes the kernel move them first (it re-arms the socket's data-ready
//!   hook with SO_RCVLOWAT), so nothing is reordered or stranded.
//! - **FIN.** Shutdowns are not redirected: the caller watches each socket for end of input
//!   (POLLRDHUP) and shuts the peer's write side once [`Spliced::drained`] says every byte
//!   received has reached the peer's send queue — counted from TCP_INFO (`bytes_received`,
//!   which counts the FIN as one) on one side and `bytes_acked` + SIOCOUTQ on the other, so a
//!   redirect still queued in the kernel is waited for instead of cut off.
//! - **Leaving.** [`Splicer::leave`] removes both sockets before they are closed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, SockHash};
use aya::programs::SkSkb;
use aya::Ebpf;

use crate::error::EbpfError;
use crate::object;

const PROGRAM: &str = "splice_verdict";

/// Which way bytes move between the two sockets of a joined pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the first socket given to `join` to the second.
    AtoB,
    /// From the second to the first.
    BtoA,
}

/// The splice program and its maps (one per worker: no sharing, no locks).
pub struct Splicer {
    ebpf: Ebpf,
    /// Cookies of sockets that left, with when: their `peers` entries are deleted only
    /// [`PEERS_GRACE`] later (see [`Splicer::leave`]).
    retired: std::collections::VecDeque<(std::time::Instant, u64)>,
}

/// How long a `peers` entry outlives its pair. The verdict program reads the entry's value
/// through a pointer after looking it up, and the kernel recycles a deleted element of a
/// preallocated hash map at once: deleted right away, the element could be handed to the next
/// pair that joins before a verdict still running for the old pair had read it, and that
/// verdict would then redirect the old pair's segment into the new pair's stream. Softirqs
/// finish in microseconds (a stalled virtual CPU can stretch that to milliseconds); a second is
/// far beyond either.
const PEERS_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for Splicer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splicer").finish_non_exhaustive()
    }
}

/// Counters of the splice program, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpliceCounters {
    /// Segments the verdict program saw.
    pub packets: u64,
    /// Payload bytes of those segments.
    pub bytes: u64,
    /// Segments redirected to the peer.
    pub redirects: u64,
    /// Segments dropped: empty (a lone FIN) or refused by the kernel (the peer left the map).
    pub drops: u64,
    /// Segments left to userspace (socket without a peer).
    pub passed: u64,
    /// Of `drops`, the payload segments whose redirect the kernel refused: bytes lost
    /// mid-stream (0 when the pairs come and go as they should).
    pub refused: u64,
    /// Payload bytes of the `refused` segments.
    pub refused_bytes: u64,
}

/// A joined pair, with what each side had received and written when it joined.
#[derive(Debug, Clone)]
pub struct Spliced {
    cookies: [u64; 2],
    /// Per socket: TCP bytes received and consumed by userspace at the join (the unread rest
    /// is the kernel's to move).
    consumed_at_join: [u64; 2],
    /// Per socket: bytes written into its send queue at the join.
    written_base: [u64; 2],
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |e| {
        // aya's message names the syscall; the OS error is in the source.
        let reason = match std::error::Error::source(&e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        };
        EbpfError::Map { map, reason }
    }
}

impl Splicer {
    /// Loads the program and attaches it to its socket map.
    pub fn load() -> Result<Splicer, EbpfError> {
        let bytes = object::SPLICE.ok_or(EbpfError::NotBuilt)?;
        let mut ebpf =
            Ebpf::load(bytes).map_err(|e| EbpfError::Load { program: PROGRAM, source: Box::new(e) })?;
        let map_fd = {
            let socks: SockHash<&MapData, u64> =
                SockHash::try_from(ebpf.map("socks").ok_or(missing("socks"))?).map_err(map_err("socks"))?;
            socks.fd().try_clone().map_err(|e| EbpfError::Map { map: "socks", reason: e.to_string() })?
        };
        // Verdict only (see bpf/splice.bpf.c): the kernel hands it whole queued segments.
        let program: &mut SkSkb = ebpf
            .program_mut(PROGRAM)
            .ok_or(EbpfError::Attach { program: PROGRAM, reason: "not in the object".into() })?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| EbpfError::Attach {
                program: PROGRAM,
                reason: e.to_string(),
            })?;
        program.load().map_err(|e| EbpfError::Load { program: PROGRAM, source: Box::new(e) })?;
        program.attach(&map_fd).map_err(|e| EbpfError::Attach { program: PROGRAM, reason: e.to_string() })?;
        Ok(Splicer { ebpf, retired: std::collections::VecDeque::new() })
    }

    /// Joins `a` and `b` (two connected TCP sockets): from now on the kernel moves what either
    /// receives to the other, starting with the bytes still unread in their receive queues.
    /// Bytes the caller read itself must be written to the peer before this call, and a
    /// socket it has read from must have no partly read segment left: see [`read_to_short`].
    pub fn join(&mut self, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<Spliced, EbpfError> {
        let io = |what: &'static str| {
            move |e: std::io::Error| EbpfError::Map { map: "socks", reason: format!("{what}: {e}") }
        };
        let cookies = [cookie(a).map_err(io("SO_COOKIE"))?, cookie(b).map_err(io("SO_COOKIE"))?];
        let spliced = Spliced {
            cookies,
            consumed_at_join: [consumed(a).map_err(io("TCP_INFO"))?, consumed(b).map_err(io("TCP_INFO"))?],
            written_base: [written(a).map_err(io("TCP_INFO"))?, written(b).map_err(io("TCP_INFO"))?],
        };
        // Order matters (see bpf/splice.bpf.c): both become redirect targets, then peers, and
        // only then does the verdict see either socket's bytes.
        if let Err((e, a_verdict)) = self.join_maps(&spliced, a, b) {
            // A socket that is no longer ESTABLISHED (its peer's FIN came) cannot join. When
            // that happens to `b` after `a` joined the verdict's map, the kernel may already
            // have moved some of `a`'s bytes into `b`'s queue: stop it, and let the caller take
            // over only once those bytes are in `b`'s send queue, or never.
            if a_verdict {
                self.remove("socks", spliced.cookies[0]);
                if !spliced.wait_moved(a, b, HALF_JOIN_DRAIN) {
                    self.leave(&spliced);
                    return Err(EbpfError::HalfJoined);
                }
            }
            self.leave(&spliced);
            return Err(e);
        }
        // Bytes that arrived before the join wait in the receive queue for a data-ready call
        // that may never come (the sender waits for an answer). Setting SO_RCVLOWAT runs the
        // socket's data-ready hook, now the verdict program's, over what is queued.
        for fd in [a, b] {
            if let Err(e) = kick(fd) {
                // Not joined then: the caller moves the bytes itself, so the kernel must not
                // move them too (two movers interleave a stream). Stop the verdict first and
                // wait for what it already moved, as for a failed join.
                self.remove("socks", spliced.cookies[0]);
                self.remove("socks", spliced.cookies[1]);
                let moved = spliced.wait_moved(a, b, HALF_JOIN_DRAIN)
                    && spliced.swapped().wait_moved(b, a, HALF_JOIN_DRAIN);
                self.leave(&spliced);
                return Err(if moved { io("SO_RCVLOWAT")(e) } else { EbpfError::HalfJoined });
            }
        }
        Ok(spliced)
    }

    fn join_maps(
        &mut self,
        spliced: &Spliced,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
    ) -> Result<(), (EbpfError, bool)> {
        let cookies = spliced.cookies;
        self.reap(std::time::Instant::now());
        self.insert_socks("targets", cookies, a, b).map_err(|(e, _)| (e, false))?;
        {
            let no_verdict = |e| (e, false);
            let mut peers: BpfHashMap<&mut MapData, u64, u64> =
                BpfHashMap::try_from(self.ebpf.map_mut("peers").ok_or(missing("peers")).map_err(no_verdict)?)
                    .map_err(map_err("peers"))
                    .map_err(no_verdict)?;
            peers.insert(cookies[0], cookies[1], 0).map_err(map_err("peers")).map_err(no_verdict)?;
            peers.insert(cookies[1], cookies[0], 0).map_err(map_err("peers")).map_err(no_verdict)?;
        }
        self.insert_socks("socks", cookies, a, b)
    }

    /// Inserts `a` then `b`; on failure, whether `a` was in.
    fn insert_socks(
        &mut self,
        map: &'static str,
        cookies: [u64; 2],
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
    ) -> Result<(), (EbpfError, bool)> {
        let mut socks: SockHash<&mut MapData, u64> =
            SockHash::try_from(self.ebpf.map_mut(map).ok_or((missing(map), false))?)
                .map_err(|e| (map_err(map)(e), false))?;
        socks.insert(cookies[0], a.as_raw_fd(), 0).map_err(|e| (map_err(map)(e), false))?;
        socks.insert(cookies[1], b.as_raw_fd(), 0).map_err(|e| (map_err(map)(e), true))
    }

    fn remove(&mut self, map: &'static str, cookie: u64) {
        if let Some(m) = self.ebpf.map_mut(map) {
            if let Ok(mut socks) = SockHash::<&mut MapData, u64>::try_from(m) {
                let _ = socks.remove(&cookie);
            }
        }
    }

    /// Takes both sockets of a pair out of the maps (before closing them). Their `peers`
    /// entries go [`PEERS_GRACE`] later (a later `join` or `leave` deletes them): until then
    /// they name sockets no longer in `targets`, so a late segment is refused, not misrouted.
    pub fn leave(&mut self, spliced: &Spliced) {
        // The verdict's map first: no redirect may start once the targets are gone.
        for name in ["socks", "targets"] {
            if let Some(map) = self.ebpf.map_mut(name) {
                if let Ok(mut socks) = SockHash::<&mut MapData, u64>::try_from(map) {
                    for c in spliced.cookies {
                        let _ = socks.remove(&c);
                    }
                }
            }
        }
        let now = std::time::Instant::now();
        self.retired.extend(spliced.cookies.map(|c| (now, c)));
        self.reap(now);
    }

    /// Deletes the `peers` entries retired more than [`PEERS_GRACE`] before `now`.
    fn reap(&mut self, now: std::time::Instant) {
        let due = self.retired.iter().take_while(|(at, _)| now.duration_since(*at) >= PEERS_GRACE).count();
        if due == 0 {
            return;
        }
        let cookies: Vec<u64> = self.retired.drain(..due).map(|(_, c)| c).collect();
        for name in ["peers", "lost", "moved"] {
            let Some(map) = self.ebpf.map_mut(name) else { continue };
            let Ok(mut m) = BpfHashMap::<&mut MapData, u64, u64>::try_from(map) else { continue };
            for c in &cookies {
                let _ = m.remove(c);
            }
        }
    }

    /// Payload bytes the pair's sockets received while joined that the kernel did not pass on
    /// to the other socket (a refused redirect, or no peer found): a gap in the stream, unless
    /// the other side was reset.
    pub fn lost(&self, spliced: &Spliced) -> u64 {
        let Some(map) = self.ebpf.map("lost") else { return 0 };
        let Ok(lost) = BpfHashMap::<&MapData, u64, u64>::try_from(map) else { return 0 };
        spliced.cookies.iter().map(|c| lost.get(c, 0).unwrap_or(0)).sum()
    }

    /// Checks a joined pair for bytes moved twice, each way: the program must not have been
    /// handed more bytes than TCP received (it would be if the kernel passed a segment whose
    /// head was already delivered), and the destination's send queue must not have gained more
    /// bytes than the program redirected. `Some(what)` names the first excess found.
    pub fn duplicated(
        &self,
        spliced: &Spliced,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
    ) -> std::io::Result<Option<String>> {
        let Some(map) = self.ebpf.map("moved") else { return Ok(None) };
        let Ok(moved_map) = BpfHashMap::<&MapData, u64, u64>::try_from(map) else { return Ok(None) };
        for (name, from, to, fi, ti) in [("client to server", a, b, 0, 1), ("server to client", b, a, 1, 0)] {
            // In the order each count grows (TCP receives, then the program redirects, then the
            // destination queues), read backwards: a reading can only be late, never early.
            // The FIN the caller sent after the last byte counts as one in `written`.
            let queued = written(to)?.saturating_sub(spliced.written_base[ti] + u64::from(fin_sent(to)?));
            let moved = moved_map.get(&spliced.cookies[fi], 0).unwrap_or(0);
            let info = tcp_info(from)?;
            let received = (info.tcpi_bytes_received - u64::from(fin_received(&info)))
                .saturating_sub(spliced.consumed_at_join[fi]);
            if moved > received {
                return Ok(Some(format!(
                    "{name}: the program was handed {} bytes more than TCP received ({moved} of {received}): \
                     a segment overlapping bytes already passed on went through again",
                    moved - received
                )));
            }
            if queued > moved {
                return Ok(Some(format!(
                    "{name}: the destination's send queue gained {} bytes more than were redirected \
                     ({queued} of {moved}): a redirected segment was sent twice",
                    queued - moved
                )));
            }
        }
        Ok(None)
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> SpliceCounters {
        let mut out = SpliceCounters::default();
        let Some(map) = self.ebpf.map("counters") else { return out };
        let Ok(counters) = PerCpuArray::<&MapData, u64>::try_from(map) else { return out };
        let sum = |i: u32| counters.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        out.packets = sum(0);
        out.bytes = sum(1);
        out.redirects = sum(2);
        out.drops = sum(3);
        out.passed = sum(4);
        out.refused = sum(5);
        out.refused_bytes = sum(6);
        out
    }
}

/// How long a failed join waits for the bytes the kernel already moved (see `join`).
const HALF_JOIN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

impl Spliced {
    /// The same pair seen from `b` (for waiting on the other direction).
    fn swapped(&self) -> Spliced {
        Spliced {
            cookies: [self.cookies[1], self.cookies[0]],
            consumed_at_join: [self.consumed_at_join[1], self.consumed_at_join[0]],
            written_base: [self.written_base[1], self.written_base[0]],
        }
    }

    /// After the verdict stopped on `a`: waits until every byte it took from `a` is in `b`'s
    /// send queue (bytes still unread in `a` are the caller's again).
    fn wait_moved(&self, a: BorrowedFd<'_>, b: BorrowedFd<'_>, limit: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            let moved = written(b).map(|w| w.saturating_sub(self.written_base[1]));
            let taken = consumed(a).map(|c| c.saturating_sub(self.consumed_at_join[0]));
            match (moved, taken) {
                (Ok(moved), Ok(taken)) if moved >= taken => return true,
                (Ok(_), Ok(_)) => std::thread::sleep(std::time::Duration::from_millis(1)),
                _ => return false,
            }
        }
        false
    }

    /// Whether every byte the source of `dir` received (and userspace had not consumed at the
    /// join) has reached the send queue of its destination: then shutting the destination's
    /// write side loses nothing. Meant for after the source's end of input.
    pub fn drained(&self, dir: Direction, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> std::io::Result<bool> {
        let (received, moved) = self.progress(dir, a, b)?;
        Ok(moved >= received)
    }

    /// (bytes the source of `dir` received that are the kernel's to move, bytes that reached
    /// the destination's send queue since the join).
    pub fn progress(
        &self,
        dir: Direction,
        a: BorrowedFd<'_>,
        b: BorrowedFd<'_>,
    ) -> std::io::Result<(u64, u64)> {
        let (from, to, fi, ti) = match dir {
            Direction::AtoB => (a, b, 0, 1),
            Direction::BtoA => (b, a, 1, 0),
        };
        // Destination first: `written` only grows, so reading it before the source can make
        // `drained` answer "not yet" too often, never "yes" too early.
        let moved = written(to)?.saturating_sub(self.written_base[ti]);
        let info = tcp_info(from)?;
        let received = (info.tcpi_bytes_received - u64::from(fin_received(&info)))
            .saturating_sub(self.consumed_at_join[fi]);
        Ok((received, moved))
    }
}

/// A duplicate of the descriptor of `socket` (for callers whose socket type, like monoio's
/// streams, offers only `AsRawFd`): the pair's watcher then holds its own descriptors.
pub fn duplicate<S: std::os::fd::AsRawFd>(socket: &S) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: `socket` is borrowed for the whole call and owns its descriptor, so the
    // descriptor stays open while it is borrowed here.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    fd.try_clone_to_owned()
}

/// Most bytes [`read_to_short`] takes before it gives up.
pub const READ_LIMIT: usize = 4 << 20;

/// Reads what is queued on `fd` without waiting, until a read comes back short (the receive
/// queue was emptied) or EOF: the verdict program is handed whole queued segments, so before
/// [`Splicer::join`] no segment may be partly read (as a peeked ClientHello leaves one). The
/// caller writes the bytes to the peer by hand before joining. `Ok((bytes, true))` when the
/// queue was left clean; `false` after EOF or [`READ_LIMIT`] bytes (then do not join).
pub fn read_to_short(fd: BorrowedFd<'_>) -> std::io::Result<(Vec<u8>, bool)> {
    const CHUNK: usize = 64 << 10;
    let mut out = Vec::new();
    loop {
        let start = out.len();
        out.resize(start + CHUNK, 0);
        match rustix::net::recv(fd, &mut out[start..], rustix::net::RecvFlags::DONTWAIT) {
            Ok((0, _)) => {
                out.truncate(start);
                return Ok((out, false));
            }
            Ok((n, _)) => {
                out.truncate(start + n);
                if n < CHUNK {
                    return Ok((out, true));
                }
                if out.len() >= READ_LIMIT {
                    return Ok((out, false));
                }
            }
            Err(rustix::io::Errno::AGAIN) => {
                out.truncate(start);
                return Ok((out, true));
            }
            Err(rustix::io::Errno::INTR) => out.truncate(start),
            Err(e) => return Err(e.into()),
        }
    }
}

fn missing(map: &'static str) -> EbpfError {
    EbpfError::Map { map, reason: "not in the object".into() }
}

fn cookie(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    rustix::net::sockopt::socket_cookie(fd).map_err(Into::into)
}

fn tcp_info(fd: BorrowedFd<'_>) -> std::io::Result<libc::tcp_info> {
    let mut info: libc::tcp_info = unsafe_zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is a valid, writable tcp_info of `len` bytes; the kernel writes at most
    // `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(info)
}

/// Whether the peer's FIN has been received (it counts as one byte in `tcpi_bytes_received`).
/// TCP_CLOSE also follows a reset; callers treat a socket error before asking.
fn fin_received(info: &libc::tcp_info) -> bool {
    const CLOSE_WAIT: u8 = 8;
    const LAST_ACK: u8 = 9;
    const CLOSING: u8 = 11;
    const TIME_WAIT: u8 = 6;
    const CLOSE: u8 = 7;
    matches!(info.tcpi_state, CLOSE_WAIT | LAST_ACK | CLOSING | TIME_WAIT | CLOSE)
}

/// Whether our side's FIN has been queued (it counts as one in `written`). CLOSE also follows
/// a reset without one: then a one-byte excess may go unseen, never a false one reported.
fn fin_sent(fd: BorrowedFd<'_>) -> std::io::Result<bool> {
    const FIN_WAIT1: u8 = 4;
    const FIN_WAIT2: u8 = 5;
    const TIME_WAIT: u8 = 6;
    const CLOSE: u8 = 7;
    const LAST_ACK: u8 = 9;
    const CLOSING: u8 = 11;
    let state = tcp_info(fd)?.tcpi_state;
    Ok(matches!(state, FIN_WAIT1 | FIN_WAIT2 | TIME_WAIT | CLOSE | LAST_ACK | CLOSING))
}

/// Bytes received and consumed by userspace (received minus still unread). Read until two
/// TCP_INFO readings around SIOCINQ agree, so a segment arriving in between is not miscounted.
fn consumed(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    loop {
        let before = tcp_info(fd)?;
        let unread = queued(fd, libc::FIONREAD)?;
        let after = tcp_info(fd)?;
        if before.tcpi_bytes_received == after.tcpi_bytes_received {
            let fin = u64::from(fin_received(&after));
            // SIOCINQ leaves the FIN out of the unread count.
            return Ok(after.tcpi_bytes_received.saturating_sub(unread + fin));
        }
    }
}

fn unsafe_zeroed() -> libc::tcp_info {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Bytes ever written into the socket's send queue: acknowledged plus still queued.
fn written(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    // Acked first: an ACK between the two readings then makes the sum too small, never too big.
    let acked = tcp_info(fd)?.tcpi_bytes_acked;
    Ok(acked + queued(fd, libc::TIOCOUTQ)?)
}

/// Sets SO_RCVLOWAT to 1 (the default): TCP then runs the data-ready hook if bytes are queued.
fn kick(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: SO_RCVLOWAT reads one int from the pointer, of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn queued(fd: BorrowedFd<'_>, request: libc::Ioctl) -> std::io::Result<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: both requests write one int through the pointer.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut n) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n.max(0) as u64)
}
