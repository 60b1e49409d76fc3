//! Matching and index tests: one row per matcher case, and a property test that the host index
//! and a linear scan in priority order always pick the same router.

use http::{HeaderMap, HeaderValue, Method};
use weir_proto::net::Cidr;
use weir_proto::rule::{Expr, Matcher};

use super::*;

fn m(x: Matcher) -> Expr {
    Expr::Matcher(x)
}

struct Req {
    host: &'static str,
    path: &'static str,
    method: Method,
    headers: HeaderMap,
    query: Option<&'static str>,
    ip: std::net::IpAddr,
}

fn req(host: &'static str, path: &'static str) -> Req {
    Req { host, path, method: Method::GET, headers: HeaderMap::new(), query: None, ip: [10, 0, 0, 1].into() }
}

impl Req {
    fn info(&self) -> RequestInfo<'_> {
        RequestInfo {
            host: self.host,
            path: self.path,
            method: &self.method,
            headers: &self.headers,
            query: self.query,
            client_ip: self.ip,
        }
    }
    fn header(mut self, k: &'static str, v: &'static str) -> Req {
        self.headers.append(k, HeaderValue::from_static(v));
        self
    }
    fn query(mut self, q: &'static str) -> Req {
        self.query = Some(q);
        self
    }
    fn method(mut self, m: Method) -> Req {
        self.method = m;
        self
    }
    fn ip(mut self, ip: &str) -> Req {
        self.ip = ip.parse().expect("ip");
        self
    }
}

#[test]
fn every_matcher() {
    let s = |v: &str| v.to_string();
    let cases: Vec<(&str, Expr, Req, bool)> = vec![
        ("host exact", m(Matcher::Host(s("a.com"))), req("a.com", "/"), true),
        ("host other", m(Matcher::Host(s("a.com"))), req("b.com", "/"), false),
        ("host empty never matches", m(Matcher::Host(s("a.com"))), req("", "/"), false),
        ("host any", m(Matcher::Host(s("*"))), req("whatever.org", "/"), true),
        ("wildcard one label", m(Matcher::Host(s("*.a.com"))), req("x.a.com", "/"), true),
        ("wildcard not apex", m(Matcher::Host(s("*.a.com"))), req("a.com", "/"), false),
        ("wildcard not two labels", m(Matcher::Host(s("*.a.com"))), req("x.y.a.com", "/"), false),
        ("host ipv6", m(Matcher::Host(s("::1"))), req("::1", "/"), true),
        ("host regexp", m(Matcher::HostRegexp(s("^[a-z]+\\.a\\.com$"))), req("www.a.com", "/"), true),
        (
            "host regexp case-sensitive on lowered host",
            m(Matcher::HostRegexp(s("^[A-Z]+\\.com$"))),
            req("abc.com", "/"),
            false,
        ),
        ("method", m(Matcher::Method(s("POST"))), req("h", "/").method(Method::POST), true),
        ("method other", m(Matcher::Method(s("POST"))), req("h", "/"), false),
        ("path exact", m(Matcher::Path(s("/a"))), req("h", "/a"), true),
        ("path no slash normalisation", m(Matcher::Path(s("/a"))), req("h", "/a/"), false),
        ("prefix character-wise", m(Matcher::PathPrefix(s("/css"))), req("h", "/cssx"), true),
        ("path regexp unanchored", m(Matcher::PathRegexp(s("[0-9]+"))), req("h", "/api/42/x"), true),
        ("path regexp no match", m(Matcher::PathRegexp(s("^/[0-9]+$"))), req("h", "/api/42"), false),
        (
            "header any value",
            m(Matcher::Header(s("x-env"), s("prod"))),
            req("h", "/").header("x-env", "dev").header("x-env", "prod"),
            true,
        ),
        (
            "header comma line is one value",
            m(Matcher::Header(s("x-env"), s("prod"))),
            req("h", "/").header("x-env", "dev, prod"),
            false,
        ),
        (
            "header value case-sensitive",
            m(Matcher::Header(s("x-env"), s("prod"))),
            req("h", "/").header("x-env", "Prod"),
            false,
        ),
        (
            "header regexp",
            m(Matcher::HeaderRegexp(s("x-env"), s("^pr"))),
            req("h", "/").header("x-env", "prod"),
            true,
        ),
        ("query flag empty value", m(Matcher::Query(s("mobile"), None)), req("h", "/").query("mobile"), true),
        (
            "query flag with equals",
            m(Matcher::Query(s("mobile"), None)),
            req("h", "/").query("mobile="),
            true,
        ),
        (
            "query flag with value does not match",
            m(Matcher::Query(s("mobile"), None)),
            req("h", "/").query("mobile=true"),
            false,
        ),
        (
            "query value",
            m(Matcher::Query(s("q"), Some(s("traefik")))),
            req("h", "/").query("q=a&q=traefik"),
            true,
        ),
        (
            "query value decoded",
            m(Matcher::Query(s("q"), Some(s("a b")))),
            req("h", "/").query("q=a+b"),
            true,
        ),
        (
            "query key case-sensitive",
            m(Matcher::Query(s("Q"), Some(s("a")))),
            req("h", "/").query("q=a"),
            false,
        ),
        ("query absent", m(Matcher::Query(s("q"), None)), req("h", "/"), false),
        (
            "query semicolon pair dropped",
            m(Matcher::Query(s("q"), Some(s("a")))),
            req("h", "/").query("q=a;x=1"),
            false,
        ),
        (
            "query regexp",
            m(Matcher::QueryRegexp(s("id"), s("^[0-9]+$"))),
            req("h", "/").query("id=123"),
            true,
        ),
        (
            "client ip cidr",
            m(Matcher::ClientIP(Cidr::parse("10.0.0.0/8").expect("cidr"))),
            req("h", "/"),
            true,
        ),
        (
            "client ip other",
            m(Matcher::ClientIP(Cidr::parse("192.168.0.1").expect("cidr"))),
            req("h", "/"),
            false,
        ),
        (
            "client ip v6",
            m(Matcher::ClientIP(Cidr::parse("fd00::/8").expect("cidr"))),
            req("h", "/").ip("fd00::5"),
            true,
        ),
        (
            "not and or",
            Expr::Or(
                Box::new(Expr::And(
                    Box::new(m(Matcher::Host(s("a.com")))),
                    Box::new(Expr::Not(Box::new(m(Matcher::PathPrefix(s("/admin")))))),
                )),
                Box::new(m(Matcher::Method(s("DELETE")))),
            ),
            req("a.com", "/admin"),
            false,
        ),
    ];
    for (name, expr, r, want) in cases {
        let c = CompiledExpr::compile(&expr).expect(name);
        assert_eq!(c.matches(&r.info()), want, "case {name}");
    }
}

