//! Frame codec for the control socket. Every frame starts with a fixed header
//! (`WEIR`, version, kind, generation, payload length, little-endian) so that a peer speaking
//! another version gets a clear error instead of a misread.

/// The frame format version this build speaks.
pub const FRAME_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"WEIR";
const HEADER_LEN: usize = 4 + 2 + 2 + 8 + 4;
/// Largest frame either side sends or accepts (snapshot bytes travel in a memfd instead).
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// A message between the planes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Data plane → control plane on connect: the generation it is serving (0 for none).
    Hello {
        /// Generation currently served.
        generation: u64,
    },
    /// Control plane → data plane: a snapshot of `size` bytes in the attached sealed memfd.
    Snapshot {
        /// Generation of the snapshot.
        generation: u64,
        /// Length in bytes of the encoded snapshot in the memfd.
        size: u64,
    },
    /// Control plane → data plane: an [`EndpointsDelta`](crate::delta::EndpointsDelta) on top
    /// of the snapshot being served, answered with `Applied` / `Rejected` like a snapshot.
    Endpoints {
        /// Generation the data plane serves once the delta is applied.
        generation: u64,
        /// Where the encoded delta is.
        body: DeltaBody,
    },
    /// Control plane → data plane: a [`ConfigDelta`](crate::config_delta::ConfigDelta) on top
    /// of the snapshot being served (routers, services, middlewares changed by name), answered
    /// with `Applied` / `Rejected` like a snapshot.
    Delta {
        /// Generation the data plane serves once the delta is applied.
        generation: u64,
        /// Where the encoded delta is.
        body: DeltaBody,
    },
    /// Data plane → control plane: the snapshot is serving.
    Applied {
        /// Generation applied.
        generation: u64,
    },
    /// Data plane → control plane: the snapshot was refused; the previous one keeps serving.
    Rejected {
        /// Generation refused.
        generation: u64,
        /// Why.
        reason: String,
    },
    /// Listening sockets handed over, one attached descriptor per entry, in order. Data plane
    /// → control plane: the listeners it serves (the control plane holds copies, so a data
    /// plane that dies leaves its sockets open with their accept queues). Control plane → data
    /// plane: listeners to adopt instead of binding new ones. A set larger than one frame's
    /// descriptors spans several frames, the first with `replace`.
    Listeners {
        /// This frame starts a new set (the receiver forgets the previous one).
        replace: bool,
        /// What each attached socket is.
        entries: Vec<ListenerEntry>,
    },
}

/// What a handed-over listening socket serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerEntry {
    /// Entrypoint name.
    pub entrypoint: String,
    /// Address it is bound to.
    pub address: std::net::SocketAddr,
}

/// Most descriptors one frame carries (the kernel's SCM_RIGHTS limit is 253).
pub const MAX_FDS_PER_FRAME: usize = 250;

/// Where the bytes of an endpoints delta travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaBody {
    /// In the frame itself (when it fits [`MAX_FRAME_LEN`]).
    Inline(Vec<u8>),
    /// In the attached sealed memfd, `size` bytes long (like snapshots).
    Memfd {
        /// Length in bytes of the encoded delta in the memfd.
        size: u64,
    },
}

impl DeltaBody {
    /// One tag byte: 0 = the delta follows, 1 = an 8-byte memfd size follows.
    fn encode(&self) -> Vec<u8> {
        match self {
            DeltaBody::Inline(bytes) => {
                let mut p = Vec::with_capacity(1 + bytes.len());
                p.push(0);
                p.extend_from_slice(bytes);
                p
            }
            DeltaBody::Memfd { size } => {
                let mut p = vec![1];
                p.extend_from_slice(&size.to_le_bytes());
                p
            }
        }
    }

    fn decode(kind: u16, payload: &[u8]) -> Result<DeltaBody, FrameError> {
        match payload.split_first() {
            Some((0, bytes)) => Ok(DeltaBody::Inline(bytes.to_vec())),
            Some((1, size)) => {
                let bytes: [u8; 8] = size.try_into().map_err(|_| FrameError::BadPayload {
                    kind,
                    reason: "delta memfd size must be 8 bytes",
                })?;
                Ok(DeltaBody::Memfd { size: u64::from_le_bytes(bytes) })
            }
            _ => Err(FrameError::BadPayload { kind, reason: "unknown delta body tag" }),
        }
    }
}

