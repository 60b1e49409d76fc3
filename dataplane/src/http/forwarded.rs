//! Traefik's always-on forwarded-header processing at the entrypoint: client-sent
//! `X-Forwarded-*` / `X-Real-Ip` are dropped unless the peer is trusted, then weir sets
//! `X-Real-Ip`, `X-Forwarded-{Proto,Host,Port,Server}` (when absent) and appends the peer to
//! `X-Forwarded-For`.

use std::net::SocketAddr;

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

/// Whether weir manages this header (so `Connection` cannot strip it).
pub fn is_managed(name: &HeaderName) -> bool {
    MANAGED.contains(&name.as_str())
}

/// What the entrypoint knows about the connection.
pub struct Context<'a> {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the peer's forwarded headers are kept.
    pub trusted: bool,
    /// The original `Host` (or authority) of the request.
    pub host: Option<&'a str>,
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
    if !cx.trusted {
        // Also the underscore spellings (`X_Forwarded_For`), which some backends read as the same.
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|k| {
                let n = k.as_str();
                MANAGED.iter().any(|m| {
                    m.len() == n.len()
                        && m.bytes().zip(n.bytes()).all(|(a, b)| a == b || (a == b'-' && b == b'_'))
                })
            })
            .cloned()
            .collect();
        for k in doomed {
            headers.remove(k);
        }
    }
    let peer_ip = cx.peer.ip().to_string();
    if !headers.contains_key(&X_REAL_IP) {
        headers.insert(X_REAL_IP, value(&peer_ip));
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        let proto = match (cx.tls, cx.websocket) {
            (false, false) => "http",
            (true, false) => "https",
            (false, true) => "ws",
            (true, true) => "wss",
        };
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if let Some(host) = cx.host {
        if !headers.contains_key(&X_FORWARDED_HOST) {
            headers.insert(X_FORWARDED_HOST, value(host));
        }
    }
    if !headers.contains_key(&X_FORWARDED_PORT) {
        let port = cx.host.and_then(host_port).unwrap_or(if cx.tls { "443" } else { "80" });
        headers.insert(X_FORWARDED_PORT, value(port));
    }
    if !headers.contains_key(&X_FORWARDED_SERVER) {
        headers.insert(X_FORWARDED_SERVER, cx.server.clone());
    }
}

/// The reverse proxy's part, after the middlewares: the peer appended to `X-Forwarded-For`
/// (prior lines joined with ", ").
pub fn append_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let peer_ip = peer.ip().to_string();
    let prior: Vec<&str> = headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
    let xff = if prior.is_empty() { peer_ip } else { format!("{}, {}", prior.join(", "), peer_ip) };
    headers.insert(X_FORWARDED_FOR, value(&xff));
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
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
    fn ports() {
        let cases = [("a.com", None), ("a.com:81", Some("81")), ("[::1]:9", Some("9")), ("[::1]", None)];
        for (host, want) in cases {
            assert_eq!(host_port(host), want, "{host}");
        }
    }
}
