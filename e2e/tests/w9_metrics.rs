//! W9 end to end: Prometheus metrics. Traffic through the real binaries, then `curl /metrics`
//! on the metrics entrypoint: Traefik's metric names and labels, per entrypoint, router and
//! service, counts summed over both workers, histograms, open connections, reloads.

use std::process::Command;
use std::time::{Duration, Instant};

use weir_e2e::{free_port, ingressroute_yaml, service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// `curl -sS -i http://127.0.0.1:port/metrics`: (headers, body).
fn scrape(port: u16) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "5", &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    (head.to_string(), body.to_string())
}

/// The value of the sample whose name and labels are exactly `series`.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The samples of `name` whose label set contains every one of `labels`.
fn samples<'a>(body: &'a str, name: &str, labels: &[&str]) -> Vec<(&'a str, f64)> {
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series, v.parse().ok()?))
        })
        .collect()
}

fn start(extra: &[&str]) -> (Weir, Whoami, u16) {
    let be = Whoami::start("app");
    let mport = free_port();
    let metrics_ep = format!("--entryPoints.metrics.address=127.0.0.1:{mport}");
    let mut flags =
        vec!["--metrics.prometheus", "--metrics.prometheus.entryPoint=metrics", metrics_ep.as_str()];
    flags.extend_from_slice(extra);
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let route = ingressroute_yaml("default", "base", &[("Host(`base.test`)", None, &[("app", 80, 1)])]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("route.yaml", &route)], &flags);
    weir.wait_for("base.test", "/", READY, |r| r.status == 200);
    (weir, be, mport)
}

