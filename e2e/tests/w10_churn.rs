//! W10 end to end: churn under load. wrk drives steady traffic at an untouched route while the
//! test applies 1,000 changes to other objects (routes added and removed, endpoints moved,
//! middlewares rewritten, a TLS secret rotated, whole files added and removed). Nothing on the
//! untouched route may notice: no socket error, no non-2xx answer, and a WebSocket opened on an
//! untouched route before the churn still echoes after it.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use weir_e2e::upgrade_echo::{upgrade_request, EchoUpgrade};
use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);
const CHANGES: usize = 1_000;

/// wrk's summary: responses outside 2xx/3xx and socket errors of every kind.
#[derive(Debug)]
struct WrkResult {
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
}

fn parse_wrk(out: &str) -> WrkResult {
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or(0);
    let non_2xx = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:").and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0);
    // "Socket errors: connect 0, read 0, write 0, timeout 0"
    let socket_errors = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',').filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok()).sum()
        })
        .unwrap_or(0);
    WrkResult { requests, non_2xx, socket_errors }
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

/// A self-signed certificate for `host` as a `kubernetes.io/tls` Secret.
fn tls_secret(name: &str, host: &str) -> String {
    let cert = rcgen::generate_simple_self_signed(vec![host.to_string()]).expect("self-signed cert");
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&cert.cert.pem()),
        indent(&cert.signing_key.serialize_pem())
    )
}

/// The objects of churn step `i`: every step writes or removes one manifest file that is not
/// one of the untouched routes' files.
fn churn_step(weir: &Weir, i: usize, others: &[SocketAddr], dead: SocketAddr) {
    let slot = i % 40;
    match i % 5 {
        // A new route file (or a rewrite of an old one) on another host.
        0 => weir.write_manifest(
            &format!("churn-route-{slot}.yaml"),
            &ingressroute_yaml(
                "default",
                &format!("churn-{slot}"),
                &[(&format!("Host(`churn-{slot}.test`) && PathPrefix(`/v{i}`)"), None, &[("other", 80, 1)])],
            ),
        ),
        // A whole file removed: every other time, the one the step before wrote.
        1 => {
            let name = format!("churn-route-{}.yaml", (i - 1) % 40);
            if (i / 5).is_multiple_of(2) && weir.manifests.join(&name).exists() {
                weir.remove_manifest(&name);
            }
        }
        // The other service's endpoints move, sometimes onto a dead address.
        2 => {
            let backends: Vec<SocketAddr> = match i % 3 {
                0 => vec![others[0]],
                1 => vec![others[1], dead],
                _ => others.to_vec(),
            };
            weir.write_manifest("other-service.yaml", &service_yaml("default", "other", 80, "http", &backends));
        }
        // A middleware rewritten, and a route that uses it.
        3 => weir.write_manifest(
            "churn-middleware.yaml",
            &format!(
                "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: tag, namespace: default}}\n\
                 spec:\n  headers:\n    customResponseHeaders:\n      X-Churn: \"{i}\"\n---\n\
                 apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: tagged, namespace: default}}\n\
                 spec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`tagged.test`)\n      kind: Rule\n\
                 \x20     middlewares: [{{name: tag}}]\n      services: [{{name: other, port: 80}}]\n"
            ),
        ),
        // The TLS secret of another host rotated.
        _ => weir.write_manifest("churn-secret.yaml", &tls_secret("churn-cert", "secure.test")),
    }
}

