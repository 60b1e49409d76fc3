//! Batched datagram IO for the UDP proxy: the system calls monoio does not expose, in a few
//! small `unsafe` functions. [`RecvBatch::recv`] drains a non-blocking socket into reused
//! buffers with one `recvmmsg`; [`send`] moves datagrams for one destination with one system
//! call — a `sendmsg` with UDP GSO (`UDP_SEGMENT`: the kernel cuts one buffer into same-size
//! datagrams) for a run of equal sizes, else a `sendmmsg`. Nothing here waits (the proxy waits
//! for readiness through monoio) or decides where a datagram goes.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::ptr;

use socket2::SockAddr;

/// Datagrams received per `recvmmsg` and sent per `sendmmsg`.
pub const BATCH: usize = 32;

/// Bytes reserved per received datagram: more than the largest UDP payload, so nothing is ever
/// truncated. The slots are zeroed memory the kernel only writes as far as each datagram
/// reaches, so a batch of small datagrams keeps few of these pages resident.
const SLOT: usize = 65_536;

/// `UDP_SEGMENT` from `linux/udp.h` (the libc crate defines it for uclibc only): the segment
/// size of a GSO send, as a `SOL_UDP` control message.
const UDP_SEGMENT: libc::c_int = 103;

/// Most segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS` was 64 before Linux 6.9).
const GSO_MAX_SEGMENTS: usize = 64;

/// Most payload bytes in one GSO send: it is built as one IPv4 datagram (65,535 bytes less the
/// IP and UDP headers) before the kernel segments it.
const GSO_MAX_BYTES: usize = 65_507;

/// Up to [`BATCH`] received datagrams with their sources, in buffers reused batch after batch.
pub struct RecvBatch {
    data: Vec<u8>,
    names: [libc::sockaddr_storage; BATCH],
    name_lens: [libc::socklen_t; BATCH],
    lens: [usize; BATCH],
    count: usize,
}

impl RecvBatch {
    /// An empty batch (boxed: the arrays are a few KiB, the buffers 2 MiB of mostly untouched
    /// zeroed memory).
    pub fn new() -> Box<RecvBatch> {
        Box::new(RecvBatch {
            data: vec![0; BATCH * SLOT],
            // SAFETY: `sockaddr_storage` is plain old data; all zeroes is a valid (AF_UNSPEC) value.
            names: unsafe { zeroed() },
            name_lens: [0; BATCH],
            lens: [0; BATCH],
            count: 0,
        })
    }

