//! Recursive-descent parser with Go precedence (`!` > `&&` > `||`) and matcher validation.

use super::lexer::{tokenize, Token};
use super::{Expr, Matcher, RuleError};

/// Parses a v3 HTTP rule.
pub fn parse(rule: &str) -> Result<Expr, RuleError> {
    let tokens = tokenize(rule)?;
    if tokens.is_empty() {
        return Err(RuleError { offset: 0, reason: "empty rule".into() });
    }
    let mut p = Parser { tokens, pos: 0, len: rule.len() };
    let expr = p.or()?;
    if let Some((off, t)) = p.tokens.get(p.pos) {
        return Err(RuleError { offset: *off, reason: format!("unexpected {t:?} after expression") });
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    len: usize,
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

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        match self.peek() {
            Some(Token::Not) => {
                self.pos += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Token::LParen) => {
                self.pos += 1;
                let e = self.or()?;
                if self.next() != Some(Token::RParen) {
                    self.pos -= 1;
                    return self.fail("expected `)`");
                }
                Ok(e)
            }
            Some(Token::Ident(_)) => self.call(),
            Some(t) => {
                let t = format!("{t:?}");
                self.fail(format!("expected a matcher, found {t}"))
            }
            None => self.fail("expected a matcher, found end of rule"),
        }
    }

    fn call(&mut self) -> Result<Expr, RuleError> {
        let start = self.offset();
        let Some(Token::Ident(name)) = self.next() else {
            return self.fail("expected a matcher name");
        };
        if self.next() != Some(Token::LParen) {
            self.pos -= 1;
            return self.fail(format!("expected `(` after {name}"));
        }
        let mut args = Vec::new();
        if self.peek() == Some(&Token::RParen) {
            self.pos += 1;
        } else {
            loop {
                match self.next() {
                    Some(Token::Str(s)) => args.push(s),
                    _ => {
                        self.pos -= 1;
                        return self.fail(format!("{name}: arguments must be quoted strings"));
                    }
                }
                match self.next() {
                    Some(Token::Comma) => continue,
                    Some(Token::RParen) => break,
                    _ => {
                        self.pos -= 1;
                        return self.fail(format!("{name}: expected `,` or `)`"));
                    }
                }
            }
        }
        build_matcher(&name, args).map(Expr::Matcher).map_err(|reason| RuleError { offset: start, reason })
    }
}

/// Traefik accepts a matcher name as defined, all lower-case, all upper-case, or Title-case.
fn canonical(name: &str) -> Option<&'static str> {
    const NAMES: [&str; 3] = ["Host", "Path", "PathPrefix"];
    NAMES.into_iter().find(|canon| {
        let title: String = canon
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        name == *canon
            || name == canon.to_ascii_lowercase()
            || name == canon.to_ascii_uppercase()
            || name == title
    })
}

fn build_matcher(name: &str, args: Vec<String>) -> Result<Matcher, String> {
    let canon = canonical(name).ok_or_else(|| format!("unknown matcher {name:?}"))?;
    if args.len() != 1 {
        return Err(format!("{canon} takes 1 argument, got {}", args.len()));
    }
    let Some(arg) = args.into_iter().next().filter(|a| !a.is_empty()) else {
        return Err(format!("{canon}: empty argument"));
    };
    match canon {
        "Host" => {
            if !arg.is_ascii() {
                return Err(format!("Host: {arg:?} is not ASCII (use its punycode form)"));
            }
            let host = arg.to_ascii_lowercase();
            let host = host.strip_suffix('.').unwrap_or(&host).to_string();
            Ok(Matcher::Host(host))
        }
        "Path" | "PathPrefix" => {
            if !arg.starts_with('/') {
                return Err(format!("{canon}: path {arg:?} must start with /"));
            }
            Ok(if canon == "Path" { Matcher::Path(arg) } else { Matcher::PathPrefix(arg) })
        }
        _ => Err(format!("unknown matcher {name:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Expr {
        Expr::Matcher(Matcher::Host(h.into()))
    }
    fn prefix(p: &str) -> Expr {
        Expr::Matcher(Matcher::PathPrefix(p.into()))
    }

    #[test]
    fn valid_rules() {
        let cases: Vec<(&str, &str, Expr)> = vec![
            ("backquoted host", "Host(`Example.COM.`)", host("example.com")),
            ("double quoted with escape", r#"Path("/a\\b")"#, Expr::Matcher(Matcher::Path("/a\\b".into()))),
            ("lower-case name", "host(`a`)", host("a")),
            ("upper-case name", "PATHPREFIX(`/x`)", prefix("/x")),
            ("title-case name", "Pathprefix(`/x`)", prefix("/x")),
            (
                "and binds tighter than or",
                "Host(`a`) || Host(`b`) && PathPrefix(`/p`)",
                Expr::Or(
                    Box::new(host("a")),
                    Box::new(Expr::And(Box::new(host("b")), Box::new(prefix("/p")))),
                ),
            ),
            (
                "parentheses",
                "(Host(`a`) || Host(`b`)) && !PathPrefix(`/p`)",
                Expr::And(
                    Box::new(Expr::Or(Box::new(host("a")), Box::new(host("b")))),
                    Box::new(Expr::Not(Box::new(prefix("/p")))),
                ),
            ),
        ];
        for (name, rule, want) in cases {
            assert_eq!(parse(rule), Ok(want), "case {name}");
        }
    }

    #[test]
    fn invalid_rules() {
        let cases = [
            ("empty", "", "empty rule"),
            ("unquoted argument", "Host(example)", "quoted"),
            ("unquoted dotted argument", "Host(example.com)", "unexpected character"),
            ("unknown matcher", "Hots(`a`)", "unknown matcher"),
            ("mixed case name", "pathPrefix(`/a`)", "unknown matcher"),
            ("wrong arity", "Host(`a`, `b`)", "takes 1 argument"),
            ("empty argument", "Host(``)", "empty argument"),
            ("path without slash", "Path(`a`)", "must start with /"),
            ("non-ascii host", "Host(`bücher.de`)", "not ASCII"),
            ("dangling and", "Host(`a`) &&", "end of rule"),
            ("single ampersand", "Host(`a`) & Host(`b`)", "`&&`"),
            ("unbalanced", "(Host(`a`)", "expected `)`"),
            ("trailing tokens", "Host(`a`) Host(`b`)", "after expression"),
            ("unterminated", "Host(`a)", "unterminated"),
        ];
        for (name, rule, want) in cases {
            let err = parse(rule).expect_err(name);
            assert!(err.reason.contains(want), "case {name}: {err}");
        }
    }

    #[test]
    fn default_priority_is_rule_length() {
        assert_eq!(super::super::default_priority("Host(`example.org`)"), 19);
    }
}
