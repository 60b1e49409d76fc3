//! W9 end to end: graceful shutdown. SIGTERM to `weir` reaches the data plane it started:
//! ping turns 503, new connections are still accepted for `requestAcceptGraceTimeout`, then
//! refused; a slow request in flight (whoami `?wait=2s`) completes with 200 and
//! `Connection: close`; both processes exit 0.

use std::time::{Duration, Instant};

use weir_e2e::{free_port, get, ingressroute_yaml, service_yaml, Conn, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

fn signal(pid: u32, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).expect("pid"), sig)
        .expect("signal");
}

fn start(extra: &[&str]) -> (Weir, Whoami) {
    let be = Whoami::start("app");
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let route = ingressroute_yaml("default", "base", &[("Host(`base.test`)", None, &[("app", 80, 1)])]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("route.yaml", &route)], extra);
    weir.wait_for("base.test", "/", READY, |r| r.status == 200);
    (weir, be)
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let ping_port = free_port();
    let ping_ep = format!("--entryPoints.traefik.address=127.0.0.1:{ping_port}");
    let (mut weir, _be) = start(&[
        "--ping",
        ping_ep.as_str(),
        "--entryPoints.web.transport.lifeCycle.requestAcceptGraceTimeout=1s",
        "--entryPoints.web.transport.lifeCycle.graceTimeOut=5s",
    ]);
    assert_eq!(get(ping_port, "x", "/ping").expect("ping").status, 200);

    // A slow request on a keep-alive connection, in flight when the signal arrives.
    let port = weir.port;
    let slow = std::thread::spawn(move || {
        let mut conn = Conn::open(port).expect("connect");
        conn.get("base.test", "/?wait=2s", &[])
    });
    std::thread::sleep(Duration::from_millis(300));
    signal(weir.weir_pid(), rustix::process::Signal::TERM);
    let signalled = Instant::now();

    // During requestAcceptGraceTimeout: ping reports terminating, new connections are served.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(ping_port, "x", "/ping").expect("ping while terminating").status, 503);
    assert_eq!(get(weir.port, "base.test", "/").expect("accepted during the grace").status, 200);

    // After it: the listeners are closed, connections refused.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(signalled.elapsed()));
    match std::net::TcpStream::connect(("127.0.0.1", weir.port)) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a connection was accepted {:?} after SIGTERM", signalled.elapsed()),
    }

    let resp = slow.join().expect("slow request thread").expect("the in-flight request completes");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"), "drain responses close keep-alive connections");

    let status = weir.wait_weir_exit(Duration::from_secs(10)).expect("weir exits after the drain");
    assert!(status.success(), "weir exit status {status:?}\n{}", weir.log());
    assert!(signalled.elapsed() < Duration::from_secs(6), "drain took {:?}", signalled.elapsed());
    assert_eq!(weir.dataplane_pid(), None, "the dataplane exited too");
    assert!(weir.log().contains("dataplane exited: exit status: 0"), "{}", weir.log());
}

#[test]
fn idle_keep_alive_connections_do_not_hold_the_drain() {
    let (mut weir, _be) = start(&["--entryPoints.web.transport.lifeCycle.graceTimeOut=10s"]);
    // An idle keep-alive connection (one request answered, nothing in flight).
    let mut idle = Conn::open(weir.port).expect("connect");
    assert_eq!(idle.get("base.test", "/", &[]).expect("first request").status, 200);
    signal(weir.weir_pid(), rustix::process::Signal::TERM);
    let signalled = Instant::now();
    let status = weir.wait_weir_exit(Duration::from_secs(9)).expect("exits well before graceTimeOut");
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(3), "took {:?}", signalled.elapsed());
    // The idle connection was closed by the server.
    assert!(idle.get("base.test", "/", &[]).is_err(), "the idle connection was closed");
}

#[test]
fn graceful_timeout_bounds_the_drain() {
    let (mut weir, _be) = start(&["--entryPoints.web.transport.lifeCycle.graceTimeOut=1s"]);
    let port = weir.port;
    let slow =
        std::thread::spawn(move || Conn::open(port).expect("connect").get("base.test", "/?wait=5s", &[]));
    std::thread::sleep(Duration::from_millis(300));
    signal(weir.weir_pid(), rustix::process::Signal::INT);
    let signalled = Instant::now();
    let status = weir.wait_weir_exit(Duration::from_secs(8)).expect("exits at graceTimeOut");
    assert!(status.success(), "{status:?}");
    let took = signalled.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "took {took:?}");
    assert!(slow.join().expect("thread").is_err(), "the request still running at the deadline is cut");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_get_goaway_and_finish_their_streams() {
    let (mut weir, _be) = start(&["--entryPoints.web.transport.lifeCycle.graceTimeOut=5s"]);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", weir.port)).await.expect("connect");
    let (client, conn) = h2::client::handshake(tcp).await.expect("h2c handshake");
    let conn = tokio::spawn(conn);
    let req = http::Request::get("http://base.test/?wait=2s").body(()).expect("request");
    let (response, _) = client.clone().ready().await.expect("ready").send_request(req, true).expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(weir.weir_pid(), rustix::process::Signal::TERM);

    let response =
        tokio::time::timeout(Duration::from_secs(5), response).await.expect("in time").expect("answered");
    assert_eq!(response.status(), 200, "the stream in flight finishes");
    // After GOAWAY no new stream is served on the connection, and the server closes it.
    let again = async {
        let req = http::Request::get("http://base.test/").body(()).expect("request");
        let (r, _) = client.clone().ready().await.ok()?.send_request(req, true).ok()?;
        r.await.ok()
    };
    assert!(again.await.is_none(), "a new stream after GOAWAY is refused");
    let ended =
        tokio::time::timeout(Duration::from_secs(5), conn).await.expect("the server closes the connection");
    assert!(ended.expect("connection task").is_ok(), "a graceful close, not a protocol error");
    let status =
        tokio::task::block_in_place(|| weir.wait_weir_exit(Duration::from_secs(8))).expect("weir exits");
    assert!(status.success(), "{status:?}");
}
