//! The CircuitBreaker expression language (oxy's `cbreaker` predicates): `NetworkErrorRatio()`,
//! `ResponseCodeRatio(from, to, dividendFrom, dividendTo)` and `LatencyAtQuantileMS(q)` compared
//! with a number (`<`, `<=`, `>`, `>=`, `==`, `!=`), combined with `&&`, `||` and parentheses.
//! Parsed here (the control plane validates, the data plane evaluates); sans-IO.

/// The measures an expression reads.
pub trait Metrics {
    /// Share of requests that ended in a network error.
    fn network_error_ratio(&self) -> f64;
    /// Responses with a status in `[from, to)` over those in `[dividend_from, dividend_to)`.
    fn response_code_ratio(&self, from: u16, to: u16, dividend_from: u16, dividend_to: u16) -> f64;
    /// Latency at quantile `q` (0–100) in milliseconds.
    fn latency_at_quantile_ms(&self, q: f64) -> f64;
}

/// A measure.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// `NetworkErrorRatio()`.
    NetworkErrorRatio,
    /// `ResponseCodeRatio(a, b, c, d)`.
    ResponseCodeRatio(u16, u16, u16, u16),
    /// `LatencyAtQuantileMS(q)`.
    LatencyAtQuantileMs(f64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `measure op value`.
    Compare(Measure, Op, f64),
    /// `a && b`.
    And(Box<Expr>, Box<Expr>),
    /// `a || b`.
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Open,
    Close,
    Comma,
    And,
    Or,
    Op(Op),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let two = s.get(i..i + 2).unwrap_or("");
        let (tok, len) = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => (Tok::Open, 1),
            b')' => (Tok::Close, 1),
            b',' => (Tok::Comma, 1),
            _ if two == "&&" => (Tok::And, 2),
            _ if two == "||" => (Tok::Or, 2),
            _ if two == "<=" => (Tok::Op(Op::Le), 2),
            _ if two == ">=" => (Tok::Op(Op::Ge), 2),
            _ if two == "==" => (Tok::Op(Op::Eq), 2),
            _ if two == "!=" => (Tok::Op(Op::Ne), 2),
            b'<' => (Tok::Op(Op::Lt), 1),
            b'>' => (Tok::Op(Op::Gt), 1),
            b'0'..=b'9' | b'.' | b'-' => {
                let len = s[i..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
                    .unwrap_or(b.len() - i);
                let n: f64 = s[i..i + len].parse().map_err(|_| format!("bad number {:?}", &s[i..i + len]))?;
                (Tok::Num(n), len)
            }
            _ if c.is_ascii_alphabetic() => {
                let len = s[i..].find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(b.len() - i);
                (Tok::Ident(s[i..i + len].to_string()), len)
            }
            _ => return Err(format!("unexpected character {:?}", c as char)),
        };
        out.push(tok);
        i += len;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expect(&mut self, want: Tok) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            other => Err(format!("expected {want:?}, found {other:?}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Tok::Open) {
            self.pos += 1;
            let e = self.or()?;
            self.expect(Tok::Close)?;
            return Ok(e);
        }
        let name = match self.next() {
            Some(Tok::Ident(n)) => n,
            other => return Err(format!("expected a function, found {other:?}")),
        };
        self.expect(Tok::Open)?;
        let mut args = Vec::new();
        while self.peek() != Some(&Tok::Close) {
            match self.next() {
                Some(Tok::Num(n)) => args.push(n),
                other => return Err(format!("expected a number, found {other:?}")),
            }
            if self.peek() == Some(&Tok::Comma) {
                self.pos += 1;
            }
        }
        self.expect(Tok::Close)?;
        let code = |n: f64| {
            if (0.0..=1000.0).contains(&n) && n.fract() == 0.0 {
                Ok(n as u16)
            } else {
                Err(format!("bad status code {n}"))
            }
        };
        let measure = match (name.as_str(), args.as_slice()) {
            ("NetworkErrorRatio", []) => Measure::NetworkErrorRatio,
            ("ResponseCodeRatio", [a, b, c, d]) => {
                Measure::ResponseCodeRatio(code(*a)?, code(*b)?, code(*c)?, code(*d)?)
            }
            ("LatencyAtQuantileMS", [q]) => Measure::LatencyAtQuantileMs(*q),
            _ => return Err(format!("unsupported function {name} with {} arguments", args.len())),
        };
        let op = match self.next() {
            Some(Tok::Op(op)) => op,
            other => return Err(format!("expected a comparison after {name}(), found {other:?}")),
        };
        match self.next() {
            Some(Tok::Num(n)) => Ok(Expr::Compare(measure, op, n)),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(s: &str) -> Result<Expr, String> {
        let toks = lex(s)?;
        if toks.is_empty() {
            return Err("empty expression".into());
        }
        let mut p = Parser { toks, pos: 0 };
        let e = p.or()?;
        if p.pos != p.toks.len() {
            return Err(format!("unexpected {:?}", p.toks[p.pos]));
        }
        Ok(e)
    }

    /// Evaluates against the metrics.
    pub fn eval(&self, m: &dyn Metrics) -> bool {
        match self {
            Expr::And(a, b) => a.eval(m) && b.eval(m),
            Expr::Or(a, b) => a.eval(m) || b.eval(m),
            Expr::Compare(measure, op, v) => {
                let x = match measure {
                    Measure::NetworkErrorRatio => m.network_error_ratio(),
                    Measure::ResponseCodeRatio(a, b, c, d) => m.response_code_ratio(*a, *b, *c, *d),
                    Measure::LatencyAtQuantileMs(q) => m.latency_at_quantile_ms(*q),
                };
                match op {
                    Op::Lt => x < *v,
                    Op::Le => x <= *v,
                    Op::Gt => x > *v,
                    Op::Ge => x >= *v,
                    Op::Eq => x == *v,
                    Op::Ne => x != *v,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(f64, f64, f64);
    impl Metrics for Fixed {
        fn network_error_ratio(&self) -> f64 {
            self.0
        }
        fn response_code_ratio(&self, _: u16, _: u16, _: u16, _: u16) -> f64 {
            self.1
        }
        fn latency_at_quantile_ms(&self, _: f64) -> f64 {
            self.2
        }
    }

    #[test]
    fn parses_and_evaluates() {
        let m = Fixed(0.6, 0.1, 120.0);
        // (case, expression, Ok(value) or Err(fragment))
        let cases = [
            ("network", "NetworkErrorRatio() > 0.5", Ok(true)),
            ("codes", "ResponseCodeRatio(500, 600, 0, 600) > 0.25", Ok(false)),
            ("latency", "LatencyAtQuantileMS(50.0) > 100", Ok(true)),
            ("and", "NetworkErrorRatio() > 0.5 && LatencyAtQuantileMS(50) < 100", Ok(false)),
            ("or", "ResponseCodeRatio(500, 600, 0, 600) > 0.25 || NetworkErrorRatio() >= 0.6", Ok(true)),
            ("parentheses", "(NetworkErrorRatio() < 0.1 || LatencyAtQuantileMS(99) > 1) && ResponseCodeRatio(500,600,0,600) != 0", Ok(true)),
            ("unknown function", "Foo() > 1", Err("unsupported function Foo")),
            ("no comparison", "NetworkErrorRatio()", Err("expected a comparison")),
            ("wrong arity", "ResponseCodeRatio(500) > 1", Err("unsupported function")),
            ("empty", "", Err("empty expression")),
            ("trailing", "NetworkErrorRatio() > 0.5 )", Err("unexpected")),
        ];
        for (name, expr, want) in cases {
            match (Expr::parse(expr), want) {
                (Ok(e), Ok(v)) => assert_eq!(e.eval(&m), v, "case {name}"),
                (Err(e), Err(f)) => assert!(e.contains(f), "case {name}: {e}"),
                (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