/// xorshift64*: deterministic, dependency-free randomness for the property test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const HOSTS: [&str; 8] = ["a.com", "b.com", "x.a.com", "y.a.com", "a.b.a.com", "c.org", "", "b.a.com"];
const HOST_RULES: [&str; 8] = ["a.com", "b.com", "x.a.com", "*.a.com", "*.b.com", "c.org", "*", "b.a.com"];
const PATHS: [&str; 5] = ["/", "/api", "/api/v1", "/static/x", "/admin"];

fn random_expr(rng: &mut Rng, depth: u32) -> Expr {
    let leaf = depth == 0 || rng.next().is_multiple_of(3);
    if leaf {
        return match rng.next() % 4 {
            0 | 1 => m(Matcher::Host(rng.pick(&HOST_RULES).to_string())),
            2 => m(Matcher::PathPrefix(rng.pick(&PATHS).to_string())),
            _ => m(Matcher::Method(if rng.next().is_multiple_of(2) { "GET" } else { "POST" }.to_string())),
        };
    }
    let a = Box::new(random_expr(rng, depth - 1));
    match rng.next() % 3 {
        0 => Expr::Not(a),
        1 => Expr::And(a, Box::new(random_expr(rng, depth - 1))),
        _ => Expr::Or(a, Box::new(random_expr(rng, depth - 1))),
    }
}

#[test]
fn index_agrees_with_linear_scan() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for table in 0..300 {
        let n = 1 + rng.next() % 40;
        let routers: Vec<IndexedRouter<usize>> = (0..n)
            .map(|i| IndexedRouter {
                name: format!("r{i}"),
                // Few distinct priorities, so ties (broken by name) are exercised.
                priority: (rng.next() % 5) as i64 - 1,
                expr: CompiledExpr::compile(&random_expr(&mut rng, 3)).expect("valid"),
                target: i as usize,
            })
            .collect();
        let index = RouterIndex::new(routers);
        for _ in 0..200 {
            let r = req(rng.pick(&HOSTS), rng.pick(&PATHS)).method(if rng.next().is_multiple_of(2) {
                Method::GET
            } else {
                Method::POST
            });
            let info = r.info();
            let got = index.route(&info).map(|r| &r.name);
            let want = index.route_linear(&info).map(|r| &r.name);
            assert_eq!(got, want, "table {table}, request {} {} {}", r.method, r.host, r.path);
        }
    }
}

#[test]
fn ties_are_broken_by_name() {
    let routers = ["b", "a", "c"]
        .iter()
        .map(|n| IndexedRouter {
            name: n.to_string(),
            priority: 7,
            expr: CompiledExpr::compile(&m(Matcher::PathPrefix("/".into()))).expect("valid"),
            target: 0usize,
        })
        .collect();
    let index = RouterIndex::new(routers);
    let r = req("h", "/x");
    assert_eq!(index.route(&r.info()).map(|r| r.name.as_str()), Some("a"));
}

#[test]
fn canonical_hosts() {
    let cases = [
        ("plain", "example.com", "example.com"),
        ("port", "Example.COM:8080", "example.com"),
        ("trailing dot", "example.com.", "example.com"),
        ("trailing dot and port", "example.com.:80", "example.com"),
        ("ipv6", "[::1]:80", "::1"),
        ("ipv6 no port", "[fe80::1]", "fe80::1"),
        ("bare ipv6", "fe80::1", "fe80::1"),
        ("userinfo", "user@example.com", "example.com"),
        ("empty", "", ""),
    ];
    for (name, raw, want) in cases {
        assert_eq!(canonical_host(raw), want, "case {name}");
    }
}
