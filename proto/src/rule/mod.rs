//! Traefik's rule language: the AST shared by both planes, the parser (`parser`) and the
//! default-priority function. Matching against requests belongs to the data plane.
//!
//! W1 covers `Host`, `Path`, `PathPrefix`, `!`, `&&`, `||` and parentheses; the rest of the
//! v3 language grows here without changing the AST's shape.

mod lexer;
mod parser;

use serde::{Deserialize, Serialize};

pub use parser::parse;

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

/// An HTTP matcher with its (already validated and normalised) argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Matcher {
    /// `Host(h)`: lower-cased, trailing dot removed.
    Host(String),
    /// `Path(p)`: exact match on the routing path.
    Path(String),
    /// `PathPrefix(p)`: string prefix of the routing path.
    PathPrefix(String),
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
