//! In-kernel splice of TCP passthrough connections (experimental, NOT WORKING YET: see
//! `tests/splice.rs`; not wired into the data plane): the `sk_skb` stream verdict
//! program of `bpf/splice.bpf.c` redirects every segment one joined socket receives to the
//! egress of its peer. The kernel moves the payload; the caller keeps three duties the program
//! cannot do, and this module gives it what it needs for them:
//! - **Join before the first byte goes upstream.** Bytes that reach a socket before it joins
//!   stay in its receive queue until the next segment wakes the verdict program; joining while
//!   both peers wait (the client for the server's answer, the server for the request) avoids
//!   that. [`Splicer::join`] refuses sockets with unread bytes. Bytes the caller writes itself
//!   after joining (the peeked ClientHello) are declared with [`Spliced::wrote`].
//! - **FIN.** Shutdowns are not redirected: the caller watches each socket for end of input
//!   (POLLRDHUP) and shuts the peer's write side once [`Spliced::drained`] says every byte
//!   received has reached the peer's send queue — counted from TCP_INFO (`bytes_received`) on
//!   one side and `bytes_acked` + SIOCOUTQ on the other, so a redirect still queued in the
//!   kernel is waited for instead of cut off.
//! - **Leaving.** [`Splicer::leave`] removes both sockets before they are closed.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, SockHash};
use aya::programs::SkSkb;
use aya::Ebpf;

use crate::error::EbpfError;
use crate::object;

const PROGRAM: &str = "splice_verdict";
const PARSER: &str = "splice_parser";

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
}

impl std::fmt::Debug for Splicer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Splicer").finish_non_exhaustive()
    }
}

/// Counters of the splice program, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpliceCounters {
    /// Segments redirected to a peer.
    pub segments: u64,
    /// Payload bytes redirected.
    pub bytes: u64,
    /// Segments left to userspace (socket without a peer).
    pub passed: u64,
    /// Redirects the kernel refused (the peer left the map).
    pub refused: u64,
}

