//! Rules compiled for matching: regexes built once, header names parsed once, hosts split
//! into exact / wildcard / any. Evaluation allocates nothing except a decoded copy of an
//! escaped query value tested by a regex.

use http::{HeaderName, Method};
use regex::Regex;
use weir_proto::net::Cidr;
use weir_proto::rule::{Expr, Matcher};

use super::{query, RequestInfo};

/// A rule that cannot be compiled (the control plane validates first; this guards the data
/// plane against a snapshot it did not make).
#[derive(Debug, thiserror::Error)]
#[error("{matcher}: {reason}")]
pub struct CompileError {
    /// The matcher at fault.
    pub matcher: &'static str,
    /// Why.
    pub reason: String,
}

/// What `Host()` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCond {
    /// `Host(\`*\`)`: every request.
    Any,
    /// One exact host.
    Exact(Box<str>),
    /// `*.suffix`: exactly one label before `suffix` (stored without `*.`).
    Wildcard(Box<str>),
}

impl HostCond {
    fn new(h: &str) -> HostCond {
        if h == "*" {
            HostCond::Any
        } else if let Some(suffix) = h.strip_prefix("*.") {
            HostCond::Wildcard(suffix.into())
        } else {
            HostCond::Exact(h.into())
        }
    }

    /// Whether `host` (canonical) satisfies the condition.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostCond::Any => true,
            HostCond::Exact(h) => !host.is_empty() && host == &**h,
            HostCond::Wildcard(suffix) => {
                host.split_once('.').is_some_and(|(label, rest)| !label.is_empty() && rest == &**suffix)
            }
        }
    }
}

/// One compiled matcher.
#[derive(Debug)]
pub enum Cond {
    /// `Host`.
    Host(HostCond),
    /// `HostRegexp`.
    HostRegexp(Regex),
    /// `Method`.
    Method(Method),
    /// `Path`.
    Path(Box<str>),
    /// `PathPrefix`.
    PathPrefix(Box<str>),
    /// `PathRegexp`.
    PathRegexp(Regex),
    /// `Header`.
    Header(HeaderName, Box<[u8]>),
    /// `HeaderRegexp`.
    HeaderRegexp(HeaderName, Regex),
    /// `Query(k)` / `Query(k, v)`.
    Query(Box<str>, Option<Box<str>>),
    /// `QueryRegexp`.
    QueryRegexp(Box<str>, Regex),
    /// `ClientIP`.
    ClientIp(Cidr),
}

/// A compiled rule.
#[derive(Debug)]
pub enum CompiledExpr {
    /// A matcher.
    Cond(Cond),
    /// Negation.
    Not(Box<CompiledExpr>),
    /// Both.
    And(Box<CompiledExpr>, Box<CompiledExpr>),
    /// Either.
    Or(Box<CompiledExpr>, Box<CompiledExpr>),
}

fn regex(matcher: &'static str, re: &str) -> Result<Regex, CompileError> {
    Regex::new(re).map_err(|e| CompileError { matcher, reason: e.to_string() })
}

fn header(matcher: &'static str, name: &str) -> Result<HeaderName, CompileError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| CompileError { matcher, reason: format!("{name:?} is not a header name") })
}

