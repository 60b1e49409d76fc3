//! v2 HTTP matchers (Traefik's `httpFuncsV2` in `pkg/muxer/http/matcher_v2.go`, built on its
//! gorilla/mux fork) lowered into the v3 `Matcher`s, so the data plane knows one language:
//! variadic matchers become an `Or` of one matcher per argument, `Headers`/`HeadersRegexp`/`Query`
//! pairs an `And` (gorilla requires all of them), and templates an anchored regex.
//!
//! Two v2 behaviours have no exact v3 form and are approximated: gorilla's `Query` looks at the
//! first value of a repeated key only, while the lowered `Query`/`QueryRegexp` accept any value;
//! and v2's `Host` has no wildcard, so a host containing `*` becomes an exact (escaped) regex.

use super::template::{self, Kind};
use super::{args, v3, Matcher};

/// The v2 HTTP matcher names, as Traefik defines them.
pub(super) const NAMES: [&str; 10] = [
    "Host",
    "HostHeader",
    "HostRegexp",
    "Path",
    "PathPrefix",
    "Method",
    "Headers",
    "HeadersRegexp",
    "Query",
    "ClientIP",
];

/// A v2 call lowered into v3 matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lowered {
    /// Any of them must match (variadic matchers).
    Any(Vec<Matcher>),
    /// All of them must match (gorilla's pairs).
    All(Vec<Matcher>),
}

/// Builds the matcher `name` (one of `NAMES`) from its arguments.
pub(super) fn build(name: &'static str, values: &[String]) -> Result<Lowered, String> {
    let pairs = matches!(name, "Headers" | "HeadersRegexp");
    if values.is_empty() || (pairs && !values.len().is_multiple_of(2)) {
        let expected = if pairs { "name/regex pairs" } else { "at least 1 argument" };
        let expected = if name == "Headers" { "name/value pairs" } else { expected };
        return Err(format!("{name} takes {expected}, got {} argument(s)", values.len()));
    }
    v3::non_empty(name, values)?;
    let each = |f: &dyn Fn(&str) -> Result<Matcher, String>| -> Result<Lowered, String> {
        values.iter().map(|v| f(v)).collect::<Result<_, _>>().map(Lowered::Any)
    };
    match name {
        "Host" | "HostHeader" => each(&|h| host(name, h)),
        "HostRegexp" => each(&|h| {
            args::ascii(name, h)?;
            Ok(Matcher::HostRegexp(expand(name, h, Kind::Host)?))
        }),
        "Path" => each(&|p| path(name, p, Kind::Path)),
        "PathPrefix" => each(&|p| path(name, p, Kind::PathPrefix)),
        "Method" => each(&|m| Ok(Matcher::Method(args::method(m)))),
        "ClientIP" => each(&|ip| Ok(Matcher::ClientIP(args::client_ip(name, ip)?))),
        "Headers" => headers(name, values, |k, v| Ok(Matcher::Header(k, v.to_string()))),
        "HeadersRegexp" => headers(name, values, |k, re| {
            args::regex(name, re)?;
            Ok(Matcher::HeaderRegexp(k, re.to_string()))
        }),
        "Query" => query(values),
        _ => Err(format!("unknown v2 matcher {name:?}")),
    }
}

/// v2 `Host`: exact, case-insensitive. `*` is an ordinary character there, so a host holding one
/// is matched literally rather than as a v3 wildcard.
fn host(name: &str, arg: &str) -> Result<Matcher, String> {
    if !arg.contains('*') {
        return args::host(name, arg).map(Matcher::Host);
    }
    args::ascii(name, arg)?;
    let lower = arg.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    // Traefik v2 tolerates a trailing dot on the request's host as on the rule's.
    Ok(Matcher::HostRegexp(format!("^{}\\.?$", regex::escape(host))))
}

/// v2 `Path`/`PathPrefix`: a plain path stays a plain matcher; a template becomes a regex.
fn path(name: &str, arg: &str, kind: Kind) -> Result<Matcher, String> {
    // gorilla: "path must start with a slash".
    args::path(name, arg)?;
    if template::is_template(arg) {
        return expand(name, arg, kind).map(Matcher::PathRegexp);
    }
    Ok(if kind == Kind::Path { Matcher::Path(arg.to_string()) } else { Matcher::PathPrefix(arg.to_string()) })
}

fn expand(name: &str, tpl: &str, kind: Kind) -> Result<String, String> {
    template::expand(tpl, kind).map(|e| e.regex).map_err(|reason| format!("{name}: {reason}"))
}

/// gorilla's `Headers`/`HeadersRegexp`: name/value pairs, all required. gorilla keeps them in a
/// map, so a name written twice (same spelling) keeps its last value.
fn headers(
    name: &str,
    values: &[String],
    make: impl Fn(String, &str) -> Result<Matcher, String>,
) -> Result<Lowered, String> {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(values.len() / 2);
    for pair in values.chunks_exact(2) {
        let (k, v) = (pair[0].as_str(), pair[1].as_str());
        match pairs.iter_mut().find(|(seen, _)| *seen == k) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
    }
    pairs
        .into_iter()
        .map(|(k, v)| make(args::header_name(name, k)?, v))
        .collect::<Result<_, _>>()
        .map(Lowered::All)
}