/// A joined pair, with what each side had received and written when it joined.
#[derive(Debug, Clone)]
pub struct Spliced {
    cookies: [u64; 2],
    /// Per socket: TCP bytes received at the join.
    received_at_join: [u64; 2],
    /// Per socket: bytes written into its send queue at the join, plus those the caller wrote
    /// by hand since.
    written_base: [u64; 2],
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |e| EbpfError::Map { map, reason: e.to_string() }
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
        let parser: &mut SkSkb = ebpf
            .program_mut(PARSER)
            .ok_or(EbpfError::Attach { program: PARSER, reason: "not in the object".into() })?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| EbpfError::Attach {
                program: PARSER,
                reason: e.to_string(),
            })?;
        parser.load().map_err(|e| EbpfError::Load { program: PARSER, source: Box::new(e) })?;
        parser.attach(&map_fd).map_err(|e| EbpfError::Attach { program: PARSER, reason: e.to_string() })?;
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
        Ok(Splicer { ebpf })
    }

    /// Joins `a` and `b` (two connected TCP sockets): from now on the kernel moves what either
    /// receives to the other. Both must have no unread bytes.
    pub fn join(&mut self, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> Result<Spliced, EbpfError> {
        let io = |what: &'static str| {
            move |e: std::io::Error| EbpfError::Map { map: "socks", reason: format!("{what}: {e}") }
        };
        for fd in [a, b] {
            if unread(fd).map_err(io("SIOCINQ"))? != 0 {
                return Err(EbpfError::Attach {
                    program: PROGRAM,
                    reason: "a socket has unread bytes".into(),
                });
            }
        }
        let cookies = [cookie(a).map_err(io("SO_COOKIE"))?, cookie(b).map_err(io("SO_COOKIE"))?];
        let spliced = Spliced {
            cookies,
            received_at_join: [
                tcp_counts(a).map_err(io("TCP_INFO"))?.0,
                tcp_counts(b).map_err(io("TCP_INFO"))?.0,
            ],
            written_base: [written(a).map_err(io("TCP_INFO"))?, written(b).map_err(io("TCP_INFO"))?],
        };
        {
            let mut peers: BpfHashMap<&mut MapData, u64, u64> =
                BpfHashMap::try_from(self.ebpf.map_mut("peers").ok_or(missing("peers"))?)
                    .map_err(map_err("peers"))?;
            peers.insert(cookies[0], cookies[1], 0).map_err(map_err("peers"))?;
            peers.insert(cookies[1], cookies[0], 0).map_err(map_err("peers"))?;
        }
        let mut socks: SockHash<&mut MapData, u64> =
            SockHash::try_from(self.ebpf.map_mut("socks").ok_or(missing("socks"))?)
                .map_err(map_err("socks"))?;
        let joined = socks
            .insert(cookies[0], a.as_raw_fd(), 0)
            .and_then(|()| socks.insert(cookies[1], b.as_raw_fd(), 0));
        if let Err(e) = joined {
            self.leave(&spliced);
            return Err(map_err("socks")(e));
        }
        Ok(spliced)
    }

    /// Takes both sockets of a pair out of the maps (before closing them).
    pub fn leave(&mut self, spliced: &Spliced) {
        if let Some(map) = self.ebpf.map_mut("socks") {
            if let Ok(mut socks) = SockHash::<&mut MapData, u64>::try_from(map) {
                for c in spliced.cookies {
                    let _ = socks.remove(&c);
                }
            }
        }
        if let Some(map) = self.ebpf.map_mut("peers") {
            if let Ok(mut peers) = BpfHashMap::<&mut MapData, u64, u64>::try_from(map) {
                for c in spliced.cookies {
                    let _ = peers.remove(&c);
                }
            }
        }
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> SpliceCounters {
        let mut out = SpliceCounters::default();
        let Some(map) = self.ebpf.map("counters") else { return out };
        let Ok(counters) = PerCpuArray::<&MapData, u64>::try_from(map) else { return out };
        let sum = |i: u32| counters.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        out.segments = sum(0);
        out.bytes = sum(1);
        out.passed = sum(2);
        out.refused = sum(3);
        out
    }
}

impl Spliced {
    /// Declares `n` bytes the caller wrote by hand into the destination of `dir` after the
    /// join (they are not the kernel's to move).
    pub fn wrote(&mut self, dir: Direction, n: u64) {
        let to = match dir {
            Direction::AtoB => 1,
            Direction::BtoA => 0,
        };
        self.written_base[to] += n;
    }

    /// Whether every byte the source of `dir` received since the join has reached the send
    /// queue of its destination (then shutting the destination's write side loses nothing).
    pub fn drained(&self, dir: Direction, a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> std::io::Result<bool> {
        let (received, moved) = self.progress(dir, a, b)?;
        Ok(moved >= received)
    }

    /// (bytes the source of `dir` received since the join, bytes that reached the
    /// destination's send queue since the join, not counting those written by hand).
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
        let received = tcp_counts(from)?.0 - self.received_at_join[fi];
        let moved = written(to)?.saturating_sub(self.written_base[ti]);
        Ok((received, moved))
    }
}

fn missing(map: &'static str) -> EbpfError {
    EbpfError::Map { map, reason: "not in the object".into() }
}

fn cookie(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    rustix::net::sockopt::socket_cookie(fd).map_err(Into::into)
}

/// (bytes received in order, bytes acknowledged by the peer) from TCP_INFO.
fn tcp_counts(fd: BorrowedFd<'_>) -> std::io::Result<(u64, u64)> {
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
    Ok((info.tcpi_bytes_received, info.tcpi_bytes_acked))
}

fn unsafe_zeroed() -> libc::tcp_info {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Bytes ever written into the socket's send queue: acknowledged plus still queued.
fn written(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    let acked = tcp_counts(fd)?.1;
    Ok(acked + queued(fd, libc::TIOCOUTQ)?)
}

fn unread(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    queued(fd, libc::FIONREAD)
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
