//! W4 end to end: Traefik middlewares from Middleware CRDs through the real `weir`,
//! `weir-dataplane` and whoami backends — what the backend receives (its echo) and what the
//! client gets (status, headers, body).

use std::time::Duration;

use weir_e2e::{service_yaml, Conn, Response, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// An IngressRoute in `apps` with one route per `(host, middlewares)`, all to `whoami:80`.
fn routes(name: &str, routes: &[(&str, &[&str])]) -> String {
    let mut y = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: {name}\n  namespace: apps\nspec:\n  entryPoints: [web]\n  routes:\n"
    );
    for (host, mws) in routes {
        y.push_str(&format!("    - match: Host(`{host}`)\n      services: [{{name: whoami, port: 80}}]\n"));
        if !mws.is_empty() {
            y.push_str("      middlewares:\n");
            for m in mws.iter() {
                match m.split_once('/') {
                    Some((ns, n)) => y.push_str(&format!("        - {{name: {n}, namespace: {ns}}}\n")),
                    None => y.push_str(&format!("        - {{name: {m}}}\n")),
                }
            }
        }
    }
    y
}

/// A Middleware in `ns` with the given spec (YAML flow style).
fn middleware(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec: {spec}\n---\n"
    )
}

fn start(middlewares: &str, ir: &str, flags: &[&str]) -> (Weir, Whoami) {
    let backend = Whoami::start("w");
    let svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("mw.yaml", middlewares), ("ir.yaml", ir)], flags);
    (weir, backend)
}

/// The request target the backend received.
fn target(r: &Response) -> String {
    let text = r.text();
    let line = text.lines().nth(3).unwrap_or("");
    line.split(' ').nth(1).unwrap_or("").to_string()
}

fn request(weir: &Weir, raw: &str) -> Response {
    Conn::open(weir.port).and_then(|mut c| c.raw(raw)).expect("request")
}

fn get(weir: &Weir, host: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![("Connection", "close")];
    h.extend_from_slice(headers);
    Conn::open(weir.port).and_then(|mut c| c.get(host, path, &h)).expect("request")
}

#[test]
fn path_middlewares_rewrite_what_the_backend_receives() {
    let mws = [
        middleware("apps", "strip", "{stripPrefix: {prefixes: [/api, /stat]}}"),
        middleware("apps", "add", "{addPrefix: {prefix: /v1}}"),
        middleware("apps", "replace", "{replacePath: {path: /fixed}}"),
        middleware("apps", "replace-re", "{replacePathRegex: {regex: '^/re/(.*)', replacement: '/new/$1'}}"),
        middleware("apps", "strip-re", "{stripPrefixRegex: {regex: ['/ver/[0-9]+']}}"),
        middleware("apps", "both", "{chain: {middlewares: [{name: strip}, {name: add}]}}"),
    ]
    .concat();
    let ir = routes(
        "paths",
        &[
            ("strip.test", &["strip"]),
            ("add.test", &["add"]),
            ("replace.test", &["replace"]),
            ("re.test", &["replace-re"]),
            ("sre.test", &["strip-re"]),
            ("chain.test", &["both"]),
        ],
    );
    let (weir, _b) = start(&mws, &ir, &[]);
    weir.wait_for("chain.test", "/api/x", READY, |r| r.status == 200);

    // (case, host, path, backend target, header the backend saw)
    let cases = [
        ("strip", "strip.test", "/api/users?q=1", "/users?q=1", Some(("X-Forwarded-Prefix", "/api"))),
        ("strip to root", "strip.test", "/api", "/", Some(("X-Forwarded-Prefix", "/api"))),
        ("strip character-wise", "strip.test", "/status", "/us", Some(("X-Forwarded-Prefix", "/stat"))),
        ("strip keeps escapes", "strip.test", "/stat/a%2Fb", "/a%2Fb", None),
        ("no prefix", "strip.test", "/other", "/other", None),
        ("add", "add.test", "/x?y=2", "/v1/x?y=2", None),
        ("replace", "replace.test", "/a/b", "/fixed", Some(("X-Replaced-Path", "/a/b"))),
        ("replace regex", "re.test", "/re/x/y", "/new/x/y", Some(("X-Replaced-Path", "/re/x/y"))),
        ("replace regex no match", "re.test", "/other", "/other", None),
        ("strip regex", "sre.test", "/ver/12/x", "/x", Some(("X-Forwarded-Prefix", "/ver/12"))),
        ("chain in order", "chain.test", "/api/users", "/v1/users", Some(("X-Forwarded-Prefix", "/api"))),
    ];
    for (name, host, path, want, header) in cases {
        let r = get(&weir, host, path, &[]);
        assert_eq!(r.status, 200, "case {name}: {r:?}");
        assert_eq!(target(&r), want, "case {name}: {}", r.text());
        if let Some((h, v)) = header {
            assert_eq!(r.echoed_header(h).as_deref(), Some(v), "case {name}: {}", r.text());
        }
    }
    // Traefik: a stripped path that cleaning would change is refused.
    let r = get(&weir, "strip.test", "/api./foo", &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.text(), "Bad Request\n");
    assert_eq!(r.backend(), None);
}