/// v2 `Query(`k=v`, …)`: Traefik splits every argument at its first `=` and hands the pieces to
/// gorilla's `Queries` as key, value, key, value… — so the pieces must pair up, and all pairs
/// must match. A value may be a template; an empty value accepts any value of a present key.
fn query(values: &[String]) -> Result<Lowered, String> {
    let pieces: Vec<&str> = values.iter().flat_map(|v| v.splitn(2, '=')).collect();
    if !pieces.len().is_multiple_of(2) {
        return Err(format!(
            "Query: Traefik splits each argument at its first `=` and pairs the pieces as key, \
             value: {pieces:?} does not pair up (write `key=value`, or `key=` for any value)"
        ));
    }
    let mut vars: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(pieces.len() / 2);
    for pair in pieces.chunks_exact(2) {
        let (key, value) = (pair[0], pair[1]);
        if key.is_empty() {
            return Err(format!("Query: empty key in `={value}`"));
        }
        if template::is_template(key) {
            return Err(format!("Query: templates in query keys are not supported ({key:?})"));
        }
        out.push(if value.is_empty() {
            // gorilla: `k=` is `^k=.*$`, any value of a present key.
            Matcher::QueryRegexp(key.to_string(), "^.*$".to_string())
        } else if template::is_template(value) {
            let e = template::expand(value, Kind::QueryValue).map_err(|r| format!("Query: {r}"))?;
            if let Some(dup) = e.vars.iter().find(|v| vars.contains(v)) {
                return Err(format!("Query: duplicated template variable {dup:?}"));
            }
            vars.extend(e.vars);
            Matcher::QueryRegexp(key.to_string(), e.regex)
        } else {
            Matcher::Query(key.to_string(), Some(value.to_string()))
        });
    }
    Ok(Lowered::All(out))
}

#[cfg(test)]
mod tests {
    use crate::net::Cidr;
    use crate::rule::{parse_with, Expr, Matcher, Syntax};

    fn s(v: &str) -> String {
        v.to_string()
    }
    fn chain(ms: Vec<Matcher>, join: fn(Box<Expr>, Box<Expr>) -> Expr) -> Expr {
        let mut it = ms.into_iter().map(Expr::Matcher);
        let first = it.next().expect("at least one matcher");
        it.fold(first, |l, r| join(Box::new(l), Box::new(r)))
    }
    fn any(ms: Vec<Matcher>) -> Expr {
        chain(ms, Expr::Or)
    }
    fn all(ms: Vec<Matcher>) -> Expr {
        chain(ms, Expr::And)
    }

