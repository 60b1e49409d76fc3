//! W10 (part): restarts. The data plane persists every applied snapshot, so a data plane that
//! restarts while `weir` is down serves the last configuration at once, and `weir` coming back
//! picks up from the generation it finds.

use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};

#[test]
fn a_restarted_dataplane_serves_the_persisted_snapshot_without_weir() {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("Host(`a.test`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let mut weir = Weir::start(&files, &[]);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    // The state file is written right after the workers switch, so allow it a moment.
    let state = weir.scratch.join("dataplane.state");
    let t = Instant::now();
    while !state.exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(state.exists(), "snapshot persisted next to the socket");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).expect("stat").permissions());
    assert_eq!(mode & 0o077, 0, "the state file holds private keys: owner only, got {mode:o}");

    // Both processes die; only the data plane comes back (a container restart).
    weir.kill_weir();
    let dp = weir.dataplane_pid().expect("dataplane running");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(dp as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill dataplane");
    let t = Instant::now();
    while weir.dataplane_pid().is_some() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut child = weir.start_dataplane();
    let t = Instant::now();
    weir.wait_for("a.test", "/", Duration::from_secs(10), |r| r.status == 200);
    eprintln!("restarted data plane served after {:?} without weir", t.elapsed());
    // The workers serve as soon as they have the table; the log line follows.
    let t = Instant::now();
    while !weir.log().contains("serving persisted generation") && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(weir.log().contains("serving persisted generation"), "{}", weir.log());

    // weir comes back, adopts the running data plane and changes apply again.
    weir.restart_weir(&[]);
    weir.write_manifest(
        "more.yaml",
        &ingressroute_yaml("default", "more", &[("Host(`b.test`)", None, &[("app", 80, 1)])]),
    );
    weir.wait_for("b.test", "/", Duration::from_secs(20), |r| r.status == 200);
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills the data plane (SIGKILL) while clients make a new connection per request, and counts
/// what the clients saw. weir keeps copies of the data plane's listening sockets (the data plane
/// reports them), so connections made while no data plane runs wait in the accept queue and are
/// served by the next data plane, which adopts those sockets. Only requests on connections the
/// dead process had accepted can fail: at most one per client.
#[test]
fn killing_the_dataplane_under_load_fails_only_its_open_connections() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("Host(`a.test`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    // weir holds the sockets once the data plane reported them (right after the first apply).
    std::thread::sleep(Duration::from_millis(300));

    const CLIENTS: u64 = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let port = weir.port;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, ok, failed, slowest) = (stop.clone(), ok.clone(), failed.clone(), slowest.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match weir_e2e::get(port, "a.test", "/") {
                        Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                    slowest.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let before_kill = ok.load(Ordering::Relaxed);
    let dp = weir.dataplane_pid().expect("dataplane running");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(dp as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill dataplane");
    let killed = Instant::now();
    // weir starts a new data plane; requests succeed again.
    let t = Instant::now();
    while ok.load(Ordering::Relaxed) < before_kill + 200 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let recovered = killed.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "data plane killed under load: {ok} requests served, {failed} failed, recovered in {recovered:?}, \
         slowest request {} ms",
        slowest.load(Ordering::Relaxed)
    );
    assert_ne!(weir.dataplane_pid(), Some(dp), "a new data plane runs");
    assert!(weir.log().contains("handing the previous dataplane's listening sockets over"), "{}", weir.log());
    assert!(
        failed <= CLIENTS,
        "{failed} requests failed; at most one per client ({CLIENTS}) may\n{}",
        weir.log()
    );
}
