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
