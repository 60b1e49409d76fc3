//! Sans-IO PROXY protocol (HAProxy's, versions 1 and 2): decoding the header a load balancer in
//! front of weir sends first (entrypoint `proxyProtocol`), and encoding the header weir sends
//! to TCP backends (`proxyProtocol.version`). Takes bytes, returns decisions; never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, CRLF included (the specification's limit).
const V1_MAX: usize = 107;

/// What a PROXY header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The original client (`None` for `UNKNOWN`, `LOCAL` or an unsupported family: the
    /// connection's own peer address stays in use).
    pub source: Option<SocketAddr>,
    /// The address the client connected to.
    pub destination: Option<SocketAddr>,
}

/// The outcome of looking at a connection's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Not enough bytes yet.
    NeedMore,
    /// The connection does not start with a PROXY header.
    Absent,
    /// A header of `len` bytes, to be skipped.
    Header(Header, usize),
}

/// A header that starts right but is broken (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad PROXY protocol header: {0}")]
pub struct ProxyError(pub &'static str);

/// Decodes a v1 or v2 header at the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Decoded, ProxyError> {
    const V1: &[u8] = b"PROXY ";
    let n = bytes.len().min(V1.len());
    if n > 0 && bytes[..n] == V1[..n] {
        return if n < V1.len() { Ok(Decoded::NeedMore) } else { decode_v1(bytes) };
    }
    let n = bytes.len().min(V2_SIGNATURE.len());
    if n > 0 && bytes[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() { Ok(Decoded::NeedMore) } else { decode_v2(bytes) };
    }
    if bytes.is_empty() {
        return Ok(Decoded::NeedMore);
    }
    Ok(Decoded::Absent)
}

fn decode_v1(bytes: &[u8]) -> Result<Decoded, ProxyError> {
    let Some(end) = bytes.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if bytes.len() >= V1_MAX {
            Err(ProxyError("v1 header longer than 107 bytes"))
        } else {
            Ok(Decoded::NeedMore)
        };
    };
    if end == 0 || bytes[end - 1] != b'\r' {
        return Err(ProxyError("v1 header does not end with CRLF"));
    }
    let line = std::str::from_utf8(&bytes[..end - 1]).map_err(|_| ProxyError("v1 header is not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Header { source: None, destination: None },
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s.parse().map_err(|_| ProxyError("v1 address does not parse"))?;
                match (*family, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(ProxyError("v1 address does not match its family")),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                if s.is_empty()
                    || s.len() > 5
                    || !s.bytes().all(|b| b.is_ascii_digit())
                    || (s.len() > 1 && s.starts_with('0'))
                {
                    return Err(ProxyError("v1 port does not parse"));
                }
                s.parse().map_err(|_| ProxyError("v1 port does not parse"))
            };
            Header {
                source: Some(SocketAddr::new(ip(src)?, port(sport)?)),
                destination: Some(SocketAddr::new(ip(dst)?, port(dport)?)),
            }
        }
        _ => return Err(ProxyError("v1 header fields are wrong")),
    };
    Ok(Decoded::Header(header, end + 1))
}

fn decode_v2(bytes: &[u8]) -> Result<Decoded, ProxyError> {
    let Some(fixed) = bytes.get(..16) else { return Ok(Decoded::NeedMore) };
    let ver_cmd = fixed[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError("v2 version is not 2"));
    }
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let Some(body) = bytes.get(16..16 + len) else { return Ok(Decoded::NeedMore) };
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError("v2 command is neither LOCAL nor PROXY")),
    };
    let unknown = Header { source: None, destination: None };
    if local {
        return Ok(Decoded::Header(unknown, 16 + len));
    }
    let header = match fixed[13] {
        // TCP or UDP over IPv4.
        0x11 | 0x12 => {
            let a = body.get(..12).ok_or(ProxyError("v2 IPv4 addresses are truncated"))?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Header {
                source: Some(SocketAddr::new(ip(0), port(8))),
                destination: Some(SocketAddr::new(ip(4), port(10))),
            }
        }
        0x21 | 0x22 => {
            let a = body.get(..36).ok_or(ProxyError("v2 IPv6 addresses are truncated"))?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            Header {
                source: Some(SocketAddr::new(ip(0), port(32))),
                destination: Some(SocketAddr::new(ip(16), port(34))),
            }
        }
        // UNSPEC or Unix sockets: keep the connection's own address.
        0x00 | 0x31 | 0x32 => unknown,
        _ => return Err(ProxyError("v2 address family is unknown")),
    };
    Ok(Decoded::Header(header, 16 + len))
}

