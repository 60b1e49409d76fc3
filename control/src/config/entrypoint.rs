//! Entrypoint options (`--entryPoints.<name>.*`): address syntax `[host]:port[/tcp]` and
//! forwarded-headers trust lists, turned into the snapshot's `EntryPoint`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use weir_proto::snapshot::{EntryPoint, ForwardedHeaders};

use super::entrypoint_http::EntryPointHttp;

/// One configured entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointConfig {
    /// Name as written on the command line.
    pub name: String,
    /// Listening address.
    pub address: SocketAddr,
    /// Member of the default set for routers that name no entrypoint.
    pub as_default: bool,
    /// Forwarded-headers trust.
    pub forwarded_headers: ForwardedHeaders,
    /// `http.*` and `http2.*` options.
    pub http: EntryPointHttp,
}

impl EntryPointConfig {
    /// Traefik's implicit entrypoint when none is configured: `http` on `:80`.
    pub fn implicit_http() -> EntryPointConfig {
        EntryPointConfig {
            name: "http".into(),
            address: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80),
            as_default: false,
            forwarded_headers: ForwardedHeaders::default(),
            http: EntryPointHttp::default(),
        }
    }

    /// The snapshot form.
    pub fn to_snapshot(&self) -> EntryPoint {
        EntryPoint {
            name: self.name.clone(),
            address: self.address,
            forwarded_headers: self.forwarded_headers.clone(),
            http2_max_concurrent_streams: self.http.max_concurrent_streams,
        }
    }
}

/// Parses `[host]:port[/tcp]`; `:port` listens on every IPv4 address, as Traefik does.
pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    let (addr, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    match proto.as_str() {
        "tcp" => {}
        "udp" => return Err("UDP entrypoints are not supported yet".into()),
        other => return Err(format!("unknown protocol `{other}` (expected tcp)")),
    }
    let (host, port) = addr.rsplit_once(':').ok_or("expected [host]:port")?;
    let port: u16 = port.parse().map_err(|_| format!("`{port}` is not a port number"))?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if ip.is_ipv6() && bare == host {
            return Err("IPv6 addresses must be in brackets: [::1]:port".into());
        }
        return Ok(SocketAddr::new(ip, port));
    }
    // A host name (Traefik resolves it too): the first address it resolves to.
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))
}

/// Parses a comma-separated list of IPs and CIDRs.
pub fn parse_trusted_ips(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (ip, prefix) = match item.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (item, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| format!("`{item}` is not an IP address or CIDR"))?;
        if let Some(p) = prefix {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            match p.parse::<u8>() {
                Ok(n) if n <= max => {}
                _ => return Err(format!("`{item}` has a bad prefix length")),
            }
        }
        out.push(item.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let ok = [
            (":8000", "0.0.0.0:8000"),
            (":80/tcp", "0.0.0.0:80"),
            (":80/TCP", "0.0.0.0:80"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::]:443", "[::]:443"),
            ("[::1]:0", "[::1]:0"),
        ];
        for (input, want) in ok {
            assert_eq!(parse_address(input), Ok(want.parse().expect("test address")), "{input}");
        }
        let bad = [
            (":53/udp", "UDP entrypoints are not supported yet"),
            (":80/sctp", "unknown protocol"),
            ("8000", "expected [host]:port"),
            (":http", "is not a port number"),
            (":70000", "is not a port number"),
            ("::1:80", "must be in brackets"),
        ];
        for (input, want) in bad {
            let err = parse_address(input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn trusted_ips() {
        let cases: [(&str, Option<&[&str]>); 5] = [
            ("10.0.0.0/8,127.0.0.1", Some(&["10.0.0.0/8", "127.0.0.1"])),
            (" ::1 , fd00::/8 ", Some(&["::1", "fd00::/8"])),
            ("", Some(&[])),
            ("10.0.0.0/33", None),
            ("example.com", None),
        ];
        for (input, want) in cases {
            let got = parse_trusted_ips(input).ok();
            assert_eq!(
                got.as_deref().map(|v| v.iter().map(String::as_str).collect::<Vec<_>>()),
                want.map(|w| w.to_vec()),
                "{input:?}"
            );
        }
    }
}
