//! W9 end to end: access logs written by the real data plane to `--accessLog.filePath`, read
//! back and parsed: Traefik's common format field by field, JSON with Traefik's field names,
//! the status-code filter, field and header modes, and reopening the file on SIGUSR1.

use std::process::Command;
use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// weir with an access log; the directory holding the log lives as long as the test.
fn start(extra: &[&str]) -> (Weir, Whoami, std::path::PathBuf, weir_e2e::TempDir) {
    let be = Whoami::start("app");
    let dir = weir_e2e::TempDir::new();
    let path = dir.join("access.log");
    let file_flag = format!("--accessLog.filePath={}", path.display());
    let mut flags = vec!["--accessLog", file_flag.as_str()];
    flags.extend_from_slice(extra);
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let route = ingressroute_yaml("default", "base", &[("Host(`base.test`)", None, &[("app", 80, 1)])]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("route.yaml", &route)], &flags);
    weir.wait_for("base.test", "/", READY, |r| r.status == 200);
    (weir, be, path, dir)
}

/// `curl` with a User-Agent and a Referer: the status.
fn curl(port: u16, host: &str, path: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"])
        .args(["-H", &format!("Host: {host}"), "-A", "e2e-agent/1.0", "-e", "http://ref.test/"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).parse().expect("status code")
}

/// Waits until the log has a line containing `needle`; returns every line.
fn lines_with(path: &std::path::Path, needle: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || start.elapsed() > Duration::from_secs(5) {
            return text.lines().map(str::to_string).collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn common_format_line_by_line() {
    let (weir, be, path, _dir) = start(&[]);
    assert_eq!(curl(weir.port, "base.test", "/common?x=1"), 200);
    assert_eq!(curl(weir.port, "nowhere.test", "/missing"), 404);
    let lines = lines_with(&path, "/missing");
    let line = lines.iter().find(|l| l.contains("/common?x=1")).expect("a line for the request");
    // `<ip> - <user> [<time>] "<method> <path> <proto>" <status> <size> "<referer>" "<ua>"
    //  <count> "<router>" "<server url>" <duration>ms`; headers are dropped by default.
    let (head, rest) = line.split_once(" [").expect("time opens");
    assert_eq!(head, "127.0.0.1 - -");
    let (time, rest) = rest.split_once("] ").expect("time closes");
    assert_eq!(time.len(), "02/Jan/2006:15:04:05 +0000".len(), "{time}");
    assert!(time.ends_with(" +0000") && time.as_bytes()[2] == b'/', "{time}");
    let rest = rest.strip_prefix("\"GET /common?x=1 HTTP/1.1\" 200 ").expect("request and status");
    let fields: Vec<&str> = rest.split(' ').collect();
    assert_eq!(fields.len(), 7, "{line}");
    assert!(fields[0].parse::<u64>().is_ok_and(|n| n > 0), "size: {line}");
    assert_eq!((fields[1], fields[2]), ("\"-\"", "\"-\""), "referer and agent are dropped by default");
    assert!(fields[3].parse::<u64>().is_ok(), "count: {line}");
    assert!(
        fields[4].starts_with("\"default-base-") && fields[4].ends_with("@kubernetescrd\""),
        "router: {line}"
    );
    assert_eq!(fields[5], format!("\"http://{}\"", be.addr), "server URL");
    assert!(fields[6].ends_with("ms") && fields[6].trim_end_matches("ms").parse::<u64>().is_ok(), "{line}");
    // An unrouted request: no router, no server.
    let miss = lines.iter().find(|l| l.contains("/missing")).expect("a line for the 404");
    assert!(miss.contains("\"GET /missing HTTP/1.1\" 404 ") && miss.contains(" \"-\" \"-\" "), "{miss}");
}

#[test]
fn json_with_filters_and_field_modes() {
    let (weir, _be, path, _dir) = start(&[
        "--accessLog.format=json",
        "--accessLog.filters.statusCodes=400-499",
        "--accessLog.fields.names.ClientPort=drop",
        "--accessLog.fields.headers.defaultMode=keep",
        "--accessLog.fields.headers.names.User-Agent=redact",
        "--accessLog.fields.headers.names.Referer=drop",
    ]);
    assert_eq!(curl(weir.port, "base.test", "/kept-out"), 200);
    assert_eq!(curl(weir.port, "nowhere.test", "/json-404"), 404);
    let lines = lines_with(&path, "/json-404");
    assert!(!lines.iter().any(|l| l.contains("/kept-out")), "the 200 is filtered out: {lines:?}");
    let line = lines.iter().find(|l| l.contains("/json-404")).expect("the 404 is logged");
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
    assert_eq!(v["DownstreamStatus"], 404);
    assert_eq!(v["RequestMethod"], "GET");
    assert_eq!(v["RequestPath"], "/json-404");
    assert_eq!(v["RequestProtocol"], "HTTP/1.1");
    assert_eq!(v["RequestHost"], "nowhere.test");
    assert_eq!(v["RequestScheme"], "http");
    assert_eq!(v["ClientHost"], "127.0.0.1");
    assert_eq!(v["entryPointName"], "web");
    assert_eq!(v["level"], "info");
    assert_eq!(v["msg"], "");
    assert!(v["Duration"].as_u64().is_some_and(|d| d > 0), "nanoseconds: {line}");
    assert!(v["StartUTC"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
    assert!(v["RequestCount"].as_u64().is_some(), "{line}");
    assert!(v.get("ClientPort").is_none(), "dropped field: {line}");
    assert_eq!(v["request_User-Agent"], "REDACTED");
    assert!(v.get("request_Referer").is_none(), "dropped header: {line}");
    assert_eq!(v["request_Host"], "nowhere.test", "kept by the header default: {line}");
}

#[test]
fn sigusr1_reopens_the_file() {
    let (weir, _be, path, _dir) = start(&[]);
    assert_eq!(curl(weir.port, "base.test", "/before"), 200);
    lines_with(&path, "/before");
    let rotated = path.with_extension("log.1");
    std::fs::rename(&path, &rotated).expect("rotate");
    let pid = weir.dataplane_pid().expect("dataplane running");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::Signal::USR1,
    )
    .expect("SIGUSR1");
    // The signal is handled on its own thread; give it a moment before the next line.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(curl(weir.port, "base.test", "/after"), 200);
    let fresh = lines_with(&path, "/after");
    assert!(fresh.iter().any(|l| l.contains("/after")), "new file gets new lines: {fresh:?}");
    assert!(!fresh.iter().any(|l| l.contains("/before")), "{fresh:?}");
    let old = std::fs::read_to_string(&rotated).expect("rotated file");
    assert!(old.contains("/before") && !old.contains("/after"), "{old}");
}

#[test]
fn log_flags_reach_both_processes() {
    let dir = weir_e2e::TempDir::new();
    let log = dir.join("weir.json.log");
    let flag = format!("--log.filePath={}", log.display());
    let (weir, _be, _path, _dir) = start(&["--log.format=json", flag.as_str(), "--log.noColor"]);
    assert_eq!(curl(weir.port, "base.test", "/"), 200);
    let text = std::fs::read_to_string(&log).expect("log file");
    let entries: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    let targets: Vec<&str> = entries.iter().filter_map(|e| e["target"].as_str()).collect();
    let control =
        targets.iter().any(|t| *t == "weir" || t.starts_with("weir::") || t.starts_with("weir_control"));
    assert!(control, "weir's own lines: {text}");
    let dataplane = targets.iter().any(|t| t.starts_with("weir_dataplane"));
    assert!(dataplane, "the data plane got the options: {text}");
    assert!(entries.iter().all(|e| e["level"].is_string() && e["fields"].is_object()), "{text}");
    assert!(!text.contains('\u{1b}'), "no colours");
}

/// A self-signed certificate: (cert PEM, key PEM).
fn certificate(cn: &str, names: &[&str], org: Option<&str>) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    if let Some(o) = org {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, o);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), key.serialize_pem())
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}

/// `curl` with extra options: the status.
fn curl_with(url: &str, opts: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"])
        .args(opts)
        .arg(url)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// The JSON line whose RequestPath is `path`.
fn entry_for(lines: &[String], path: &str) -> serde_json::Value {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["RequestPath"] == path)
        .unwrap_or_else(|| panic!("no line for {path}: {lines:?}"))
}

#[test]
fn json_tls_client_username_and_origin_fields() {
    let be = Whoami::start("app");
    let dir = weir_e2e::TempDir::new();
    let path = dir.join("access.log");
    let (cert, key) = certificate("secure.test", &["secure.test"], None);
    let (client_cert, client_key) = certificate("client.test", &[], Some("E2E Org"));
    let (client_pem, client_key_pem) = (dir.join("client.pem"), dir.join("client.key"));
    std::fs::write(&client_pem, &client_cert).expect("write");
    std::fs::write(&client_key_pem, &client_key).expect("write");
    let tls = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: secure-cert, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n\
         apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {{name: mtls, namespace: default}}\n\
         spec: {{clientAuth: {{clientAuthType: RequireAnyClientCert}}}}\n---\n\
         apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: secure, namespace: default}}\n\
         spec:\n  entryPoints: [web]\n  tls: {{secretName: secure-cert, options: {{name: mtls}}}}\n  routes:\n  \
         - match: Host(`secure.test`)\n    kind: Rule\n    services: [{{name: app, port: 80}}]\n",
        indent(&cert),
        indent(&key)
    );
    let auth = "apiVersion: v1\nkind: Secret\nmetadata: {name: one, namespace: default}\ntype: kubernetes.io/basic-auth\n\
                stringData: {username: admin, password: s3cret}\n---\n\
                apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: auth, namespace: default}\n\
                spec: {basicAuth: {secret: one}}\n---\n"
        .to_string()
        + &ingressroute_yaml("default", "authed", &[("Host(`auth.test`)", None, &[("app", 80, 1)])])
            .replace("      services:", "      middlewares: [{name: auth}]\n      services:");
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let base = ingressroute_yaml("default", "base", &[("Host(`base.test`)", None, &[("app", 80, 1)])]);
    let file_flag = format!("--accessLog.filePath={}", path.display());
    let weir = Weir::start(
        &[("svc.yaml", &svc), ("base.yaml", &base), ("tls.yaml", &tls), ("auth.yaml", &auth)],
        &[
            "--accessLog",
            "--accessLog.format=json",
            file_flag.as_str(),
            "--accessLog.fields.headers.names.Content-Type=keep",
        ],
    );
    weir.wait_for("auth.test", "/", READY, |r| r.status == 401);
    let port = weir.port;
    let resolve = format!("secure.test:{port}:127.0.0.1");
    let cert_args = [
        "-k",
        "--resolve",
        resolve.as_str(),
        "--cert",
        client_pem.to_str().expect("utf-8"),
        "--key",
        client_key_pem.to_str().expect("utf-8"),
        "--tlsv1.2",
        "--tls-max",
        "1.2",
        "--ciphers",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
    ];
    let started = Instant::now();
    while curl_with(&format!("https://secure.test:{port}/tls-ready"), &cert_args) != 200 {
        assert!(started.elapsed() < READY, "the mTLS route never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(curl_with(&format!("https://secure.test:{port}/over-tls"), &cert_args), 200);
    let plain = |path: &str, opts: &[&str]| {
        let mut all = vec!["-H", "Host: auth.test"];
        all.extend_from_slice(opts);
        curl_with(&format!("http://127.0.0.1:{port}{path}"), &all)
    };
    assert_eq!(plain("/authed", &["-u", "admin:s3cret"]), 200);
    assert_eq!(plain("/denied", &["-u", "admin:wrong"]), 401);
    assert_eq!(curl(port, "nowhere.test", "/unrouted"), 404);
    let lines = lines_with(&path, "/unrouted");

    // Over TLS: version, cipher and client subject as Traefik (Go) names them.
    let v = entry_for(&lines, "/over-tls");
    assert_eq!(v["RequestScheme"], "https");
    assert_eq!(v["TLSVersion"], "1.2", "{v}");
    assert_eq!(v["TLSCipher"], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "{v}");
    assert_eq!(v["TLSClientSubject"], "CN=client.test,O=E2E Org", "{v}");
    assert_eq!(v["ClientUsername"], "-");
    // A backend answered: origin fields, and the durations add up (all in nanoseconds).
    assert_eq!(v["OriginStatus"], 200, "{v}");
    assert_eq!(v["OriginContentSize"], v["DownstreamContentSize"], "{v}");
    let (total, origin, overhead) =
        (v["Duration"].as_u64(), v["OriginDuration"].as_u64(), v["Overhead"].as_u64());
    let (total, origin, overhead) =
        (total.expect("Duration"), origin.expect("Origin"), overhead.expect("Overhead"));
    assert!(origin > 0 && origin <= total && overhead + origin == total, "{v}");
    // A kept header appears as the server sent it and as the client got it.
    assert!(v["origin_Content-Type"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    assert_eq!(v["origin_Content-Type"], v["downstream_Content-Type"], "{v}");
    assert!(v.get("request_Content-Type").is_none(), "a GET has none: {v}");
    // StartUTC in UTC, StartLocal in the local zone (RFC 3339 with nanoseconds), `time` to the second.
    let utc = v["StartUTC"].as_str().expect("StartUTC");
    let local = v["StartLocal"].as_str().expect("StartLocal");
    assert!(utc.ends_with('Z') && utc.len() > "2006-01-02T15:04:05Z".len(), "{utc}");
    if local.ends_with('Z') {
        assert_eq!(local, utc, "a UTC machine writes the same instant");
    } else {
        assert!(local.len() == utc.len() + 5, "an offset like +01:00: {local}");
    }
    let time = v["time"].as_str().expect("time");
    assert!(!time.contains('.') && time.len() >= "2006-01-02T15:04:05Z".len(), "{time}");

    // The user BasicAuth accepted; none for a refused one, which never reached a backend.
    let authed = entry_for(&lines, "/authed");
    assert_eq!(authed["ClientUsername"], "admin", "{authed}");
    assert_eq!(authed["RequestScheme"], "http");
    assert!(authed.get("TLSVersion").is_none(), "{authed}");
    let denied = entry_for(&lines, "/denied");
    assert_eq!(denied["ClientUsername"], "-", "{denied}");
    assert_eq!(denied["DownstreamStatus"], 401);
    assert!(denied.get("OriginStatus").is_none(), "a middleware answered: {denied}");
    // Unrouted: no router, no origin, the whole duration is overhead.
    let miss = entry_for(&lines, "/unrouted");
    assert!(miss.get("OriginStatus").is_none() && miss.get("RouterName").is_none(), "{miss}");
    assert!(
        miss.get("origin_Content-Type").is_none() && miss.get("downstream_Content-Type").is_some(),
        "{miss}"
    );
    assert_eq!(miss["Overhead"], miss["Duration"], "{miss}");
}
