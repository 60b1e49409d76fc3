use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method};
use weir_proto::observability::Prometheus;

use super::render::{go_float, Gauges};
use super::*;

fn exchange<'a>(
    entrypoint: &'a str,
    router: Option<&'a str>,
    service: Option<&'a str>,
    code: u16,
    ms: u64,
) -> Exchange<'a> {
    Exchange {
        entrypoint,
        router,
        service,
        labels: Labels { code, method: Method::GET, protocol: Protocol::Http, headers: Vec::new() },
        duration: Duration::from_millis(ms),
        request_bytes: 3,
        response_bytes: 10,
        retries: 0,
        tls: None,
    }
}

/// (name, request headers, protocol label).
type ProtocolCase = (&'static str, &'static [(&'static str, &'static str)], Protocol);

#[test]
fn protocols() {
    let cases: [ProtocolCase; 6] = [
        ("plain", &[], Protocol::Http),
        (
            "websocket",
            &[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")],
            Protocol::Websocket,
        ),
        ("upgrade without connection", &[("upgrade", "websocket")], Protocol::Http),
        ("sse", &[("accept", "text/event-stream")], Protocol::Sse),
        ("grpc-web", &[("content-type", "application/grpc-web+proto")], Protocol::GrpcWeb),
        ("grpc", &[("content-type", "application/grpc")], Protocol::Grpc),
    ];
    for (name, headers, want) in cases {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, HeaderValue::from_static(v));
        }
        assert_eq!(Protocol::of(&map), want, "case {name}");
    }
}

#[test]
fn go_floats() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (5.0, "5"),
        (0.1, "0.1"),
        (1.2, "1.2"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.00001, "1e-05"),
    ];
    for (v, want) in cases {
        assert_eq!(go_float(v), want, "{v}");
    }
}

#[test]
fn workers_merge_and_render_with_traefik_names() {
    let config = Prometheus { add_routers_labels: true, ..Prometheus::default() };
    let (a, b) = (WorkerMetrics::default(), WorkerMetrics::default());
    b.set_index(1);
    a.record(&config, &exchange("web", Some("r1"), Some("svc@file"), 200, 50));
    b.record(&config, &exchange("web", Some("r1"), Some("svc@file"), 200, 500));
    b.record(&config, &exchange("web", None, None, 404, 1));
    a.connection("web", 1);
    let mut merged = a.snapshot();
    merged.merge(&b.snapshot());
    let text = render(&config, &merged, &Gauges::default());
    let want = [
        r#"traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http"} 2"#,
        r#"traefik_entrypoint_requests_total{code="404",entrypoint="web",method="GET",protocol="http"} 1"#,
        r#"traefik_entrypoint_request_duration_seconds_bucket{code="200",entrypoint="web",method="GET",protocol="http",le="0.1"} 1"#,
        r#"traefik_entrypoint_request_duration_seconds_bucket{code="200",entrypoint="web",method="GET",protocol="http",le="0.3"} 1"#,
        r#"traefik_entrypoint_request_duration_seconds_bucket{code="200",entrypoint="web",method="GET",protocol="http",le="1.2"} 2"#,
        r#"traefik_entrypoint_request_duration_seconds_bucket{code="200",entrypoint="web",method="GET",protocol="http",le="+Inf"} 2"#,
        r#"traefik_entrypoint_request_duration_seconds_count{code="200",entrypoint="web",method="GET",protocol="http"} 2"#,
        r#"traefik_entrypoint_requests_bytes_total{code="200",entrypoint="web",method="GET",protocol="http"} 6"#,
        r#"traefik_entrypoint_responses_bytes_total{code="200",entrypoint="web",method="GET",protocol="http"} 20"#,
        r#"traefik_router_requests_total{code="200",method="GET",protocol="http",router="r1@kubernetescrd",service="svc@file"} 2"#,
        r#"traefik_service_requests_total{code="200",method="GET",protocol="http",service="svc@file"} 2"#,
        r#"traefik_open_connections{entrypoint="web",protocol="TCP"} 1"#,
        r#"weir_worker_requests_total{worker="0"} 1"#,
        r#"weir_worker_requests_total{worker="1"} 2"#,
        "# TYPE traefik_entrypoint_request_duration_seconds histogram",
        "# TYPE traefik_config_reloads_total counter",
    ];
    for line in want {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert!(
        !text.contains("traefik_service_requests_total{code=\"404\""),
        "no service for a 404 without router"
    );
}

#[test]
fn scopes_follow_the_label_options() {
    let config =
        Prometheus { add_entry_points_labels: false, add_services_labels: false, ..Prometheus::default() };
    let m = WorkerMetrics::default();
    m.record(&config, &exchange("web", Some("r"), Some("s"), 200, 1));
    let text = render(&config, &m.snapshot(), &Gauges::default());
    for family in ["traefik_entrypoint_", "traefik_router_", "traefik_service_requests"] {
        assert!(!text.contains(family), "{family} present in\n{text}");
    }
}

#[test]
fn header_labels_only_on_requests_total() {
    let config =
        Prometheus { header_labels: vec![("tenant".into(), "X-Tenant".into())], ..Prometheus::default() };
    let m = WorkerMetrics::default();
    let mut ex = exchange("web", None, None, 200, 1);
    ex.labels.headers = vec!["acme".into()];
    m.record(&config, &ex);
    let text = render(&config, &m.snapshot(), &Gauges::default());
    assert!(text.contains(r#"traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http",tenant="acme"} 1"#), "{text}");
    assert!(text.contains(r#"traefik_entrypoint_requests_bytes_total{code="200",entrypoint="web",method="GET",protocol="http"} 3"#), "{text}");
}

#[test]
fn retries_per_service() {
    let config = Prometheus::default();
    let m = WorkerMetrics::default();
    let mut ex = exchange("web", Some("r"), Some("svc@file"), 200, 1);
    ex.retries = 2;
    m.record(&config, &ex);
    m.record(&config, &exchange("web", Some("r"), Some("svc@file"), 200, 1));
    let text = render(&config, &m.snapshot(), &Gauges::default());
    assert!(text.contains("traefik_service_retries_total{service=\"svc@file\"} 2\n"), "{text}");
}
