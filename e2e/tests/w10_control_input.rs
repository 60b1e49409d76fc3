//! W10 (part): hostile input on the control socket, completing `w1_boundaries` (wrong version,
//! snapshot without memfd, unsealed memfd, garbage in a sealed memfd): a truncated frame and a
//! snapshot memfd shorter than its frame says are rejected with a reason naming what was wrong
//! while the previous snapshot keeps serving, and a peer running as another uid is refused on
//! the socket — by the socket's mode, and by the peer-credential check when the mode is opened.

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weir_e2e::{ingressroute_yaml, service_yaml, Weir, Whoami};
use weir_proto::channel::Conn;
use weir_proto::frame::Frame;

/// The uid and gid the probe runs as (Debian's `nobody`/`nogroup`).
const NOBODY: u32 = 65534;
/// The probe child reads the socket path from this variable.
const PROBE_ENV: &str = "WEIR_CONTROL_PROBE_SOCKET";

fn start() -> (Whoami, Weir) {
    let be = Whoami::start("app");
    let files = [
        ("svc.yaml", service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml", ingressroute_yaml("default", "r", &[("Host(`a.test`)", None, &[("app", 80, 1)])])),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("a.test", "/", Duration::from_secs(20), |r| r.status == 200);
    (be, weir)
}

/// Kills `weir` and takes its seat on the data plane's socket: returns the connection after
/// the data plane's `Hello` and listeners report.
fn take_seat(weir: &mut Weir) -> Conn {
    weir.kill_weir();
    let conn = connect_when_listening(&weir.scratch.join("dataplane.sock"));
    let (hello, _) = conn.recv().expect("hello");
    assert!(matches!(hello, Frame::Hello { .. }), "{hello:?}");
    let (report, _) = conn.recv_fds().expect("listeners report");
    assert!(matches!(report, Frame::Listeners { .. }), "{report:?}");
    conn
}

fn connect_when_listening(sock: &Path) -> Conn {
    (0..200)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            Conn::connect(sock).ok()
        })
        .expect("connect to the data plane")
}

#[test]
fn truncated_frames_and_snapshots_are_rejected_and_the_previous_snapshot_serves() {
    let (_be, mut weir) = start();
    let conn = take_seat(&mut weir);

    // A snapshot frame cut in the middle of its header.
    let whole = Frame::Snapshot { generation: 50, size: 10 }.encode();
    for cut in [3, whole.len() - 1] {
        rustix::net::send(&conn, &whole[..cut], rustix::net::SendFlags::empty()).expect("send");
        match conn.recv().expect("reply").0 {
            Frame::Rejected { reason, .. } => assert!(reason.contains("truncated"), "cut at {cut}: {reason}"),
            other => panic!("cut at {cut}: expected a rejection, got {other:?}"),
        }
    }
    // A sealed memfd holding less than the frame announces.
    let short = weir_proto::channel::sealed_memfd(b"0123456789").expect("memfd");
    conn.send(&Frame::Snapshot { generation: 51, size: 4096 }, Some(short.as_fd())).expect("send");
    match conn.recv().expect("reply").0 {
        Frame::Rejected { generation: 51, reason } => assert!(!reason.is_empty()),
        other => panic!("expected a rejection of generation 51, got {other:?}"),
    }
    // The first bytes of a real snapshot's encoding are not a snapshot either.
    let junk = weir_proto::channel::sealed_memfd(&[1, 2, 3]).expect("memfd");
    conn.send(&Frame::Snapshot { generation: 52, size: 3 }, Some(junk.as_fd())).expect("send");
    assert!(matches!(conn.recv().expect("reply").0, Frame::Rejected { generation: 52, .. }));

    assert_eq!(weir.get("a.test", "/").expect("request").status, 200, "previous snapshot serves");
    let log = weir.log();
    assert!(log.contains("undecodable frame from the control plane"), "rejections are logged:\n{log}");
}

/// Runs this test binary again as `nobody`, executing only [`control_socket_probe`] against
/// `sock`; returns what the probe printed.
fn probe_as_nobody(sock: &Path) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args(["--exact", "control_socket_probe", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, sock)
        .uid(NOBODY)
        // Supplementary groups stay root's: the socket's group bits are 0 all the same.
        .gid(NOBODY)
        .output()
        .expect("run the probe as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let probe: Vec<&str> = stdout.lines().filter_map(|l| Some(l.split_once("PROBE: ")?.1)).collect();
    assert!(!probe.is_empty(), "the probe did not run:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    probe.join("\n")
}

/// Not a test of its own: the client half of [`a_peer_of_another_uid_is_refused`], run in a
/// child process as another user. Without the variable it does nothing.
#[test]
fn control_socket_probe() {
    let Some(sock) = std::env::var_os(PROBE_ENV) else { return };
    let uid = rustix::process::getuid().as_raw();
    match Conn::connect(Path::new(&sock)) {
        Err(e) => println!("PROBE: uid {uid} connect failed: {e}"),
        Ok(conn) => match conn.recv() {
            Ok((frame, _)) => println!("PROBE: uid {uid} got {frame:?}"),
            Err(e) => println!("PROBE: uid {uid} closed: {e}"),
        },
    }
}

#[test]
fn a_peer_of_another_uid_is_refused() {
    if rustix::process::geteuid().as_raw() != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root: this test cannot be skipped there");
        eprintln!("SKIPPED: switching to another uid needs root");
        return;
    }
    let (_be, mut weir) = start();
    weir.kill_weir();
    let sock = weir.scratch.join("dataplane.sock");
    // Wait until the data plane is back at accept() (our own connection gets its Hello).
    drop(connect_when_listening(&sock));

    // First line of defence: the socket is 0600, another user cannot even connect.
    let mode = std::fs::metadata(&sock).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let probe = probe_as_nobody(&sock);
    assert!(probe.contains(&format!("uid {NOBODY} connect failed")), "probe: {probe:?}");

    // Second: with the mode opened (a mistaken deployment), the peer-credential check refuses
    // the connection before anything is sent to it.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    std::fs::set_permissions(&weir.scratch.0, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let probe = probe_as_nobody(&sock);
    assert!(probe.contains(&format!("uid {NOBODY} closed")), "probe: {probe:?}");
    let log = weir.log();
    assert!(log.contains(&format!("peer uid {NOBODY} is not allowed")), "refusal logged:\n{log}");

    // The data plane still takes its control plane, and still serves.
    let conn = connect_when_listening(&sock);
    assert!(matches!(conn.recv().expect("hello").0, Frame::Hello { .. }));
    assert_eq!(weir.get("a.test", "/").expect("request").status, 200);
}
