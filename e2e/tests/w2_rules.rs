//! W2 end to end: a representative request for every matcher of the rule language, both
//! syntaxes, Traefik's routing path (decoding, sanitising, 400 on bad escapes), priorities and
//! rule errors — through the real binaries.

use std::time::Duration;

use weir_e2e::{service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// An IngressRoute whose routes all lead to service `app`, one per `(rule, extra fields)`.
fn routes_yaml(name: &str, routes: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  entryPoints: [web]\n  routes:\n"
    );
    for (rule, extra) in routes {
        y.push_str(&format!("    - match: '{}'\n", rule.replace('\'', "''")));
        for line in extra.lines().filter(|l| !l.is_empty()) {
            y.push_str(&format!("      {line}\n"));
        }
        y.push_str("      services:\n        - name: app\n          port: 80\n");
    }
    y
}

fn start(routes: &[(&str, &str)], extra: &[&str]) -> (Whoami, Weir) {
    let be = Whoami::start("app");
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let ir = routes_yaml("rules", routes);
    let weir = Weir::start(&[("svc.yaml", &svc), ("rules.yaml", &ir)], extra);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
    (be, weir)
}

/// Sends a raw request on a new connection and returns the status.
fn status(weir: &Weir, request: &str) -> u16 {
    Conn::open(weir.port).expect("connect").raw(request).expect("response").status
}

fn get(host: &str, target: &str, headers: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n")
}

#[test]
fn every_matcher_through_the_proxy() {
    let (_be, weir) = start(
        &[
            ("Host(`ready.test`)", ""),
            ("Host(`*.wild.test`)", ""),
            ("HostRegexp(`^[a-z]+\\.re\\.test$`)", ""),
            ("Host(`method.test`) && Method(`POST`)", ""),
            ("Host(`path.test`) && Path(`/exact`)", ""),
            ("Host(`prefix.test`) && PathPrefix(`/api`)", ""),
            ("Host(`pre.test`) && PathRegexp(`^/items/[0-9]+$`)", ""),
            ("Host(`hdr.test`) && Header(`X-Env`, `prod`)", ""),
            ("Host(`hre.test`) && HeaderRegexp(`X-Env`, `^pr`)", ""),
            ("Host(`q.test`) && Query(`mobile`)", ""),
            ("Host(`qv.test`) && Query(`q`, `traefik`)", ""),
            ("Host(`qre.test`) && QueryRegexp(`id`, `^[0-9]+$`)", ""),
            ("Host(`ip.test`) && ClientIP(`127.0.0.0/8`)", ""),
            ("Host(`ip6.test`) && ClientIP(`10.0.0.1`)", ""),
            ("HOST(`upper.test`) || host(`lower.test`) || Pathprefix(`/title-case-name`)", ""),
            ("Host(\"dq.test\") && Path(\"/a\\\\b\")", ""),
            ("Host(`dec.test`) && Path(`/foo bar`)", ""),
            ("Host(`slash.test`) && Path(`/a/b`)", ""),
        ],
        &[],
    );
    let cases: [(&str, String, u16); 36] = [
        ("wildcard one label", get("a.wild.test", "/", ""), 200),
        ("wildcard not apex", get("wild.test", "/", ""), 404),
        ("wildcard not two labels", get("a.b.wild.test", "/", ""), 404),
        ("host regexp", get("abc.re.test", "/", ""), 200),
        ("host regexp no", get("a1.re.test", "/", ""), 404),
        (
            "method yes",
            "POST / HTTP/1.1\r\nHost: method.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            200,
        ),
        ("method no", get("method.test", "/", ""), 404),
        ("path exact", get("path.test", "/exact", ""), 200),
        ("path trailing slash differs", get("path.test", "/exact/", ""), 404),
        ("prefix", get("prefix.test", "/api/x", ""), 200),
        ("prefix character-wise", get("prefix.test", "/apix", ""), 200),
        ("path regexp", get("pre.test", "/items/42", ""), 200),
        ("path regexp no", get("pre.test", "/items/x", ""), 404),
        ("header", get("hdr.test", "/", "X-Env: prod\r\n"), 200),
        ("header other value", get("hdr.test", "/", "X-Env: dev\r\n"), 404),
        ("header name case-insensitive", get("hdr.test", "/", "x-env: prod\r\n"), 200),
        ("header regexp", get("hre.test", "/", "X-Env: preview\r\n"), 200),
        ("query flag", get("q.test", "/?mobile", ""), 200),
        ("query flag with value", get("q.test", "/?mobile=true", ""), 404),
        ("query value among repeats", get("qv.test", "/?q=a&q=traefik", ""), 200),
        ("query regexp", get("qre.test", "/?id=123", ""), 200),
        ("query regexp no", get("qre.test", "/?id=12a", ""), 404),
        ("client ip in range", get("ip.test", "/", ""), 200),
        ("client ip out of range", get("ip6.test", "/", ""), 404),
        ("upper-case matcher name", get("upper.test", "/", ""), 200),
        ("lower-case matcher name", get("lower.test", "/", ""), 200),
        ("title-case matcher name", get("any.test", "/title-case-name", ""), 200),
        ("double-quoted with escape", get("dq.test", "/a\\b", ""), 200),
        ("percent-decoded path", get("dec.test", "/foo%20bar", ""), 200),
        ("sanitised then decoded", get("dec.test", "/x/../foo%20bar", ""), 200),
        ("doubled slashes cleaned", get("slash.test", "//a//b", ""), 200),
        ("encoded slash stays encoded", get("slash.test", "/a%2Fb", ""), 404),
        ("bad escape is 400", get("dec.test", "/foo%zz", ""), 400),
        ("bad escape in query is 400", get("q.test", "/?mobile=%g1", ""), 400),
        // Traefik routes on the target's host; W10 refuses a target and Host that disagree.
        (
            "absolute-form target host differing from Host",
            "GET http://ready.test/ HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n".into(),
            400,
        ),
        (
            "absolute-form target host",
            "GET http://READY.test:80/ HTTP/1.1\r\nHost: ready.test\r\nConnection: close\r\n\r\n".into(),
            200,
        ),
    ];
    for (name, request, want) in cases {
        assert_eq!(status(&weir, &request), want, "case {name}: {request:?}");
    }
}

