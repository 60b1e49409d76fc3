//! W4 end to end: the Traefik v3 fields weir used to refuse. ForwardAuth's `authSigninURL`
//! (a 401 from the auth server becomes a 302 to the sign-in page) and `maxResponseBodySize`
//! (a larger auth answer is a bare 401); Buffering's `retryExpression` (the buffered request
//! is sent again while the expression holds: a dead server's 502 is retried on the live one).

use std::net::TcpListener;
use std::time::Duration;

use weir_e2e::{service_yaml, Conn, Response, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

fn middleware(name: &str, spec: &str) -> String {
    format!("apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: {name}, namespace: apps}}\nspec: {spec}\n---\n")
}

/// One IngressRoute with a route per `(host, service, middleware)`.
fn routes(routes: &[(&str, &str, &str)]) -> String {
    let mut y = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r, namespace: apps}\n\
                 spec:\n  entryPoints: [web]\n  routes:\n"
        .to_string();
    for (host, svc, mw) in routes {
        y.push_str(&format!("  - match: Host(`{host}`)\n    services: [{{name: {svc}, port: 80}}]\n"));
        if !mw.is_empty() {
            y.push_str(&format!("    middlewares: [{{name: {mw}}}]\n"));
        }
    }
    y
}

fn get(weir: &Weir, method: &str, host: &str) -> Response {
    let raw = format!(
        "{method} /app HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
    );
    Conn::open(weir.port).and_then(|mut c| c.raw(&raw)).expect("request")
}

#[test]
fn forward_auth_signin_url_and_max_response_body_size() {
    let backend = Whoami::start("w");
    let auth = Whoami::start("auth");
    let svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    let mws = [
        middleware(
            "signin",
            &format!(
                "{{forwardAuth: {{address: 'http://{}/check?status=401', authSigninURL: 'https://sso.test/login?next=1&x=2'}}}}",
                auth.addr
            ),
        ),
        middleware(
            "signin-ok",
            &format!("{{forwardAuth: {{address: 'http://{}/check?status=200', authSigninURL: 'https://sso.test/login'}}}}", auth.addr),
        ),
        middleware(
            "small",
            &format!("{{forwardAuth: {{address: 'http://{}/check?status=200', maxResponseBodySize: 10}}}}", auth.addr),
        ),
        middleware(
            "large",
            &format!("{{forwardAuth: {{address: 'http://{}/check?status=200', maxResponseBodySize: 100000}}}}", auth.addr),
        ),
    ]
    .concat();
    let ir = routes(&[
        ("signin.test", "whoami", "signin"),
        ("signin-ok.test", "whoami", "signin-ok"),
        ("small.test", "whoami", "small"),
        ("large.test", "whoami", "large"),
        ("ready.test", "whoami", ""),
    ]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", &mws), ("ir.yaml", &ir)], &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);

    let r = get(&weir, "GET", "signin.test");
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("location"), Some("https://sso.test/login?next=1&x=2"));
    assert_eq!(r.text(), "<a href=\"https://sso.test/login?next=1&amp;x=2\">Found</a>.\n\n");
    assert_eq!(r.backend(), None);
    let r = get(&weir, "POST", "signin.test");
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.text(), "", "Go's http.Redirect writes no body for POST");

    let r = get(&weir, "GET", "signin-ok.test");
    assert_eq!((r.status, r.backend()), (200, Some("w")), "a 2xx is not redirected: {r:?}");

    let r = get(&weir, "GET", "small.test");
    assert_eq!(r.status, 401, "the auth answer is larger than 10 bytes: {r:?}");
    assert_eq!((r.text().as_str(), r.backend()), ("", None));
    let r = get(&weir, "GET", "large.test");
    assert_eq!((r.status, r.backend()), (200, Some("w")), "{r:?}");
}

#[test]
fn buffering_retry_expression_resends_the_buffered_request() {
    let backend = Whoami::start("w");
    let dead = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    // Two servers: a dead one (502) and a live one, served in turn.
    let mut svc = service_yaml("apps", "flaky", 80, "http", &[dead, backend.addr]);
    svc.push_str("---\n");
    svc.push_str(&service_yaml("apps", "whoami", 80, "http", &[backend.addr]));
    let mws = [
        middleware("retry", "{buffering: {retryExpression: 'IsNetworkError() && Attempts() <= 2'}}"),
        middleware("plain", "{buffering: {}}"),
        middleware("never", "{buffering: {retryExpression: 'ResponseCode() == 418'}}"),
    ]
    .concat();
    let ir = routes(&[
        ("retry.test", "flaky", "retry"),
        ("plain.test", "flaky", "plain"),
        ("never.test", "flaky", "never"),
        ("ready.test", "whoami", ""),
    ]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", &mws), ("ir.yaml", &ir)], &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);

    let count = |host: &str| {
        let mut ok = 0;
        for _ in 0..8 {
            let r = get(&weir, "POST", host);
            if r.status == 200 {
                assert!(r.text().ends_with("body"), "the buffered body is replayed: {}", r.text());
                ok += 1;
            } else {
                assert_eq!(r.status, 502, "{r:?}");
            }
        }
        ok
    };
    assert_eq!(count("retry.test"), 8, "every 502 is retried on the other server");
    let plain = count("plain.test");
    assert!(plain < 8, "without an expression the dead server's 502s reach the client ({plain}/8 ok)");
    let never = count("never.test");
    assert!(never < 8, "an expression that does not hold retries nothing ({never}/8 ok)");
}
