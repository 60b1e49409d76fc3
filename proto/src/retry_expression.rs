//! Buffering's `retryExpression` (oxy `buffer` over `vulcand/predicate`): a predicate over the
//! last attempt, e.g. `IsNetworkError() && Attempts() <= 2`. Functions: `IsNetworkError()`
//! (the status was 502 or 504), `Attempts()` and `ResponseCode()` (integers),
//! `RequestMethod()` (a string); operators `&&`, `||`, parentheses, and the comparisons
//! `==`, `!=` (integers and strings), `<`, `>`, `<=`, `>=` (integers). Parsed by the control
//! plane to validate, and by the data plane to evaluate; pure.

use std::fmt;

/// A parsed retry expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryExpr {
    /// Both hold.
    And(Box<RetryExpr>, Box<RetryExpr>),
    /// Either holds.
    Or(Box<RetryExpr>, Box<RetryExpr>),
    /// `IsNetworkError()`.
    IsNetworkError,
    /// An integer function compared with a constant.
    Int(IntFn, Cmp, i64),
    /// `RequestMethod()` compared (`==` or `!=`) with a string.
    Method(bool, String),
}

/// An integer-valued function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntFn {
    /// `Attempts()`: the attempt just made, from 1.
    Attempts,
    /// `ResponseCode()`: its status.
    ResponseCode,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `>`.
    Gt,
    /// `<=`.
    Le,
    /// `>=`.
    Ge,
}

/// What an attempt looked like.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The attempt number, from 1.
    pub attempt: u32,
    /// Its response status.
    pub status: u16,
    /// The request method.
    pub method: &'a str,
}

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Int(i64),
    Str(String),
    LParen,
    RParen,
    And,
    Or,
    Cmp(Cmp),
}

fn tokenize(s: &str) -> Result<Vec<Token>, ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |m: String| Err(ParseError(m));
    while i < b.len() {
        let c = b[i];
        let two = b.get(i..i + 2).unwrap_or(&[]);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Token::LParen);
                i += 1;
            }
            b')' => {
                out.push(Token::RParen);
                i += 1;
            }
            _ if two == b"&&" => {
                out.push(Token::And);
                i += 2;
            }
            _ if two == b"||" => {
                out.push(Token::Or);
                i += 2;
            }
            _ if two == b"==" => {
                out.push(Token::Cmp(Cmp::Eq));
                i += 2;
            }
            _ if two == b"!=" => {
                out.push(Token::Cmp(Cmp::Ne));
                i += 2;
            }
            _ if two == b"<=" => {
                out.push(Token::Cmp(Cmp::Le));
                i += 2;
            }
            _ if two == b">=" => {
                out.push(Token::Cmp(Cmp::Ge));
                i += 2;
            }
            b'<' => {
                out.push(Token::Cmp(Cmp::Lt));
                i += 1;
            }
            b'>' => {
                out.push(Token::Cmp(Cmp::Gt));
                i += 1;
            }
            b'"' | b'`' => {
                let end = b[i + 1..].iter().position(|&x| x == c).map(|p| i + 1 + p);
                let Some(end) = end else { return err(format!("unterminated string at {i}")) };
                out.push(Token::Str(s[i + 1..end].to_string()));
                i = end + 1;
            }
            b'0'..=b'9' | b'-' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n =
                    s[start..i].parse().map_err(|_| ParseError(format!("bad number {:?}", &s[start..i])))?;
                out.push(Token::Int(n));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Ident(s[start..i].to_string()));
            }
            _ => return err(format!("unexpected character {:?} at {i}", c as char)),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<RetryExpr, ParseError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            left = RetryExpr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<RetryExpr, ParseError> {
        let mut left = self.term()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            left = RetryExpr::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<RetryExpr, ParseError> {
        match self.next() {
            Some(Token::LParen) => {
                let e = self.or()?;
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    other => Err(ParseError(format!("expected ')', got {other:?}"))),
                }
            }
            Some(Token::Ident(name)) => {
                if self.next() != Some(Token::LParen) || self.next() != Some(Token::RParen) {
                    return Err(ParseError(format!("{name} must be called without arguments: {name}()")));
                }
                let cmp = match self.peek() {
                    Some(Token::Cmp(c)) => {
                        let c = *c;
                        self.pos += 1;
                        Some((c, self.next()))
                    }
                    _ => None,
                };
                match (name.as_str(), cmp) {
                    ("IsNetworkError", None) => Ok(RetryExpr::IsNetworkError),
                    ("Attempts" | "ResponseCode", Some((c, Some(Token::Int(n))))) => {
                        let f = if name == "Attempts" { IntFn::Attempts } else { IntFn::ResponseCode };
                        Ok(RetryExpr::Int(f, c, n))
                    }
                    ("RequestMethod", Some((c @ (Cmp::Eq | Cmp::Ne), Some(Token::Str(m))))) => {
                        Ok(RetryExpr::Method(c == Cmp::Eq, m))
                    }
                    ("IsNetworkError" | "Attempts" | "ResponseCode" | "RequestMethod", _) => {
                        Err(ParseError(format!("unsupported use of {name}()")))
                    }
                    _ => Err(ParseError(format!("unsupported function: {name}"))),
                }
            }
            other => Err(ParseError(format!("unexpected {other:?}"))),
        }
    }
}

