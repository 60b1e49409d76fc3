use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use weir_proto::observability::{AccessLogFields, AccessLogFormat, FieldMode};

use super::*;

fn entry<'a>(req: &'a HeaderMap, resp: &'a HeaderMap) -> Entry<'a> {
    Entry {
        // 2020-01-02T03:04:05.5Z
        start: UNIX_EPOCH + Duration::from_millis(1_577_934_245_500),
        duration: Duration::from_micros(12_345),
        origin_duration: Some(Duration::from_millis(10)),
        client_addr: "10.1.2.3:4567".parse().expect("addr"),
        forwarded_for: None,
        host: Some("example.com:8000"),
        method: "GET",
        path: "/a?b=c",
        protocol: "HTTP/1.1",
        scheme: "http",
        status: 200,
        origin_status: Some(200),
        size: 42,
        request_size: 0,
        count: 7,
        entrypoint: "web",
        router: Some("default-app-abc@kubernetescrd"),
        service: Some("default-app-80"),
        service_url: Some("http://10.0.0.1:80"),
        service_addr: Some("10.0.0.1:80"),
        retry_attempts: 0,
        request_headers: req,
        response_headers: resp,
        origin_headers: resp,
        tls: None,
        tls_client_subject: None,
        client_username: None,
    }
}

