//! Recursive-descent parser for the Go-expression grammar Traefik's rules use: `!` binds tighter
//! than `&&`, which binds tighter than `||`; parentheses group; arguments are string literals.
//! It resolves matcher names (Traefik's four spellings) and hands each call to the builders of
//! the rule's syntax. `!` stays a node, not pushed down by De Morgan: the data plane evaluates it.

use super::lexer::{tokenize, Token};
use super::v2::{self, Lowered};
use super::{v3, Expr, RuleError, Syntax};

/// The deepest tree `parse_with` returns (a leaf has depth 1; `Not`, `And` and `Or` add one), so
/// code that walks a parsed rule recursively has a known bound. Deeper rules are refused; Traefik
/// has no such limit, but no real rule comes near it.
pub const MAX_DEPTH: usize = 1000;

/// Parentheses and `!` nested deeper than this are refused (the parser recurses on them).
const MAX_NESTING: usize = 100;

/// Parses a rule in Traefik's v3 syntax (the default); same as `parse_with(rule, Syntax::V3)`.
pub fn parse(rule: &str) -> Result<Expr, RuleError> {
    parse_with(rule, Syntax::V3)
}

/// Parses an HTTP rule written in `syntax`. v2 rules are lowered into the v3 matchers (see the
/// module documentation). Every argument is validated and normalised here, so the data plane
/// can compile the result without failing, except for the regex caveats the module lists.
pub fn parse_with(rule: &str, syntax: Syntax) -> Result<Expr, RuleError> {
    let tokens = tokenize(rule)?;
    if tokens.is_empty() {
        return Err(RuleError { offset: 0, reason: "empty rule".into() });
    }
    let mut p = Parser { tokens, pos: 0, len: rule.len(), syntax, nesting: 0 };
    let (expr, _) = p.or()?;
    // Go's parser accepts one inserted semicolon (a line break) at the very end.
    if p.peek() == Some(&Token::LineEnd) && p.pos + 1 == p.tokens.len() {
        p.pos += 1;
    }
    match p.peek() {
        None => Ok(expr),
        Some(Token::LineEnd) => p.fail(
            "a line break after a matcher or `)` ends the rule in Traefik's (Go) grammar: put `&&` \
             or `||` at the end of the line, not at the start of the next",
        ),
        Some(t) => {
            let found = t.describe();
            p.fail(format!("unexpected {found} after a complete expression (missing `&&` or `||`?)"))
        }
    }
}

/// An expression and its depth.
type Node = (Expr, usize);

