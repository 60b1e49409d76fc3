//! W1 boundaries: the data plane links no tokio runtime and no kube, and the control socket
//! refuses frames it cannot read with a clear answer instead of dying.

use std::time::Duration;

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};
use weir_proto::channel::Conn;
use weir_proto::Frame;

#[test]
fn dataplane_links_neither_a_tokio_runtime_nor_kube() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-p", "weir-dataplane", "-e", "normal,features", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    for line in tree.lines() {
        assert!(!line.starts_with("kube") && !line.starts_with("k8s-openapi"), "data plane links {line}");
        // hyper and monoio's poll-io bridge use tokio's sync primitives and io traits; the
        // runtime (executor, reactor, timers) must never come in.
        for forbidden in ["rt", "rt-multi-thread", "net", "time", "macros", "process", "signal", "fs", "full"]
        {
            assert!(!line.starts_with(&format!("tokio feature \"{forbidden}\"")), "data plane links {line}");
        }
    }
}

#[test]
fn control_socket_answers_bad_frames_and_keeps_serving() {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("Host(`a.test`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let mut weir = Weir::start(&files, &[]);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    // Take weir's seat on the socket.
    weir.kill_weir();
    let sock = weir.scratch.join("dataplane.sock");
    let conn = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            Conn::connect(&sock).ok()
        })
        .expect("connect to the data plane");
    let (hello, _) = conn.recv().expect("hello");
    assert!(matches!(hello, Frame::Hello { generation } if generation > 0), "{hello:?}");
    // Then the listening sockets it serves, one descriptor each (two workers on `web`).
    let (report, fds) = conn.recv_fds().expect("listeners");
    match report {
        Frame::Listeners { replace: true, entries } => {
            assert_eq!(entries.len(), 2, "{entries:?}");
            assert!(
                entries.iter().all(|e| e.entrypoint == "web" && e.address.port() == weir.port),
                "{entries:?}"
            );
            assert_eq!(fds.len(), 2);
        }
        other => panic!("expected the listeners report, got {other:?}"),
    }

    // A frame from a future version.
    let mut future = Frame::Applied { generation: 1 }.encode();
    future[4] = 9;
    rustix::net::send(&conn, &future, rustix::net::SendFlags::empty()).expect("send");
    let (reply, _) = conn.recv().expect("reply");
    match reply {
        Frame::Rejected { reason, .. } => assert!(reason.contains("version 9"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // A snapshot frame without its memfd, and one whose memfd is not sealed.
    conn.send(&Frame::Snapshot { generation: 99, size: 3 }, None).expect("send");
    assert!(matches!(conn.recv().expect("reply").0, Frame::Rejected { generation: 99, .. }));
    let unsealed = rustix::fs::memfd_create("x", rustix::fs::MemfdFlags::CLOEXEC).expect("memfd");
    rustix::io::write(&unsealed, b"abc").expect("write");
    conn.send(&Frame::Snapshot { generation: 100, size: 3 }, Some(std::os::fd::AsFd::as_fd(&unsealed)))
        .expect("send");
    match conn.recv().expect("reply").0 {
        Frame::Rejected { generation: 100, reason } => assert!(reason.contains("seal"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Garbage in a sealed memfd.
    let junk = weir_proto::channel::sealed_memfd(b"\xff\xff\xff\xff not a snapshot").expect("memfd");
    conn.send(&Frame::Snapshot { generation: 101, size: 19 }, Some(std::os::fd::AsFd::as_fd(&junk)))
        .expect("send");
    assert!(matches!(conn.recv().expect("reply").0, Frame::Rejected { generation: 101, .. }));

    // The previous snapshot still serves.
    assert_eq!(weir.get("a.test", "/").expect("request").status, 200);
}
