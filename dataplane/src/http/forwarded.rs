//! Traefik's always-on forwarded-header processing at the entrypoint: client-sent
//! `X-Forwarded-*` / `X-Real-Ip` are dropped unless the peer is trusted, then weir sets
//! `X-Real-Ip`, `X-Forwarded-{Proto,Host,Port,Server}` (when absent) and appends the peer to
//! `X-Forwarded-For`. Values that repeat from request to request (the client's IP, the port)
//! are rendered once per worker and shared, so the common case allocates nothing.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_SERVER: HeaderName = HeaderName::from_static("x-forwarded-server");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers a client may only set when trusted (Traefik's list), lower-case.
const MANAGED: [&str; 13] = [
    "x-forwarded-proto",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    "x-forwarded-scheme",
    "x-scheme",
    "x-real-ip",
];

/// Whether weir manages this header (so `Connection` cannot strip it); any letter case.
pub fn is_managed(name: &str) -> bool {
    MANAGED.iter().any(|m| m.eq_ignore_ascii_case(name))
}

/// What the entrypoint knows about the connection.
pub struct Context<'a> {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the peer's forwarded headers are kept.
    pub trusted: bool,
    /// The original `Host` (or authority) of the request.
    pub host: Option<&'a str>,
    /// The `Host` header `host` was read from, if it was (its value is reused as is).
    pub host_value: Option<&'a HeaderValue>,
    /// This machine's name, for `X-Forwarded-Server`.
    pub server: &'a HeaderValue,
    /// Connection is TLS.
    pub tls: bool,
    /// Request asks for a WebSocket upgrade.
    pub websocket: bool,
}

/// Rewrites the request headers as Traefik's entrypoint and reverse proxy do.
pub fn apply(headers: &mut HeaderMap, cx: &Context<'_>) {
    apply_entrypoint(headers, cx);
    append_for(headers, cx.peer);
}

/// The entrypoint's part, which runs before the router's middlewares: untrusted forwarded
/// headers dropped, `X-Real-Ip` and `X-Forwarded-{Proto,Host,Port,Server}` set when absent.
pub fn apply_entrypoint(headers: &mut HeaderMap, cx: &Context<'_>) {
    if !cx.trusted && headers.keys().any(|k| is_managed_spelling(k.as_str())) {
        let doomed: Vec<HeaderName> =
            headers.keys().filter(|k| is_managed_spelling(k.as_str())).cloned().collect();
        for k in doomed {
            headers.remove(k);
        }
    }
    // From an untrusted peer none of them is left: no lookups before the inserts.
    let present = |headers: &HeaderMap, name: &HeaderName| cx.trusted && headers.contains_key(name);
    if !present(headers, &X_REAL_IP) {
        headers.insert(X_REAL_IP, ip_value(cx.peer.ip()));
    }
    if !present(headers, &X_FORWARDED_PROTO) {
        let proto = match (cx.tls, cx.websocket) {
            (false, false) => "http",
            (true, false) => "https",
            (false, true) => "ws",
            (true, true) => "wss",
        };
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(host) = cx.host {
        if !present(headers, &X_FORWARDED_HOST) {
            let v = cx.host_value.cloned().unwrap_or_else(|| value(host));
            headers.insert(X_FORWARDED_HOST, v);
        }
    }
    if !present(headers, &X_FORWARDED_PORT) {
        let v = match cx.host.and_then(host_port) {
            Some(port) => port_value(port),
            None => HeaderValue::from_static(if cx.tls { "443" } else { "80" }),
        };
        headers.insert(X_FORWARDED_PORT, v);
    }
    if !present(headers, &X_FORWARDED_SERVER) {
        headers.insert(X_FORWARDED_SERVER, cx.server.clone());
    }
}

/// The reverse proxy's part, after the middlewares: the peer appended to `X-Forwarded-For`
/// (prior lines joined with ", ").
pub fn append_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let prior: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    let xff = if prior.is_empty() {
        ip_value(peer.ip())
    } else {
        value(&format!("{}, {}", prior.join(", "), peer.ip()))
    };
    headers.insert(X_FORWARDED_FOR, xff);
}