#[test]
fn untouched_routes_see_nothing_of_a_thousand_changes() {
    if !have("wrk") {
        assert!(std::env::var_os("CI").is_none(), "wrk is missing under CI");
        eprintln!(
            "\n!!! SKIPPED untouched_routes_see_nothing_of_a_thousand_changes: wrk is not installed !!!\n"
        );
        return;
    }
    let stable = [Whoami::start("stable-a"), Whoami::start("stable-b")];
    let others = [Whoami::start("other-a"), Whoami::start("other-b")];
    let other_addrs: Vec<SocketAddr> = others.iter().map(|w| w.addr).collect();
    let dead: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let ws = EchoUpgrade::start();
    let stable_files = format!(
        "{}---\n{}---\n{}---\n{}",
        service_yaml("default", "stable", 80, "http", &stable.iter().map(|w| w.addr).collect::<Vec<_>>()),
        ingressroute_yaml("default", "stable", &[("Host(`stable.test`)", None, &[("stable", 80, 1)])]),
        service_yaml("default", "ws", 80, "http", &[ws.addr]),
        ingressroute_yaml("default", "ws", &[("Host(`ws.test`)", None, &[("ws", 80, 1)])]),
    );
    let secure = format!(
        "{}---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: secure, namespace: default}}\n\
         spec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`secure.test`)\n      kind: Rule\n\
         \x20     services: [{{name: other, port: 80}}]\n  tls:\n    secretName: churn-cert\n",
        tls_secret("churn-cert", "secure.test")
    );
    let weir = Weir::start(
        &[
            ("stable.yaml", &stable_files),
            ("other-service.yaml", &service_yaml("default", "other", 80, "http", &other_addrs)),
            ("churn-secret.yaml", &secure),
        ],
        &[],
    );
    weir.wait_for("stable.test", "/", READY, |r| r.status == 200);
    weir.wait_for("tagged.test", "/", READY, |r| r.status == 404);

    // A WebSocket on an untouched route, open across the churn.
    let stream = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect ws");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut ws_conn = BufReader::new(stream);
    let head = upgrade_request(&mut ws_conn, "ws.test");
    assert!(head.starts_with("http/1.1 101"), "{head}");

    // Steady load on the untouched route for longer than the churn takes.
    let wrk_secs = 30;
    let wrk = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{wrk_secs}s"), "-H", "Host: stable.test"])
        .arg(format!("http://127.0.0.1:{}/bench", weir.port))
        .output();
    let wrk_thread = std::thread::spawn(move || wrk);
    // Let wrk's connections open before the first change.
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let mut echoes = 0;
    for i in 0..CHANGES {
        churn_step(&weir, i, &other_addrs, dead);
        // Between changes, the WebSocket keeps echoing.
        if i % 50 == 0 {
            let msg = format!("ping {i}\n");
            ws_conn.get_mut().write_all(msg.as_bytes()).expect("websocket write during churn");
            let mut back = vec![0u8; msg.len()];
            ws_conn.read_exact(&mut back).expect("websocket echo during churn");
            assert_eq!(back, msg.as_bytes());
            echoes += 1;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    let churn_time = started.elapsed();
    assert!(
        churn_time < Duration::from_secs(wrk_secs - 5),
        "the churn ({churn_time:?}) must end well inside the load ({wrk_secs} s)"
    );

    // The last changes are served: the last route written answers, the middleware's last value
    // is on its responses.
    let last_route = (0..CHANGES).rev().find(|i| i % 5 == 0).expect("a route step");
    let slot = last_route % 40;
    weir.wait_for(&format!("churn-{slot}.test"), &format!("/v{last_route}"), READY, |r| r.status == 200);
    let last_tag = (0..CHANGES).rev().find(|i| i % 5 == 3).expect("a middleware step");
    weir.wait_for("tagged.test", "/", READY, |r| r.header("x-churn") == Some(last_tag.to_string().as_str()));

    let out = wrk_thread.join().expect("wrk thread").expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let result = parse_wrk(&text);
    eprintln!("churn: {CHANGES} changes in {churn_time:?}, {echoes} websocket echoes, wrk: {result:?}");
    assert!(result.requests > 1_000, "wrk made too few requests:\n{text}");
    assert_eq!(result.socket_errors, 0, "socket errors on the untouched route:\n{text}");
    assert_eq!(result.non_2xx, 0, "non-2xx answers on the untouched route:\n{text}");

    // The WebSocket is still open and still echoes after the churn.
    ws_conn.get_mut().write_all(b"after\n").expect("websocket write after churn");
    let mut back = [0u8; 6];
    ws_conn.read_exact(&mut back).expect("websocket echo after churn");
    assert_eq!(&back, b"after\n");
    assert!(!weir.log().contains("panicked"), "{}", weir.log());
}