/// The v1 header for a connection from `source` to `destination`.
pub fn encode_v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

/// The v2 header (command PROXY, TCP) for a connection from `source` to `destination`.
pub fn encode_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (source, destination) = same_family(source, destination);
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
        }
    }
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&destination.port().to_be_bytes());
    out
}

/// Mixed families are written as IPv6 (IPv4 addresses mapped).
fn same_family(s: SocketAddr, d: SocketAddr) -> (SocketAddr, SocketAddr) {
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let six = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => a,
    };
    (six(s), six(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn decodes() {
        let v4 = Header { source: Some(addr("1.2.3.4:5678")), destination: Some(addr("10.0.0.1:80")) };
        let v6 = Header { source: Some(addr("[2001:db8::1]:1")), destination: Some(addr("[::1]:2")) };
        let unknown = Header { source: None, destination: None };
        let v1 = b"PROXY TCP4 1.2.3.4 10.0.0.1 5678 80\r\nGET /".to_vec();
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        let cases: Vec<(&str, Vec<u8>, Result<Decoded, ProxyError>)> = vec![
            ("v1 tcp4", v1.clone(), Ok(Decoded::Header(v4, 37))),
            ("v1 prefix", v1[..20].to_vec(), Ok(Decoded::NeedMore)),
            ("v1 first bytes", b"PRO".to_vec(), Ok(Decoded::NeedMore)),
            ("v1 tcp6", b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n".to_vec(), Ok(Decoded::Header(v6, 32))),
            ("v1 unknown", b"PROXY UNKNOWN\r\n".to_vec(), Ok(Decoded::Header(unknown, 15))),
            (
                "v1 family mismatch",
                b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec(),
                Err(ProxyError("v1 address does not match its family")),
            ),
            (
                "v1 bad port",
                b"PROXY TCP4 1.2.3.4 1.2.3.4 99999 2\r\n".to_vec(),
                Err(ProxyError("v1 port does not parse")),
            ),
            (
                "v1 no crlf",
                b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n".to_vec(),
                Err(ProxyError("v1 header does not end with CRLF")),
            ),
            (
                "v1 too long",
                [b"PROXY ".as_slice(), &[b'x'; 120]].concat(),
                Err(ProxyError("v1 header longer than 107 bytes")),
            ),
            ("v2 tcp4", encode_v2(addr("1.2.3.4:5678"), addr("10.0.0.1:80")), Ok(Decoded::Header(v4, 28))),
            ("v2 tcp6", encode_v2(addr("[2001:db8::1]:1"), addr("[::1]:2")), Ok(Decoded::Header(v6, 52))),
            (
                "v2 truncated",
                encode_v2(addr("1.2.3.4:5678"), addr("10.0.0.1:80"))[..20].to_vec(),
                Ok(Decoded::NeedMore),
            ),
            ("v2 local", local, Ok(Decoded::Header(unknown, 16))),
            ("http", b"GET / HTTP/1.1\r\n".to_vec(), Ok(Decoded::Absent)),
            ("tls", vec![0x16, 3, 1], Ok(Decoded::Absent)),
            ("empty", vec![], Ok(Decoded::NeedMore)),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(decode(&bytes), want, "case {name}");
        }
    }

    #[test]
    fn v1_round_trips() {
        let h = encode_v1(addr("1.2.3.4:5678"), addr("10.0.0.1:80"));
        assert_eq!(h, b"PROXY TCP4 1.2.3.4 10.0.0.1 5678 80\r\n");
        let mixed = encode_v1(addr("1.2.3.4:5678"), addr("[::1]:80"));
        assert_eq!(mixed, b"PROXY TCP6 ::ffff:1.2.3.4 ::1 5678 80\r\n");
    }
}
