use super::*;
use crate::objects::Object;

fn store(docs: &str) -> ObjectStore {
    let mut store = ObjectStore::new();
    for doc in docs.split("\n---\n") {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).expect("test yaml");
        let object = match v.get("kind").and_then(|k| k.as_str()) {
            Some("Middleware") => Object::Middleware(serde_yaml_ng::from_value(v).expect("middleware")),
            Some("Secret") => Object::Secret(serde_yaml_ng::from_value(v).expect("secret")),
            other => panic!("unexpected kind {other:?}"),
        };
        store.insert(object);
    }
    store
}

fn mw(ns: &str, name: &str, spec: &str) -> String {
    format!("kind: Middleware\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}")
}

fn r(name: &str, ns: Option<&str>) -> ObjectRef {
    ObjectRef { name: name.into(), namespace: ns.map(String::from) }
}

const OBJECTS: &[(&str, &str, &str)] = &[
    ("apps", "strip", "{stripPrefix: {prefixes: [' /api ']}}"),
    ("apps", "add", "{addPrefix: {prefix: /v1}}"),
    ("apps", "both", "{chain: {middlewares: [{name: strip}, {name: add}]}}"),
    ("apps", "outer", "{chain: {middlewares: [{name: both}, {name: other, namespace: shared}]}}"),
    ("apps", "loop-a", "{chain: {middlewares: [{name: loop-b}]}}"),
    ("apps", "loop-b", "{chain: {middlewares: [{name: loop-a}]}}"),
    ("apps", "empty", "{}"),
    ("apps", "two", "{addPrefix: {prefix: /a}, stripPrefix: {prefixes: [/b]}}"),
    ("apps", "badre", "{replacePathRegex: {regex: '(', replacement: x}}"),
    ("apps", "plugin", "{plugin: {foo: {bar: 1}}}"),
    ("apps", "later", "{grpcWeb: {allowOrigins: ['*']}}"),
    ("apps", "uses-bad", "{chain: {middlewares: [{name: strip}, {name: badre}]}}"),
    ("shared", "other", "{replacePath: {path: /x}}"),
];

fn all() -> ObjectStore {
    store(&OBJECTS.iter().map(|(ns, n, s)| mw(ns, n, s)).collect::<Vec<_>>().join("\n---\n"))
}

