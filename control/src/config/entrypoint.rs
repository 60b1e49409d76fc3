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
    /// `proxyProtocol.insecure` / `proxyProtocol.trustedIPs`; `None` when neither is set.
    pub proxy_protocol: Option<ForwardedHeaders>,
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
            proxy_protocol: None,
        }
    }

    /// Traefik's implicit `traefik` entrypoint on `:8080`, for the API, ping and metrics.
    pub fn implicit_traefik() -> EntryPointConfig {
        EntryPointConfig {
            name: weir_proto::api::INTERNAL_ENTRYPOINT.into(),
            address: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                weir_proto::api::INTERNAL_ENTRYPOINT_PORT,
            ),
            ..EntryPointConfig::implicit_http()
        }
    }

    /// The snapshot form of `proxyProtocol`, when configured.
    pub fn proxy_protocol_snapshot(&self) -> Option<weir_proto::tcp::EntryPointProxyProtocol> {
        let p = self.proxy_protocol.as_ref()?;
        Some(weir_proto::tcp::EntryPointProxyProtocol {
            entrypoint: self.name.clone(),
            insecure: p.insecure,
            trusted_ips: p.trusted_ips.clone(),
        })
    }

    /// The snapshot form.
    pub fn to_snapshot(&self) -> EntryPoint {
        EntryPoint {
            name: self.name.clone(),
            address: self.address,
            forwarded_headers: self.forwarded_headers.clone(),
            http2_max_concurrent_streams: self.http.max_concurrent_streams,
            options: self.http.transport.options.clone(),
        }
    }
}

/// The transport an entrypoint listens on (the address's `/tcp` or `/udp` suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// TCP (the default): HTTP and TCP routers.
    #[default]
    Tcp,
    /// UDP: UDP routers only.
    Udp,
}

/// A UDP entrypoint (`--entryPoints.<name>.address=[host]:port/udp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpEntryPointConfig {
    /// Name as written on the command line.
    pub name: String,
    /// Listening address.
    pub address: SocketAddr,
    /// `udp.timeout`: idle time after which a session is forgotten (Traefik default 3s).
    pub timeout: std::time::Duration,
}

impl UdpEntryPointConfig {
    /// The snapshot form.
    pub fn to_snapshot(&self) -> weir_proto::udp::UdpEntryPoint {
        weir_proto::udp::UdpEntryPoint {
            name: self.name.clone(),
            address: self.address,
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Parses `[host]:port[/tcp]`; `:port` listens on every IPv4 address, as Traefik does.
/// A `/udp` address is refused here: see [`parse_address_transport`].
pub fn parse_address(s: &str) -> Result<SocketAddr, String> {
    match parse_address_transport(s)? {
        (addr, Transport::Tcp) => Ok(addr),
        (_, Transport::Udp) => Err("a UDP address is not allowed here".into()),
    }
}

/// Parses `[host]:port[/tcp|/udp]` (protocol case-insensitive, default tcp).
pub fn parse_address_transport(s: &str) -> Result<(SocketAddr, Transport), String> {
    let (addr, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (s, "tcp".to_string()),
    };
    let transport = match proto.as_str() {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        other => return Err(format!("unknown protocol `{other}` (expected tcp or udp)")),
    };
    parse_host_port(addr).map(|a| (a, transport))
}

fn parse_host_port(addr: &str) -> Result<SocketAddr, String> {
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
            (":53/udp", "UDP address is not allowed here"),
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
    fn addresses_with_transport() {
        let cases = [
            (":53/udp", Some(("0.0.0.0:53", Transport::Udp))),
            ("127.0.0.1:5353/UDP", Some(("127.0.0.1:5353", Transport::Udp))),
            ("[::1]:53/udp", Some(("[::1]:53", Transport::Udp))),
            (":80", Some(("0.0.0.0:80", Transport::Tcp))),
            (":80/tcp", Some(("0.0.0.0:80", Transport::Tcp))),
            (":53/sctp", None),
            ("53/udp", None),
        ];
        for (input, want) in cases {
            let got = parse_address_transport(input).ok();
            let want = want.map(|(a, t)| (a.parse::<SocketAddr>().expect("test address"), t));
            assert_eq!(got, want, "{input}");
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
