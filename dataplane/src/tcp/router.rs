//! TCP rule matching (Traefik's `pkg/muxer/tcp`): a compiled [`TcpExpr`] evaluated against what
//! is known about a connection before any byte is forwarded (SNI and ALPN from the ClientHello,
//! the client address). Sans-IO: no sockets here.

use std::net::IpAddr;

use weir_proto::net::Cidr;
use weir_proto::rule::{TcpExpr, TcpMatcher};

/// What a TCP rule can look at.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo<'a> {
    /// The SNI (lower-case), `None` for cleartext or a ClientHello without one.
    pub sni: Option<&'a str>,
    /// ALPN protocols the client offered.
    pub alpn: &'a [String],
    /// The client's address (after PROXY protocol).
    pub client_ip: IpAddr,
}

/// A rule ready to evaluate.
#[derive(Debug)]
pub enum CompiledTcpExpr {
    /// `HostSNI(`*`)`: every connection.
    Any,
    /// `HostSNI(host)`.
    Sni(String),
    /// `HostSNI(`*.suffix`)`: one extra label; holds `.suffix`.
    SniWildcard(String),
    /// `HostSNIRegexp(re)`.
    SniRegexp(regex::Regex),
    /// `ClientIP(range)`.
    ClientIp(Cidr),
    /// `ALPN(proto)`.
    Alpn(String),
    /// `!e`.
    Not(Box<CompiledTcpExpr>),
    /// `a && b`.
    And(Box<CompiledTcpExpr>, Box<CompiledTcpExpr>),
    /// `a || b`.
    Or(Box<CompiledTcpExpr>, Box<CompiledTcpExpr>),
}

impl CompiledTcpExpr {
    /// Compiles a parsed rule; only a regex the parser let through can fail.
    pub fn compile(expr: &TcpExpr) -> Result<CompiledTcpExpr, regex::Error> {
        Ok(match expr {
            TcpExpr::Matcher(TcpMatcher::HostSni(h)) if h == "*" => CompiledTcpExpr::Any,
            TcpExpr::Matcher(TcpMatcher::HostSni(h)) => match h.strip_prefix('*') {
                Some(suffix) => CompiledTcpExpr::SniWildcard(suffix.to_string()),
                None => CompiledTcpExpr::Sni(h.clone()),
            },
            TcpExpr::Matcher(TcpMatcher::HostSniRegexp(re)) => {
                CompiledTcpExpr::SniRegexp(regex::Regex::new(re)?)
            }
            TcpExpr::Matcher(TcpMatcher::ClientIp(c)) => CompiledTcpExpr::ClientIp(*c),
            TcpExpr::Matcher(TcpMatcher::Alpn(p)) => CompiledTcpExpr::Alpn(p.clone()),
            TcpExpr::Not(e) => CompiledTcpExpr::Not(Box::new(Self::compile(e)?)),
            TcpExpr::And(a, b) => {
                CompiledTcpExpr::And(Box::new(Self::compile(a)?), Box::new(Self::compile(b)?))
            }
            TcpExpr::Or(a, b) => {
                CompiledTcpExpr::Or(Box::new(Self::compile(a)?), Box::new(Self::compile(b)?))
            }
        })
    }

    /// Whether the connection matches.
    pub fn matches(&self, c: &ConnInfo<'_>) -> bool {
        match self {
            CompiledTcpExpr::Any => true,
            // Traefik: an empty SNI matches no HostSNI but `*`.
            CompiledTcpExpr::Sni(h) => c.sni == Some(h.as_str()),
            CompiledTcpExpr::SniWildcard(suffix) => c.sni.is_some_and(|sni| {
                sni.strip_suffix(suffix.as_str())
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
            }),
            CompiledTcpExpr::SniRegexp(re) => re.is_match(c.sni.unwrap_or("")),
            CompiledTcpExpr::ClientIp(range) => range.contains(c.client_ip),
            CompiledTcpExpr::Alpn(p) => c.alpn.iter().any(|a| a == p),
            CompiledTcpExpr::Not(e) => !e.matches(c),
            CompiledTcpExpr::And(a, b) => a.matches(c) && b.matches(c),
            CompiledTcpExpr::Or(a, b) => a.matches(c) || b.matches(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::rule::parse_tcp;

    #[test]
    fn matching() {
        let h2 = vec!["h2".to_string()];
        let none: Vec<String> = vec![];
        let conn = |sni: Option<&'static str>, ip: [u8; 4], alpn: &'static [String]| ConnInfo {
            sni,
            alpn,
            client_ip: IpAddr::from(ip),
        };
        let h2: &'static [String] = Box::leak(h2.into_boxed_slice());
        let none: &'static [String] = Box::leak(none.into_boxed_slice());
        let cases: Vec<(&str, &str, ConnInfo<'static>, bool)> = vec![
            ("catch-all cleartext", "HostSNI(`*`)", conn(None, [1, 2, 3, 4], none), true),
            ("exact", "HostSNI(`a.example.com`)", conn(Some("a.example.com"), [1, 2, 3, 4], none), true),
            (
                "exact other",
                "HostSNI(`a.example.com`)",
                conn(Some("b.example.com"), [1, 2, 3, 4], none),
                false,
            ),
            ("exact without sni", "HostSNI(`a.example.com`)", conn(None, [1, 2, 3, 4], none), false),
            (
                "wildcard one label",
                "HostSNI(`*.example.com`)",
                conn(Some("a.example.com"), [1, 2, 3, 4], none),
                true,
            ),
            (
                "wildcard two labels",
                "HostSNI(`*.example.com`)",
                conn(Some("a.b.example.com"), [1, 2, 3, 4], none),
                false,
            ),
            (
                "wildcard apex",
                "HostSNI(`*.example.com`)",
                conn(Some("example.com"), [1, 2, 3, 4], none),
                false,
            ),
            (
                "regexp",
                "HostSNIRegexp(`^[a-z]+\\.example\\.com$`)",
                conn(Some("ab.example.com"), [1, 2, 3, 4], none),
                true,
            ),
            ("regexp on empty sni", "HostSNIRegexp(`^$`)", conn(None, [1, 2, 3, 4], none), true),
            ("client ip", "HostSNI(`*`) && ClientIP(`10.0.0.0/8`)", conn(None, [10, 1, 1, 1], none), true),
            (
                "client ip outside",
                "HostSNI(`*`) && ClientIP(`10.0.0.0/8`)",
                conn(None, [11, 1, 1, 1], none),
                false,
            ),
            ("alpn", "HostSNI(`a`) && ALPN(`h2`)", conn(Some("a"), [1, 2, 3, 4], h2), true),
            ("alpn missing", "HostSNI(`a`) && ALPN(`h2`)", conn(Some("a"), [1, 2, 3, 4], none), false),
            ("not", "!HostSNI(`a`)", conn(Some("b"), [1, 2, 3, 4], none), true),
            ("or", "HostSNI(`a`) || HostSNI(`b`)", conn(Some("b"), [1, 2, 3, 4], none), true),
        ];
        for (name, rule, c, want) in cases {
            let e = CompiledTcpExpr::compile(&parse_tcp(rule).expect("rule")).expect("compile");
            assert_eq!(e.matches(&c), want, "case {name}");
        }
    }
}
