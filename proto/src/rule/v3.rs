//! v3 HTTP matchers (Traefik's `httpFuncs` in `pkg/muxer/http/matcher.go`): each call checked
//! for its exact arity and non-empty arguments, then validated and normalised into one
//! `Matcher`. Nothing here looks at a request.

use super::{args, Matcher};

/// The v3 HTTP matcher names, as Traefik defines them.
pub(super) const NAMES: [&str; 11] = [
    "Host",
    "HostRegexp",
    "Method",
    "Path",
    "PathPrefix",
    "PathRegexp",
    "Header",
    "HeaderRegexp",
    "Query",
    "QueryRegexp",
    "ClientIP",
];

/// Builds the matcher `name` (one of `NAMES`) from its arguments.
pub(super) fn build(name: &'static str, values: &[String]) -> Result<Matcher, String> {
    if !values.is_empty() {
        non_empty(name, values)?;
    }
    let owned = |s: &String| s.clone();
    Ok(match (name, values) {
        ("Host", [h]) => Matcher::Host(args::host(name, h)?),
        ("HostRegexp", [re]) => {
            args::ascii(name, re)?;
            args::regex(name, re)?;
            Matcher::HostRegexp(owned(re))
        }
        ("Method", [m]) => Matcher::Method(args::method(m)),
        ("Path", [p]) => {
            args::path(name, p)?;
            Matcher::Path(owned(p))
        }
        ("PathPrefix", [p]) => {
            args::path(name, p)?;
            Matcher::PathPrefix(owned(p))
        }
        ("PathRegexp", [re]) => {
            args::regex(name, re)?;
            Matcher::PathRegexp(owned(re))
        }
        ("Header", [k, v]) => Matcher::Header(args::header_name(name, k)?, owned(v)),
        ("HeaderRegexp", [k, re]) => {
            let k = args::header_name(name, k)?;
            args::regex(name, re)?;
            Matcher::HeaderRegexp(k, owned(re))
        }
        // Traefik: `QueryRegexp(k)` is `Query(k)`: the key present with an empty value.
        ("Query" | "QueryRegexp", [k]) => Matcher::Query(owned(k), None),
        ("Query", [k, v]) => Matcher::Query(owned(k), Some(owned(v))),
        ("QueryRegexp", [k, re]) => {
            args::regex(name, re)?;
            Matcher::QueryRegexp(owned(k), owned(re))
        }
        ("ClientIP", [ip]) => Matcher::ClientIP(args::client_ip(name, ip)?),
        _ => return Err(arity(name, values.len())),
    })
}

/// Traefik (`rules.CheckRule`): every argument must be non-empty.
pub(super) fn non_empty(name: &str, values: &[String]) -> Result<(), String> {
    match values.iter().position(String::is_empty) {
        Some(i) => Err(format!("{name}: argument {} is empty", i + 1)),
        None => Ok(()),
    }
}

fn arity(name: &str, got: usize) -> String {
    let expected = match name {
        "Header" => "2 arguments (name, value)",
        "HeaderRegexp" => "2 arguments (name, regex)",
        "Query" => "1 or 2 arguments (key[, value])",
        "QueryRegexp" => "1 or 2 arguments (key[, regex])",
        _ => "1 argument",
    };
    format!("{name} takes {expected}, got {got}")
}

#[cfg(test)]
mod tests {
    use crate::net::Cidr;
    use crate::rule::{parse, parse_with, Expr, Matcher, Syntax};

    fn m(matcher: Matcher) -> Expr {
        Expr::Matcher(matcher)
    }
    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn valid_matchers() {
        use Matcher::*;
        let cidr = |c: &str| Cidr::parse(c).expect("test CIDR");
        let cases: Vec<(&str, &str, Matcher)> = vec![
            ("host", "Host(`example.com`)", Host(s("example.com"))),
            ("host lower-cased, trailing dot trimmed", "Host(`Example.COM.`)", Host(s("example.com"))),
            ("host catch-all", "Host(`*`)", Host(s("*"))),
            ("host wildcard label", "Host(`*.Example.com`)", Host(s("*.example.com"))),
            ("host punycode", "Host(`xn--bcher-kva.de`)", Host(s("xn--bcher-kva.de"))),
            ("host ipv6 brackets removed", "Host(`[::1]`)", Host(s("::1"))),
            ("host ipv4", "Host(`127.0.0.1`)", Host(s("127.0.0.1"))),
            (
                "host regexp kept as written",
                r"HostRegexp(`^[a-z]+\.example\.com$`)",
                HostRegexp(s(r"^[a-z]+\.example\.com$")),
            ),
            ("host regexp unanchored", r"HostRegexp(`example`)", HostRegexp(s("example"))),
            ("method upper-cased", "Method(`get`)", Method(s("GET"))),
            ("method custom", "Method(`PURGE`)", Method(s("PURGE"))),
            ("path", "Path(`/css`)", Path(s("/css"))),
            ("path keeps trailing slash", "Path(`/css/`)", Path(s("/css/"))),
            ("path with space", "Path(`/foo bar`)", Path(s("/foo bar"))),
            ("path prefix", "PathPrefix(`/api`)", PathPrefix(s("/api"))),
            ("path regexp", r"PathRegexp(`^/api/v[0-9]+/`)", PathRegexp(s(r"^/api/v[0-9]+/"))),
            ("path regexp need not start with /", "PathRegexp(`\\.css$`)", PathRegexp(s(r"\.css$"))),
            (
                "header name lower-cased, value kept",
                "Header(`X-Forwarded-Proto`, `HTTPS`)",
                Header(s("x-forwarded-proto"), s("HTTPS")),
            ),
            (
                "header regexp",
                "HeaderRegexp(`Content-Type`, `^application/(text|json)$`)",
                HeaderRegexp(s("content-type"), s("^application/(text|json)$")),
            ),
            ("query key only", "Query(`mobile`)", Query(s("mobile"), None)),
            ("query key and value", "Query(`q`, `traefik`)", Query(s("q"), Some(s("traefik")))),
            ("query key case kept", "Query(`Q`, `V`)", Query(s("Q"), Some(s("V")))),
            ("query regexp one argument is query", "QueryRegexp(`mobile`)", Query(s("mobile"), None)),
            ("query regexp", "QueryRegexp(`id`, `^[0-9]+$`)", QueryRegexp(s("id"), s("^[0-9]+$"))),
            ("client ip address", "ClientIP(`10.0.0.1`)", ClientIP(cidr("10.0.0.1"))),
            ("client ip cidr host bits cleared", "ClientIP(`10.1.2.3/8`)", ClientIP(cidr("10.0.0.0/8"))),
            ("client ip v6 cidr", "ClientIP(`fd00::/8`)", ClientIP(cidr("fd00::/8"))),
        ];
        for (name, rule, want) in cases {
            assert_eq!(parse(rule), Ok(m(want.clone())), "case {name}");
            assert_eq!(parse_with(rule, Syntax::V3), Ok(m(want)), "case {name} (explicit v3)");
        }
    }