/// Whether a header name is one of [`MANAGED`], also in the underscore spelling
/// (`X_Forwarded_For`) that some backends read as the same header.
fn is_managed_spelling(n: &str) -> bool {
    // Every managed name starts with `x` and is 6 to 32 bytes long: most headers stop here.
    if !n.starts_with('x') || n.len() < 6 {
        return false;
    }
    MANAGED.iter().any(|m| {
        m.len() == n.len() && m.bytes().zip(n.bytes()).all(|(a, b)| a == b || (a == b'-' && b == b'_'))
    })
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Slots of the per-worker rendering caches (direct-mapped: a collision costs one rendering).
const IP_SLOTS: usize = 256;
const PORT_SLOTS: usize = 8;

/// Header values rendered for recent client IPs and ports on this worker thread. A keep-alive
/// client sends many requests from one address: its `X-Real-Ip` / `X-Forwarded-For` value is
/// formatted once and then shared (a `HeaderValue` clone is a reference count).
struct Rendered {
    ips: [Option<(IpAddr, HeaderValue)>; IP_SLOTS],
    ports: [Option<(u16, HeaderValue)>; PORT_SLOTS],
}

thread_local! {
    static RENDERED: RefCell<Rendered> = const {
        RefCell::new(Rendered { ips: [const { None }; IP_SLOTS], ports: [const { None }; PORT_SLOTS] })
    };
}

/// The text of `ip` as a header value.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let slot = match ip {
        IpAddr::V4(v4) => u32::from(v4).wrapping_mul(0x9E37_79B9) >> 24,
        IpAddr::V6(v6) => {
            let n = u128::from(v6);
            ((n as u64 ^ (n >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u32
        }
    } as usize
        % IP_SLOTS;
    let cached = RENDERED.with_borrow(|r| match &r.ips[slot] {
        Some((k, v)) if *k == ip => Some(v.clone()),
        _ => None,
    });
    cached.unwrap_or_else(|| {
        let v = render(format_args!("{ip}"));
        RENDERED.with_borrow_mut(|r| r.ips[slot] = Some((ip, v.clone())));
        v
    })
}

/// The digits of a `Host` port as a header value.
fn port_value(port: &str) -> HeaderValue {
    // Only the canonical spelling is cached (`0080` is sent on as written).
    let Some(n) = port.parse::<u16>().ok().filter(|_| !port.starts_with('0')) else { return value(port) };
    let slot = usize::from(n) % PORT_SLOTS;
    let cached = RENDERED.with_borrow(|r| match &r.ports[slot] {
        Some((k, v)) if *k == n => Some(v.clone()),
        _ => None,
    });
    cached.unwrap_or_else(|| {
        let v = value(port);
        RENDERED.with_borrow_mut(|r| r.ports[slot] = Some((n, v.clone())));
        v
    })
}

/// Formats into a stack buffer, then makes the header value (its one allocation).
fn render(args: std::fmt::Arguments<'_>) -> HeaderValue {
    use std::io::Write;
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    match cursor.write_fmt(args) {
        Ok(()) => {
            let n = cursor.position() as usize;
            HeaderValue::from_bytes(&buf[..n]).unwrap_or_else(|_| HeaderValue::from_static(""))
        }
        Err(_) => HeaderValue::from_static(""),
    }
}

/// The port of a `Host` value, if it names one.
fn host_port(host: &str) -> Option<&str> {
    let after_bracket = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    let (_, port) = after_bracket.rsplit_once(':')?;
    (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(trusted: bool, host: Option<&str>, input: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in input {
            h.append(HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        let server = HeaderValue::from_static("node-1");
        let cx = Context {
            peer: "10.1.2.3:5555".parse().expect("addr"),
            trusted,
            host,
            host_value: None,
            server: &server,
            tls: false,
            websocket: false,
        };
        apply(&mut h, &cx);
        h
    }

    #[test]
    fn untrusted_client_headers_are_replaced() {
        let h = run(
            false,
            Some("example.com:8000"),
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-real-ip", "6.6.6.6"),
                ("x_forwarded_host", "evil"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-real-ip"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com:8000");
        assert_eq!(h["x-forwarded-port"], "8000");
        assert_eq!(h["x-forwarded-server"], "node-1");
        assert!(!h.contains_key("x_forwarded_host"));
    }

    #[test]
    fn trusted_client_headers_are_kept_and_appended() {
        let h = run(
            true,
            Some("example.com"),
            &[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "2.2.2.2"), ("x-forwarded-proto", "https")],
        );
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-port"], "80");
    }

    #[test]
    fn rendered_values() {
        // Twice each: the second answer comes from the worker's cache.
        let ips = [
            ("10.1.2.3", "10.1.2.3"),
            ("::1", "::1"),
            ("2001:db8::7", "2001:db8::7"),
            ("10.1.2.4", "10.1.2.4"),
        ];
        for _ in 0..2 {
            for (ip, want) in ips {
                assert_eq!(ip_value(ip.parse().expect("ip")), want, "{ip}");
            }
        }
        for _ in 0..2 {
            for (port, want) in
                [("8000", "8000"), ("0080", "0080"), ("80", "80"), ("8", "8"), ("99999", "99999")]
            {
                assert_eq!(port_value(port), want, "{port}");
            }
        }
    }

    #[test]
    fn ports() {
        let cases = [("a.com", None), ("a.com:81", Some("81")), ("[::1]:9", Some("9")), ("[::1]", None)];
        for (host, want) in cases {
            assert_eq!(host_port(host), want, "{host}");
        }
    }
}
