//! W3 end to end: endpoint churn travels as an endpoints delta. Under steady keep-alive
//! traffic, an endpoint removed from its EndpointSlice gets no request once the data plane
//! logged the delta applied, no request fails, and a request already in flight to it finishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// What one request saw: when it was sent, and status and backend of the answer.
struct Seen {
    sent: Instant,
    status: u16,
    backend: String,
}

fn route() -> String {
    ingressroute_yaml("default", "app", &[("Host(`churn.test`)", None, &[("app", 80, 1)])])
}

#[test]
fn removed_endpoint_gets_no_request_after_the_delta_and_none_fails() {
    let (a, b, c) = (Whoami::start("a"), Whoami::start("b"), Whoami::start("c"));
    let svc = |backends: &[&Whoami]| {
        let addrs: Vec<_> = backends.iter().map(|w| w.addr).collect();
        service_yaml("default", "app", 80, "http", &addrs)
    };
    let weir = Weir::start(&[("route.yaml", &route()), ("svc.yaml", &svc(&[&a, &b, &c]))], &[]);
    weir.wait_for("churn.test", "/", READY, |r| r.status == 200);

    // Steady keep-alive traffic from two clients.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, port) = (Arc::clone(&stop), weir.port);
            std::thread::spawn(move || {
                let mut conn = Conn::open(port).expect("connect");
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let r = conn.get("churn.test", "/", &[]).expect("keep-alive request");
                    seen.push(Seen { sent, status: r.status, backend: r.backend().unwrap_or("").into() });
                }
                seen
            })
        })
        .collect();
    // Slow requests in flight over every backend (round robin spreads them) while c goes.
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let port = weir.port;
            std::thread::spawn(move || {
                let mut conn = Conn::open(port).expect("connect");
                conn.get("churn.test", "/slow?wait=1500ms", &[]).expect("slow request")
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let applied_deltas = |log: &str| {
        log.lines().filter(|l| l.contains("applied generation") && l.contains("(endpoints delta)")).count()
    };
    let deltas_before = applied_deltas(&weir.log());
    weir.write_manifest("svc.yaml", &svc(&[&a, &b]));
    let limit = Instant::now() + Duration::from_secs(5);
    // The data plane's line is written after its workers serve the new table, so any request
    // sent after we see it must avoid c.
    while applied_deltas(&weir.log()) <= deltas_before {
        assert!(Instant::now() < limit, "no endpoints delta applied in 5 s; log:\n{}", weir.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, Ordering::SeqCst);

    let seen: Vec<Seen> = clients.into_iter().flat_map(|t| t.join().expect("client thread")).collect();
    let slow: Vec<_> = slow.into_iter().map(|t| t.join().expect("slow thread")).collect();
    let log = weir.log();
    assert!(
        log.lines().any(|l| l.contains("sent generation") && l.contains("endpoints delta")),
        "the change went out as a delta; log:\n{log}"
    );
    let failed = seen.iter().filter(|s| s.status != 200).count();
    assert_eq!(failed, 0, "no request fails during the change");
    let c_before = seen.iter().filter(|s| s.backend == "c" && s.sent < applied).count();
    let c_after = seen.iter().filter(|s| s.backend == "c" && s.sent > applied).count();
    let after = seen.iter().filter(|s| s.sent > applied).count();
    eprintln!("{} requests, {c_before} to c before the delta, {after} after it ({c_after} to c)", seen.len());
    assert!(c_before > 0, "c served before it was removed");
    assert!(after > 10, "traffic continued after the delta");
    assert_eq!(c_after, 0, "the removed endpoint gets no new request");
    let slow_backends: Vec<_> =
        slow.iter().map(|r| (r.status, r.backend().unwrap_or("").to_string())).collect();
    assert!(slow.iter().all(|r| r.status == 200), "in-flight requests finish: {slow_backends:?}");
}