    #[test]
    fn invalid_matchers() {
        let cases = [
            ("host no argument", "Host()", "Host takes 1 argument, got 0"),
            ("host two arguments", "Host(`a`, `b`)", "Host takes 1 argument, got 2"),
            ("host empty", "Host(``)", "Host: argument 1 is empty"),
            ("host non-ascii", "Host(`bücher.de`)", "Host: \"bücher.de\" has non-ASCII characters"),
            (
                "host double wildcard",
                "Host(`*.*.example.com`)",
                "Host: wildcard \"*.*.example.com\" is not supported",
            ),
            ("host inner wildcard", "Host(`a.*.b`)", "Host: wildcard"),
            ("host bad brackets", "Host(`[::1`)", "not a bracketed IPv6 address"),
            ("host regexp non-ascii", "HostRegexp(`^é$`)", "HostRegexp: \"^é$\" has non-ASCII characters"),
            (
                "host regexp invalid",
                "HostRegexp(`(`)",
                "HostRegexp: invalid regular expression \"(\": unclosed group",
            ),
            (
                "host regexp v2 template hints",
                "HostRegexp(`{sub:[a-z]+}.example.com`)",
                "templates are v2 syntax",
            ),
            ("method two arguments", "Method(`GET`, `POST`)", "Method takes 1 argument, got 2"),
            ("path without slash", "Path(`css`)", "Path: path \"css\" must start with /"),
            ("path prefix without slash", "PathPrefix(`api`)", "PathPrefix: path \"api\" must start with /"),
            (
                "path regexp invalid",
                "PathRegexp(`[`)",
                "PathRegexp: invalid regular expression \"[\": unclosed character class",
            ),
            ("path regexp go-only quoting", r"PathRegexp(`\Q.\E`)", "unrecognized escape sequence"),
            ("header one argument", "Header(`X-A`)", "Header takes 2 arguments (name, value), got 1"),
            (
                "header three arguments",
                "Header(`a`, `b`, `c`)",
                "Header takes 2 arguments (name, value), got 3",
            ),
            ("header empty value", "Header(`X-A`, ``)", "Header: argument 2 is empty"),
            ("header bad name", "Header(`X A`, `b`)", "Header: \"X A\" is not a valid header name"),
            (
                "header regexp bad name",
                "HeaderRegexp(`X:A`, `b`)",
                "HeaderRegexp: \"X:A\" is not a valid header name",
            ),
            ("header regexp invalid", "HeaderRegexp(`X-A`, `*`)", "HeaderRegexp: invalid regular expression"),
            (
                "query three arguments",
                "Query(`a`, `b`, `c`)",
                "Query takes 1 or 2 arguments (key[, value]), got 3",
            ),
            ("query no argument", "Query()", "Query takes 1 or 2 arguments (key[, value]), got 0"),
            ("query empty key", "Query(``, `v`)", "Query: argument 1 is empty"),
            ("query regexp invalid", "QueryRegexp(`id`, `(`)", "QueryRegexp: invalid regular expression"),
            (
                "query regexp three arguments",
                "QueryRegexp(`a`, `b`, `c`)",
                "QueryRegexp takes 1 or 2 arguments (key[, regex]), got 3",
            ),
            ("client ip bad", "ClientIP(`foo`)", "ClientIP: \"foo\" is not an IP address or CIDR"),
            (
                "client ip bad prefix",
                "ClientIP(`10.0.0.0/33`)",
                "ClientIP: \"10.0.0.0/33\" is not an IP address or CIDR",
            ),
            (
                "client ip variadic is v2",
                "ClientIP(`10.0.0.1`, `10.0.0.2`)",
                "ClientIP takes 1 argument, got 2",
            ),
        ];
        for (name, rule, want) in cases {
            let err = parse(rule).expect_err(name);
            assert!(err.reason.contains(want), "case {name}: {}", err.reason);
            assert_eq!(err.offset, 0, "case {name}: the error points at the matcher");
        }
    }
}