#[test]
fn headers_middleware_custom_cors_and_security() {
    let mws = [
        middleware(
            "apps",
            "custom",
            "{headers: {customRequestHeaders: {X-Added: 'yes', User-Agent: ''}, customResponseHeaders: {X-Resp: '1', X-Whoami-Name: ''}}}",
        ),
        middleware(
            "apps",
            "cors",
            "{headers: {accessControlAllowMethods: [GET, OPTIONS, PUT], accessControlAllowHeaders: [X-A, X-B], \
             accessControlAllowOriginList: ['https://app.test'], accessControlMaxAge: 100, addVaryHeader: true, \
             accessControlExposeHeaders: [X-E]}}",
        ),
        middleware(
            "apps",
            "secure",
            "{headers: {frameDeny: true, contentTypeNosniff: true, browserXssFilter: true, stsSeconds: 3600, \
             forceSTSHeader: true, stsIncludeSubdomains: true, referrerPolicy: no-referrer, \
             contentSecurityPolicy: \"default-src 'self'\", permissionsPolicy: 'camera=()'}}",
        ),
        middleware("apps", "hosts", "{headers: {allowedHosts: [good.test]}}"),
        middleware("apps", "noxff", "{headers: {customRequestHeaders: {X-Forwarded-For: ''}}}"),
    ]
    .concat();
    let ir = routes(
        "headers",
        &[
            ("custom.test", &["custom"]),
            ("cors.test", &["cors"]),
            ("secure.test", &["secure"]),
            ("good.test", &["hosts"]),
            ("bad.test", &["hosts"]),
            ("noxff.test", &["noxff"]),
        ],
    );
    let (weir, _b) = start(&mws, &ir, &[]);
    weir.wait_for("custom.test", "/", READY, |r| r.status == 200);

    let r = get(&weir, "custom.test", "/", &[]);
    assert_eq!(r.echoed_header("X-Added").as_deref(), Some("yes"), "{}", r.text());
    assert_eq!(r.echoed_header("User-Agent"), None, "empty value deletes: {}", r.text());
    assert_eq!(r.header("x-resp"), Some("1"));
    assert_eq!(r.header("x-whoami-name"), None, "empty value deletes the response header");

    // Preflight: answered by weir, 200, no body, the backend is not called.
    let r = request(
        &weir,
        "OPTIONS /x HTTP/1.1\r\nHost: cors.test\r\nOrigin: https://app.test\r\n\
         Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,OPTIONS,PUT"));
    assert_eq!(r.header("access-control-allow-headers"), Some("X-A,X-B"));
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.test"));
    assert_eq!(r.header("access-control-max-age"), Some("100"));
    assert_eq!(r.header("x-whoami-name"), None, "backend called: {r:?}");
    assert!(r.body.is_empty());
    // Simple request: the backend answers, CORS headers decorate the response.
    let r = get(&weir, "cors.test", "/", &[("Origin", "https://app.test")]);
    assert_eq!(r.backend(), Some("w"));
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.test"));
    assert_eq!(r.header("access-control-expose-headers"), Some("X-E"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = get(&weir, "cors.test", "/", &[("Origin", "https://evil.test")]);
    assert_eq!(r.header("access-control-allow-origin"), None);

    let r = get(&weir, "secure.test", "/", &[]);
    let want = [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("x-xss-protection", "1; mode=block"),
        ("strict-transport-security", "max-age=3600; includeSubDomains"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "default-src 'self'"),
        ("permissions-policy", "camera=()"),
    ];
    for (h, v) in want {
        assert_eq!(r.header(h), Some(v), "{h}: {r:?}");
    }

    assert_eq!(get(&weir, "good.test", "/", &[]).status, 200);
    let r = get(&weir, "bad.test", "/", &[]);
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.text(), "Bad Host\n");
    assert_eq!(r.backend(), None);

    let r = get(&weir, "noxff.test", "/", &[]);
    assert_eq!(r.echoed_header("X-Forwarded-For"), None, "{}", r.text());
    assert!(r.echoed_header("X-Real-Ip").is_some(), "{}", r.text());
}