#[test]
fn v2_syntax_per_route_and_globally() {
    let (_be, weir) = start(
        &[
            ("Host(`ready.test`)", ""),
            ("Host(`v2a.test`, `v2b.test`) && Path(`/users/{id:[0-9]+}`)", "syntax: v2"),
            ("HostRegexp(`{sub:[a-z]+}.tpl.test`) && Headers(`X-Env`, `prod`)", "syntax: v2"),
            ("Host(`v2q.test`) && Query(`mobile=yes`)", "syntax: v2"),
        ],
        &[],
    );
    let cases = [
        ("variadic host, second", get("v2b.test", "/users/12", ""), 200),
        ("template path", get("v2a.test", "/users/ab", ""), 404),
        ("host template and Headers", get("abc.tpl.test", "/", "X-Env: prod\r\n"), 200),
        ("host template mismatch", get("ab1.tpl.test", "/", "X-Env: prod\r\n"), 404),
        ("query key=value", get("v2q.test", "/?mobile=yes", ""), 200),
        ("query key=value mismatch", get("v2q.test", "/?mobile=no", ""), 404),
    ];
    for (name, request, want) in cases {
        assert_eq!(status(&weir, &request), want, "case {name}");
    }
    drop(weir);

    // The same v2 rule without a per-route syntax works when v2 is the global default.
    let (_be, weir) = start(
        &[("Host(`ready.test`)", ""), ("Host(`g1.test`, `g2.test`)", "")],
        &["--core.defaultRuleSyntax=v2"],
    );
    assert_eq!(status(&weir, &get("g2.test", "/", "")), 200);
}

#[test]
fn priorities_and_rule_errors() {
    let (_be, weir) = start(
        &[
            ("Host(`ready.test`)", ""),
            // Negative priority sorts below everything, even the shortest rule.
            ("PathPrefix(`/`)", "priority: -5"),
            ("Host(`prio.test`) && PathPrefix(`/x`)", "priority: -10"),
            ("Host(`bad.test`) && PathRegexp(`([`)", ""),
            ("Host(`badip.test`) && ClientIP(`10.0.0.0/99`)", ""),
            ("Host(`arity.test`, `x`)", ""),
            ("Host(`huge.test`)", "priority: 9223372036854775807"),
            ("Host(`sibling.test`)", ""),
        ],
        &[],
    );
    // The catch-all (priority -5) beats the -10 route; both beat nothing else.
    let r = weir.get("prio.test", "/x").expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(weir.get("sibling.test", "/").expect("request").status, 200);
    // Invalid routes are disabled, and the catch-all serves their hosts instead.
    let log = weir.log();
    for (needle, why) in [
        ("PathRegexp", "bad regex reported"),
        ("ClientIP", "bad CIDR reported"),
        ("Host", "wrong arity reported"),
        ("priority", "priority out of range reported"),
    ] {
        assert!(
            log.lines().any(|l| l.contains("router disabled") && l.contains("rules") && l.contains(needle)),
            "{why}:\n{log}"
        );
    }
}
