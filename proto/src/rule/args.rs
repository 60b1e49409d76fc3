//! Argument checks and normalisations that the v3 and v2 builders share: hosts, header names,
//! paths, regular expressions, IP ranges, methods. Each returns why an argument is refused, with
//! the matcher's name first; none of them looks at a request.

use std::net::Ipv6Addr;

use crate::net::Cidr;

/// Traefik refuses non-ASCII hosts (IDNs must be written in punycode, `xn--…`).
pub(super) fn ascii(matcher: &str, arg: &str) -> Result<(), String> {
    if arg.is_ascii() {
        Ok(())
    } else {
        Err(format!("{matcher}: {arg:?} has non-ASCII characters (write an IDN in its punycode form, xn--…)"))
    }
}

/// A v3 `Host` argument: `*`, `*.suffix` (one leading wildcard label), a name, an IPv4 address
/// or an IPv6 address (brackets removed, as the request's canonical host has none). Lower-cased,
/// one trailing dot removed (Traefik matches `example.com.` and `example.com` alike).
pub(super) fn host(matcher: &str, arg: &str) -> Result<String, String> {
    if arg == "*" {
        return Ok(arg.to_string());
    }
    ascii(matcher, arg)?;
    let lower = arg.to_ascii_lowercase();
    if let Some(inner) = lower.strip_prefix('[') {
        // Traefik compares the rule's text with the bracket-less canonical host, so a bracketed
        // rule never matches there; weir takes the address the rule obviously means.
        return match inner.strip_suffix(']') {
            Some(addr) if addr.parse::<Ipv6Addr>().is_ok() => Ok(addr.to_string()),
            _ => Err(format!(
                "{matcher}: {arg:?} is not a bracketed IPv6 address (a host rule has no port: the \
                 request's port is ignored)"
            )),
        };
    }
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    if host.is_empty() {
        return Err(format!("{matcher}: {arg:?} is empty once its trailing dot is removed"));
    }
    if host.ends_with('.') {
        return Err(format!("{matcher}: {arg:?} ends with an empty label"));
    }
    if host.contains('*') {
        let one_leading_label = host
            .strip_prefix("*.")
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('.') && !rest.contains('*'));
        if !one_leading_label {
            return Err(format!(
                "{matcher}: wildcard {arg:?} is not supported: only `*` alone or one leading `*.` \
                 label followed by a domain (`*.example.com`) is"
            ));
        }
    }
    Ok(host.to_string())
}

/// A header name: an HTTP token (RFC 9110), stored lower-case since names are case-insensitive.
/// Traefik would accept any text here and never match a name that is not a token.
pub(super) fn header_name(matcher: &str, arg: &str) -> Result<String, String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if let Some(bad) = arg.chars().find(|c| !c.is_ascii() || !token(*c as u8)) {
        return Err(format!("{matcher}: {arg:?} is not a valid header name ({bad:?} is not allowed in one)"));
    }
    Ok(arg.to_ascii_lowercase())
}

/// `Path` and `PathPrefix` arguments start with `/`.
pub(super) fn path(matcher: &str, arg: &str) -> Result<(), String> {
    if arg.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{matcher}: path {arg:?} must start with /"))
    }
}

/// The pattern must compile with the `regex` crate, as the data plane will compile it. See the
/// `rule` module's documentation for what this crate's syntax does differently from Go's.
pub(super) fn regex(matcher: &str, pattern: &str) -> Result<(), String> {
    match regex::Regex::new(pattern) {
        Ok(_) => Ok(()),
        Err(err) => {
            let mut reason = regex_reason(&err);
            if looks_like_template(pattern) {
                reason.push_str(
                    "; `{name:regex}` templates are v2 syntax: in v3 write a plain regex such as \
                     `^[a-z]+\\.example\\.com$`, or set the route's syntax to v2",
                );
            }
            Err(format!("{matcher}: invalid regular expression {pattern:?}: {reason}"))
        }
    }
}

/// The regex crate's message without its multi-line rendering of the pattern.
pub(super) fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_string()
}

