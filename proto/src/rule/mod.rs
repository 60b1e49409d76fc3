//! Traefik's rule language: the AST shared by both planes, the parser for both syntaxes
//! (`parse_with`) and the default-priority function. Matching against requests belongs to the
//! data plane; this module only decides what a rule says, validates and normalises it.
//!
//! Layout: `lexer` (Go tokens), `parser` (Go precedence, matcher names), `v3` and `v2` (one
//! builder per matcher and syntax), `template` (gorilla/mux templates of v2), `args` (argument
//! checks both syntaxes share).
//!
//! # Regular expressions
//!
//! Traefik compiles `HostRegexp`, `PathRegexp`, `HeaderRegexp`, `QueryRegexp` (and v2
//! templates) with Go's `regexp` (RE2 syntax); weir checks them with the `regex` crate, which the
//! data plane must use as `regex::Regex::new(pattern)` (default options) so that every pattern
//! the parser accepts compiles there. The two dialects are close; the differences known here:
//!
//! * Refused by weir, accepted by Go: `\C` (any byte), `\Q…\E` quoting, octal escapes (`\012`,
//!   `\0`), and a `{` that does not start a valid repetition (Go reads `a{`, `a{,5}` or
//!   `{name:re}` literally; write `\{`). A v3 rule with a v2 template therefore fails here, with
//!   a hint, where Traefik accepts a regex that never matches.
//! * Accepted by weir, refused by Go: repetition of a repetition (`a**`, `a++`, `x{2}{3}`),
//!   counts above 1000 (`a{1001}`), the flags `x`, `u` and `R`, `\<`, `\>` and `\b{start}`-style
//!   word boundaries, and class set operations (`[a-z&&[^aeiou]]`, `--`, `~~`) and nested
//!   classes, which Go reads as literal characters inside one class.
//! * Matching differently: `\d`, `\w`, `\s` and `\b` are Unicode-aware in Rust (`\d` matches
//!   `٣`, `\s` matches U+00A0 and `\v`) but ASCII-only in Go. Case folding (`(?i)`) is Unicode
//!   simple folding in both (`(?i)k` matches the Kelvin sign).
//! * Compile limits differ: Rust refuses programs above 10 MiB compiled (`a{1000}{1000}`), Go
//!   refuses nesting deeper than 1000.
//!
//! Patterns are stored as written (v2 templates as the regex gorilla would build), not compiled.

mod args;
mod lexer;
mod parser;
mod tcp;
mod template;
mod v2;
mod v3;

use serde::{Deserialize, Serialize};

pub use parser::{parse, parse_with, MAX_DEPTH};
pub use tcp::{default_priority_tcp, parse_tcp, TcpExpr, TcpMatcher};

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expr {
    /// A single matcher call.
    Matcher(Matcher),
    /// Negation.
    Not(Box<Expr>),
    /// Both must match.
    And(Box<Expr>, Box<Expr>),
    /// Either must match.
    Or(Box<Expr>, Box<Expr>),
}

/// An HTTP matcher with its (already validated and normalised) arguments. v2 rules are
/// lowered into these same matchers by the parser, so the data plane knows one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Matcher {
    /// `Host(h)`: lower-cased, trailing dot removed. `*` matches every host; `*.example.com`
    /// matches exactly one extra leading label.
    Host(String),
    /// `HostRegexp(re)`: RE2-style regex, unanchored, on the canonical (lower-cased) host.
    HostRegexp(String),
    /// `Method(m)`: upper-cased at parse time; compared exactly.
    Method(String),
    /// `Path(p)`: exact match on the routing path.
    Path(String),
    /// `PathPrefix(p)`: string prefix of the routing path.
    PathPrefix(String),
    /// `PathRegexp(re)`: unanchored regex on the routing path.
    PathRegexp(String),
    /// `Header(name, value)`: name canonicalised lower-case; any value equal.
    Header(String, String),
    /// `HeaderRegexp(name, re)`: any value matching.
    HeaderRegexp(String, String),
    /// `Query(key)` (value `None`: present with an empty value) or `Query(key, value)`.
    Query(String, Option<String>),
    /// `QueryRegexp(key, re)`: any value of key matching.
    QueryRegexp(String, String),
    /// `ClientIP(ip or cidr)`: the peer address lies in the range.
    ClientIP(crate::net::Cidr),
}

/// Which dialect a rule is written in (Traefik's `ruleSyntax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Syntax {
    /// Traefik v3 syntax (default).
    #[default]
    V3,
    /// Traefik v2 syntax (deprecated; variadic matchers, gorilla templates).
    V2,
}

impl Syntax {
    /// Parses `v2` / `v3` (Traefik also accepts an empty string for the default).
    pub fn from_name(s: &str) -> Option<Syntax> {
        match s {
            "v3" => Some(Syntax::V3),
            "v2" => Some(Syntax::V2),
            _ => None,
        }
    }
}

/// Why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rule at byte {offset}: {reason}")]
pub struct RuleError {
    /// Byte offset in the rule where the problem was found.
    pub offset: usize,
    /// What is wrong.
    pub reason: String,
}

/// Traefik: a router without an explicit priority gets the length of its rule in bytes.
pub fn default_priority(rule: &str) -> i64 {
    rule.len() as i64
}

/// Traefik refuses user priorities above `i64::MAX - 1000` (reserved for internal routers).
pub const MAX_USER_PRIORITY: i64 = i64::MAX - 1000;
