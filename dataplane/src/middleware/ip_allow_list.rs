//! IPAllowList (and the deprecated IPWhiteList): the client IP by Traefik's `ipStrategy` —
//! the peer, the depth-th `X-Forwarded-For` entry from the right, or the right-most entry not
//! excluded — checked against `sourceRange`; a miss answers the reject status with its status
//! text as body.

use std::net::{IpAddr, Ipv6Addr};

use http::{HeaderMap, StatusCode};

use weir_proto::middleware as cfg;
use weir_proto::net::Cidr;

use super::{status_text, Exchange, Outcome};

/// Traefik's `ip.Strategy`.
#[derive(Debug, Clone)]
pub enum Strategy {
    /// The TCP peer (optionally reduced to an IPv6 subnet).
    Remote(Option<u8>),
    /// The depth-th `X-Forwarded-For` entry from the right.
    Depth(usize, Option<u8>),
    /// The right-most `X-Forwarded-For` entry not in these ranges.
    Excluded(Vec<Cidr>),
}

impl Strategy {
    /// Compiles `ipStrategy`.
    pub fn new(c: &cfg::IpStrategy) -> Result<Strategy, String> {
        if c.depth > 0 {
            return Ok(Strategy::Depth(c.depth as usize, c.ipv6_subnet));
        }
        if !c.excluded_ips.is_empty() {
            let ranges = c
                .excluded_ips
                .iter()
                .map(|s| Cidr::parse(s).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            return Ok(Strategy::Excluded(ranges));
        }
        Ok(Strategy::Remote(c.ipv6_subnet))
    }

    /// The client IP as text (Go's strategies return strings; "" when there is none).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> String {
        // Go's `Header.Get`: the first X-Forwarded-For line only.
        let xff = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("");
        match self {
            Strategy::Remote(subnet) => subnet_ip(&peer.to_string(), *subnet),
            Strategy::Depth(depth, subnet) => {
                let parts: Vec<&str> = xff.split(',').collect();
                if parts.len() < *depth {
                    return String::new();
                }
                subnet_ip(parts[parts.len() - depth].trim(), *subnet)
            }
            Strategy::Excluded(ranges) => xff
                .split(',')
                .rev()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .find(|s| !s.parse::<IpAddr>().is_ok_and(|ip| ranges.iter().any(|r| r.contains(ip))))
                .unwrap_or("")
                .to_string(),
        }
    }
}

fn subnet_ip(ip: &str, subnet: Option<u8>) -> String {
    match (subnet, ip.parse::<IpAddr>()) {
        (Some(bits), Ok(IpAddr::V6(v6))) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits.min(128))) };
            Ipv6Addr::from(u128::from(v6) & mask).to_string()
        }
        _ => ip.to_string(),
    }
}

/// A compiled allow-list.
#[derive(Debug)]
pub struct IpAllowList {
    ranges: Vec<Cidr>,
    strategy: Strategy,
    reject: StatusCode,
}

impl IpAllowList {
    /// Compiles the configuration.
    pub fn new(c: &cfg::IpAllowList) -> Result<IpAllowList, String> {
        let ranges = c
            .source_range
            .iter()
            .map(|s| Cidr::parse(s).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let reject = StatusCode::from_u16(c.reject_status_code).map_err(|e| e.to_string())?;
        Ok(IpAllowList { ranges, strategy: Strategy::new(&c.ip_strategy)?, reject })
    }

    /// Whether the request's client IP is allowed.
    pub fn allows(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        let ip = self.strategy.client_ip(peer, headers);
        // Go's checker also accepts `host:port`.
        let host = ip.parse::<std::net::SocketAddr>().map(|a| a.ip().to_string()).unwrap_or(ip);
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.ranges.iter().any(|r| r.contains(ip)))
    }

    /// Request side.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        if self.allows(ex.peer.ip(), ex.headers) {
            Outcome::Next
        } else {
            Outcome::Respond(status_text(self.reject))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ranges: &[&str], strategy: cfg::IpStrategy) -> IpAllowList {
        IpAllowList::new(&cfg::IpAllowList {
            source_range: ranges.iter().map(|s| s.to_string()).collect(),
            ip_strategy: strategy,
            reject_status_code: 403,
        })
        .expect("valid")
    }

    #[test]
    fn strategies() {
        let peer: IpAddr = "10.0.0.1".parse().expect("ip");
        let depth = |d| cfg::IpStrategy { depth: d, ..Default::default() };
        let excluded = |e: &[&str]| cfg::IpStrategy {
            excluded_ips: e.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let cases = [
            ("peer allowed", list(&["10.0.0.0/8"], Default::default()), None, true),
            ("peer refused", list(&["192.168.0.0/16"], Default::default()), None, false),
            ("peer exact ip", list(&["10.0.0.1"], Default::default()), None, true),
            ("depth 1", list(&["1.1.1.1"], depth(1)), Some("9.9.9.9, 1.1.1.1"), true),
            ("depth 2", list(&["9.9.9.9"], depth(2)), Some("9.9.9.9, 1.1.1.1"), true),
            ("depth too deep", list(&["9.9.9.9"], depth(3)), Some("9.9.9.9, 1.1.1.1"), false),
            ("depth without header", list(&["10.0.0.0/8"], depth(1)), None, false),
            (
                "excluded skips proxies",
                list(&["9.9.9.9"], excluded(&["1.1.1.0/24"])),
                Some("9.9.9.9, 1.1.1.1, 1.1.1.2"),
                true,
            ),
            ("excluded all", list(&["9.9.9.9"], excluded(&["0.0.0.0/0"])), Some("9.9.9.9"), false),
            ("xff ignored without strategy", list(&["9.9.9.9"], Default::default()), Some("9.9.9.9"), false),
        ];
        for (name, l, xff, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(x) = xff {
                h.insert("x-forwarded-for", x.parse().expect("value"));
            }
            assert_eq!(l.allows(peer, &h), want, "case {name}");
        }
    }

    #[test]
    fn ipv6_subnet() {
        assert_eq!(subnet_ip("2001:db8:1:2:3:4:5:6", Some(64)), "2001:db8:1:2::");
        assert_eq!(subnet_ip("10.0.0.1", Some(64)), "10.0.0.1");
    }
}
