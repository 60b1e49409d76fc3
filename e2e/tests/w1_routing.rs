//! W1 end to end: routing by host and path, priorities, Traefik's 404, weighted round robin,
//! forwarded headers, 502 and 503 — through the real `weir`, `weir-dataplane` and backends.

use std::time::Duration;

use weir_e2e::{ingressroute_yaml, service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

#[test]
fn routes_by_host_path_and_priority_and_404s_the_rest() {
    let (a, b, c, d) = (Whoami::start("a"), Whoami::start("b"), Whoami::start("c"), Whoami::start("d"));
    let svcs: String = [("svc-a", &a), ("svc-b", &b), ("svc-c", &c), ("svc-d", &d)]
        .iter()
        .map(|(n, w)| service_yaml("apps", n, 80, "http", &[w.addr]) + "---\n")
        .collect();
    let routes = ingressroute_yaml(
        "apps",
        "site",
        &[
            ("Host(`a.test`)", None, &[("svc-a", 80, 1)]),
            // Longer rule → higher default priority than Host(`a.test`) alone.
            ("Host(`a.test`) && PathPrefix(`/api`)", None, &[("svc-b", 80, 1)]),
            // Explicit low priority: only what nothing else takes.
            ("PathPrefix(`/shared`) || Host(`c.test`)", Some(1), &[("svc-c", 80, 1)]),
            // Explicit high priority beats the longer rule on a.test.
            ("Path(`/api/admin`)", Some(1000), &[("svc-d", 80, 1)]),
            ("Host(`b.test`) && !PathPrefix(`/private`)", None, &[("svc-b", 80, 1)]),
        ],
    );
    let weir = Weir::start(&[("svc.yaml", &svcs), ("routes.yaml", &routes)], &[]);
    weir.wait_for("a.test", "/", READY, |r| r.status == 200);

    let cases = [
        ("host only", "a.test", "/", Some("a")),
        ("host is case-insensitive and port-stripped", "A.Test:8080", "/x", Some("a")),
        ("longer rule wins", "a.test", "/api/users", Some("b")),
        ("explicit priority wins", "a.test", "/api/admin", Some("d")),
        ("low priority catch", "other.test", "/shared/x", Some("c")),
        ("or branch", "c.test", "/", Some("c")),
        ("negation passes", "b.test", "/public", Some("b")),
        ("negation blocks", "b.test", "/private", None),
        ("unknown host", "nobody.test", "/", None),
    ];
    for (name, host, path, want) in cases {
        let r = weir.get(host, path).expect(name);
        match want {
            Some(backend) => {
                assert_eq!(r.status, 200, "case {name}: {r:?}");
                assert_eq!(r.backend(), Some(backend), "case {name}");
            }
            None => {
                assert_eq!(r.status, 404, "case {name}");
                assert_eq!(r.text(), "404 page not found\n", "case {name}");
                assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "case {name}");
            }
        }
    }
}