#[test]
fn redirects() {
    let mws = [
        middleware("apps", "to-https", "{redirectScheme: {scheme: https, permanent: true}}"),
        middleware("apps", "to-https-port", "{redirectScheme: {scheme: https, port: '8443'}}"),
        middleware(
            "apps",
            "moved",
            "{redirectRegex: {regex: '^http://old.test/(.*)', replacement: 'http://new.test/${1}'}}",
        ),
    ]
    .concat();
    let ir = routes(
        "redirects",
        &[("https.test", &["to-https"]), ("port.test", &["to-https-port"]), ("old.test", &["moved"])],
    );
    let (weir, _b) = start(&mws, &ir, &[]);
    weir.wait_for("https.test", "/", READY, |r| r.status == 301);

    let r = get(&weir, "https.test", "/a?b=1", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://https.test/a?b=1"));
    assert_eq!(r.text(), "Moved Permanently");
    assert_eq!(r.header("content-type"), None, "Traefik sends no content type here");
    let r = request(
        &weir,
        "POST /a HTTP/1.1\r\nHost: https.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 308);
    assert_eq!(r.text(), "Permanent Redirect");
    let r = get(&weir, "port.test:8080", "/", &[]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://port.test:8443/"));
    assert_eq!(r.text(), "Found");
    let r =
        request(&weir, "PUT / HTTP/1.1\r\nHost: port.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 307);
    let r = get(&weir, "old.test", "/page", &[]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://new.test/page"));
}

#[test]
fn basic_auth_from_secrets() {
    let secrets = "apiVersion: v1\nkind: Secret\nmetadata: {name: users, namespace: apps}\nstringData:\n  users: |\n    test:$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/\n    test2:$apr1$d9hr9HBB$4HxwgUir3HP4EsggP/QNo0\n---\n\
                   apiVersion: v1\nkind: Secret\nmetadata: {name: one, namespace: apps}\ntype: kubernetes.io/basic-auth\nstringData: {username: admin, password: s3cret}\n---\n";
    let mws = [
        secrets.to_string(),
        middleware("apps", "auth", "{basicAuth: {secret: users}}"),
        middleware(
            "apps",
            "auth-strip",
            "{basicAuth: {secret: one, realm: internal, removeHeader: true, headerField: X-User}}",
        ),
    ]
    .concat();
    let ir = routes("auth", &[("auth.test", &["auth"]), ("admin.test", &["auth-strip"])]);
    let (weir, _b) = start(&mws, &ir, &[]);
    weir.wait_for("auth.test", "/", READY, |r| r.status == 401);

    let basic = |cred: &str| format!("Basic {}", base64(cred));
    let r = get(&weir, "auth.test", "/", &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"traefik\""));
    assert_eq!(r.text(), "401 Unauthorized\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(get(&weir, "auth.test", "/", &[("Authorization", &basic("test:nope"))]).status, 401);
    let r = get(&weir, "auth.test", "/", &[("Authorization", &basic("test2:test2"))]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.echoed_header("Authorization").is_some(), "kept by default");

    let r = get(&weir, "admin.test", "/", &[]);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"internal\""));
    let r = get(&weir, "admin.test", "/", &[("Authorization", &basic("admin:s3cret"))]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.echoed_header("X-User").as_deref(), Some("admin"));
    assert_eq!(r.echoed_header("Authorization"), None, "removeHeader");
}

fn base64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| acc | u32::from(c) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn ip_allow_list() {
    let mws = [
        middleware("apps", "local", "{ipAllowList: {sourceRange: [127.0.0.1/32, '::1']}}"),
        middleware("apps", "private", "{ipAllowList: {sourceRange: [10.0.0.0/8]}}"),
        middleware(
            "apps",
            "private-404",
            "{ipAllowList: {sourceRange: [10.0.0.0/8], rejectStatusCode: 404}}",
        ),
        middleware("apps", "legacy", "{ipWhiteList: {sourceRange: [10.0.0.0/8]}}"),
        middleware("apps", "by-xff", "{ipAllowList: {sourceRange: [10.1.1.1], ipStrategy: {depth: 1}}}"),
    ]
    .concat();
    let ir = routes(
        "ips",
        &[
            ("local.test", &["local"]),
            ("private.test", &["private"]),
            ("p404.test", &["private-404"]),
            ("legacy.test", &["legacy"]),
            ("xff.test", &["by-xff"]),
        ],
    );
    // The test client is trusted, so its X-Forwarded-For reaches the ipStrategy.
    let (weir, _b) = start(&mws, &ir, &["--entryPoints.web.forwardedHeaders.insecure=true"]);
    weir.wait_for("local.test", "/", READY, |r| r.status == 200);
    let r = get(&weir, "private.test", "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (403, "Forbidden"));
    assert_eq!(r.backend(), None);
    let r = get(&weir, "p404.test", "/", &[]);
    assert_eq!((r.status, r.text().as_str()), (404, "Not Found"));
    assert_eq!(get(&weir, "legacy.test", "/", &[]).status, 403);
    assert_eq!(get(&weir, "xff.test", "/", &[("X-Forwarded-For", "9.9.9.9, 10.1.1.1")]).status, 200);
    assert_eq!(get(&weir, "xff.test", "/", &[("X-Forwarded-For", "10.1.1.1, 9.9.9.9")]).status, 403);
    assert_eq!(get(&weir, "xff.test", "/", &[]).status, 403);
}

#[test]
fn bad_middleware_references_disable_only_their_routers() {
    let mws = [
        middleware("apps", "add", "{addPrefix: {prefix: /v1}}"),
        middleware("other", "add", "{addPrefix: {prefix: /other}}"),
        middleware("apps", "broken", "{replacePathRegex: {regex: '(', replacement: x}}"),
        middleware("apps", "plugin", "{plugin: {demo: {x: 1}}}"),
        middleware("apps", "loop", "{chain: {middlewares: [{name: loop}]}}"),
    ]
    .concat();
    let ir = routes(
        "refs",
        &[
            ("ok.test", &["add"]),
            ("missing.test", &["nope"]),
            ("cross.test", &["other/add"]),
            ("broken.test", &["broken"]),
            ("plugin.test", &["plugin"]),
            ("loop.test", &["loop"]),
            ("crd.test", &["other-add@kubernetescrd"]),
            ("file.test", &["add@file"]),
        ],
    );
    let (weir, _b) = start(&mws, &ir, &[]);
    weir.wait_for("ok.test", "/", READY, |r| r.status == 200);
    for host in
        ["missing.test", "cross.test", "broken.test", "plugin.test", "loop.test", "crd.test", "file.test"]
    {
        let r = get(&weir, host, "/", &[]);
        assert_eq!(r.status, 404, "{host}: {r:?}");
    }
    let log = weir.log();
    for fragment in [
        "middleware apps/nope not found",
        "cross-namespace are disallowed",
        "error compiling regular expression",
        "plugin middlewares are not supported",
        "cycle",
        "@kubernetescrd references are disallowed",
        "provider `file`",
    ] {
        assert!(log.contains(fragment), "log lacks {fragment:?}:\n{log}");
    }

    // Allowed across namespaces, both spellings work.
    let (weir, _b) = start(&mws, &ir, &["--providers.kubernetesCRD.allowCrossNamespace=true"]);
    weir.wait_for("cross.test", "/x", READY, |r| r.status == 200);
    assert_eq!(target(&get(&weir, "cross.test", "/x", &[])), "/other/x");
    assert_eq!(target(&get(&weir, "crd.test", "/x", &[])), "/other/x");
    assert_eq!(get(&weir, "file.test", "/", &[]).status, 404);
}