impl CompiledExpr {
    /// Compiles a parsed rule.
    pub fn compile(expr: &Expr) -> Result<CompiledExpr, CompileError> {
        Ok(match expr {
            Expr::Matcher(m) => CompiledExpr::Cond(match m {
                Matcher::Host(h) => Cond::Host(HostCond::new(h)),
                Matcher::HostRegexp(re) => Cond::HostRegexp(regex("HostRegexp", re)?),
                Matcher::Method(m) => Cond::Method(Method::from_bytes(m.as_bytes()).map_err(|_| {
                    CompileError { matcher: "Method", reason: format!("{m:?} is not a method") }
                })?),
                Matcher::Path(p) => Cond::Path(p.as_str().into()),
                Matcher::PathPrefix(p) => Cond::PathPrefix(p.as_str().into()),
                Matcher::PathRegexp(re) => Cond::PathRegexp(regex("PathRegexp", re)?),
                Matcher::Header(k, v) => Cond::Header(header("Header", k)?, v.as_bytes().into()),
                Matcher::HeaderRegexp(k, re) => {
                    Cond::HeaderRegexp(header("HeaderRegexp", k)?, regex("HeaderRegexp", re)?)
                }
                Matcher::Query(k, v) => Cond::Query(k.as_str().into(), v.as_deref().map(Into::into)),
                Matcher::QueryRegexp(k, re) => {
                    Cond::QueryRegexp(k.as_str().into(), regex("QueryRegexp", re)?)
                }
                Matcher::ClientIP(c) => Cond::ClientIp(*c),
            }),
            Expr::Not(e) => CompiledExpr::Not(Box::new(Self::compile(e)?)),
            Expr::And(a, b) => CompiledExpr::And(Box::new(Self::compile(a)?), Box::new(Self::compile(b)?)),
            Expr::Or(a, b) => CompiledExpr::Or(Box::new(Self::compile(a)?), Box::new(Self::compile(b)?)),
        })
    }

    /// Whether the request matches.
    pub fn matches(&self, req: &RequestInfo<'_>) -> bool {
        match self {
            CompiledExpr::Cond(c) => c.matches(req),
            CompiledExpr::Not(e) => !e.matches(req),
            CompiledExpr::And(a, b) => a.matches(req) && b.matches(req),
            CompiledExpr::Or(a, b) => a.matches(req) || b.matches(req),
        }
    }

    /// The hosts a request must have for this rule to match, if the rule pins them down:
    /// `Some(keys)` means "only requests whose host is one of these can match".
    pub fn required_hosts(&self) -> Option<Vec<&HostCond>> {
        match self {
            CompiledExpr::Cond(Cond::Host(h @ (HostCond::Exact(_) | HostCond::Wildcard(_)))) => Some(vec![h]),
            CompiledExpr::Cond(_) | CompiledExpr::Not(_) => None,
            CompiledExpr::And(a, b) => match (a.required_hosts(), b.required_hosts()) {
                (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
                (x, None) => x,
                (None, y) => y,
            },
            CompiledExpr::Or(a, b) => match (a.required_hosts(), b.required_hosts()) {
                (Some(mut x), Some(y)) => {
                    x.extend(y);
                    Some(x)
                }
                _ => None,
            },
        }
    }
}

impl Cond {
    fn matches(&self, req: &RequestInfo<'_>) -> bool {
        match self {
            Cond::Host(h) => h.matches(req.host),
            Cond::HostRegexp(re) => re.is_match(req.host),
            Cond::Method(m) => req.method == m,
            Cond::Path(p) => req.path == &**p,
            Cond::PathPrefix(p) => req.path.starts_with(&**p),
            Cond::PathRegexp(re) => re.is_match(req.path),
            Cond::Header(name, value) => req.headers.get_all(name).iter().any(|v| v.as_bytes() == &**value),
            Cond::HeaderRegexp(name, re) => req
                .headers
                .get_all(name)
                .iter()
                .any(|v| std::str::from_utf8(v.as_bytes()).is_ok_and(|s| re.is_match(s))),
            Cond::Query(key, value) => req.query.is_some_and(|q| {
                query::pairs(q).any(|(k, v)| {
                    query::valid(k)
                        && query::valid(v)
                        && query::eq_decoded(k, key)
                        && query::eq_decoded(v, value.as_deref().unwrap_or(""))
                })
            }),
            Cond::QueryRegexp(key, re) => req.query.is_some_and(|q| {
                query::pairs(q).any(|(k, v)| {
                    query::valid(k)
                        && query::valid(v)
                        && query::eq_decoded(k, key)
                        && re.is_match(&query::decode(v))
                })
            }),
            Cond::ClientIp(c) => c.contains(req.client_ip),
        }
    }
}
