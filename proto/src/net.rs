//! IP addresses and CIDR ranges as Traefik's IP checker accepts them: a plain IPv4/IPv6
//! address or a CIDR. Used for trusted forwarded-header peers now, `ClientIP` and allow-lists
//! later.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    /// Network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

/// A string that is neither an IP address nor a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR")]
pub struct CidrError(pub String);

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1`, `192.168.1.7`, `fd00::/8`.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let s = s.trim();
        let bad = || CidrError(s.to_string());
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = ip.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr: mask(addr, prefix), prefix })
    }

    /// Whether `ip` lies in the range. IPv4-mapped IPv6 addresses match IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains() {
        let cases = [
            ("exact v4", "127.0.0.1", "127.0.0.1", true),
            ("other v4", "127.0.0.1", "127.0.0.2", false),
            ("v4 range", "10.0.0.0/8", "10.200.3.4", true),
            ("host bits ignored", "10.1.2.3/8", "10.9.9.9", true),
            ("outside v4 range", "10.0.0.0/8", "11.0.0.1", false),
            ("zero prefix", "0.0.0.0/0", "8.8.8.8", true),
            ("v6 range", "fd00::/8", "fd12::1", true),
            ("v4-mapped v6", "127.0.0.0/8", "::ffff:127.0.0.1", true),
            ("family mismatch", "::/0", "1.2.3.4", false),
        ];
        for (name, cidr, ip, want) in cases {
            let c = Cidr::parse(cidr).expect(name);
            assert_eq!(c.contains(ip.parse().expect(name)), want, "case {name}");
        }
    }

    #[test]
    fn invalid() {
        for s in ["1", "foo", "10.0.0.0/33", "::/129", "10.0.0.0/x", ""] {
            assert!(Cidr::parse(s).is_err(), "{s:?} should be refused");
        }
    }
}