/// `{` followed by a name character: how a gorilla/mux variable starts.
fn looks_like_template(pattern: &str) -> bool {
    pattern
        .match_indices('{')
        .any(|(i, _)| pattern[i + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// A `ClientIP` argument: an IPv4/IPv6 address or a CIDR, written as Go's `net.ParseIP` /
/// `net.ParseCIDR` accept them (no surrounding spaces, a decimal prefix length).
pub(super) fn client_ip(matcher: &str, arg: &str) -> Result<Cidr, String> {
    let bad = || format!("{matcher}: {arg:?} is not an IP address or CIDR");
    if arg.trim() != arg {
        return Err(bad());
    }
    if let Some((_, prefix)) = arg.split_once('/') {
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Cidr::parse(arg).map_err(|_| bad())
}

/// Traefik upper-cases the method (Go's `strings.ToUpper`, which is Unicode-aware).
pub(super) fn method(arg: &str) -> String {
    arg.to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let cases: [(&str, &str, Result<&str, &str>); 17] = [
            ("catch-all", "*", Ok("*")),
            ("lower-cased", "Example.COM", Ok("example.com")),
            ("trailing dot", "example.com.", Ok("example.com")),
            ("punycode", "xn--bcher-kva.de", Ok("xn--bcher-kva.de")),
            ("wildcard", "*.Example.com", Ok("*.example.com")),
            ("wildcard with trailing dot", "*.example.com.", Ok("*.example.com")),
            ("ipv4", "10.0.0.1", Ok("10.0.0.1")),
            ("ipv6 in brackets", "[FE80::1]", Ok("fe80::1")),
            ("ipv6 bare", "::1", Ok("::1")),
            ("non-ascii", "bücher.de", Err("non-ASCII")),
            ("two wildcards", "*.*.example.com", Err("wildcard")),
            ("inner wildcard", "a.*.example.com", Err("wildcard")),
            ("partial wildcard label", "*foo.example.com", Err("wildcard")),
            ("wildcard without domain", "*.", Err("wildcard")),
            ("only a dot", ".", Err("empty once")),
            ("two trailing dots", "a.org..", Err("ends with an empty label")),
            ("bracketed with port", "[::1]:80", Err("not a bracketed IPv6 address")),
        ];
        for (name, arg, want) in cases {
            let got = host("Host", arg);
            match want {
                Ok(h) => assert_eq!(got.as_deref(), Ok(h), "case {name}"),
                Err(e) => {
                    let got = got.expect_err(name);
                    assert!(got.starts_with("Host: ") && got.contains(e), "case {name}: {got}");
                }
            }
        }
    }

    #[test]
    fn header_names() {
        assert_eq!(header_name("Header", "X-Forwarded-Proto").as_deref(), Ok("x-forwarded-proto"));
        assert_eq!(header_name("Header", "x_custom!").as_deref(), Ok("x_custom!"));
        for bad in ["X Foo", "X:Foo", "é", "a\"b"] {
            let err = header_name("Header", bad).expect_err(bad);
            assert!(err.contains("not a valid header name"), "{bad}: {err}");
        }
    }

    #[test]
    fn client_ips() {
        assert!(client_ip("ClientIP", "10.0.0.0/8").is_ok());
        assert!(client_ip("ClientIP", "::1").is_ok());
        for bad in [" 10.0.0.1", "10.0.0.1 ", "10.0.0.0/+8", "10.0.0.0/", "1", "foo", "10.0.0.0/33"] {
            let err = client_ip("ClientIP", bad).expect_err(bad);
            assert!(err.contains("is not an IP address or CIDR"), "{bad}: {err}");
        }
    }

    #[test]
    fn regex_errors_are_one_line_with_a_template_hint() {
        let err = regex("HostRegexp", "{sub:[a-z]+}.example.com").expect_err("v2 template");
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("repetition operator missing expression"), "{err}");
        assert!(err.contains("templates are v2 syntax"), "{err}");
        let err = regex("PathRegexp", "(").expect_err("unclosed group");
        assert!(err.starts_with("PathRegexp: invalid regular expression \"(\": unclosed group"), "{err}");
        assert!(!err.contains("v2 syntax"), "{err}");
    }
}
