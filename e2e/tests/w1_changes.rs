//! W1 end to end: configuration changes and process failures drop nothing — manifest files
//! added/changed/deleted are served within 1 s, in-flight requests and idle keep-alive
//! connections survive changes, killing `weir` leaves traffic served, a killed data plane is
//! brought back, and invalid input disables only itself.

use std::time::{Duration, Instant};

use weir_e2e::{ingressroute_yaml, service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);
const CHANGE: Duration = Duration::from_secs(1);

fn base(be: &Whoami) -> Vec<(String, String)> {
    vec![
        ("svc.yaml".into(), service_yaml("default", "app", 80, "http", &[be.addr])),
        (
            "base.yaml".into(),
            ingressroute_yaml("default", "base", &[("Host(`base.test`)", None, &[("app", 80, 1)])]),
        ),
    ]
}

fn start(files: &[(String, String)], extra: &[&str]) -> Weir {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = Weir::start(&files, extra);
    weir.wait_for("base.test", "/", READY, |r| r.status == 200);
    weir
}

#[test]
fn manifest_added_changed_deleted_within_one_second() {
    let be = Whoami::start("app");
    let weir = start(&base(&be), &[]);
    assert_eq!(weir.get("new.test", "/").expect("request").status, 404);

    let t = Instant::now();
    weir.write_manifest(
        "new.yaml",
        &ingressroute_yaml("default", "new", &[("Host(`new.test`)", None, &[("app", 80, 1)])]),
    );
    weir.wait_for("new.test", "/", CHANGE, |r| r.status == 200);
    eprintln!("added file served after {:?}", t.elapsed());

    let t = Instant::now();
    weir.write_manifest(
        "new.yaml",
        &ingressroute_yaml("default", "new", &[("Host(`renamed.test`)", None, &[("app", 80, 1)])]),
    );
    weir.wait_for("renamed.test", "/", CHANGE, |r| r.status == 200);
    weir.wait_for("new.test", "/", CHANGE, |r| r.status == 404);
    eprintln!("changed file served after {:?}", t.elapsed());

    let t = Instant::now();
    std::fs::rename(weir.manifests.join("new.yaml"), weir.manifests.join("moved.yaml")).expect("rename");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        weir.get("renamed.test", "/").expect("request").status,
        200,
        "a renamed file keeps its objects"
    );

    weir.remove_manifest("moved.yaml");
    weir.wait_for("renamed.test", "/", CHANGE, |r| r.status == 404);
    eprintln!("deleted file unserved after {:?}", t.elapsed());
    assert_eq!(weir.get("base.test", "/").expect("request").status, 200);
}

#[test]
fn in_flight_request_and_idle_keepalive_survive_changes() {
    let be = Whoami::start("app");
    let weir = start(&base(&be), &[]);

    let mut idle = Conn::open(weir.port).expect("connect");
    assert_eq!(idle.get("base.test", "/", &[]).expect("first request").status, 200);
    let idle_addr = idle.local_addr();

    let port = weir.port;
    let slow = std::thread::spawn(move || {
        let mut c = Conn::open(port).expect("connect");
        c.get("base.test", "/slow?wait=2s", &[])
    });
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..5 {
        let host = format!("Host(`extra{i}.test`)");
        weir.write_manifest(
            &format!("extra{i}.yaml"),
            &ingressroute_yaml("default", &format!("extra{i}"), &[(&host, None, &[("app", 80, 1)])]),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    weir.wait_for("extra4.test", "/", CHANGE, |r| r.status == 200);

    let r = slow.join().expect("slow thread").expect("slow request answered");
    assert_eq!(r.status, 200, "the 2 s request in flight across changes completes");
    let r = idle.get("extra4.test", "/", &[]).expect("idle keep-alive connection still works");
    assert_eq!(r.status, 200, "and it routes with the new table");
    assert_eq!(idle.local_addr(), idle_addr, "same client connection");
}

#[test]
fn killing_weir_leaves_traffic_served_and_a_killed_dataplane_comes_back() {
    let be = Whoami::start("app");
    let mut weir = start(&base(&be), &[]);
    let first_dp = weir.dataplane_pid().expect("dataplane running");

    weir.kill_weir();
    let mut keep = Conn::open(weir.port).expect("connect");
    for _ in 0..20 {
        assert_eq!(weir.get("base.test", "/").expect("served without weir").status, 200);
        assert_eq!(keep.get("base.test", "/", &[]).expect("keep-alive without weir").status, 200);
    }

    // weir comes back and finds the running data plane instead of starting another.
    weir.restart_weir(&[]);
    weir.write_manifest(
        "late.yaml",
        &ingressroute_yaml("default", "late", &[("Host(`late.test`)", None, &[("app", 80, 1)])]),
    );
    weir.wait_for("late.test", "/", READY, |r| r.status == 200);
    assert_eq!(weir.dataplane_pid(), Some(first_dp), "the restarted weir reused the data plane");

    // Kill the data plane: weir starts a new one and it serves the configuration again.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first_dp as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill dataplane");
    let t = Instant::now();
    weir.wait_for("late.test", "/", READY, |r| r.status == 200);
    eprintln!("data plane recovered after {:?}", t.elapsed());
    let second = weir.dataplane_pid().expect("new dataplane");
    assert_ne!(second, first_dp);
}

#[test]
fn invalid_input_disables_only_itself() {
    let be = Whoami::start("app");
    let mut files = base(&be);
    files.push((
        "bad-rule.yaml".into(),
        ingressroute_yaml(
            "default",
            "bad-rule",
            &[
                ("Host(`bad.test`) &&", None, &[("app", 80, 1)]),
                ("Host(`sibling.test`)", None, &[("app", 80, 1)]),
            ],
        ),
    ));
    files.push((
        "missing-svc.yaml".into(),
        ingressroute_yaml("default", "missing-svc", &[("Host(`missing.test`)", None, &[("nope", 80, 1)])]),
    ));
    files.push((
        "broken.yaml".into(),
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: broken\n  spec: [\n".into(),
    ));
    let weir = start(&files, &[]);

    assert_eq!(weir.get("base.test", "/").expect("request").status, 200);
    weir.wait_for("sibling.test", "/", READY, |r| r.status == 200);
    assert_eq!(weir.get("bad.test", "/").expect("request").status, 404);
    assert_eq!(weir.get("missing.test", "/").expect("request").status, 404);

    let log = weir.log();
    let line_with = |needles: &[&str]| log.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        line_with(&["IngressRoute", "default", "bad-rule"]),
        "bad rule reported with kind/namespace/name:\n{log}"
    );
    assert!(
        line_with(&["IngressRoute", "default", "missing-svc", "nope"]),
        "missing service reported:\n{log}"
    );
    assert!(line_with(&["broken.yaml", "line"]), "unparseable file reported with file and line:\n{log}");

    // Fixing the rule brings the router back; the others never stopped.
    weir.write_manifest(
        "bad-rule.yaml",
        &ingressroute_yaml("default", "bad-rule", &[("Host(`bad.test`)", None, &[("app", 80, 1)])]),
    );
    weir.wait_for("bad.test", "/", CHANGE, |r| r.status == 200);
}