#[test]
fn weighted_round_robin_is_counted() {
    let (a1, a2, x, y) = (Whoami::start("a1"), Whoami::start("a2"), Whoami::start("x"), Whoami::start("y"));
    let files = [
        ("pair.yaml", service_yaml("default", "pair", 8080, "web", &[a1.addr, a2.addr])),
        ("x.yaml", service_yaml("default", "x", 80, "", &[x.addr])),
        ("y.yaml", service_yaml("default", "y", 80, "", &[y.addr])),
        (
            "routes.yaml",
            ingressroute_yaml(
                "default",
                "rr",
                &[
                    ("Host(`pair.test`)", None, &[("pair", 8080, 1)]),
                    ("Host(`split.test`)", None, &[("x", 80, 3), ("y", 80, 1)]),
                ],
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    // One worker, so one round-robin state: counts are exact.
    let weir = Weir::start(&files, &["--workers", "1"]);
    weir.wait_for("pair.test", "/", READY, |r| r.status == 200);
    weir.wait_for("split.test", "/", READY, |r| r.status == 200);

    let count = |host: &str, n: usize| {
        let mut conn = Conn::open(weir.port).expect("connect");
        let mut counts = std::collections::BTreeMap::<String, i32>::new();
        for _ in 0..n {
            let r = conn.get(host, "/", &[]).expect("request");
            assert_eq!(r.status, 200);
            *counts.entry(r.backend().expect("whoami name").to_string()).or_insert(0) += 1;
        }
        counts
    };
    let pair = count("pair.test", 40);
    let diff = (pair["a1"] - pair["a2"]).abs();
    assert!(diff <= 1, "two endpoints share evenly: {pair:?}");
    let split = count("split.test", 40);
    assert!(
        (split["x"] - 30).abs() <= 1 && (split["y"] - 10).abs() <= 1,
        "weights 3:1 → 30/10, got {split:?}"
    );
}

#[test]
fn forwarded_headers_as_traefik_sets_them() {
    let be = Whoami::start("echo");
    let files = [
        ("svc.yaml", service_yaml("default", "echo", 80, "http", &[be.addr])),
        (
            "routes.yaml",
            ingressroute_yaml("default", "echo", &[("Host(`echo.test`)", None, &[("echo", 80, 1)])]),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("echo.test", "/", READY, |r| r.status == 200);
    let mut conn = Conn::open(weir.port).expect("connect");
    let r = conn
        .get(
            "echo.test:8080",
            "/h",
            &[("X-Forwarded-For", "6.6.6.6"), ("X-Real-Ip", "6.6.6.6"), ("X-Forwarded-Proto", "https")],
        )
        .expect("request");
    assert_eq!(r.status, 200);
    assert_eq!(r.echoed_header("X-Forwarded-For").as_deref(), Some("127.0.0.1"), "{}", r.text());
    assert_eq!(r.echoed_header("X-Real-Ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(r.echoed_header("X-Forwarded-Proto").as_deref(), Some("http"));
    assert_eq!(r.echoed_header("X-Forwarded-Host").as_deref(), Some("echo.test:8080"));
    assert_eq!(r.echoed_header("X-Forwarded-Port").as_deref(), Some("8080"));
    assert!(r.echoed_header("X-Forwarded-Server").is_some_and(|s| !s.is_empty()));
    assert_eq!(r.echoed_header("Host").as_deref(), Some("echo.test:8080"), "Host passes through");

    // A trusted peer keeps its headers and gets itself appended.
    drop(weir);
    let weir = Weir::start(&files, &["--entryPoints.web.forwardedHeaders.trustedIPs=127.0.0.1/32"]);
    weir.wait_for("echo.test", "/", READY, |r| r.status == 200);
    let r = Conn::open(weir.port)
        .expect("connect")
        .get("echo.test", "/", &[("X-Forwarded-For", "6.6.6.6")])
        .expect("request");
    assert_eq!(r.echoed_header("X-Forwarded-For").as_deref(), Some("6.6.6.6, 127.0.0.1"));
}

#[test]
fn refused_backend_is_502_and_empty_service_is_503() {
    // A port nothing listens on.
    let dead: std::net::SocketAddr = format!("127.0.0.1:{}", weir_e2e::free_port()).parse().expect("addr");
    let files = [
        ("dead.yaml", service_yaml("default", "dead", 80, "http", &[dead])),
        ("empty.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: empty\nspec:\n  ports:\n    - name: http\n      port: 80\n".to_string()),
        (
            "routes.yaml",
            ingressroute_yaml(
                "default",
                "r",
                &[("Host(`dead.test`)", None, &[("dead", 80, 1)]), ("Host(`empty.test`)", None, &[("empty", 80, 1)])],
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &["--providers.kubernetesCRD.allowEmptyServices=true"]);
    let r = weir.wait_for("dead.test", "/", READY, |r| r.status != 404);
    assert_eq!(r.status, 502);
    assert_eq!(r.text(), "Bad Gateway");
    let r = weir.wait_for("empty.test", "/", READY, |r| r.status != 404);
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "no available server\n");
}
