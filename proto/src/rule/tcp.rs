//! Traefik's TCP rule language (IngressRouteTCP `match`, `pkg/muxer/tcp`): the same Go grammar
//! as HTTP rules (`!` > `&&` > `||`, parentheses, quoted arguments) over the TCP matchers
//! `HostSNI`, `HostSNIRegexp`, `ClientIP` and `ALPN`. It validates and normalises; matching a
//! connection belongs to the data plane.

use serde::{Deserialize, Serialize};

use super::lexer::{tokenize, Token};
use super::{args, RuleError};
use crate::net::Cidr;

/// A parsed TCP rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpExpr {
    /// A single matcher call.
    Matcher(TcpMatcher),
    /// Negation.
    Not(Box<TcpExpr>),
    /// Both must match.
    And(Box<TcpExpr>, Box<TcpExpr>),
    /// Either must match.
    Or(Box<TcpExpr>, Box<TcpExpr>),
}

/// A TCP matcher with its validated, normalised argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpMatcher {
    /// `HostSNI(h)`: lower-case, trailing dot removed. `*` matches every connection (TLS or
    /// not, with or without SNI); `*.example.com` matches one extra leading label.
    HostSni(String),
    /// `HostSNIRegexp(re)`: unanchored regex on the lower-cased SNI (`""` when none was sent).
    HostSniRegexp(String),
    /// `ClientIP(ip or cidr)`: the peer address lies in the range.
    ClientIp(Cidr),
    /// `ALPN(proto)`: the client offered this protocol.
    Alpn(String),
}

/// The TCP matcher names, as Traefik defines them.
const NAMES: [&str; 4] = ["HostSNI", "HostSNIRegexp", "ClientIP", "ALPN"];

/// The deepest tree `parse_tcp` returns.
const MAX_DEPTH: usize = 1000;

/// Traefik: the default priority of a TCP router is its rule's length, except the exact rule
/// ``HostSNI(`*`)``, which gets -1 so that every other router is tried first.
pub fn default_priority_tcp(rule: &str) -> i64 {
    if rule == "HostSNI(`*`)" {
        -1
    } else {
        rule.len() as i64
    }
}

/// Parses a TCP rule (Traefik v3 syntax).
pub fn parse_tcp(rule: &str) -> Result<TcpExpr, RuleError> {
    let tokens = tokenize(rule)?;
    if tokens.is_empty() {
        return Err(RuleError { offset: 0, reason: "empty rule".into() });
    }
    let mut p = Parser { tokens, pos: 0, len: rule.len(), nesting: 0 };
    let (expr, _) = p.or()?;
    if p.peek() == Some(&Token::LineEnd) && p.pos + 1 == p.tokens.len() {
        p.pos += 1;
    }
    match p.peek() {
        None => Ok(expr),
        Some(t) => {
            let found = t.describe();
            p.fail(format!("unexpected {found} after a complete expression (missing `&&` or `||`?)"))
        }
    }
}