    #[test]
    fn lowering() {
        use Matcher::*;
        let cidr = |c: &str| Cidr::parse(c).expect("test CIDR");
        let cases: Vec<(&str, &str, Expr)> = vec![
            ("host", "Host(`Example.com.`)", any(vec![Host(s("example.com"))])),
            (
                "host variadic is or",
                "Host(`a.com`, `b.com`, `c.com`)",
                any(vec![Host(s("a.com")), Host(s("b.com")), Host(s("c.com"))]),
            ),
            ("host header alias", "HostHeader(`a.com`)", any(vec![Host(s("a.com"))])),
            (
                "host star is literal",
                "Host(`*.Example.com`)",
                any(vec![HostRegexp(s(r"^\*\.example\.com\.?$"))]),
            ),
            ("host ipv6 brackets removed", "Host(`[::1]`)", any(vec![Host(s("::1"))])),
            (
                "host regexp template",
                "HostRegexp(`{sub:[a-z]+}.example.com`)",
                any(vec![HostRegexp(s(r"(?i)^(?:[a-z]+)\.example\.com$"))]),
            ),
            (
                "host regexp default pattern",
                "HostRegexp(`{sub}.example.com`)",
                any(vec![HostRegexp(s(r"(?i)^(?:[^.]+)\.example\.com$"))]),
            ),
            (
                "host regexp plain text is literal",
                "HostRegexp(`example.com`, `a.*`)",
                any(vec![HostRegexp(s(r"(?i)^example\.com$")), HostRegexp(s(r"(?i)^a\.\*$"))]),
            ),
            ("path plain", "Path(`/a`, `/b`)", any(vec![Path(s("/a")), Path(s("/b"))])),
            ("path template", "Path(`/api/{id:[0-9]+}`)", any(vec![PathRegexp(s(r"^/api/(?:[0-9]+)$"))])),
            (
                "path template default",
                "Path(`/user/{name}/x`)",
                any(vec![PathRegexp(s(r"^/user/(?:[^/]+)/x$"))]),
            ),
            ("path prefix plain", "PathPrefix(`/api`)", any(vec![PathPrefix(s("/api"))])),
            (
                "path prefix template",
                "PathPrefix(`/v{n:[0-9]}/`)",
                any(vec![PathRegexp(s(r"^/v(?:[0-9])/"))]),
            ),
            ("path literal text escaped", "Path(`/a.b/{x}`)", any(vec![PathRegexp(s(r"^/a\.b/(?:[^/]+)$"))])),
            ("method variadic", "Method(`get`, `POST`)", any(vec![Method(s("GET")), Method(s("POST"))])),
            (
                "client ip variadic",
                "ClientIP(`10.0.0.0/8`, `::1`)",
                any(vec![ClientIP(cidr("10.0.0.0/8")), ClientIP(cidr("::1"))]),
            ),
            (
                "headers",
                "Headers(`X-Forwarded-Proto`, `https`)",
                all(vec![Header(s("x-forwarded-proto"), s("https"))]),
            ),
            (
                "headers pairs are and",
                "Headers(`A`, `1`, `B`, `2`)",
                all(vec![Header(s("a"), s("1")), Header(s("b"), s("2"))]),
            ),
            (
                "headers same name keeps last value",
                "Headers(`A`, `1`, `A`, `2`)",
                all(vec![Header(s("a"), s("2"))]),
            ),
            (
                "headers regexp",
                "HeadersRegexp(`Content-Type`, `^application/json`)",
                all(vec![HeaderRegexp(s("content-type"), s("^application/json"))]),
            ),
            ("query pair", "Query(`q=traefik`)", all(vec![Query(s("q"), Some(s("traefik")))])),
            (
                "query pairs are and",
                "Query(`a=1`, `b=2`)",
                all(vec![Query(s("a"), Some(s("1"))), Query(s("b"), Some(s("2")))]),
            ),
            ("query value keeps later =", "Query(`a=b=c`)", all(vec![Query(s("a"), Some(s("b=c")))])),
            (
                "query empty value is any value",
                "Query(`mobile=`)",
                all(vec![QueryRegexp(s("mobile"), s("^.*$"))]),
            ),
            ("query template", "Query(`id={id:[0-9]+}`)", all(vec![QueryRegexp(s("id"), s("^(?:[0-9]+)$"))])),
            ("query template default", "Query(`v={v}`)", all(vec![QueryRegexp(s("v"), s("^(?:.*)$"))])),
            (
                "query pieces pair across arguments as traefik does",
                "Query(`a`, `b`)",
                all(vec![Query(s("a"), Some(s("b")))]),
            ),
        ];
        for (name, rule, want) in cases {
            assert_eq!(parse_with(rule, Syntax::V2), Ok(want), "case {name}");
        }
    }

    #[test]
    fn errors() {
        let cases = [
            ("host no argument", "Host()", "Host takes at least 1 argument, got 0"),
            ("host empty second", "Host(`a`, ``)", "Host: argument 2 is empty"),
            ("host non-ascii", "Host(`a.com`, `bücher.de`)", "Host: \"bücher.de\" has non-ASCII characters"),
            (
                "host regexp non-ascii",
                "HostRegexp(`{x}.bücher.de`)",
                "HostRegexp: \"{x}.bücher.de\" has non-ASCII",
            ),
            ("host regexp unbalanced", "HostRegexp(`{x.example.com`)", "HostRegexp: unbalanced braces"),
            (
                "host regexp bad pattern",
                "HostRegexp(`{x:(}.com`)",
                "HostRegexp: invalid pattern in \"{x:(}\"",
            ),
            ("path without slash", "Path(`api`)", "Path: path \"api\" must start with /"),
            ("path stray brace", "Path(`/a}`)", "Path: unbalanced braces"),
            ("path missing pattern", "PathPrefix(`/{id:}`)", "PathPrefix: missing name or pattern"),
            (
                "client ip bad",
                "ClientIP(`10.0.0.1`, `nope`)",
                "ClientIP: \"nope\" is not an IP address or CIDR",
            ),
            ("headers odd", "Headers(`A`)", "Headers takes name/value pairs, got 1 argument(s)"),
            ("headers three", "Headers(`A`, `1`, `B`)", "Headers takes name/value pairs, got 3 argument(s)"),
            ("headers bad name", "Headers(`A B`, `1`)", "Headers: \"A B\" is not a valid header name"),
            ("headers regexp odd", "HeadersRegexp(`A`)", "HeadersRegexp takes name/regex pairs"),
            (
                "headers regexp invalid",
                "HeadersRegexp(`A`, `(`)",
                "HeadersRegexp: invalid regular expression",
            ),
            ("query key alone", "Query(`mobile`)", "does not pair up"),
            ("query misaligned", "Query(`a=1`, `b`)", "does not pair up"),
            ("query empty key", "Query(`=v`)", "Query: empty key"),
            ("query key template", "Query(`{k}=v`)", "templates in query keys are not supported"),
            ("query duplicated variable", "Query(`a={x}`, `b={x}`)", "duplicated template variable \"x\""),
            ("query bad template", "Query(`a={x:(}`)", "Query: invalid pattern"),
        ];
        for (name, rule, want) in cases {
            let err = parse_with(rule, Syntax::V2).expect_err(name);
            assert!(err.reason.contains(want), "case {name}: {}", err.reason);
        }
    }
}