fn line(format: AccessLogFormat, fields: &AccessLogFields, e: &Entry<'_>) -> String {
    let mut out = Vec::new();
    write_line(format, fields, e, &mut out);
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn common_format() {
    let mut req = HeaderMap::new();
    req.insert("user-agent", HeaderValue::from_static("curl/8"));
    let resp = HeaderMap::new();
    let keep_headers =
        AccessLogFields { headers_default_mode: FieldMode::Keep, ..AccessLogFields::default() };
    let cases = [
        (
            "defaults: headers dropped",
            AccessLogFormat::Common,
            AccessLogFields::default(),
            "10.1.2.3 - - [02/Jan/2020:03:04:05 +0000] \"GET /a?b=c HTTP/1.1\" 200 42 \"-\" \"-\" 7 \"default-app-abc@kubernetescrd\" \"http://10.0.0.1:80\" 12ms\n",
        ),
        (
            "headers kept",
            AccessLogFormat::Common,
            keep_headers.clone(),
            "10.1.2.3 - - [02/Jan/2020:03:04:05 +0000] \"GET /a?b=c HTTP/1.1\" 200 42 \"-\" \"curl/8\" 7 \"default-app-abc@kubernetescrd\" \"http://10.0.0.1:80\" 12ms\n",
        ),
        (
            "generic CLF",
            AccessLogFormat::GenericClf,
            keep_headers,
            "10.1.2.3 - - [02/Jan/2020:03:04:05 +0000] \"GET /a?b=c HTTP/1.1\" 200 42 \"-\" \"curl/8\"\n",
        ),
        (
            "client host dropped",
            AccessLogFormat::Common,
            AccessLogFields {
                names: vec![("clienthost".into(), FieldMode::Drop)],
                ..AccessLogFields::default()
            },
            "- - - [02/Jan/2020:03:04:05 +0000] \"GET /a?b=c HTTP/1.1\" 200 42 \"-\" \"-\" 7 \"default-app-abc@kubernetescrd\" \"http://10.0.0.1:80\" 12ms\n",
        ),
    ];
    for (name, format, fields, want) in cases {
        assert_eq!(line(format, &fields, &entry(&req, &resp)), want, "case {name}");
    }
    let mut no_router = entry(&req, &resp);
    no_router.router = None;
    no_router.service_url = None;
    let got = line(AccessLogFormat::Common, &AccessLogFields::default(), &no_router);
    assert!(got.ends_with(" 7 \"-\" \"-\" 12ms\n"), "{got}");
}

#[test]
fn json_format() {
    let mut req = HeaderMap::new();
    req.insert("user-agent", HeaderValue::from_static("curl/8"));
    req.insert("authorization", HeaderValue::from_static("secret"));
    let mut resp = HeaderMap::new();
    resp.insert("content-type", HeaderValue::from_static("text/plain"));
    let fields = AccessLogFields {
        headers_default_mode: FieldMode::Keep,
        header_names: vec![("Authorization".into(), FieldMode::Redact)],
        names: vec![("startlocal".into(), FieldMode::Drop)],
        ..AccessLogFields::default()
    };
    let got = line(AccessLogFormat::Json, &fields, &entry(&req, &resp));
    let want_parts = [
        r#""ClientAddr":"10.1.2.3:4567""#,
        r#""ClientHost":"10.1.2.3""#,
        r#""ClientPort":"4567""#,
        r#""DownstreamStatus":200"#,
        r#""DownstreamContentSize":42"#,
        r#""Duration":12345000"#,
        r#""OriginDuration":10000000"#,
        r#""Overhead":2345000"#,
        r#""RequestAddr":"example.com:8000""#,
        r#""RequestHost":"example.com""#,
        r#""RequestPort":"8000""#,
        r#""RequestPath":"/a?b=c""#,
        r#""RouterName":"default-app-abc@kubernetescrd""#,
        r#""ServiceURL":"http://10.0.0.1:80""#,
        r#""StartUTC":"2020-01-02T03:04:05.5Z""#,
        r#""entryPointName":"web""#,
        r#""level":"info""#,
        r#""msg":"""#,
        r#""request_User-Agent":"curl/8""#,
        r#""request_Authorization":"REDACTED""#,
        r#""downstream_Content-Type":"text/plain""#,
        r#""origin_Content-Type":"text/plain""#,
    ];
    for part in want_parts {
        assert!(got.contains(part), "missing {part} in {got}");
    }
    assert!(!got.contains("StartLocal"), "dropped field present: {got}");
    assert!(got.starts_with("{\"ClientAddr\"") && got.ends_with("}\n"), "{got}");
}

#[test]
fn host_port_split() {
    let cases = [
        ("example.com:80", ("example.com", "80")),
        ("example.com", ("example.com", "-")),
        ("[::1]:8080", ("::1", "8080")),
        ("10.0.0.1:1", ("10.0.0.1", "1")),
    ];
    for (raw, (h, p)) in cases {
        assert_eq!(split_host_port(raw), (h.to_string(), p.to_string()), "{raw}");
    }
}

#[test]
fn tls_username_and_origin_fields() {
    let (req, resp) = (HeaderMap::new(), HeaderMap::new());
    let mut e = entry(&req, &resp);
    e.tls = Some(("1.3", "TLS_AES_128_GCM_SHA256"));
    e.tls_client_subject = Some("CN=client,O=Acme");
    e.client_username = Some("alice");
    let json = line(AccessLogFormat::Json, &AccessLogFields::default(), &e);
    for part in [
        r#""TLSVersion":"1.3""#,
        r#""TLSCipher":"TLS_AES_128_GCM_SHA256""#,
        r#""TLSClientSubject":"CN=client,O=Acme""#,
        r#""ClientUsername":"alice""#,
        r#""OriginStatus":200"#,
        r#""OriginContentSize":42"#,
    ] {
        assert!(json.contains(part), "missing {part} in {json}");
    }
    let clf = line(AccessLogFormat::Common, &AccessLogFields::default(), &e);
    assert!(clf.starts_with("10.1.2.3 - alice [02/Jan/2020"), "{clf}");

    // No backend answered (no router, or a middleware did): Traefik has no origin fields, and
    // the whole duration is overhead; no TLS fields over cleartext.
    let mut e = entry(&req, &resp);
    e.origin_status = None;
    e.origin_duration = None;
    let json = line(AccessLogFormat::Json, &AccessLogFields::default(), &e);
    for absent in ["OriginStatus", "OriginContentSize", "OriginDuration", "TLSVersion", "GzipRatio"] {
        assert!(!json.contains(absent), "{absent} in {json}");
    }
    assert!(json.contains(r#""Overhead":12345000"#) && json.contains(r#""ClientUsername":"-""#), "{json}");
}

#[test]
fn go_time_formats() {
    let t = UNIX_EPOCH + Duration::from_millis(1_577_934_245_500);
    let cases = [
        (0, "2020-01-02T03:04:05.5Z"),
        (3600, "2020-01-02T04:04:05.5+01:00"),
        (-(5 * 3600 + 1800), "2020-01-01T21:34:05.5-05:30"),
    ];
    for (offset, want) in cases {
        assert_eq!(rfc3339_nano(t, offset), want, "offset {offset}");
    }
    assert_eq!(rfc3339_nano(UNIX_EPOCH + Duration::from_secs(1), 0), "1970-01-01T00:00:01Z");
}