type Node = (TcpExpr, usize);

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    len: usize,
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.len, |(o, _)| *o)
    }

    fn fail<T>(&self, reason: impl Into<String>) -> Result<T, RuleError> {
        Err(RuleError { offset: self.offset(), reason: reason.into() })
    }

    fn found(&self) -> String {
        self.peek().map_or_else(|| "end of rule".to_string(), Token::describe)
    }

    fn or(&mut self) -> Result<Node, RuleError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            let at = self.offset();
            self.pos += 1;
            let right = self.and()?;
            left = join(TcpExpr::Or, left, right, at)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, RuleError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            let at = self.offset();
            self.pos += 1;
            let right = self.unary()?;
            left = join(TcpExpr::And, left, right, at)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, RuleError> {
        if self.nesting >= 100 {
            return self.fail("parentheses and `!` nest deeper than 100 levels");
        }
        match self.peek() {
            Some(Token::Not) => {
                let at = self.offset();
                self.pos += 1;
                self.nesting += 1;
                let inner = self.unary();
                self.nesting -= 1;
                let (inner, depth) = inner?;
                if depth + 1 > MAX_DEPTH {
                    return Err(RuleError { offset: at, reason: "rule is too deep".into() });
                }
                Ok((TcpExpr::Not(Box::new(inner)), depth + 1))
            }
            Some(Token::LParen) => {
                self.pos += 1;
                self.nesting += 1;
                let node = self.or();
                self.nesting -= 1;
                let node = node?;
                if self.peek() != Some(&Token::RParen) {
                    let found = self.found();
                    return self.fail(format!("expected `)`, found {found}"));
                }
                self.pos += 1;
                Ok(node)
            }
            Some(Token::Ident(_)) => self.call(),
            _ => {
                let found = self.found();
                self.fail(format!("expected a matcher, `!` or `(`, found {found}"))
            }
        }
    }

    fn call(&mut self) -> Result<Node, RuleError> {
        let start = self.offset();
        let Some((_, Token::Ident(name))) = self.tokens.get(self.pos).cloned() else {
            return self.fail("expected a matcher name");
        };
        self.pos += 1;
        if self.peek() != Some(&Token::LParen) {
            let found = self.found();
            return self.fail(format!("expected `(` after {name}, found {found}"));
        }
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            match self.tokens.get(self.pos) {
                Some((_, Token::RParen)) => break,
                Some((_, Token::Str(s))) => values.push(s.clone()),
                _ => {
                    let found = self.found();
                    return self.fail(format!("{name}: expected a quoted string or `)`, found {found}"));
                }
            }
            self.pos += 1;
            match self.peek() {
                Some(Token::Comma) => self.pos += 1,
                Some(Token::RParen) => break,
                _ => {
                    let found = self.found();
                    return self.fail(format!("{name}: expected `,` or `)`, found {found}"));
                }
            }
        }
        self.pos += 1;
        let fail = |reason| RuleError { offset: start, reason };
        let canon = resolve(&name).map_err(fail)?;
        build(canon, &values).map(|m| (TcpExpr::Matcher(m), 1)).map_err(fail)
    }
}

fn join(
    op: fn(Box<TcpExpr>, Box<TcpExpr>) -> TcpExpr,
    l: Node,
    r: Node,
    at: usize,
) -> Result<Node, RuleError> {
    let depth = 1 + l.1.max(r.1);
    if depth > MAX_DEPTH {
        return Err(RuleError { offset: at, reason: "rule is too deep".into() });
    }
    Ok((op(Box::new(l.0), Box::new(r.0)), depth))
}

/// Traefik registers each matcher as defined, lower-case, upper-case and Title-case.
fn resolve(name: &str) -> Result<&'static str, String> {
    for canon in NAMES {
        let lower = canon.to_ascii_lowercase();
        let title = lower[..1].to_ascii_uppercase() + &lower[1..];
        if name == canon || name == lower || name == canon.to_ascii_uppercase() || name == title {
            return Ok(canon);
        }
    }
    if ["Host", "HostRegexp", "Path", "PathPrefix", "PathRegexp", "Method", "Header", "HeaderRegexp", "Query"]
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
    {
        return Err(format!("{name} is an HTTP matcher, not a TCP one (use HostSNI)"));
    }
    Err(format!("unknown TCP matcher {name:?}"))
}

fn build(name: &'static str, values: &[String]) -> Result<TcpMatcher, String> {
    let [value] = values else {
        return Err(format!("{name} takes 1 argument, got {}", values.len()));
    };
    if value.is_empty() {
        return Err(format!("{name}: argument 1 is empty"));
    }
    Ok(match name {
        "HostSNI" => TcpMatcher::HostSni(host_sni(value)?),
        "HostSNIRegexp" => {
            args::regex(name, value)?;
            TcpMatcher::HostSniRegexp(value.clone())
        }
        "ClientIP" => TcpMatcher::ClientIp(args::client_ip(name, value)?),
        "ALPN" => {
            // Traefik: the ACME TLS challenge protocol is reserved.
            if value == "acme-tls/1" {
                return Err("ALPN: invalid protocol value acme-tls/1".into());
            }
            TcpMatcher::Alpn(value.clone())
        }
        _ => return Err(format!("unknown TCP matcher {name:?}")),
    })
}

