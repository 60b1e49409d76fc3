//! Sans-IO router matching: evaluates a rule AST against the routing inputs of one request.
//! The routing inputs are computed once per request (`RequestInfo`) as Traefik computes them.

use weir_proto::rule::{Expr, Matcher};

/// What a rule can look at, computed once per request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// Canonical host: lower-cased, port and IPv6 brackets stripped, trailing dot removed.
    pub host: &'a str,
    /// Routing path.
    pub path: &'a str,
}

/// Whether `expr` matches the request.
pub fn matches(expr: &Expr, req: &RequestInfo<'_>) -> bool {
    match expr {
        Expr::Matcher(m) => matcher(m, req),
        Expr::Not(e) => !matches(e, req),
        Expr::And(a, b) => matches(a, req) && matches(b, req),
        Expr::Or(a, b) => matches(a, req) || matches(b, req),
    }
}

fn matcher(m: &Matcher, req: &RequestInfo<'_>) -> bool {
    match m {
        // Traefik: an empty host (HTTP/1.0 without Host) never matches Host().
        Matcher::Host(h) => !req.host.is_empty() && req.host == h,
        Matcher::Path(p) => req.path == p,
        Matcher::PathPrefix(p) => req.path.starts_with(p.as_str()),
    }
}

/// Canonical host from a raw `Host` value or URI authority: lower-cased, port stripped,
/// IPv6 brackets removed, trailing dot removed. Borrowed when already canonical.
pub fn canonical_host(raw: &str) -> std::borrow::Cow<'_, str> {
    let raw = raw.rsplit_once('@').map_or(raw, |(_, h)| h);
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::rule::parse;

    #[test]
    fn rule_matching() {
        let cases = [
            ("host", "Host(`example.com`)", "example.com", "/", true),
            ("host other", "Host(`example.com`)", "example.org", "/", false),
            ("empty host never matches", "Host(`example.com`)", "", "/", false),
            ("path exact", "Path(`/a`)", "x", "/a", true),
            ("path no trailing slash normalisation", "Path(`/a`)", "x", "/a/", false),
            ("prefix is character-wise", "PathPrefix(`/css`)", "x", "/cssx", true),
            ("and", "Host(`a`) && PathPrefix(`/p`)", "a", "/p/1", true),
            ("and fails", "Host(`a`) && PathPrefix(`/p`)", "b", "/p/1", false),
            ("or", "Host(`a`) || Host(`b`)", "b", "/", true),
            ("not", "!PathPrefix(`/admin`)", "a", "/admin/x", false),
            ("precedence", "Host(`a`) || Host(`b`) && Path(`/x`)", "a", "/y", true),
        ];
        for (name, rule, host, path, want) in cases {
            let expr = parse(rule).expect(name);
            assert_eq!(matches(&expr, &RequestInfo { host, path }), want, "case {name}");
        }
    }

    #[test]
    fn canonical_hosts() {
        let cases = [
            ("plain", "example.com", "example.com"),
            ("port", "Example.COM:8080", "example.com"),
            ("trailing dot", "example.com.", "example.com"),
            ("ipv6", "[::1]:80", "::1"),
            ("ipv6 no port", "[fe80::1]", "fe80::1"),
            ("userinfo", "user@example.com", "example.com"),
            ("empty", "", ""),
        ];
        for (name, raw, want) in cases {
            assert_eq!(canonical_host(raw), want, "case {name}");
        }
    }
}
