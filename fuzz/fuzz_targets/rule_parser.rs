//! AFL target for the rule parser: any input, in either syntax, must give a rule or a
//! `RuleError`, never a panic; and what it gives must hold the parser's promises to the data
//! plane: depth within `MAX_DEPTH`, every regex compiling with the `regex` crate, hosts
//! normalised, error offsets inside the rule.

use weir_proto::rule::{parse_with, Expr, Matcher, Syntax, MAX_DEPTH};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        // Rules come from YAML, so they are text; other bytes cannot reach the parser.
        let Ok(rule) = std::str::from_utf8(data) else { return };
        for syntax in [Syntax::V3, Syntax::V2] {
            match parse_with(rule, syntax) {
                Ok(expr) => check(&expr, 1),
                Err(err) => assert!(err.offset <= rule.len(), "offset {} past the rule: {err}", err.offset),
            }
        }
    });
}

fn check(expr: &Expr, depth: usize) {
    assert!(depth <= MAX_DEPTH, "tree deeper than MAX_DEPTH");
    match expr {
        Expr::Not(e) => check(e, depth + 1),
        Expr::And(l, r) | Expr::Or(l, r) => {
            check(l, depth + 1);
            check(r, depth + 1);
        }
        Expr::Matcher(m) => matcher(m),
    }
}

fn matcher(m: &Matcher) {
    let compiles = |re: &str| assert!(regex::Regex::new(re).is_ok(), "stored regex {re:?} does not compile");
    match m {
        Matcher::Host(h) => {
            assert!(!h.is_empty() && h.is_ascii(), "host {h:?}");
            assert_eq!(*h, h.to_ascii_lowercase(), "host not lower-cased");
            assert!(h == "*" || !h.ends_with('.'), "host {h:?} keeps its trailing dot");
        }
        Matcher::HostRegexp(re) | Matcher::PathRegexp(re) => compiles(re),
        Matcher::HeaderRegexp(name, re) => {
            assert_eq!(*name, name.to_ascii_lowercase(), "header name not lower-cased");
            compiles(re);
        }
        Matcher::QueryRegexp(_, re) => compiles(re),
        Matcher::Header(name, _) => {
            assert_eq!(*name, name.to_ascii_lowercase(), "header name not lower-cased")
        }
        Matcher::Path(p) | Matcher::PathPrefix(p) => assert!(p.starts_with('/'), "path {p:?}"),
        Matcher::Method(m) => assert!(!m.is_empty(), "empty method"),
        Matcher::Query(k, v) => assert!(!k.is_empty() && v.as_ref().is_none_or(|v| !v.is_empty()), "query"),
        Matcher::ClientIP(_) => {}
    }
}
