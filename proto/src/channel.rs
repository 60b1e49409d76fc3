//! The control socket and snapshot memfds: a SOCK_SEQPACKET Unix socket (mode 0600, peer uid
//! checked) carries [`Frame`]s; snapshot bytes travel in a memfd sealed against writes and
//! passed with SCM_RIGHTS. Blocking or non-blocking is the caller's choice (tokio wraps the fd
//! in `AsyncFd`; the data plane uses a plain thread). The only `unsafe`-free OS seam of proto.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::frame::{Frame, FrameError, MAX_FDS_PER_FRAME, MAX_FRAME_LEN};

/// Errors on the control channel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// An OS call failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The peer runs as a user that may not drive this data plane.
    #[error("peer uid {peer} is not allowed (expected {expected} or root)")]
    PeerNotAllowed {
        /// The peer's uid.
        peer: u32,
        /// Our uid.
        expected: u32,
    },
    /// The peer closed the connection.
    #[error("peer closed the connection")]
    Closed,
    /// A frame that does not decode.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A snapshot memfd that is not sealed or not the announced size.
    #[error("snapshot memfd refused: {0}")]
    BadMemfd(String),
}

fn io(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> ChannelError {
    move |e| ChannelError::Io { op, source: e.into() }
}

/// A listening control socket (the data plane's side).
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl Listener {
    /// Binds `path` (replacing a stale socket file), makes it mode 0600 and listens.
    pub fn bind(path: &Path) -> Result<Listener, ChannelError> {
        let _ = std::fs::remove_file(path);
        let fd =
            rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
                .map_err(io("socket"))?;
        let addr = SocketAddrUnix::new(path).map_err(io("socket path"))?;
        rustix::net::bind(&fd, &addr).map_err(io("bind control socket"))?;
        // Tighten the mode before listen(): nobody can connect before that.
        rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o600))
            .map_err(io("chmod control socket"))?;
        rustix::net::listen(&fd, 8).map_err(io("listen"))?;
        Ok(Listener { fd, path: path.to_path_buf() })
    }

    /// Accepts one connection and checks that the peer runs as our uid or as root.
    pub fn accept(&self) -> Result<Conn, ChannelError> {
        let fd = rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC).map_err(io("accept"))?;
        let cred = rustix::net::sockopt::socket_peercred(&fd).map_err(io("SO_PEERCRED"))?;
        let peer = cred.uid.as_raw();
        let expected = rustix::process::geteuid().as_raw();
        if peer != expected && peer != 0 {
            return Err(ChannelError::PeerNotAllowed { peer, expected });
        }
        Ok(Conn { fd })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One end of an established control connection.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
}

impl Conn {
    /// Connects to the data plane's socket at `path`.
    pub fn connect(path: &Path) -> Result<Conn, ChannelError> {
        let fd =
            rustix::net::socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
                .map_err(io("socket"))?;
        let addr = SocketAddrUnix::new(path).map_err(io("socket path"))?;
        rustix::net::connect(&fd, &addr).map_err(io("connect control socket"))?;
        Ok(Conn { fd })
    }

    /// Switches the socket to non-blocking mode (for async wrappers).
    pub fn set_nonblocking(&self) -> Result<(), ChannelError> {
        rustix::io::ioctl_fionbio(&self.fd, true).map_err(io("FIONBIO"))
    }

    /// Sends one frame, with `fd` attached when given.
    pub fn send(&self, frame: &Frame, fd: Option<BorrowedFd<'_>>) -> Result<(), ChannelError> {
        match fd {
            Some(fd) => self.send_fds(frame, &[fd]),
            None => self.send_fds(frame, &[]),
        }
    }

