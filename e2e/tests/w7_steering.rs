//! W7 end to end: SK_REUSEPORT per-core steering in the real data plane. weir runs two workers
//! pinned to CPUs 0 and 1; clients pinned to one CPU open a new connection per request, and the
//! per-worker request counters (`weir_worker_requests_total` on /metrics) must show every one of
//! them on that CPU's worker. Needs root (the data plane loads the BPF program) and two CPUs;
//! without them it skips loudly, except under CI where it must run.

use std::process::Command;
use std::time::Duration;

use weir_e2e::{free_port, ingressroute_yaml, service_yaml, Weir, Whoami};

fn can_run() -> bool {
    let root = rustix::process::geteuid().is_root();
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    if root && cpus >= 2 {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "steering test cannot run under CI: root={root}, cpus={cpus}");
    eprintln!("\n!!! SKIPPED w7 steering test (root={root}, cpus={cpus}) !!!\n");
    false
}

/// Requests counted per worker: `[worker 0, worker 1]`.
fn per_worker(metrics_port: u16) -> [f64; 2] {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://127.0.0.1:{metrics_port}/metrics")])
        .output()
        .expect("run curl");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    let mut counts = [0.0; 2];
    for line in body.lines().filter(|l| l.starts_with("weir_worker_requests_total{")) {
        let Some((series, v)) = line.rsplit_once(' ') else { continue };
        let v: f64 = v.parse().unwrap_or(0.0);
        if series.contains("worker=\"0\"") {
            counts[0] += v;
        } else if series.contains("worker=\"1\"") {
            counts[1] += v;
        }
    }
    counts
}

#[test]
fn connections_are_served_by_the_worker_of_their_cpu() {
    if !can_run() {
        return;
    }
    let be = Whoami::start("app");
    let mport = free_port();
    let metrics_ep = format!("--entryPoints.metrics.address=127.0.0.1:{mport}");
    let flags = [
        "--metrics.prometheus",
        "--metrics.prometheus.entryPoint=metrics",
        metrics_ep.as_str(),
        "--cpus",
        "0,1",
    ];
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let route = ingressroute_yaml("default", "r", &[("Host(`a.test`)", None, &[("app", 80, 1)])]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("route.yaml", &route)], &flags);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    assert!(weir.log().contains("eBPF per-core steering attached"), "steering not attached:\n{}", weir.log());

    for cpu in [0usize, 1] {
        let before = per_worker(mport);
        let port = weir.port;
        std::thread::spawn(move || {
            let mut set = rustix::thread::CpuSet::new();
            set.set(cpu);
            rustix::thread::sched_setaffinity(None, &set).expect("pin client thread");
            for _ in 0..100 {
                let r = weir_e2e::get(port, "a.test", "/").expect("request");
                assert_eq!(r.status, 200);
            }
        })
        .join()
        .expect("client thread");
        let after = per_worker(mport);
        let (mine, other) = (after[cpu] - before[cpu], after[1 - cpu] - before[1 - cpu]);
        assert_eq!(
            (mine, other),
            (100.0, 0.0),
            "clients on CPU {cpu}: {mine} requests on worker {cpu}, {other} on the other\n{}",
            weir.log()
        );
    }
}