/// Traefik: `^(\*\.)?[\w.\-:]+$` (one `*.` level only, ASCII), trailing dot trimmed, lower-cased;
/// `*` alone is the catch-all.
fn host_sni(value: &str) -> Result<String, String> {
    if value == "*" {
        return Ok("*".into());
    }
    let trimmed = value.strip_suffix('.').unwrap_or(value);
    let rest = trimmed.strip_prefix("*.").unwrap_or(trimmed);
    let valid = !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'));
    if !valid {
        return Err(format!("HostSNI: invalid value {value:?}"));
    }
    Ok(trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sni(h: &str) -> TcpExpr {
        TcpExpr::Matcher(TcpMatcher::HostSni(h.into()))
    }

    #[test]
    fn parses() {
        let cidr = |s: &str| Cidr::parse(s).expect("cidr");
        let cases: Vec<(&str, &str, TcpExpr)> = vec![
            ("catch-all", "HostSNI(`*`)", sni("*")),
            ("lower-cased, dot trimmed", "HostSNI(`Foo.Example.COM.`)", sni("foo.example.com")),
            ("wildcard", "HostSNI(`*.example.com`)", sni("*.example.com")),
            ("ip literal", "HostSNI(`10::10`)", sni("10::10")),
            ("lower-case spelling", "hostsni(`a`)", sni("a")),
            (
                "or of two",
                "HostSNI(`a`) || HostSNI(`b`)",
                TcpExpr::Or(Box::new(sni("a")), Box::new(sni("b"))),
            ),
            (
                "and with not client ip",
                "HostSNI(`a`) && !ClientIP(`10.0.0.0/8`)",
                TcpExpr::And(
                    Box::new(sni("a")),
                    Box::new(TcpExpr::Not(Box::new(TcpExpr::Matcher(TcpMatcher::ClientIp(cidr(
                        "10.0.0.0/8",
                    )))))),
                ),
            ),
            ("alpn", "ALPN(`h2`)", TcpExpr::Matcher(TcpMatcher::Alpn("h2".into()))),
            (
                "regexp",
                "HostSNIRegexp(`^.+\\.com$`)",
                TcpExpr::Matcher(TcpMatcher::HostSniRegexp("^.+\\.com$".into())),
            ),
        ];
        for (name, rule, want) in cases {
            assert_eq!(parse_tcp(rule), Ok(want), "case {name}");
        }
    }

    #[test]
    fn refuses() {
        let cases = [
            ("double wildcard", "HostSNI(`*.*.example.com`)", "invalid value"),
            ("non-ascii", "HostSNI(`bücher.de`)", "invalid value"),
            ("http matcher", "Host(`a`)", "HTTP matcher"),
            ("two args", "HostSNI(`a`, `b`)", "1 argument"),
            ("acme alpn", "ALPN(`acme-tls/1`)", "acme-tls/1"),
            ("bad ip", "ClientIP(`x`)", "not an IP"),
            ("empty", "", "empty rule"),
            ("unclosed", "HostSNI(`a`", "expected"),
            ("bad regexp", "HostSNIRegexp(`(`)", "HostSNIRegexp"),
        ];
        for (name, rule, want) in cases {
            let err = parse_tcp(rule).expect_err(name);
            assert!(err.reason.contains(want), "case {name}: {}", err.reason);
        }
    }

    #[test]
    fn priorities() {
        assert_eq!(default_priority_tcp("HostSNI(`*`)"), -1);
        assert_eq!(default_priority_tcp("HostSNI(`a`)"), 12);
    }
}