#[test]
fn counters_and_labels_after_traffic() {
    let (weir, _be, mport) = start(&["--metrics.prometheus.addRoutersLabels=true"]);
    // `wait_for` got one 200 (it stops at the first); three more, one with a body, and a 404.
    for _ in 0..2 {
        assert_eq!(weir.get("base.test", "/").expect("request").status, 200);
    }
    let mut conn = Conn::open(weir.port).expect("connect");
    let posted =
        conn.raw("POST /x HTTP/1.1\r\nHost: base.test\r\nContent-Length: 5\r\n\r\nhello").expect("post");
    assert_eq!(posted.status, 200);
    drop(conn);
    assert_eq!(weir.get("nowhere.test", "/").expect("request").status, 404);

    let started = Instant::now();
    let (head, body) = loop {
        // Each worker's counters are read at scrape time: no lag to wait for, but the 404's
        // connection may still be closing.
        let (head, body) = scrape(mport);
        let gets = value(
            &body,
            r#"traefik_entrypoint_requests_total{code="200",entrypoint="web",method="GET",protocol="http"}"#,
        );
        if gets == Some(3.0) || started.elapsed() > Duration::from_secs(5) {
            break (head, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
        "content type in {head}"
    );
    let ep = |code: &str, method: &str| {
        format!(
            r#"traefik_entrypoint_requests_total{{code="{code}",entrypoint="web",method="{method}",protocol="http"}}"#
        )
    };
    assert_eq!(value(&body, &ep("200", "GET")), Some(3.0), "{body}");
    assert_eq!(value(&body, &ep("200", "POST")), Some(1.0), "{body}");
    assert!(value(&body, &ep("404", "GET")).is_some_and(|n| n >= 1.0), "{body}");
    // Request bytes: the POST's five.
    assert_eq!(
        value(
            &body,
            r#"traefik_entrypoint_requests_bytes_total{code="200",entrypoint="web",method="POST",protocol="http"}"#
        ),
        Some(5.0),
        "{body}"
    );
    let resp_bytes = value(
        &body,
        r#"traefik_entrypoint_responses_bytes_total{code="200",entrypoint="web",method="GET",protocol="http"}"#,
    );
    assert!(resp_bytes.is_some_and(|n| n > 0.0), "whoami answers with a body: {body}");
    // Histogram: the default buckets, cumulative, `+Inf` equal to the count.
    for le in ["0.1", "0.3", "1.2", "5", "+Inf"] {
        let series = format!(
            r#"traefik_entrypoint_request_duration_seconds_bucket{{code="200",entrypoint="web",method="GET",protocol="http",le="{le}"}}"#
        );
        assert!(value(&body, &series).is_some(), "missing {series} in {body}");
    }
    assert_eq!(
        value(
            &body,
            r#"traefik_entrypoint_request_duration_seconds_count{code="200",entrypoint="web",method="GET",protocol="http"}"#
        ),
        Some(3.0)
    );
    // Router and service series carry Traefik's names for the IngressRoute's objects.
    let routers = samples(&body, "traefik_router_requests_total", &[r#"code="200""#, r#"method="GET""#]);
    assert_eq!(routers.len(), 1, "one router series: {routers:?}");
    let (series, n) = routers[0];
    assert_eq!(n, 3.0);
    assert!(series.contains(r#"router="default-base-"#) && series.contains("@kubernetescrd"), "{series}");
    assert!(series.contains(r#"service="default-app-80@kubernetescrd""#), "{series}");
    let services =
        samples(&body, "traefik_service_requests_total", &[r#"service="default-app-80@kubernetescrd""#]);
    assert_eq!(services.iter().map(|(_, n)| n).sum::<f64>(), 4.0, "{services:?}");
    // No service for the unrouted 404.
    assert!(samples(&body, "traefik_service_requests_total", &[r#"code="404""#]).is_empty(), "{body}");
    // The scrape's own connection is open on the metrics entrypoint; reloads were counted.
    assert!(
        value(&body, r#"traefik_open_connections{entrypoint="metrics",protocol="TCP"}"#)
            .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert!(value(&body, "traefik_config_reloads_total").is_some_and(|n| n >= 1.0), "{body}");
    assert!(value(&body, "traefik_config_last_reload_success").is_some_and(|n| n > 1.6e9), "{body}");
    // weir's own: per worker, summing to every request served.
    let per_worker: f64 = samples(&body, "weir_worker_requests_total", &[]).iter().map(|(_, n)| n).sum();
    assert!(per_worker >= 5.0, "{body}");
    assert!(body.contains("# TYPE traefik_entrypoint_request_duration_seconds histogram"));
    // The scrape itself is not counted (Traefik leaves internal services out).
    assert!(
        samples(&body, "traefik_entrypoint_requests_total", &[r#"entrypoint="metrics""#]).is_empty(),
        "{body}"
    );
}

#[test]
fn label_options_turn_families_off() {
    let (weir, _be, mport) = start(&[
        "--metrics.prometheus.addEntryPointsLabels=false",
        "--metrics.prometheus.addServicesLabels=false",
        "--metrics.prometheus.buckets=0.5,2",
    ]);
    assert_eq!(weir.get("base.test", "/").expect("request").status, 200);
    let (_, body) = scrape(mport);
    assert!(!body.contains("traefik_entrypoint_requests_total"), "{body}");
    assert!(!body.contains("traefik_service_requests_total"), "{body}");
    // Routers are off by default (Traefik's addRoutersLabels=false).
    assert!(!body.contains("traefik_router_requests_total"), "{body}");
    assert!(body.contains("traefik_config_reloads_total"), "{body}");
}

#[test]
fn custom_buckets() {
    let (weir, _be, mport) = start(&["--metrics.prometheus.buckets=0.5,2"]);
    assert_eq!(weir.get("base.test", "/").expect("request").status, 200);
    let (_, body) = scrape(mport);
    let buckets: Vec<&str> =
        samples(&body, "traefik_entrypoint_request_duration_seconds_bucket", &[r#"code="200""#])
            .iter()
            .filter_map(|(s, _)| s.split("le=\"").nth(1)?.split('"').next())
            .collect();
    assert_eq!(buckets, ["0.5", "2", "+Inf"], "{body}");
}

/// A self-signed certificate for `host` with a known serial and expiry: (cert PEM, key PEM).
fn certificate(host: &str, serial: u64, not_after: (i32, u8, u8)) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, host);
    // Minimal big-endian bytes (DER integers have no leading zero bytes; 4242 has no top bit).
    let bytes: Vec<u8> = serial.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
    params.serial_number = Some(rcgen::SerialNumber::from(bytes));
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// `curl -k` over TLS with the given version/cipher options: the status.
fn curl_tls(port: u16, host: &str, opts: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args(["-sSk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(opts)
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {opts:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).parse().expect("status code")
}

#[test]
fn tls_requests_and_certificate_expiry() {
    let be = Whoami::start("app");
    let mport = free_port();
    let metrics_ep = format!("--entryPoints.metrics.address=127.0.0.1:{mport}");
    let (cert, key) = certificate("secure.test", 4242, (2031, 5, 6));
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: secure-cert, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&cert),
        indent(&key)
    );
    let route = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: secure, namespace: default}\n\
                 spec:\n  entryPoints: [web]\n  tls: {secretName: secure-cert}\n  routes:\n  - match: Host(`secure.test`)\n    \
                 kind: Rule\n    services: [{name: app, port: 80}]\n";
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let plain = ingressroute_yaml("default", "base", &[("Host(`base.test`)", None, &[("app", 80, 1)])]);
    let weir = Weir::start(
        &[("svc.yaml", &svc), ("route.yaml", &plain), ("secure.yaml", route), ("secret.yaml", &secret)],
        &[
            "--metrics.prometheus",
            "--metrics.prometheus.entryPoint=metrics",
            "--metrics.prometheus.addRoutersLabels=true",
            metrics_ep.as_str(),
        ],
    );
    weir.wait_for("base.test", "/", READY, |r| r.status == 200);
    let started = Instant::now();
    // Readiness requests use another TLS 1.3 suite, so the counts below are exact.
    while curl_tls(weir.port, "secure.test", &["--tlsv1.3", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"])
        != 200
    {
        assert!(started.elapsed() < READY, "the TLS route never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more TLS 1.3 request with a chosen suite, and two TLS 1.2 ones.
    let tls13 = ["--tlsv1.3", "--tls13-ciphers", "TLS_AES_256_GCM_SHA384"];
    assert_eq!(curl_tls(weir.port, "secure.test", &tls13), 200);
    let tls12 = ["--tlsv1.2", "--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"];
    for _ in 0..2 {
        assert_eq!(curl_tls(weir.port, "secure.test", &tls12), 200);
    }

    let (_, body) = scrape(mport);
    let v12 = [r#"tls_cipher="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256""#, r#"tls_version="1.2""#];
    assert_eq!(
        value(
            &body,
            r#"traefik_entrypoint_requests_tls_total{entrypoint="web",tls_cipher="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",tls_version="1.2"}"#
        ),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        value(
            &body,
            r#"traefik_entrypoint_requests_tls_total{entrypoint="web",tls_cipher="TLS_AES_256_GCM_SHA384",tls_version="1.3"}"#
        ),
        Some(1.0),
        "{body}"
    );
    // Over every TLS 1.3 suite: the readiness request(s) and the chosen one.
    let all13: f64 = samples(&body, "traefik_entrypoint_requests_tls_total", &[r#"tls_version="1.3""#])
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert!(all13 >= 2.0, "{body}");
    // The same series per router (with its service) and per service.
    let routers = samples(&body, "traefik_router_requests_tls_total", &v12);
    assert_eq!(routers.len(), 1, "{body}");
    assert!(routers[0].0.contains(r#"router="default-secure-"#), "{routers:?}");
    assert!(routers[0].0.contains(r#"service="default-app-80@kubernetescrd""#), "{routers:?}");
    assert_eq!(routers[0].1, 2.0);
    let services = samples(&body, "traefik_service_requests_tls_total", &v12);
    assert_eq!(
        services,
        vec![(
            r#"traefik_service_requests_tls_total{service="default-app-80@kubernetescrd",tls_cipher="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",tls_version="1.2"}"#,
            2.0
        )]
    );
    // Cleartext requests are not counted as TLS.
    assert!(
        samples(&body, "traefik_router_requests_tls_total", &[r#"router="default-base-"#]).is_empty(),
        "{body}"
    );
    // The configured certificate's expiry (2031-05-06T00:00:00Z), labelled as Traefik does.
    assert_eq!(
        value(&body, r#"traefik_tls_certs_not_after{cn="secure.test",sans="secure.test",serial="4242"}"#),
        Some(1_935_792_000.0),
        "{body}"
    );
    assert!(body.contains("# TYPE traefik_tls_certs_not_after gauge"), "{body}");
    assert_eq!(
        samples(&body, "traefik_tls_certs_not_after", &[]).len(),
        1,
        "only configured certificates: {body}"
    );
}