#[test]
fn references_resolve_to_flat_names() {
    let s = all();
    // (case, refs, allow cross namespace, Ok(names) or Err(fragment))
    type Case<'a> = (&'a str, Vec<ObjectRef>, bool, Result<Vec<&'a str>, &'a str>);
    let cases: Vec<Case> = vec![
        ("same namespace", vec![r("strip", None)], false, Ok(vec!["apps-strip"])),
        (
            "order kept",
            vec![r("add", None), r("strip", Some("apps"))],
            false,
            Ok(vec!["apps-add", "apps-strip"]),
        ),
        ("chain expanded", vec![r("both", None)], false, Ok(vec!["apps-strip", "apps-add"])),
        (
            "nested chain across namespaces",
            vec![r("outer", None)],
            true,
            Ok(vec!["apps-strip", "apps-add", "shared-other"]),
        ),
        (
            "nested chain refused across namespaces",
            vec![r("outer", None)],
            false,
            Err("cross-namespace are disallowed"),
        ),
        (
            "cross namespace refused",
            vec![r("other", Some("shared"))],
            false,
            Err("cross-namespace are disallowed"),
        ),
        ("cross namespace allowed", vec![r("other", Some("shared"))], true, Ok(vec!["shared-other"])),
        (
            "kubernetescrd refused",
            vec![r("apps-strip@kubernetescrd", None)],
            false,
            Err("@kubernetescrd references are disallowed"),
        ),
        (
            "kubernetescrd allowed",
            vec![r("shared-other@kubernetescrd", None)],
            true,
            Ok(vec!["shared-other"]),
        ),
        ("other provider", vec![r("auth@file", None)], true, Err("provider `file`")),
        ("missing", vec![r("nope", None)], false, Err("middleware apps/nope not found")),
        ("cycle", vec![r("loop-a", None)], false, Err("cycle: apps-loop-a -> apps-loop-b -> apps-loop-a")),
        ("no type", vec![r("empty", None)], false, Err("invalid middleware type")),
        ("two types", vec![r("two", None)], false, Err("multi-types")),
        (
            "bad regex",
            vec![r("badre", None)],
            false,
            Err("middleware apps/badre: error compiling regular expression"),
        ),
        ("bad child of chain", vec![r("uses-bad", None)], false, Err("apps/badre")),
        ("plugin", vec![r("plugin", None)], false, Err("plugin middlewares are not supported")),
        ("grpc web", vec![r("later", None)], false, Ok(vec!["apps-later"])),
    ];
    for (name, refs, cross, want) in cases {
        let mut defs = BTreeMap::new();
        let opts = ServiceOptions { allow_cross_namespace: cross, ..Default::default() };
        let got = resolve_route(&refs, &[], "apps", &s, opts, &mut defs, &mut Generated::new());
        match (got, want) {
            (Ok(names), Ok(want)) => {
                assert_eq!(names, want, "case {name}");
                for n in &names {
                    assert!(defs.contains_key(n), "case {name}: {n} defined");
                }
            }
            (Err(e), Err(fragment)) => assert!(e.to_string().contains(fragment), "case {name}: {e}"),
            (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn service_middlewares_follow_the_routers() {
    let s = all();
    let mut defs = BTreeMap::new();
    let svc = [r("add", None)];
    let got = resolve_route(
        &[r("strip", None)],
        &[&svc],
        "apps",
        &s,
        ServiceOptions::default(),
        &mut defs,
        &mut Generated::new(),
    )
    .expect("one service");
    assert_eq!(got, ["apps-strip", "apps-add"]);
    let err = resolve_route(
        &[],
        &[&svc, &[]],
        "apps",
        &s,
        ServiceOptions::default(),
        &mut defs,
        &mut Generated::new(),
    )
    .expect_err("two services");
    assert!(err.to_string().contains("several services"), "{err}");
}

#[test]
fn definitions_are_typed_and_trimmed() {
    let s = all();
    let mut defs = BTreeMap::new();
    resolve_route(
        &[r("strip", None)],
        &[],
        "apps",
        &s,
        ServiceOptions::default(),
        &mut defs,
        &mut Generated::new(),
    )
    .expect("valid");
    assert_eq!(
        defs["apps-strip"].kind,
        MiddlewareKind::StripPrefix(mw::StripPrefix { prefixes: vec!["/api".into()], force_slash: false })
    );
}

fn kind_of(spec: &str, extra: &str) -> Result<MiddlewareKind, String> {
    let mut docs = mw("apps", "m", spec);
    if !extra.is_empty() {
        docs = format!("{docs}\n---\n{extra}");
    }
    let s = store(&docs);
    match translate(s.middleware("apps", "m").expect("stored"), &s, None)? {
        Translated::Leaf(k) => Ok(k),
        Translated::Chain(_) => Err("chain".into()),
    }
}

#[test]
fn basic_auth_reads_secrets_as_traefik_does() {
    let htpasswd = "kind: Secret\nmetadata: {name: users, namespace: apps}\nstringData:\n  users: |\n    alice:$apr1$x$y\n    bob:{SHA}abc\n";
    let basic = "kind: Secret\nmetadata: {name: basic, namespace: apps}\ntype: kubernetes.io/basic-auth\ndata: {username: dXNlcg==, password: cGFzc3dvcmQ=}\n";
    let two = "kind: Secret\nmetadata: {name: two, namespace: apps}\nstringData: {a: 'x:y', b: 'z:w'}\n";
    let bad_line = "kind: Secret\nmetadata: {name: bad, namespace: apps}\nstringData: {a: 'nocolon'}\n";
    type Case<'a> = (&'a str, &'a str, &'a str, Result<Vec<(&'a str, &'a str)>, &'a str>);
    let cases: Vec<Case> = vec![
        (
            "htpasswd lines",
            "{basicAuth: {secret: users}}",
            htpasswd,
            Ok(vec![("alice", "$apr1$x$y"), ("bob", "{SHA}abc")]),
        ),
        // sha1("password") = 5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8
        (
            "basic-auth type",
            "{basicAuth: {secret: basic}}",
            basic,
            Ok(vec![("user", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=")]),
        ),
        ("missing secret", "{basicAuth: {secret: nope}}", "", Err("secret 'apps/nope' not found")),
        ("two keys", "{basicAuth: {secret: two}}", two, Err("found 2 elements")),
        ("bad line", "{basicAuth: {secret: bad}}", bad_line, Err("error parsing BasicUser: nocolon")),
    ];
    for (name, spec, extra, want) in cases {
        match (kind_of(spec, extra), want) {
            (Ok(MiddlewareKind::BasicAuth(b)), Ok(users)) => {
                let got: Vec<(&str, &str)> = b.users.iter().map(|(u, h)| (u.as_str(), h.as_str())).collect();
                assert_eq!(got, users, "case {name}");
                assert_eq!(b.realm, "traefik", "case {name}");
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "case {name}: {e}"),
            (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn validation_errors_name_the_field() {
    let cases = [
        ("empty prefix", "{addPrefix: {prefix: ''}}", "prefix cannot be empty"),
        ("no scheme", "{redirectScheme: {port: '443'}}", "you must provide a target scheme"),
        ("empty headers", "{headers: {}}", "headers configuration not valid"),
        ("bad header name", "{headers: {customRequestHeaders: {'a b': x}}}", "invalid header name"),
        ("bad origin regex", "{headers: {accessControlAllowOriginListRegex: ['(']}}", "origin parsing"),
        ("empty source range", "{ipAllowList: {sourceRange: []}}", "sourceRange is empty"),
        ("bad cidr", "{ipAllowList: {sourceRange: [10.0.0.0/33]}}", "cannot parse CIDRs"),
        (
            "bad status",
            "{ipAllowList: {sourceRange: [10.0.0.0/8], rejectStatusCode: 299}}",
            "invalid HTTP status code 299",
        ),
        (
            "bad subnet",
            "{ipAllowList: {sourceRange: [10.0.0.0/8], ipStrategy: {depth: 1, ipv6Subnet: 129}}}",
            "invalid IPv6 subnet 129",
        ),
        ("tls cert of the wrong type", "{passTLSClientCert: {pem: yes-please}}", "invalid passTLSClientCert"),
        ("grpc web of the wrong type", "{grpcWeb: {allowOrigins: 3}}", "invalid grpcWeb"),
    ];
    for (name, spec, want) in cases {
        let err = kind_of(spec, "").expect_err(name);
        assert!(err.contains(want), "case {name}: {err}");
    }
    let ok = kind_of("{ipWhiteList: {sourceRange: [10.0.0.0/8]}}", "").expect("white list");
    assert!(matches!(ok, MiddlewareKind::IpAllowList(l) if l.reject_status_code == 403));
    let ok = kind_of("{redirectScheme: {scheme: https, port: 8443}}", "").expect("int port");
    assert!(matches!(ok, MiddlewareKind::RedirectScheme(r) if r.port == "8443"));
}

#[test]
fn traffic_middlewares_translate_with_traefik_defaults() {
    let ip = mw::SourceCriterion::Ip(mw::IpStrategy::default());
    let rate = |average, period_nanos, burst, source| {
        Ok(MiddlewareKind::RateLimit(mw::RateLimit { average, period_nanos, burst, source, redis: None }))
    };
    let buffering = |max_req, max_resp| {
        Ok(MiddlewareKind::Buffering(mw::Buffering {
            max_request_body_bytes: max_req,
            mem_request_body_bytes: 0,
            max_response_body_bytes: max_resp,
            mem_response_body_bytes: 0,
            retry_expression: String::new(),
        }))
    };
    // (case, spec, Ok(kind) or Err(fragment))
    let cases: Vec<(&str, &str, Result<MiddlewareKind, &str>)> = vec![
        ("rate defaults", "{rateLimit: {average: 5}}", rate(5, 1_000_000_000, 1, ip.clone())),
        (
            "rate period string",
            "{rateLimit: {average: 5, period: 1m, burst: 10}}",
            rate(5, 60_000_000_000, 10, ip.clone()),
        ),
        (
            "rate period seconds",
            "{rateLimit: {average: 5, period: 2, burst: 0}}",
            rate(5, 2_000_000_000, 1, ip.clone()),
        ),
        (
            "rate by header",
            "{rateLimit: {average: 1, sourceCriterion: {requestHeaderName: X-User}}}",
            rate(1, 1_000_000_000, 1, mw::SourceCriterion::RequestHeader("X-User".into())),
        ),
        (
            "rate by depth",
            "{rateLimit: {average: 1, sourceCriterion: {ipStrategy: {depth: 2}}}}",
            rate(
                1,
                1_000_000_000,
                1,
                mw::SourceCriterion::Ip(mw::IpStrategy { depth: 2, ..Default::default() }),
            ),
        ),
        (
            "two criteria",
            "{rateLimit: {average: 1, sourceCriterion: {requestHost: true, requestHeaderName: X}}}",
            Err("requestHost and RequestHeaderName are mutually exclusive"),
        ),
        (
            "ip and host",
            "{rateLimit: {average: 1, sourceCriterion: {requestHost: true, ipStrategy: {depth: 1}}}}",
            Err("iPStrategy and RequestHost are mutually exclusive"),
        ),
        (
            "negative period",
            "{rateLimit: {average: 1, period: -1s}}",
            Err("negative value not valid for period"),
        ),
        (
            "in flight defaults to host",
            "{inFlightReq: {amount: 3}}",
            Ok(MiddlewareKind::InFlightReq(mw::InFlightReq {
                amount: 3,
                source: mw::SourceCriterion::RequestHost,
            })),
        ),
        (
            "in flight by ip",
            "{inFlightReq: {amount: 3, sourceCriterion: {ipStrategy: {}}}}",
            Ok(MiddlewareKind::InFlightReq(mw::InFlightReq { amount: 3, source: ip.clone() })),
        ),
        ("in flight negative", "{inFlightReq: {amount: -1}}", Err("must be >= 0")),
        ("buffering", "{buffering: {maxRequestBodyBytes: 10, maxResponseBodyBytes: 20}}", buffering(10, 20)),
        (
            "buffering negative",
            "{buffering: {maxRequestBodyBytes: -1}}",
            Err("maxRequestBodyBytes must be >= 0"),
        ),
        (
            "buffering retry",
            "{buffering: {retryExpression: 'IsNetworkError() && Attempts() < 2'}}",
            Ok(MiddlewareKind::Buffering(mw::Buffering {
                max_request_body_bytes: 0,
                mem_request_body_bytes: 0,
                max_response_body_bytes: 0,
                mem_response_body_bytes: 0,
                retry_expression: "IsNetworkError() && Attempts() < 2".into(),
            })),
        ),
        (
            "buffering bad retry expression",
            "{buffering: {retryExpression: 'Attempts()'}}",
            Err("buffering.retryExpression"),
        ),
        (
            "compress defaults",
            "{compress: {}}",
            Ok(MiddlewareKind::Compress(mw::Compress {
                excluded_content_types: vec![],
                included_content_types: vec![],
                min_response_body_bytes: 1024,
                encodings: vec!["gzip".into(), "br".into(), "zstd".into()],
                default_encoding: String::new(),
            })),
        ),
        (
            "compress fields",
            "{compress: {excludedContentTypes: [text/event-stream], minResponseBodyBytes: 10, encodings: [zstd], defaultEncoding: zstd}}",
            Ok(MiddlewareKind::Compress(mw::Compress {
                excluded_content_types: vec!["text/event-stream".into()],
                included_content_types: vec![],
                min_response_body_bytes: 10,
                encodings: vec!["zstd".into()],
                default_encoding: "zstd".into(),
            })),
        ),
        (
            "compress both lists",
            "{compress: {excludedContentTypes: [a/b], includedContentTypes: [c/d]}}",
            Err("mutually exclusive"),
        ),
        ("compress bad type", "{compress: {includedContentTypes: ['text/']}}", Err("parsing included media type")),
        ("compress no encodings", "{compress: {encodings: []}}", Err("at least one encoding must be specified")),
        ("compress deflate", "{compress: {encodings: [deflate]}}", Err("unsupported encoding: deflate")),
        (
            "compress default not listed",
            "{compress: {encodings: [gzip], defaultEncoding: br}}",
            Err("unsupported default encoding: br"),
        ),
        (
            "retry",
            "{retry: {attempts: 3, initialInterval: 100ms, timeout: 2, status: ['500-504', '429'], retryNonIdempotentMethod: true}}",
            Ok(MiddlewareKind::Retry(mw::Retry {
                attempts: 3,
                initial_interval_nanos: 100_000_000,
                timeout_nanos: 2_000_000_000,
                status: vec![(500, 504), (429, 429)],
                max_request_body_bytes: 2 * 1024 * 1024,
                disable_retry_on_network_error: false,
                retry_non_idempotent_method: true,
            })),
        ),
        (
            "errors validated without resolving",
            "{errors: {status: ['500-599', '404'], statusRewrites: {'502-504': 500}, query: '/{status}', service: {name: pages, port: 80}}}",
            Ok(MiddlewareKind::Errors(mw::Errors {
                status: vec![(500, 599), (404, 404)],
                status_rewrites: vec![((502, 504), 500)],
                service: String::new(),
                query: "/{status}".into(),
                error_request_headers: None,
            })),
        ),
        ("errors without service", "{errors: {status: ['500']}}", Err("errors.service is required")),
        ("errors bad rewrite", "{errors: {statusRewrites: {'500': 99}, service: {name: p}}}", Err("invalid status code")),
        (
            "forward auth",
            "{forwardAuth: {address: 'https://auth.test/check', tls: {insecureSkipVerify: true}, authResponseHeaders: [X-User], forwardBody: true}}",
            Ok(MiddlewareKind::ForwardAuth(Box::new(mw::ForwardAuth {
                address: "https://auth.test/check".into(),
                insecure_skip_verify: true,
                trust_forward_header: false,
                auth_response_headers: vec!["X-User".into()],
                auth_response_headers_regex: String::new(),
                auth_request_headers: vec![],
                add_auth_cookies_to_response: vec![],
                forward_body: true,
                max_body_size: -1,
                preserve_location_header: false,
                preserve_request_method: false,
                root_cas: vec![],
                certificate: None,
                max_response_body_size: -1,
                auth_signin_url: String::new(),
            }))),
        ),
        ("forward auth bad address", "{forwardAuth: {address: 'auth.test'}}", Err("must be an http or https URL")),
        (
            "forward auth missing ca secret",
            "{forwardAuth: {address: 'https://a', tls: {caSecret: ca}}}",
            Err("failed to load auth ca secret"),
        ),
        (
            "forward auth missing cert secret",
            "{forwardAuth: {address: 'https://a', tls: {certSecret: c}}}",
            Err("failed to load auth secret"),
        ),
        (
            "forward auth bad regex",
            "{forwardAuth: {address: 'http://a', authResponseHeadersRegex: '('}}",
            Err("error compiling regular expression"),
        ),
        (
            "circuit breaker defaults",
            "{circuitBreaker: {expression: 'NetworkErrorRatio() > 0.5'}}",
            Ok(MiddlewareKind::CircuitBreaker(mw::CircuitBreaker {
                expression: "NetworkErrorRatio() > 0.5".into(),
                check_period_nanos: 100_000_000,
                fallback_duration_nanos: 10_000_000_000,
                recovery_duration_nanos: 10_000_000_000,
                response_code: 503,
            })),
        ),
        (
            "circuit breaker fields",
            "{circuitBreaker: {expression: 'LatencyAtQuantileMS(50.0) > 100', checkPeriod: 1s, fallbackDuration: 30, recoveryDuration: 5s, responseCode: 429}}",
            Ok(MiddlewareKind::CircuitBreaker(mw::CircuitBreaker {
                expression: "LatencyAtQuantileMS(50.0) > 100".into(),
                check_period_nanos: 1_000_000_000,
                fallback_duration_nanos: 30_000_000_000,
                recovery_duration_nanos: 5_000_000_000,
                response_code: 429,
            })),
        ),
        ("circuit breaker bad expression", "{circuitBreaker: {expression: 'Foo() > 1'}}", Err("unsupported function Foo")),
        ("retry no attempts", "{retry: {}}", Err("incorrect (or empty) value for attempt (0)")),
        ("retry bad range", "{retry: {attempts: 2, status: ['599-500']}}", Err("invalid status code range")),
        ("content type", "{contentType: {autoDetect: true}}", Ok(MiddlewareKind::ContentType)),
        ("content type empty", "{contentType: {}}", Ok(MiddlewareKind::ContentType)),
        (
            "encoded characters",
            "{encodedCharacters: {allowEncodedSlash: true, allowEncodedHash: true}}",
            Ok(MiddlewareKind::EncodedCharacters(mw::EncodedCharacters {
                allow_encoded_slash: true,
                allow_encoded_hash: true,
                ..Default::default()
            })),
        ),
    ];
    for (name, spec, want) in cases {
        match (kind_of(spec, ""), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "case {name}"),
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "case {name}: {e}"),
            (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn tcp_middlewares_are_validated() {
    let spec = |y: &str| -> objects::MiddlewareTcpSpec { serde_yaml_ng::from_str(y).expect("tcp spec") };
    let cases = [
        ("in flight", "{inFlightConn: {amount: 10}}", None),
        ("zero refuses every connection, as in Traefik", "{inFlightConn: {amount: 0}}", None),
        ("allow list", "{ipAllowList: {sourceRange: [127.0.0.1/32]}}", None),
        ("white list", "{ipWhiteList: {sourceRange: ['::1']}}", None),
        ("empty", "{}", Some("invalid middleware type")),
        ("negative", "{inFlightConn: {amount: -1}}", Some("must be >= 0")),
        ("bad range", "{ipAllowList: {sourceRange: [nope]}}", Some("cannot parse CIDRs")),
        ("two", "{inFlightConn: {amount: 1}, ipAllowList: {sourceRange: ['::1']}}", Some("multi-types")),
    ];
    for (name, y, want) in cases {
        match (validate_tcp(&spec(y)), want) {
            (Ok(()), None) => {}
            (Err(e), Some(f)) => assert!(e.contains(f), "case {name}: {e}"),
            (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn digest_auth_reads_user_realm_hash_lines() {
    let users = "kind: Secret\nmetadata: {name: users, namespace: apps}\nstringData:\n  users: |\n    alice:traefik:0123\n    bob:other:4567\n";
    let bad = "kind: Secret\nmetadata: {name: bad, namespace: apps}\nstringData: {a: 'alice:hash'}\n";
    // (case, spec, extra objects, Ok(users) or Err(fragment))
    type Case<'a> = (&'a str, &'a str, &'a str, Result<Vec<(&'a str, &'a str, &'a str)>, &'a str>);
    let cases: Vec<Case> = vec![
        (
            "lines",
            "{digestAuth: {secret: users}}",
            users,
            Ok(vec![("alice", "traefik", "0123"), ("bob", "other", "4567")]),
        ),
        ("two parts", "{digestAuth: {secret: bad}}", bad, Err("error parsing DigestUser: alice:hash")),
        ("missing", "{digestAuth: {secret: nope}}", "", Err("secret 'apps/nope' not found")),
        ("no secret", "{digestAuth: {}}", "", Err("digestAuth.secret is required")),
    ];
    for (name, spec, extra, want) in cases {
        match (kind_of(spec, extra), want) {
            (Ok(MiddlewareKind::DigestAuth(d)), Ok(users)) => {
                let got: Vec<(&str, &str, &str)> =
                    d.users.iter().map(|(u, r, h)| (u.as_str(), r.as_str(), h.as_str())).collect();
                assert_eq!(got, users, "case {name}");
                assert_eq!(d.realm, "traefik", "case {name}");
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "case {name}: {e}"),
            (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn tls_client_cert_and_grpc_web_translate() {
    let all = mw::DistinguishedNameParts {
        country: true,
        province: true,
        locality: true,
        organization: true,
        organizational_unit: true,
        common_name: true,
        serial_number: true,
        domain_component: true,
    };
    let issuer = mw::DistinguishedNameParts { organizational_unit: false, ..all.clone() };
    let dn = "{country: true, province: true, locality: true, organization: true, organizationalUnit: true, \
              commonName: true, serialNumber: true, domainComponent: true}";
    let cases: Vec<(&str, String, MiddlewareKind)> = vec![
        (
            "pem only",
            "{passTLSClientCert: {pem: true}}".into(),
            MiddlewareKind::PassTlsClientCert(mw::PassTlsClientCert { pem: true, info: None }),
        ),
        (
            "every info field; the issuer has no OU",
            format!(
                "{{passTLSClientCert: {{info: {{notAfter: true, notBefore: true, sans: true, serialNumber: true, \
                 subject: {dn}, issuer: {dn}}}}}}}"
            ),
            MiddlewareKind::PassTlsClientCert(mw::PassTlsClientCert {
                pem: false,
                info: Some(mw::ClientCertInfo {
                    not_after: true,
                    not_before: true,
                    sans: true,
                    serial_number: true,
                    subject: Some(all.clone()),
                    issuer: Some(issuer),
                }),
            }),
        ),
        (
            "grpc web origins",
            "{grpcWeb: {allowOrigins: ['https://a.test', '*']}}".into(),
            MiddlewareKind::GrpcWeb(mw::GrpcWeb { allow_origins: vec!["https://a.test".into(), "*".into()] }),
        ),
        ("grpc web defaults", "{grpcWeb: {}}".into(), MiddlewareKind::GrpcWeb(mw::GrpcWeb::default())),
    ];
    for (name, spec, want) in cases {
        assert_eq!(kind_of(&spec, "").expect(name), want, "case {name}");
    }
}

#[test]
fn forward_auth_reads_its_secrets_and_v3_fields() {
    let secrets = "apiVersion: v1\nkind: Secret\nmetadata: {name: ca, namespace: apps}\n\
                   stringData: {ca.crt: CA-PEM}\n---\n\
                   apiVersion: v1\nkind: Secret\nmetadata: {name: client, namespace: apps}\n\
                   stringData: {tls.crt: CERT-PEM, tls.key: KEY-PEM}\n";
    let spec = "{forwardAuth: {address: 'https://auth.test', tls: {caSecret: ca, certSecret: client}, \
                maxResponseBodySize: 1024, authSigninURL: 'https://sso.test/login'}}";
    let Ok(MiddlewareKind::ForwardAuth(f)) = kind_of(spec, secrets) else { panic!("forward auth") };
    assert_eq!(f.root_cas, vec!["CA-PEM".to_string()]);
    assert_eq!(f.certificate, Some(("CERT-PEM".into(), "KEY-PEM".into())));
    assert_eq!(f.max_response_body_size, 1024);
    assert_eq!(f.auth_signin_url, "https://sso.test/login");
}

#[test]
fn rate_limit_redis_takes_traefik_defaults_and_secrets() {
    const S: u64 = 1_000_000_000;
    let creds = "kind: Secret\nmetadata: {name: creds, namespace: apps}\nstringData: {username: weir, password: s3cret}\n";
    let half = "kind: Secret\nmetadata: {name: half, namespace: apps}\nstringData: {password: s3cret}\n";
    let defaults = mw::RateLimitRedis {
        endpoints: vec!["localhost:6379".into()],
        username: String::new(),
        password: String::new(),
        db: 0,
        tls: None,
        pool_size: 0,
        min_idle_conns: 0,
        max_active_conns: 0,
        read_timeout_nanos: 3 * S,
        write_timeout_nanos: 3 * S,
        dial_timeout_nanos: 5 * S,
    };
    // (case, redis spec, extra objects, Ok(expected) or Err(fragment))
    type Case<'a> = (&'a str, &'a str, &'a str, Result<mw::RateLimitRedis, &'a str>);
    let cases: Vec<Case> = vec![
        ("defaults", "{}", "", Ok(defaults.clone())),
        (
            "fields",
            "{endpoints: ['10.0.0.1:7000', 'redis.svc:6380'], db: 2, poolSize: 4, minIdleConns: 1, \
             maxActiveConns: 8, readTimeout: 2, writeTimeout: 500ms, dialTimeout: 1s}",
            "",
            Ok(mw::RateLimitRedis {
                endpoints: vec!["10.0.0.1:7000".into(), "redis.svc:6380".into()],
                db: 2,
                pool_size: 4,
                min_idle_conns: 1,
                max_active_conns: 8,
                read_timeout_nanos: 2 * S,
                write_timeout_nanos: S / 2,
                dial_timeout_nanos: S,
                ..defaults.clone()
            }),
        ),
        (
            "zero timeouts: none for read/write, default for dial",
            "{readTimeout: 0, writeTimeout: '0s', dialTimeout: 0}",
            "",
            Ok(mw::RateLimitRedis { read_timeout_nanos: 0, write_timeout_nanos: 0, ..defaults.clone() }),
        ),
        (
            "credentials from the secret",
            "{secret: creds}",
            creds,
            Ok(mw::RateLimitRedis { username: "weir".into(), password: "s3cret".into(), ..defaults.clone() }),
        ),
        (
            "tls without secrets",
            "{tls: {insecureSkipVerify: true}}",
            "",
            Ok(mw::RateLimitRedis {
                tls: Some(mw::RateLimitRedisTls {
                    root_cas: vec![],
                    certificate: None,
                    insecure_skip_verify: true,
                }),
                ..defaults.clone()
            }),
        ),
        ("missing secret", "{secret: nope}", "", Err("secret 'apps/nope' not found")),
        (
            "secret without username",
            "{secret: half}",
            half,
            Err("must contain both username and password keys"),
        ),
        ("missing ca secret", "{tls: {caSecret: nope}}", "", Err("failed to load auth ca secret")),
        ("endpoint without port", "{endpoints: [redis]}", "", Err("\"redis\" is not host:port")),
        ("negative pool", "{poolSize: -1}", "", Err("rateLimit.redis.poolSize must be between 0")),
        ("bad timeout", "{readTimeout: soon}", "", Err("invalid rateLimit.redis.readTimeout")),
    ];
    for (name, redis, extra, want) in cases {
        let spec = format!("{{rateLimit: {{average: 10, redis: {redis}}}}}");
        match (kind_of(&spec, extra), want) {
            (Ok(MiddlewareKind::RateLimit(r)), Ok(want)) => {
                assert_eq!(r.redis.as_deref(), Some(&want), "case {name}");
                assert_eq!(r.average, 10, "case {name}");
            }
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "case {name}: {e}"),
            (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
        }
    }
}
