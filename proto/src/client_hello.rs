//! Sans-IO peek at the first bytes of a connection: tells a TLS ClientHello from anything else
//! and, for a ClientHello, extracts the SNI and the ALPN protocols, without consuming or
//! answering anything (TCP routers route on them, then the bytes go on to a backend untouched
//! or to the local TLS handshake). Never panics on any input; bounded in what it buffers.

/// The most bytes a peek waits for before giving up on a ClientHello (Traefik reads at most a
/// record's worth; several records are allowed here for very large hellos).
pub const MAX_PEEK: usize = 64 * 1024;

/// What the bytes seen so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// Not enough bytes to decide.
    NeedMore,
    /// The connection does not open with a TLS handshake record.
    NotTls,
    /// A TLS ClientHello.
    Tls(ClientHello),
    /// A TLS handshake record that is not a well-formed ClientHello (routed as TLS without SNI;
    /// the TLS handshake will refuse it).
    Malformed,
}

/// What routing needs from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    /// The SNI host name, lower-cased, trailing dot removed; `None` when absent.
    pub server_name: Option<String>,
    /// ALPN protocols offered, in the client's order.
    pub alpn: Vec<String>,
}

const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 1;
const EXT_SNI: u16 = 0;
const EXT_ALPN: u16 = 16;

/// Looks at the first bytes of a connection.
pub fn peek(bytes: &[u8]) -> Peek {
    match bytes.first() {
        None => return Peek::NeedMore,
        Some(&HANDSHAKE) => {}
        Some(_) => return Peek::NotTls,
    }
    // Gather handshake bytes from consecutive handshake records until the message is whole.
    let mut message = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = bytes.get(at..at + 5) else {
            return if bytes.len() >= MAX_PEEK { Peek::Malformed } else { Peek::NeedMore };
        };
        if header[0] != HANDSHAKE {
            return Peek::Malformed;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > 16_384 + 2048 {
            return Peek::Malformed;
        }
        let Some(payload) = bytes.get(at + 5..at + 5 + len) else {
            return if bytes.len() >= MAX_PEEK { Peek::Malformed } else { Peek::NeedMore };
        };
        message.extend_from_slice(payload);
        at += 5 + len;
        if message.len() >= 4 {
            if message[0] != CLIENT_HELLO {
                return Peek::Malformed;
            }
            let body_len =
                (usize::from(message[1]) << 16) | (usize::from(message[2]) << 8) | usize::from(message[3]);
            if message.len() >= 4 + body_len {
                return match parse_body(&message[4..4 + body_len]) {
                    Some(hello) => Peek::Tls(hello),
                    None => Peek::Malformed,
                };
            }
            if 4 + body_len > MAX_PEEK {
                return Peek::Malformed;
            }
        }
    }
}

/// A cursor over big-endian fields.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn parse_body(body: &[u8]) -> Option<ClientHello> {
    let mut r = Reader(body);
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut hello = ClientHello::default();
    if r.0.is_empty() {
        return Some(hello); // No extensions (very old clients).
    }
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        match kind {
            EXT_SNI => {
                let mut list = Reader(Reader(data).vec16()?);
                while !list.0.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 && hello.server_name.is_none() {
                        let name = std::str::from_utf8(name).ok()?;
                        let name = name.strip_suffix('.').unwrap_or(name);
                        hello.server_name = Some(name.to_ascii_lowercase());
                    }
                }
            }
            EXT_ALPN => {
                let mut list = Reader(Reader(data).vec16()?);
                while !list.0.is_empty() {
                    let proto = list.vec8()?;
                    hello.alpn.push(String::from_utf8_lossy(proto).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(hello)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello record with the given SNI and ALPN protocols.
    pub(crate) fn hello(sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(name) = sni {
            let mut entry = vec![0u8];
            entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
            entry.extend_from_slice(name.as_bytes());
            let mut list = (entry.len() as u16).to_be_bytes().to_vec();
            list.extend_from_slice(&entry);
            exts.extend_from_slice(&EXT_SNI.to_be_bytes());
            exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
            exts.extend_from_slice(&list);
        }
        if !alpn.is_empty() {
            let mut entries = Vec::new();
            for p in alpn {
                entries.push(p.len() as u8);
                entries.extend_from_slice(p.as_bytes());
            }
            let mut list = (entries.len() as u16).to_be_bytes().to_vec();
            list.extend_from_slice(&entries);
            exts.extend_from_slice(&EXT_ALPN.to_be_bytes());
            exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
            exts.extend_from_slice(&list);
        }
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut msg = vec![CLIENT_HELLO];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        let mut record = vec![HANDSHAKE, 3, 1];
        record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        record.extend_from_slice(&msg);
        record
    }

    #[test]
    fn peeks() {
        let full = hello(Some("Example.COM."), &["h2", "http/1.1"]);
        let want = ClientHello {
            server_name: Some("example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
        };
        // The same hello split into two records.
        let msg = &full[5..];
        let mut split = vec![HANDSHAKE, 3, 1, 0, 10];
        split.extend_from_slice(&msg[..10]);
        split.extend_from_slice(&[HANDSHAKE, 3, 1]);
        split.extend_from_slice(&((msg.len() - 10) as u16).to_be_bytes());
        split.extend_from_slice(&msg[10..]);
        let cases: Vec<(&str, Vec<u8>, Peek)> = vec![
            ("empty", vec![], Peek::NeedMore),
            ("http", b"GET / HTTP/1.1\r\n".to_vec(), Peek::NotTls),
            ("one byte of tls", vec![HANDSHAKE], Peek::NeedMore),
            ("partial", full[..full.len() - 3].to_vec(), Peek::NeedMore),
            ("whole", full.clone(), Peek::Tls(want.clone())),
            ("split over records", split, Peek::Tls(want)),
            ("no sni", hello(None, &[]), Peek::Tls(ClientHello::default())),
            ("not a client hello", vec![HANDSHAKE, 3, 1, 0, 4, 2, 0, 0, 0], Peek::Malformed),
            ("zero length record", vec![HANDSHAKE, 3, 1, 0, 0], Peek::Malformed),
            ("truncated body", vec![HANDSHAKE, 3, 1, 0, 5, 1, 0, 0, 1, 3], Peek::Malformed),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(peek(&bytes), want, "case {name}");
        }
    }
}