/// Largest encoded delta that travels inline in an `Endpoints` or `Delta` frame.
pub const MAX_INLINE_DELTA: usize = MAX_FRAME_LEN - HEADER_LEN - 1;

/// A frame that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than a header, or than the header announces.
    #[error("frame truncated: {got} bytes, need {need}")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Not a weir frame at all.
    #[error("not a weir frame (bad magic)")]
    BadMagic,
    /// A weir frame of a version this build does not speak.
    #[error("frame version {got} is not supported (this build speaks version {supported})")]
    UnsupportedVersion {
        /// Version received.
        got: u16,
        /// Version this build speaks.
        supported: u16,
    },
    /// A kind this version does not define.
    #[error("unknown frame kind {0}")]
    UnknownKind(u16),
    /// The payload does not fit the kind.
    #[error("bad payload for frame kind {kind}: {reason}")]
    BadPayload {
        /// The frame kind.
        kind: u16,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Frame {
    fn kind(&self) -> u16 {
        match self {
            Frame::Hello { .. } => 1,
            Frame::Snapshot { .. } => 2,
            Frame::Applied { .. } => 3,
            Frame::Rejected { .. } => 4,
            Frame::Endpoints { .. } => 5,
            Frame::Listeners { .. } => 6,
            Frame::Delta { .. } => 7,
        }
    }

    /// The generation the frame is about.
    pub fn generation(&self) -> u64 {
        match self {
            Frame::Hello { generation }
            | Frame::Snapshot { generation, .. }
            | Frame::Applied { generation }
            | Frame::Endpoints { generation, .. }
            | Frame::Delta { generation, .. }
            | Frame::Rejected { generation, .. } => *generation,
            Frame::Listeners { .. } => 0,
        }
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let payload: Vec<u8> = match self {
            Frame::Snapshot { size, .. } => size.to_le_bytes().to_vec(),
            Frame::Rejected { reason, .. } => {
                let mut r = reason.as_bytes().to_vec();
                r.truncate(MAX_FRAME_LEN - HEADER_LEN);
                r
            }
            // One tag byte: 0 = the delta follows, 1 = an 8-byte memfd size follows.
            Frame::Endpoints { body, .. } | Frame::Delta { body, .. } => body.encode(),
            // The replace flag, then `entrypoint<TAB>address<LF>` per socket.
            Frame::Listeners { replace, entries } => {
                let mut p = vec![u8::from(*replace)];
                for e in entries {
                    p.extend_from_slice(format!("{}\t{}\n", e.entrypoint, e.address).as_bytes());
                }
                p
            }
            Frame::Hello { .. } | Frame::Applied { .. } => Vec::new(),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FRAME_VERSION.to_le_bytes());
        out.extend_from_slice(&self.kind().to_le_bytes());
        out.extend_from_slice(&self.generation().to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Decodes one frame (the whole datagram).
    pub fn decode(buf: &[u8]) -> Result<Frame, FrameError> {
        if buf.len() < HEADER_LEN {
            return Err(FrameError::Truncated { got: buf.len(), need: HEADER_LEN });
        }
        if &buf[0..4] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        let u16_at = |i: usize| u16::from_le_bytes([buf[i], buf[i + 1]]);
        let version = u16_at(4);
        if version != FRAME_VERSION {
            return Err(FrameError::UnsupportedVersion { got: version, supported: FRAME_VERSION });
        }
        let kind = u16_at(6);
        let mut g = [0u8; 8];
        g.copy_from_slice(&buf[8..16]);
        let generation = u64::from_le_bytes(g);
        let mut l = [0u8; 4];
        l.copy_from_slice(&buf[16..20]);
        let len = u32::from_le_bytes(l) as usize;
        let need = HEADER_LEN.saturating_add(len);
        if buf.len() < need {
            return Err(FrameError::Truncated { got: buf.len(), need });
        }
        let payload = &buf[HEADER_LEN..need];
        match kind {
            1 => Ok(Frame::Hello { generation }),
            2 => {
                let bytes: [u8; 8] = payload
                    .try_into()
                    .map_err(|_| FrameError::BadPayload { kind, reason: "snapshot size must be 8 bytes" })?;
                Ok(Frame::Snapshot { generation, size: u64::from_le_bytes(bytes) })
            }
            3 => Ok(Frame::Applied { generation }),
            4 => {
                let reason = String::from_utf8(payload.to_vec())
                    .map_err(|_| FrameError::BadPayload { kind, reason: "reason is not UTF-8" })?;
                Ok(Frame::Rejected { generation, reason })
            }
            5 => Ok(Frame::Endpoints { generation, body: DeltaBody::decode(kind, payload)? }),
            7 => Ok(Frame::Delta { generation, body: DeltaBody::decode(kind, payload)? }),
            6 => {
                let bad = |reason| FrameError::BadPayload { kind, reason };
                let (flag, list) = payload.split_first().ok_or(bad("listeners frame without a flag"))?;
                let replace = match flag {
                    0 => false,
                    1 => true,
                    _ => return Err(bad("listeners flag must be 0 or 1")),
                };
                let list = std::str::from_utf8(list).map_err(|_| bad("listeners are not UTF-8"))?;
                let mut entries = Vec::new();
                for line in list.split_terminator('\n') {
                    let (entrypoint, address) =
                        line.split_once('\t').ok_or(bad("listener entry without a tab"))?;
                    let address = address.parse().map_err(|_| bad("listener address does not parse"))?;
                    entries.push(ListenerEntry { entrypoint: entrypoint.to_string(), address });
                }
                if entries.len() > MAX_FDS_PER_FRAME {
                    return Err(bad("more listeners than one frame carries"));
                }
                Ok(Frame::Listeners { replace, entries })
            }
            other => Err(FrameError::UnknownKind(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let frames = [
            Frame::Hello { generation: 0 },
            Frame::Snapshot { generation: 7, size: 1 << 40 },
            Frame::Applied { generation: u64::MAX },
            Frame::Rejected { generation: 3, reason: "entrypoint web: address in use".into() },
            Frame::Endpoints { generation: 8, body: DeltaBody::Inline(vec![1, 2, 3]) },
            Frame::Endpoints { generation: 8, body: DeltaBody::Inline(vec![0; MAX_INLINE_DELTA]) },
            Frame::Endpoints { generation: 9, body: DeltaBody::Memfd { size: 1 << 20 } },
            Frame::Delta { generation: 10, body: DeltaBody::Inline(vec![4, 5]) },
            Frame::Delta { generation: 11, body: DeltaBody::Memfd { size: 1 << 21 } },
            Frame::Listeners { replace: true, entries: vec![] },
            Frame::Listeners {
                replace: false,
                entries: vec![
                    ListenerEntry { entrypoint: "web".into(), address: "0.0.0.0:80".parse().expect("addr") },
                    ListenerEntry { entrypoint: "v6".into(), address: "[::1]:8443".parse().expect("addr") },
                ],
            },
        ];
        for f in frames {
            assert_eq!(Frame::decode(&f.encode()), Ok(f.clone()), "{f:?}");
        }
    }

    #[test]
    fn refuses_bad_input() {
        let good = Frame::Applied { generation: 1 }.encode();
        let mut v2 = good.clone();
        v2[4] = 2;
        let mut kind = good.clone();
        kind[6] = 99;
        let mut long = good.clone();
        long[16] = 10;
        let mut delta_tag = Frame::Endpoints { generation: 1, body: DeltaBody::Inline(vec![]) }.encode();
        delta_tag[HEADER_LEN] = 7;
        let cases: [(&str, &[u8], FrameError); 6] = [
            (
                "bad delta tag",
                &delta_tag,
                FrameError::BadPayload { kind: 5, reason: "unknown delta body tag" },
            ),
            ("empty", &[], FrameError::Truncated { got: 0, need: HEADER_LEN }),
            ("bad magic", b"HTTP/1.1 200 OK\r\n\r\n...", FrameError::BadMagic),
            ("newer version", &v2, FrameError::UnsupportedVersion { got: 2, supported: 1 }),
            ("unknown kind", &kind, FrameError::UnknownKind(99)),
            (
                "length beyond datagram",
                &long,
                FrameError::Truncated { got: HEADER_LEN, need: HEADER_LEN + 10 },
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(Frame::decode(bytes), Err(want), "case {name}");
        }
    }
}