impl RetryExpr {
    /// Parses an expression.
    pub fn parse(s: &str) -> Result<RetryExpr, ParseError> {
        let mut p = Parser { tokens: tokenize(s)?, pos: 0 };
        if p.tokens.is_empty() {
            return Err(ParseError("empty expression".into()));
        }
        let e = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(ParseError(format!("unexpected {:?}", p.tokens[p.pos])));
        }
        Ok(e)
    }

    /// Whether the attempt calls for another one.
    pub fn eval(&self, a: &Attempt<'_>) -> bool {
        match self {
            RetryExpr::And(l, r) => l.eval(a) && r.eval(a),
            RetryExpr::Or(l, r) => l.eval(a) || r.eval(a),
            RetryExpr::IsNetworkError => a.status == 502 || a.status == 504,
            RetryExpr::Int(f, c, n) => {
                let v = match f {
                    IntFn::Attempts => i64::from(a.attempt),
                    IntFn::ResponseCode => i64::from(a.status),
                };
                match c {
                    Cmp::Eq => v == *n,
                    Cmp::Ne => v != *n,
                    Cmp::Lt => v < *n,
                    Cmp::Gt => v > *n,
                    Cmp::Le => v <= *n,
                    Cmp::Ge => v >= *n,
                }
            }
            RetryExpr::Method(eq, m) => (a.method == m) == *eq,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let at = |attempt, status| Attempt { attempt, status, method: "GET" };
        // (expression, attempt, status, retry?)
        let cases = [
            ("IsNetworkError() && Attempts() <= 2", 1, 502, true),
            ("IsNetworkError() && Attempts() <= 2", 2, 504, true),
            ("IsNetworkError() && Attempts() <= 2", 3, 502, false),
            ("IsNetworkError() && Attempts() <= 2", 1, 500, false),
            ("ResponseCode() == 503 || ResponseCode() >= 598", 1, 503, true),
            ("ResponseCode() == 503 || ResponseCode() >= 598", 1, 599, true),
            ("ResponseCode() != 200", 1, 200, false),
            ("(Attempts() < 3) && (ResponseCode() > 499)", 2, 500, true),
            ("RequestMethod() == \"GET\" && IsNetworkError()", 1, 502, true),
            ("RequestMethod() != \"GET\" && IsNetworkError()", 1, 502, false),
            ("Attempts() < 2 || Attempts() > 5 && ResponseCode() == 1", 1, 200, true),
        ];
        for (expr, attempt, status, want) in cases {
            let e = RetryExpr::parse(expr).unwrap_or_else(|err| panic!("{expr}: {err}"));
            assert_eq!(e.eval(&at(attempt, status)), want, "{expr} at {attempt}/{status}");
        }
    }

    #[test]
    fn refuses_what_oxy_refuses() {
        let cases = [
            "",
            "Attempts()",
            "IsNetworkError() == 1",
            "Foo()",
            "Attempts() <= \"2\"",
            "RequestMethod() < \"GET\"",
            "IsNetworkError() &&",
            "(IsNetworkError()",
            "IsNetworkError",
            "IsNetworkError() $ 1",
        ];
        for expr in cases {
            assert!(RetryExpr::parse(expr).is_err(), "{expr:?} must be refused");
        }
    }
}
