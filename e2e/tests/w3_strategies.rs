//! W3 end to end: the load-balancer `strategy` of an IngressRoute service, counted on real
//! backends. `wrr` shares exactly by weight; `p2c` spreads sequential requests over every
//! server; `hrw` sends one client IP to one server, the one Traefik's formula names; and
//! `leasttime` moves traffic to the server that answers first.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use weir_e2e::{service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// An IngressRoute with one route per `(host, strategy)`, each to its own `pool-<strategy>`
/// Service (one Service referenced with two strategies would be one Traefik service).
fn routes(routes: &[(&str, &str)]) -> String {
    let mut y = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r, namespace: apps}\n\
                 spec:\n  entryPoints: [web]\n  routes:\n"
        .to_string();
    for (host, strategy) in routes {
        y.push_str(&format!(
            "  - match: Host(`{host}`)\n    services: [{{name: pool-{strategy}, port: 80, strategy: {strategy}}}]\n"
        ));
    }
    y
}

/// Who answered `n` sequential requests to `host`.
fn counts(weir: &Weir, host: &str, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for _ in 0..n {
        let r = weir.get(host, "/").expect("request");
        assert_eq!(r.status, 200, "{r:?}");
        *out.entry(r.backend().unwrap_or("?").to_string()).or_default() += 1;
    }
    out
}

fn start(backends: &[SocketAddr], strategies: &[(&str, &str)]) -> Weir {
    let svc: Vec<String> = strategies
        .iter()
        .map(|(_, s)| service_yaml("apps", &format!("pool-{s}"), 80, "http", backends))
        .collect();
    // One worker: counts and rotations are per worker, and the kernel spreads connections
    // over workers unevenly.
    let weir =
        Weir::start(&[("svc.yaml", &svc.join("---\n")), ("ir.yaml", &routes(strategies))], &["--workers=1"]);
    weir.wait_for(strategies[0].0, "/", READY, |r| r.status == 200);
    weir
}

/// FNV-1a 64 (Go's `hash/fnv`), for the test's own HRW oracle.
fn fnv1a64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[test]
fn wrr_p2c_and_hrw_share_as_traefik_does() {
    let bs: Vec<Whoami> = ["a", "b", "c"].iter().map(|n| Whoami::start(n)).collect();
    let addrs: Vec<SocketAddr> = bs.iter().map(|b| b.addr).collect();
    let weir = start(&addrs, &[("wrr.test", "wrr"), ("p2c.test", "p2c"), ("hrw.test", "hrw")]);

    // wrr: equal weights, exact rotation.
    let got = counts(&weir, "wrr.test", 30);
    for b in &bs {
        assert_eq!(got.get(&b.name), Some(&10), "wrr: {got:?}");
    }

    // p2c: no request is in flight when the next starts, so the first random draw wins:
    // every server serves, none takes nearly all.
    let got = counts(&weir, "p2c.test", 90);
    for b in &bs {
        let n = got.get(&b.name).copied().unwrap_or(0);
        assert!((10..=60).contains(&n), "p2c: {got:?}");
    }

    // hrw: the client 127.0.0.1 always reaches the server with the highest
    // 1/-ln(fnv64a(ip + url)/2^64) (equal weights).
    let score = |b: &Whoami| {
        let h = fnv1a64(&format!("127.0.0.1http://{}", b.addr));
        1.0 / -(h as f64 / 18_446_744_073_709_551_616.0).ln()
    };
    let want = bs.iter().max_by(|x, y| score(x).total_cmp(&score(y))).expect("backends");
    let got = counts(&weir, "hrw.test", 20);
    assert_eq!(got.get(&want.name), Some(&20), "hrw: every request on {}: {got:?}", want.name);
}

/// A backend that waits `delay` before each answer, naming itself `name`.
fn slow_backend(name: &'static str, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(delay);
                let _ = s.write_all(
                    format!("HTTP/1.1 200 OK\r\nX-Whoami-Name: {name}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                        .as_bytes(),
                );
            });
        }
    });
    addr
}

#[test]
fn leasttime_prefers_the_server_that_answers_first() {
    let fast = Whoami::start("fast");
    let slow = slow_backend("slow", Duration::from_millis(300));
    let weir = start(&[fast.addr, slow], &[("lt.test", "leasttime"), ("rr.test", "wrr")]);

    // Both are tried once (no samples yet), then the faster one keeps the traffic.
    let got = counts(&weir, "lt.test", 40);
    let slow_hits = got.get("slow").copied().unwrap_or(0);
    assert!(slow_hits <= 8, "leasttime: the slow server got {slow_hits} of 40: {got:?}");
    assert!(got.get("fast").copied().unwrap_or(0) >= 32, "{got:?}");

    // The same servers under wrr: half each.
    let got = counts(&weir, "rr.test", 20);
    assert_eq!(got.get("slow"), Some(&10), "wrr: {got:?}");
}