    /// Receives what `fd` (a UDP socket) has queued, up to [`BATCH`] datagrams, without waiting:
    /// how many, or `WouldBlock` when none is queued. Earlier datagrams are forgotten.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        // SAFETY: `iovec` and `mmsghdr` are plain old data (null pointers, zero lengths).
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (iov, hdr)) in iovs.iter_mut().zip(hdrs.iter_mut()).enumerate() {
            iov.iov_base = self.data[i * SLOT..].as_mut_ptr().cast();
            iov.iov_len = SLOT;
            hdr.msg_hdr.msg_name = ptr::from_mut(&mut self.names[i]).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each header points at one slot of `data` and one entry of `names`, with their
        // true sizes; all outlive the call and nothing else touches them meanwhile. MSG_DONTWAIT
        // makes the call return at once whatever the socket's mode.
        let n = unsafe {
            libc::recvmmsg(fd, hdrs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, ptr::null_mut())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (n as usize).min(BATCH);
        for (i, hdr) in hdrs.iter().take(n).enumerate() {
            self.lens[i] = (hdr.msg_len as usize).min(SLOT);
            self.name_lens[i] = hdr.msg_hdr.msg_namelen;
        }
        self.count = n;
        Ok(n)
    }

    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no datagram is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`th datagram's payload.
    pub fn datagram(&self, i: usize) -> &[u8] {
        &self.data[i * SLOT..i * SLOT + self.lens[i]]
    }

    /// Where the `i`th datagram came from (`None` for a non-IP source, which a UDP socket
    /// never reports).
    pub fn source(&self, i: usize) -> Option<SocketAddr> {
        let len = self.name_lens[i].min(size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        // SAFETY: `names[i]` holds the address the kernel wrote and `len` its length (capped at
        // the storage's size); `SockAddr` only reads the family's fields within `len`.
        unsafe { SockAddr::new(self.names[i], len) }.as_socket()
    }
}

/// Sends the first of `datagrams` — as many as one system call takes — to `dest`, or to the
/// socket's connected peer when `dest` is `None`. Returns how many left (at least one), or the
/// first one's error: `WouldBlock` when the socket's buffer is full (wait until writable and
/// call again); any other error means that datagram is lost, as UDP loses it.
///
/// A run of at least two datagrams of one size below `gso` bytes (optionally ended by a shorter
/// one) leaves in a single GSO send. `gso` is what this socket's route has shown it accepts:
/// [`GSO_UNTRIED`] at first; a segment size the route refuses (above its MTU) lowers it to that
/// size, and a route that cannot segment at all (no checksum offload) sets it to 0 — GSO off.
pub fn send(fd: RawFd, dest: Option<&SockAddr>, datagrams: &[&[u8]], gso: &Cell<usize>) -> io::Result<usize> {
    if datagrams.is_empty() {
        return Ok(0);
    }
    let run = gso_run(datagrams, gso.get());
    if run >= 2 {
        match send_segmented(fd, dest, &datagrams[..run]) {
            Ok(()) => return Ok(run),
            // The segment is too large for the route (or the socket refuses GSO for a reason
            // no smaller segment escapes; then smaller runs fail here too and shrink it further).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => gso.set(datagrams[0].len()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)) => {
                gso.set(0)
            }
            Err(e) => return Err(e),
        }
    }
    // Up to the next GSO run, in one sendmmsg.
    let limit = gso.get();
    let end = (1..datagrams.len()).find(|&i| gso_run(&datagrams[i..], limit) >= 2).unwrap_or(datagrams.len());
    send_many(fd, dest, &datagrams[..end.min(BATCH)])
}

/// The `gso` of a socket that has not sent a GSO run yet: any segment size is tried.
pub const GSO_UNTRIED: usize = usize::MAX;

/// How many datagrams from the first form one GSO send: at least two of the first one's size,
/// which must be below `limit`, optionally followed by one shorter (the kernel's last segment
/// may be short), within the kernel's limits; 0 when there is no such run.
fn gso_run(datagrams: &[&[u8]], limit: usize) -> usize {
    let seg = datagrams[0].len();
    if seg == 0 || seg >= limit {
        return 0;
    }
    let (mut n, mut bytes) = (1, seg);
    while n < datagrams.len() && n < GSO_MAX_SEGMENTS && bytes + datagrams[n].len() <= GSO_MAX_BYTES {
        let len = datagrams[n].len();
        if len == seg {
            n += 1;
            bytes += len;
            continue;
        }
        if len > 0 && len < seg && n >= 2 {
            n += 1;
        }
        break;
    }
    if n >= 2 {
        n
    } else {
        0
    }
}

fn set_dest(msg: &mut libc::msghdr, dest: Option<&SockAddr>) {
    if let Some(addr) = dest {
        // The kernel only reads the name of a send.
        msg.msg_name = addr.as_ptr().cast_mut().cast();
        msg.msg_namelen = addr.len();
    }
}

/// One `sendmsg` whose iovecs are the run's datagrams and whose `UDP_SEGMENT` is the first's
/// size: the kernel sends one datagram per segment.
fn send_segmented(fd: RawFd, dest: Option<&SockAddr>, run: &[&[u8]]) -> io::Result<()> {
    let run = &run[..run.len().min(GSO_MAX_SEGMENTS)];
    // SAFETY: plain old data.
    let mut iovs: [libc::iovec; GSO_MAX_SEGMENTS] = unsafe { zeroed() };
    for (iov, d) in iovs.iter_mut().zip(run) {
        // The kernel only reads a send's buffers.
        iov.iov_base = d.as_ptr().cast_mut().cast();
        iov.iov_len = d.len();
    }
    // Room for one cmsghdr and a u16, aligned as cmsghdr needs.
    let mut control = [0u64; 4];
    // SAFETY: plain old data.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    set_dest(&mut msg, dest);
    msg.msg_iov = iovs.as_mut_ptr();
    msg.msg_iovlen = run.len() as _;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE/CMSG_LEN are arithmetic; CMSG_FIRSTHDR returns a pointer into
    // `control` (non-null: msg_controllen covers one header and its u16, 24 of 32 bytes), and
    // CMSG_DATA points inside it, written unaligned. `msg` points only at live buffers for the
    // call; MSG_DONTWAIT keeps it from waiting.
    let sent = unsafe {
        msg.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as libc::c_uint) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as libc::c_uint) as _;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), run[0].len() as u16);
        libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT)
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One `sendmmsg` of up to [`BATCH`] datagrams; how many the kernel took.
fn send_many(fd: RawFd, dest: Option<&SockAddr>, datagrams: &[&[u8]]) -> io::Result<usize> {
    let n = datagrams.len().min(BATCH);
    // SAFETY: plain old data.
    let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for ((iov, hdr), d) in iovs.iter_mut().zip(hdrs.iter_mut()).zip(datagrams) {
        iov.iov_base = d.as_ptr().cast_mut().cast();
        iov.iov_len = d.len();
        set_dest(&mut hdr.msg_hdr, dest);
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the first `n` headers point at live buffers (read only) and addresses for the
    // call; MSG_DONTWAIT keeps it from waiting.
    let sent = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, libc::MSG_DONTWAIT) };
    match sent {
        s if s < 0 => Err(io::Error::last_os_error()),
        0 => Err(io::Error::other("sendmmsg sent no datagram")),
        s => Ok(s as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn bound() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        s.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        s
    }

    /// Everything `to` receives until `count` datagrams: (source, payload).
    fn receive(to: &UdpSocket, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut buf = vec![0; 65_536];
        (0..count)
            .map(|k| {
                let (n, from) = to.recv_from(&mut buf).unwrap_or_else(|e| panic!("datagram {k}: {e}"));
                (from, buf[..n].to_vec())
            })
            .collect()
    }

    fn payload(tag: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| tag.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn gso_runs() {
        type Case = (&'static str, Vec<usize>, usize);
        let cases: Vec<Case> = vec![
            ("one datagram", vec![1200], 0),
            ("two of a size", vec![1200, 1200], 2),
            ("same size then shorter", vec![1200, 1200, 1200, 700], 4),
            ("a shorter one ends the run", vec![1200, 1200, 700, 1200], 3),
            ("a longer one ends the run", vec![1200, 1200, 1300], 2),
            ("one then shorter is no run", vec![1200, 700, 700], 0),
            ("empty datagrams never segment", vec![0, 0, 0], 0),
            ("an empty one after a run ends it", vec![100, 100, 0], 2),
            ("capped by segments", vec![10; 100], GSO_MAX_SEGMENTS),
            ("capped by bytes", vec![30_000; 4], 2),
        ];
        let limited: [&[u8]; 3] = [&[0; 1200], &[0; 1200], &[0; 1200]];
        assert_eq!(gso_run(&limited, 1201), 3, "below the route's limit");
        assert_eq!(gso_run(&limited, 1200), 0, "at the size the route refused");
        assert_eq!(gso_run(&limited, 0), 0, "GSO off");
        for (name, sizes, want) in cases {
            let bufs: Vec<Vec<u8>> = sizes.iter().map(|n| vec![0; *n]).collect();
            let slices: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
            assert_eq!(gso_run(&slices, GSO_UNTRIED), want, "{name}");
        }
    }

    #[test]
    fn recv_batch_drains_several_sources() {
        let listener = bound();
        let to = listener.local_addr().expect("addr");
        let clients: Vec<UdpSocket> = (0..3).map(|_| bound()).collect();
        for round in 0..4u8 {
            for (c, client) in clients.iter().enumerate() {
                client.send_to(&payload(round * 10 + c as u8, 100 + c), to).expect("send");
            }
        }
        let big = payload(7, 60_000);
        clients[0].send_to(&big, to).expect("send a large datagram");
        let mut batch = RecvBatch::new();
        let n = batch.recv(listener.as_raw_fd()).expect("recvmmsg");
        assert_eq!(n, 13, "every queued datagram in one call");
        for i in 0..12 {
            let (round, c) = (i / 3, i % 3);
            assert_eq!(batch.source(i), Some(clients[c].local_addr().expect("addr")), "source of {i}");
            assert_eq!(
                batch.datagram(i),
                payload(round as u8 * 10 + c as u8, 100 + c).as_slice(),
                "payload {i}"
            );
        }
        assert_eq!(batch.datagram(12), big.as_slice(), "a 60,000-byte datagram arrives whole");
        let err = batch.recv(listener.as_raw_fd()).expect_err("nothing left");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn send_keeps_datagram_boundaries_and_order() {
        // (case, GSO limit before, sizes, checksums off: the kernel then refuses GSO with
        // EINVAL, as for a segment above the MTU; GSO limit after).
        type Case = (&'static str, usize, Vec<usize>, bool, usize);
        let cases: Vec<Case> = vec![
            ("same size with GSO", GSO_UNTRIED, vec![1200; 20], false, GSO_UNTRIED),
            ("same size then shorter with GSO", GSO_UNTRIED, vec![1200, 1200, 1200, 5], false, GSO_UNTRIED),
            (
                "mixed sizes with GSO",
                GSO_UNTRIED,
                vec![10, 1200, 1200, 1200, 3, 3, 3, 0, 900, 1, 2, 3],
                false,
                GSO_UNTRIED,
            ),
            ("mixed sizes without GSO", 0, vec![10, 1200, 1200, 0, 900, 9000, 1, 2, 3], false, 0),
            ("more than a batch", GSO_UNTRIED, (0..80).map(|i| 1 + i % 3).collect(), false, GSO_UNTRIED),
            (
                "refused GSO falls back, then shrinks",
                GSO_UNTRIED,
                vec![1200, 1200, 1200, 500, 500, 7],
                true,
                500,
            ),
        ];
        for (name, gso_before, sizes, no_checksum, gso_after) in cases {
            let sink = bound();
            let sender = bound();
            let dests = [None, Some(SockAddr::from(sink.local_addr().expect("addr")))];
            for dest in dests {
                let connected = dest.is_none();
                let socket = if connected {
                    let s = bound();
                    s.connect(sink.local_addr().expect("addr")).expect("connect");
                    s
                } else {
                    sender.try_clone().expect("clone")
                };
                if no_checksum {
                    let one: libc::c_int = 1;
                    // SAFETY: a valid socket and an int option of the right size.
                    let rc = unsafe {
                        libc::setsockopt(
                            socket.as_raw_fd(),
                            libc::SOL_SOCKET,
                            libc::SO_NO_CHECK,
                            ptr::from_ref(&one).cast(),
                            size_of::<libc::c_int>() as libc::socklen_t,
                        )
                    };
                    assert_eq!(rc, 0, "SO_NO_CHECK: {}", io::Error::last_os_error());
                }
                let bufs: Vec<Vec<u8>> =
                    sizes.iter().enumerate().map(|(i, n)| payload(i as u8, *n)).collect();
                let slices: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
                let gso = Cell::new(gso_before);
                let mut done = 0;
                while done < slices.len() {
                    done += send(socket.as_raw_fd(), dest.as_ref(), &slices[done..], &gso)
                        .unwrap_or_else(|e| panic!("{name}: send: {e}"));
                }
                assert_eq!(gso.get(), gso_after, "{name}: what the route accepts");
                let got = receive(&sink, sizes.len());
                let from = socket.local_addr().expect("addr");
                for (i, (src, data)) in got.iter().enumerate() {
                    assert_eq!(*src, from, "{name} (connected {connected}): source of {i}");
                    assert_eq!(data, &bufs[i], "{name} (connected {connected}): datagram {i}");
                }
            }
        }
    }
}
