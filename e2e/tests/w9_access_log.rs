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