    /// Sends one frame with every descriptor of `fds` attached (at most
    /// [`MAX_FDS_PER_FRAME`]).
    pub fn send_fds(&self, frame: &Frame, fds: &[BorrowedFd<'_>]) -> Result<(), ChannelError> {
        let bytes = frame.encode();
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_FRAME))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = &fds[..fds.len().min(MAX_FDS_PER_FRAME)];
        if !fds.is_empty() {
            control.push(SendAncillaryMessage::ScmRights(fds));
        }
        rustix::net::sendmsg(&self.fd, &[IoSlice::new(&bytes)], &mut control, SendFlags::NOSIGNAL)
            .map_err(io("sendmsg"))?;
        Ok(())
    }

    /// Receives one frame and the descriptor attached to it, if any (extra ones are closed).
    pub fn recv(&self) -> Result<(Frame, Option<OwnedFd>), ChannelError> {
        let (frame, fds) = self.recv_fds()?;
        Ok((frame, fds.into_iter().next()))
    }

    /// Receives one frame and every descriptor attached to it, in order.
    pub fn recv_fds(&self) -> Result<(Frame, Vec<OwnedFd>), ChannelError> {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_FRAME + 3))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = rustix::net::recvmsg(
            &self.fd,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(io("recvmsg"))?;
        let mut received = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = m {
                received.extend(fds);
            }
        }
        if msg.bytes == 0 {
            return Err(ChannelError::Closed);
        }
        Ok((Frame::decode(&buf[..msg.bytes])?, received))
    }

    /// Whether an error means "try again later" on a non-blocking socket.
    pub fn would_block(err: &ChannelError) -> bool {
        matches!(err, ChannelError::Io { source, .. } if source.kind() == std::io::ErrorKind::WouldBlock)
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW).union(SealFlags::WRITE);

/// Writes `bytes` into a new memfd and seals it against any further change.
pub fn sealed_memfd(bytes: &[u8]) -> Result<OwnedFd, ChannelError> {
    let fd = rustix::fs::memfd_create("weir-snapshot", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .map_err(io("memfd_create"))?;
    let mut off = 0;
    while off < bytes.len() {
        off += rustix::io::write(&fd, &bytes[off..]).map_err(io("write memfd"))?;
    }
    rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS | SealFlags::SEAL).map_err(io("seal memfd"))?;
    Ok(fd)
}

/// Reads a snapshot memfd after checking it is sealed and holds exactly `size` bytes.
pub fn read_sealed(fd: &OwnedFd, size: u64) -> Result<Vec<u8>, ChannelError> {
    let seals = rustix::fs::fcntl_get_seals(fd).map_err(io("F_GET_SEALS"))?;
    if !seals.contains(REQUIRED_SEALS) {
        return Err(ChannelError::BadMemfd(format!("missing seals (has {seals:?})")));
    }
    let st = rustix::fs::fstat(fd).map_err(io("fstat memfd"))?;
    if st.st_size as u64 != size {
        return Err(ChannelError::BadMemfd(format!("holds {} bytes, frame announced {size}", st.st_size)));
    }
    let len =
        usize::try_from(size).map_err(|_| ChannelError::BadMemfd("size does not fit in memory".into()))?;
    let mut out = vec![0u8; len];
    let mut off = 0;
    while off < len {
        let n = rustix::io::pread(fd, &mut out[off..], off as u64).map_err(io("read memfd"))?;
        if n == 0 {
            return Err(ChannelError::BadMemfd("short read".into()));
        }
        off += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_crosses_socket_in_sealed_memfd() {
        let dir = std::env::temp_dir().join(format!("weir-proto-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ctl.sock");
        let listener = Listener::bind(&path).expect("bind");
        let mode = std::fs::metadata(&path).expect("stat").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let client = Conn::connect(&path).expect("connect");
        let server = listener.accept().expect("accept");

        let payload = vec![42u8; 300_000];
        let memfd = sealed_memfd(&payload).expect("memfd");
        client
            .send(&Frame::Snapshot { generation: 9, size: payload.len() as u64 }, Some(memfd.as_fd()))
            .expect("send");
        let (frame, fd) = server.recv().expect("recv");
        assert_eq!(frame, Frame::Snapshot { generation: 9, size: payload.len() as u64 });
        let fd = fd.expect("fd attached");
        assert_eq!(read_sealed(&fd, payload.len() as u64).expect("read"), payload);
        // The receiver cannot change it.
        assert!(rustix::io::write(&fd, b"x").is_err());
        assert!(matches!(read_sealed(&fd, 5), Err(ChannelError::BadMemfd(_))));

        drop(client);
        assert!(matches!(server.recv(), Err(ChannelError::Closed)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unsealed_memfd_is_refused() {
        let fd = rustix::fs::memfd_create("t", MemfdFlags::CLOEXEC).expect("memfd");
        assert!(matches!(read_sealed(&fd, 0), Err(ChannelError::BadMemfd(_))));
    }
}
