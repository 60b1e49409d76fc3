//! The publisher against a fake data plane built on `weir_proto::channel::Listener`: snapshots
//! arrive numbered past the data plane's Hello, in sealed memfds, decodable, and a data plane
//! that dies is replaced (through the supervisor's launcher) and sent the current snapshot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use weir_control::publish::Publisher;
use weir_control::supervise::{Launcher, SuperviseError, Supervisor};
use weir_proto::channel::{read_sealed, Conn, Listener};
use weir_proto::snapshot::{EntryPoint, ForwardedHeaders};
use weir_proto::{ConfigDelta, DeltaBody, Frame, Snapshot};

const WAIT: Duration = Duration::from_secs(5);

fn snapshot(port: u16) -> Snapshot {
    Snapshot {
        generation: 0,
        entrypoints: vec![EntryPoint {
            name: "web".into(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            forwarded_headers: ForwardedHeaders::default(),
            http2_max_concurrent_streams: 250,
            options: Default::default(),
        }],
        routers: vec![],
        services: vec![],
        ..Snapshot::default()
    }
}

/// Greets with `hello`, then receives one snapshot and acks it.
fn serve_one(conn: &Conn, hello: u64) -> Snapshot {
    conn.send(&Frame::Hello { generation: hello }, None).expect("send hello");
    // A data plane reports its listening sockets right after its Hello (none here).
    conn.send(&Frame::Listeners { replace: true, entries: Vec::new() }, None).expect("send listeners");
    receive_and_ack(conn, None)
}

/// Receives the next generation and acks it: a full snapshot, or (when `served` is given) a
/// configuration delta on top of it, applied as the data plane does.
fn receive_and_ack(conn: &Conn, served: Option<&Snapshot>) -> Snapshot {
    let (frame, fd) = conn.recv().expect("recv snapshot frame");
    let snapshot = match (frame, served) {
        (Frame::Snapshot { generation, size }, _) => {
            let bytes = read_sealed(&fd.expect("memfd attached"), size).expect("sealed memfd");
            let snapshot = Snapshot::decode(&bytes).expect("decodes");
            assert_eq!(snapshot.generation, generation, "frame and snapshot agree");
            snapshot
        }
        (Frame::Delta { generation, body: DeltaBody::Inline(bytes) }, Some(served)) => {
            let delta = ConfigDelta::decode(&bytes).expect("decodes");
            assert_eq!(delta.generation, generation, "frame and delta agree");
            let mut next = served.clone();
            delta.apply_to(&mut next).expect("the delta fits the snapshot served");
            next
        }
        (frame, _) => panic!("expected a snapshot, got {frame:?}"),
    };
    conn.send(&Frame::Applied { generation: snapshot.generation }, None).expect("send applied");
    snapshot
}

/// A launcher the test must not need: the fake data plane already listens.
struct NoLaunch;
impl Launcher for NoLaunch {
    fn launch(&mut self) -> Result<oneshot::Receiver<String>, SuperviseError> {
        panic!("nothing should be launched while a data plane listens")
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test]
async fn snapshots_follow_the_hello_generation_and_survive_reconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("dp.sock");
    let listener = Listener::bind(&socket).expect("bind");
    let (got_tx, got) = mpsc::channel::<Snapshot>();
    let (next_tx, next) = mpsc::channel::<()>();
    let fake = std::thread::spawn(move || {
        let conn = listener.accept().expect("accept");
        let first = serve_one(&conn, 5);
        got_tx.send(first.clone()).expect("report");
        // The second differs from the first in an entrypoint only: a delta with its sections.
        got_tx.send(receive_and_ack(&conn, Some(&first))).expect("report");
        next.recv().expect("go on");
        drop(conn); // The data plane drops the connection but keeps listening.
        let conn = listener.accept().expect("accept again");
        got_tx.send(serve_one(&conn, 7)).expect("report");
        next.recv().ok();
    });

    let (snapshots, receiver) = watch::channel(std::sync::Arc::new(snapshot(8000)));
    let publisher = tokio::spawn(async move {
        let mut supervisor = Supervisor::new(socket, NoLaunch);
        Publisher::new().run(&mut supervisor, receiver).await
    });
    let recv = |rx: mpsc::Receiver<Snapshot>| blocking(move || (rx.recv_timeout(WAIT), rx));

    let (first, got) = recv(got).await;
    let first = first.expect("first snapshot");
    assert_eq!(first.generation, 6, "numbered past the data plane's Hello");
    assert_eq!(first, Snapshot { generation: 6, ..snapshot(8000) });

    snapshots.send(std::sync::Arc::new(snapshot(8001))).expect("publisher alive");
    let (second, got) = recv(got).await;
    assert_eq!(second.expect("second snapshot"), Snapshot { generation: 7, ..snapshot(8001) });

    next_tx.send(()).expect("fake alive");
    let (third, _got) = recv(got).await;
    assert_eq!(third.expect("resent after reconnect"), Snapshot { generation: 8, ..snapshot(8001) });

    drop(snapshots);
    let ended = tokio::time::timeout(WAIT, publisher).await.expect("publisher ends").expect("task");
    assert!(ended.is_ok(), "{ended:?}");
    let _ = next_tx.send(());
    fake.join().expect("fake data plane");
}

/// Starts in-process fake data planes; the first one "crashes" after its first snapshot.
struct ThreadLauncher {
    socket: PathBuf,
    launches: usize,
    report: mpsc::Sender<(usize, Snapshot, Instant)>,
}

impl Launcher for ThreadLauncher {
    fn launch(&mut self) -> Result<oneshot::Receiver<String>, SuperviseError> {
        self.launches += 1;
        let (instance, socket, report) = (self.launches, self.socket.clone(), self.report.clone());
        let (exit_tx, exit) = oneshot::channel();
        std::thread::spawn(move || {
            run_fake(instance, &socket, &report);
            let _ = exit_tx.send(format!("instance {instance} exited"));
        });
        Ok(exit)
    }
}

fn run_fake(instance: usize, socket: &Path, report: &mpsc::Sender<(usize, Snapshot, Instant)>) {
    // Start up slowly, as a real process would.
    std::thread::sleep(Duration::from_millis(30));
    let listener = Listener::bind(socket).expect("bind");
    let conn = listener.accept().expect("accept");
    let snapshot = serve_one(&conn, 0);
    let _ = report.send((instance, snapshot, Instant::now()));
    if instance == 1 {
        return; // Crash: connection and listener close, the socket file stays behind.
    }
    // Serve on until weir goes away.
    while conn.recv().is_ok() {}
}

#[tokio::test]
async fn a_data_plane_that_dies_is_restarted_and_resent_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("dp.sock");
    let (report, reports) = mpsc::channel();
    let launcher = ThreadLauncher { socket: socket.clone(), launches: 0, report };
    let (snapshots, receiver) = watch::channel(std::sync::Arc::new(snapshot(9000)));
    let publisher = tokio::spawn(async move {
        let mut supervisor = Supervisor::new(socket, launcher);
        Publisher::new().run(&mut supervisor, receiver).await
    });

    let (first, reports) = blocking(move || (reports.recv_timeout(WAIT), reports)).await;
    let (instance, snap, crashed_at) = first.expect("first data plane got a snapshot");
    assert_eq!((instance, snap.generation), (1, 1));

    let (second, _reports) = blocking(move || (reports.recv_timeout(WAIT), reports)).await;
    let (instance, snap, at) = second.expect("a second data plane got the snapshot");
    assert_eq!(instance, 2);
    assert_eq!(snap, Snapshot { generation: 2, ..snapshot(9000) });
    let recovery = at.duration_since(crashed_at);
    assert!(recovery < Duration::from_secs(1), "recovered in {recovery:?}");

    drop(snapshots);
    let ended = tokio::time::timeout(WAIT, publisher).await.expect("publisher ends").expect("task");
    assert!(ended.is_ok(), "{ended:?}");
}