/// `Expr::And` or `Expr::Or`.
type Join = fn(Box<Expr>, Box<Expr>) -> Expr;

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    len: usize,
    syntax: Syntax,
    nesting: usize,
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

    fn found(&self) -> String {
        self.peek().map_or_else(|| "end of rule".to_string(), Token::describe)
    }

    fn or(&mut self) -> Result<Node, RuleError> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            let at = self.offset();
            self.pos += 1;
            let right = self.and()?;
            left = join(Expr::Or, left, right, at)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, RuleError> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            let at = self.offset();
            self.pos += 1;
            let right = self.unary()?;
            left = join(Expr::And, left, right, at)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, RuleError> {
        match self.peek() {
            Some(Token::Not) => {
                let at = self.offset();
                self.pos += 1;
                let (inner, depth) = self.nested(Self::unary)?;
                deeper(depth + 1, at)?;
                Ok((Expr::Not(Box::new(inner)), depth + 1))
            }
            Some(Token::LParen) => {
                self.pos += 1;
                let node = self.nested(Self::or)?;
                if self.peek() != Some(&Token::RParen) {
                    let found = self.found();
                    return self.fail(format!("expected `)`, found {found}"));
                }
                self.pos += 1;
                Ok(node)
            }
            Some(Token::Ident(_)) => self.call(),
            _ => {
                let found = self.found();
                self.fail(format!("expected a matcher, `!` or `(`, found {found}"))
            }
        }
    }

    /// Runs `f` one nesting level deeper, refusing rules that nest too deep to recurse on.
    fn nested(&mut self, f: fn(&mut Self) -> Result<Node, RuleError>) -> Result<Node, RuleError> {
        if self.nesting >= MAX_NESTING {
            return self.fail(format!("parentheses and `!` nest deeper than {MAX_NESTING} levels"));
        }
        self.nesting += 1;
        let node = f(self);
        self.nesting -= 1;
        node
    }

    /// `Name(arg, …)`; Go allows a trailing comma.
    fn call(&mut self) -> Result<Node, RuleError> {
        let start = self.offset();
        let Some((_, Token::Ident(name))) = self.tokens.get(self.pos).cloned() else {
            return self.fail("expected a matcher name");
        };
        self.pos += 1;
        if self.peek() != Some(&Token::LParen) {
            let found = self.found();
            return self.fail(format!("expected `(` after {name}, found {found}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        loop {
            match self.tokens.get(self.pos) {
                Some((_, Token::RParen)) => break,
                Some((_, Token::Str(s))) => args.push(s.clone()),
                _ => {
                    let found = self.found();
                    return self.fail(format!("{name}: expected a quoted string or `)`, found {found}"));
                }
            }
            self.pos += 1;
            match self.peek() {
                Some(Token::Comma) => self.pos += 1,
                Some(Token::RParen) => break,
                _ => {
                    let found = self.found();
                    return self.fail(format!("{name}: expected `,` or `)`, found {found}"));
                }
            }
        }
        self.pos += 1;
        let fail = |reason| RuleError { offset: start, reason };
        let canon = resolve(&name, self.syntax).map_err(fail)?;
        match self.syntax {
            Syntax::V3 => v3::build(canon, &args).map(|m| (Expr::Matcher(m), 1)).map_err(fail),
            Syntax::V2 => {
                let (matchers, op): (_, Join) = match v2::build(canon, &args).map_err(fail)? {
                    Lowered::Any(m) => (m, Expr::Or),
                    Lowered::All(m) => (m, Expr::And),
                };
                let mut leaves = matchers.into_iter().map(|m| (Expr::Matcher(m), 1));
                let first = leaves.next().ok_or_else(|| fail(format!("{canon}: no matcher built")))?;
                leaves.try_fold(first, |l, r| join(op, l, r, start))
            }
        }
    }
}

/// `op(left, right)`, refused past `MAX_DEPTH`.
fn join(op: Join, left: Node, right: Node, at: usize) -> Result<Node, RuleError> {
    let depth = 1 + left.1.max(right.1);
    deeper(depth, at)?;
    Ok((op(Box::new(left.0), Box::new(right.0)), depth))
}

fn deeper(depth: usize, at: usize) -> Result<(), RuleError> {
    if depth > MAX_DEPTH {
        return Err(RuleError {
            offset: at,
            reason: format!("rule is too deep: more than {MAX_DEPTH} nested operators"),
        });
    }
    Ok(())
}

/// Traefik registers each matcher as defined, all lower-case, all upper-case and Title-case
/// (`PathPrefix`, `pathprefix`, `PATHPREFIX`, `Pathprefix`); nothing else.
fn spelled(name: &str, canon: &str) -> bool {
    let title = |c: &str| {
        let lower = c.to_ascii_lowercase();
        let mut chars = lower.chars();
        chars.next().map(|f| f.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
    };
    name == canon
        || name == canon.to_ascii_lowercase()
        || name == canon.to_ascii_uppercase()
        || name == title(canon)
}

/// The canonical name of matcher `name` in `syntax`, or why there is none.
fn resolve(name: &str, syntax: Syntax) -> Result<&'static str, String> {
    let (own, other, other_name) = match syntax {
        Syntax::V3 => (&v3::NAMES[..], &v2::NAMES[..], "v2"),
        Syntax::V2 => (&v2::NAMES[..], &v3::NAMES[..], "v3"),
    };
    if let Some(canon) = own.iter().copied().find(|c| spelled(name, c)) {
        return Ok(canon);
    }
    if let Some(canon) = other.iter().find(|c| spelled(name, c)) {
        let this = if other_name == "v2" { "v3" } else { "v2" };
        let hint = match (*canon, syntax) {
            ("Headers", _) => "; v3 writes it Header(name, value)",
            ("HeadersRegexp", _) => "; v3 writes it HeaderRegexp(name, regex)",
            ("HostHeader", _) => "; v3 writes it Host(host)",
            _ => "",
        };
        return Err(format!("{canon} is a {other_name} matcher, not available in {this} syntax{hint}"));
    }
    if let Some(canon) = own.iter().chain(other).find(|c| c.eq_ignore_ascii_case(name)) {
        let lower = canon.to_ascii_lowercase();
        let title = lower[..1].to_ascii_uppercase() + &lower[1..];
        return Err(format!(
            "unknown matcher {name:?}: Traefik accepts only {canon}, {lower}, {} or {title}",
            canon.to_ascii_uppercase()
        ));
    }
    if ["HostSNI", "HostSNIRegexp", "ALPN"].iter().any(|c| spelled(name, c)) {
        return Err(format!("{name} is a TCP matcher (IngressRouteTCP), not an HTTP one"));
    }
    Err(format!("unknown matcher {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Matcher;

    fn host(h: &str) -> Expr {
        Expr::Matcher(Matcher::Host(h.into()))
    }
    fn prefix(p: &str) -> Expr {
        Expr::Matcher(Matcher::PathPrefix(p.into()))
    }
    fn method(m: &str) -> Expr {
        Expr::Matcher(Matcher::Method(m.into()))
    }
    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }
    fn and(l: Expr, r: Expr) -> Expr {
        Expr::And(Box::new(l), Box::new(r))
    }
    fn or(l: Expr, r: Expr) -> Expr {
        Expr::Or(Box::new(l), Box::new(r))
    }

    #[test]
    fn grammar() {
        let (a, b, c) = (|| host("a"), || host("b"), || prefix("/p"));
        let cases: Vec<(&str, &str, Expr)> = vec![
            ("backquoted", "Host(`a`)", a()),
            ("double quoted with escapes", r#"PathPrefix("/a\\b\x41\u00e9")"#, prefix("/a\\bAé")),
            ("double quoted with escaped quote", r#"PathPrefix("/\"q\"")"#, prefix("/\"q\"")),
            ("spaces everywhere", "  Host ( `a` )  ", a()),
            ("trailing comma", "Host(`a`,)", a()),
            (
                "and binds tighter than or",
                "Host(`a`) || Host(`b`) && PathPrefix(`/p`)",
                or(a(), and(b(), c())),
            ),
            ("and then or", "Host(`a`) && Host(`b`) || PathPrefix(`/p`)", or(and(a(), b()), c())),
            ("or is left-associative", "Host(`a`) || Host(`b`) || PathPrefix(`/p`)", or(or(a(), b()), c())),
            (
                "and is left-associative",
                "Host(`a`) && Host(`b`) && PathPrefix(`/p`)",
                and(and(a(), b()), c()),
            ),
            ("parentheses", "(Host(`a`) || Host(`b`)) && !PathPrefix(`/p`)", and(or(a(), b()), not(c()))),
            ("not binds tighter than and", "!Host(`a`) && Host(`b`)", and(not(a()), b())),
            ("not of a group stays a node", "!(Host(`a`) || Host(`b`))", not(or(a(), b()))),
            ("double not stays", "!!Host(`a`)", not(not(a()))),
            ("redundant parentheses", "((Host(`a`)))", a()),
            ("line break after an operator", "Host(`a`) &&\n  Host(`b`)", and(a(), b())),
            (
                "line break inside arguments after a comma",
                "Header(\n`X`,\n`v`,\n)",
                Expr::Matcher(Matcher::Header("x".into(), "v".into())),
            ),
            ("trailing line break", "Host(`a`)\n", a()),
            ("comments", "Host(`a`) /* x */ && // y\n Host(`b`)", and(a(), b())),
        ];
        for (name, rule, want) in cases {
            assert_eq!(parse(rule), Ok(want), "case {name}");
        }
    }

    #[test]
    fn syntax_errors() {
        let cases = [
            ("empty", "", "empty rule", 0),
            ("only spaces", "  \n ", "empty rule", 0),
            ("only a comment", "// nothing", "empty rule", 0),
            (
                "unquoted argument",
                "Host(example)",
                "Host: expected a quoted string or `)`, found name `example`",
                5,
            ),
            ("unquoted dotted argument", "Host(example.com)", "unexpected character '.'", 12),
            ("number argument", "Host(1)", "unexpected character '1'", 5),
            ("nested call argument", "Host(Path(`/`))", "found name `Path`", 5),
            ("missing parenthesis", "Host `a`", "expected `(` after Host, found string \"a\"", 5),
            ("bare name", "Host", "expected `(` after Host, found end of rule", 4),
            ("leading comma", "Host(,`a`)", "expected a quoted string or `)`, found `,`", 5),
            ("double comma", "Host(`a`,,)", "found `,`", 9),
            ("dangling and", "Host(`a`) &&", "expected a matcher, `!` or `(`, found end of rule", 12),
            ("dangling not", "!", "found end of rule", 1),
            ("single ampersand", "Host(`a`) & Host(`b`)", "expected `&&` or `||`", 10),
            ("unbalanced", "(Host(`a`)", "expected `)`, found end of rule", 10),
            ("extra close", "Host(`a`))", "unexpected `)` after a complete expression", 9),
            ("juxtaposed", "Host(`a`) Host(`b`)", "unexpected name `Host` after a complete expression", 10),
            ("unterminated raw", "Host(`a)", "unterminated back-quoted string", 5),
            ("unterminated comment", "Host(`a`) /* x", "unterminated comment", 10),
            ("semicolon", "Host(`a`);", "unexpected character ';'", 9),
            ("operator at start of next line", "Host(`a`)\n&& Host(`b`)", "line break after a matcher", 9),
            ("line break before close", "Host(\n`a`\n)", "Host: expected `,` or `)`, found a line break", 9),
            ("line break after name", "Host\n(`a`)", "expected `(` after Host, found a line break", 4),
        ];
        for (name, rule, want, offset) in cases {
            let err = parse(rule).expect_err(name);
            assert!(err.reason.contains(want), "case {name}: {}", err.reason);
            assert_eq!(err.offset, offset, "case {name}: {}", err.reason);
        }
    }

    #[test]
    fn matcher_names() {
        let cases: [(&str, Syntax, Result<&str, &str>); 20] = [
            ("as defined", Syntax::V3, Ok("PathPrefix(`/x`)")),
            ("lower", Syntax::V3, Ok("pathprefix(`/x`)")),
            ("upper", Syntax::V3, Ok("PATHPREFIX(`/x`)")),
            ("title", Syntax::V3, Ok("Pathprefix(`/x`)")),
            ("client ip lower", Syntax::V3, Ok("clientip(`::1`)")),
            ("client ip title", Syntax::V3, Ok("Clientip(`::1`)")),
            ("header regexp upper", Syntax::V3, Ok("HEADERREGEXP(`a`, `b`)")),
            ("v2 title", Syntax::V2, Ok("Hostheader(`a`)")),
            ("v2 upper", Syntax::V2, Ok("HEADERSREGEXP(`a`, `b`)")),
            ("mixed case refused", Syntax::V3, Err("unknown matcher \"pathPrefix\": Traefik accepts only PathPrefix, pathprefix, PATHPREFIX or Pathprefix")),
            ("mixed case of v2 name refused", Syntax::V2, Err("unknown matcher \"hostHeader\"")),
            ("unknown", Syntax::V3, Err("unknown matcher \"Hots\"")),
            ("v2 name in v3", Syntax::V3, Err("Headers is a v2 matcher, not available in v3 syntax; v3 writes it Header(name, value)")),
            ("v2 host header in v3", Syntax::V3, Err("HostHeader is a v2 matcher")),
            ("v2 headers regexp in v3", Syntax::V3, Err("HeadersRegexp is a v2 matcher")),
            ("v3 path regexp in v2", Syntax::V2, Err("PathRegexp is a v3 matcher, not available in v2 syntax")),
            ("v3 header in v2", Syntax::V2, Err("Header is a v3 matcher, not available in v2 syntax")),
            ("v3 query regexp in v2", Syntax::V2, Err("QueryRegexp is a v3 matcher")),
            ("v3 header regexp in v2", Syntax::V2, Err("HeaderRegexp is a v3 matcher")),
            ("tcp matcher", Syntax::V3, Err("HostSNI is a TCP matcher")),
        ];
        let rules = [
            ("mixed case refused", "pathPrefix(`/a`)"),
            ("mixed case of v2 name refused", "hostHeader(`a`)"),
            ("unknown", "Hots(`a`)"),
            ("v2 name in v3", "Headers(`a`, `b`)"),
            ("v2 host header in v3", "HostHeader(`a`)"),
            ("v2 headers regexp in v3", "headersregexp(`a`, `b`)"),
            ("v3 path regexp in v2", "PathRegexp(`/a`)"),
            ("v3 header in v2", "Header(`a`, `b`)"),
            ("v3 query regexp in v2", "QueryRegexp(`a`, `b`)"),
            ("v3 header regexp in v2", "HeaderRegexp(`a`, `b`)"),
            ("tcp matcher", "HostSNI(`a`)"),
        ];
        for (name, syntax, want) in cases {
            match want {
                Ok(rule) => {
                    assert!(parse_with(rule, syntax).is_ok(), "case {name}: {:?}", parse_with(rule, syntax))
                }
                Err(reason) => {
                    let rule = rules.iter().find(|(n, _)| *n == name).map(|(_, r)| *r).expect(name);
                    let err = parse_with(rule, syntax).expect_err(name);
                    assert!(err.reason.contains(reason), "case {name}: {}", err.reason);
                }
            }
        }
    }

    #[test]
    fn errors_point_at_the_matcher() {
        let err = parse("Host(`a`) && Path(`nope`)").expect_err("bad path");
        assert_eq!(err.offset, 13);
        assert!(err.reason.starts_with("Path: "), "{}", err.reason);
        assert_eq!(err.to_string(), "invalid rule at byte 13: Path: path \"nope\" must start with /");
    }

    #[test]
    fn syntaxes_differ() {
        // One rule, two meanings: v2 is variadic, v3 refuses the second argument.
        let rule = "Method(`GET`, `POST`)";
        assert_eq!(parse_with(rule, Syntax::V2), Ok(or(method("GET"), method("POST"))));
        assert!(parse_with(rule, Syntax::V3).is_err());
        // v2 lowering keeps the surrounding structure.
        assert_eq!(
            parse_with("!Host(`a`, `b`) && Method(`get`)", Syntax::V2),
            Ok(and(not(or(host("a"), host("b"))), method("GET")))
        );
    }

    #[test]
    fn depth_limits() {
        let nested = format!("{}Host(`a`){}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(parse(&nested), Ok(host("a")));
        let too_nested = format!("({nested})");
        assert!(parse(&too_nested).expect_err("too nested").reason.contains("nest deeper"));
        let nots = format!("{}Host(`a`)", "!".repeat(MAX_NESTING + 1));
        assert!(parse(&nots).expect_err("too many nots").reason.contains("nest deeper"));
        // A long chain is parsed in a loop, but its tree is as deep as it is long.
        let chain = |n: usize| vec!["Host(`a`)"; n].join(" || ");
        assert!(parse(&chain(MAX_DEPTH)).is_ok());
        assert!(parse(&chain(MAX_DEPTH + 1)).expect_err("too deep").reason.contains("too deep"));
        let hosts = |n: usize| format!("Host({})", vec!["`a`"; n].join(","));
        assert!(parse_with(&hosts(MAX_DEPTH), Syntax::V2).is_ok());
        assert!(parse_with(&hosts(MAX_DEPTH + 1), Syntax::V2).is_err());
    }

    #[test]
    fn default_priority_is_rule_length_whatever_the_syntax() {
        // Traefik: priority comes from the raw rule string, not from its parse.
        assert_eq!(crate::rule::default_priority("Host(`example.org`)"), 19);
        assert_eq!(crate::rule::default_priority("Host(`a.org`, `b.org`)"), 22);
        assert_eq!(crate::rule::default_priority("Path(`/é`)"), 11);
    }

    /// Every rule of the fuzz seed corpus parses in at least one syntax, and none panics.
    #[test]
    fn seed_corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rule_parser");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("corpus entry").path();
            let rule = std::fs::read_to_string(&path).expect("corpus file is UTF-8");
            let rule = rule.strip_suffix('\n').unwrap_or(&rule);
            let v3 = parse_with(rule, Syntax::V3);
            let v2 = parse_with(rule, Syntax::V2);
            assert!(v3.is_ok() || v2.is_ok(), "{}: v3 {v3:?}, v2 {v2:?}", path.display());
            seen += 1;
        }
        assert!(seen >= 12, "only {seen} seeds in {}", dir.display());
    }
}
