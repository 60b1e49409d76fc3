//! W9 end to end: the static configuration as Traefik reads it — a YAML file found in the search
//! path, a TOML file given with `--configFile`, `TRAEFIK_*` environment variables — driving a
//! real `weir`, and the observable effect of each entrypoint transport option: 431 over
//! `http.maxHeaderBytes`, `Connection: close` after `transport.keepAliveMaxRequests`, an idle
//! connection closed after `idleTimeout`, a slowloris head cut by `readTimeout`, underscore
//! headers rejected, encoded slashes refused, and entrypoint `http.middlewares`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_e2e::{bin_dir, free_port, get, ingressroute_yaml, service_yaml, Conn, TempDir, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// A `weir` started by hand (its own environment, working directory and arguments), killed with
/// its process group.
struct Proc {
    child: Child,
    log: std::path::PathBuf,
}

impl Proc {
    fn start(cwd: &Path, scratch: &TempDir, args: &[&str], env: &[(&str, String)]) -> Proc {
        let log = scratch.join("weir.log");
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin_dir().join("weir"));
        cmd.current_dir(cwd)
            .args(args)
            // The search path is the test's own: no /etc/traefik surprise from $HOME.
            .env("HOME", scratch.join("home"))
            .env("XDG_CONFIG_HOME", scratch.join("xdg"))
            .stdout(Stdio::from(file.try_clone().expect("log fd")))
            .stderr(Stdio::from(file))
            .process_group(0);
        for (k, _) in std::env::vars().filter(|(k, _)| k.to_ascii_uppercase().starts_with("TRAEFIK_")) {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc { child: cmd.spawn().expect("start weir"), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ok(&self, port: u16, host: &str) -> weir_e2e::Response {
        let start = Instant::now();
        loop {
            match get(port, host, "/") {
                Ok(r) if r.status == 200 => return r,
                other if start.elapsed() > READY => {
                    panic!("no 200 on :{port} for {host}: {other:?}\n--- log ---\n{}", self.log())
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

fn manifests(dir: &TempDir, backend: &Whoami) {
    let svc = service_yaml("default", "whoami", 80, "http", &[backend.addr]);
    let route = ingressroute_yaml("default", "r", &[("Host(`cfg.test`)", None, &[("whoami", 80, 1)])]);
    std::fs::write(dir.join("app.yaml"), format!("{svc}---\n{route}")).expect("write manifests");
}

#[test]
fn yaml_file_in_the_working_directory_is_the_only_source() {
    let backend = Whoami::start("yaml");
    let (m, scratch, cwd) = (TempDir::new(), TempDir::new(), TempDir::new());
    manifests(&m, &backend);
    let port = free_port();
    let yaml = format!(
        "entryPoints:\n  web:\n    address: '127.0.0.1:{port}'\n    transport:\n      keepAliveMaxRequests: 1\nweir:\n  manifests: '{}'\n  socket: '{}'\n  workers: 1\n",
        m.0.display(),
        scratch.join("dp.sock").display()
    );
    std::fs::write(cwd.join("traefik.yml"), yaml).expect("write traefik.yml");
    let ignored = free_port();
    let flag = format!("--entryPoints.other.address=127.0.0.1:{ignored}");
    let weir = Proc::start(&cwd.0, &scratch, &[&flag], &[]);
    let r = weir.wait_ok(port, "cfg.test");
    assert_eq!(r.backend(), Some("yaml"));
    // keepAliveMaxRequests from the file applies: the first response closes the connection.
    let mut c = Conn::open(port).expect("connect");
    let r = c.get("cfg.test", "/", &[]).expect("answer");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    // The flag was not merged: nothing listens on its port, and the log says so.
    assert!(TcpStream::connect(("127.0.0.1", ignored)).is_err(), "flag entrypoint must not exist");
    let log = weir.log();
    assert!(log.contains("configuration loaded from file"), "{log}");
    assert!(log.contains("--entryPoints.other.address") && log.contains("ignored"), "{log}");
}

#[test]
fn toml_file_given_with_config_file() {
    let backend = Whoami::start("toml");
    let (m, scratch, cwd) = (TempDir::new(), TempDir::new(), TempDir::new());
    manifests(&m, &backend);
    let port = free_port();
    let toml = format!(
        "[entryPoints.web]\naddress = \"127.0.0.1:{port}\"\n[entryPoints.web.http]\nmaxHeaderBytes = 1024\n\n[experimental.plugins.demo]\nmoduleName = \"github.com/x/y\"\n"
    );
    let file = scratch.join("static.toml");
    std::fs::write(&file, toml).expect("write toml");
    let sock = scratch.join("dp.sock");
    let args = ["--configFile", file.to_str().expect("utf-8"), "--manifests", m.0.to_str().expect("utf-8")];
    let sock_flag = format!("--weir.socket={}", sock.display());
    let mut all: Vec<&str> = args.to_vec();
    all.push(&sock_flag);
    let weir = Proc::start(&cwd.0, &scratch, &all, &[]);
    assert_eq!(weir.wait_ok(port, "cfg.test").backend(), Some("toml"));
    // maxHeaderBytes from the file: 1024 (+ Go's 4096 slack) refuses an 8 KiB header.
    let big = "a".repeat(8 * 1024);
    let r = Conn::open(port).expect("connect").get("cfg.test", "/", &[("X-Big", &big)]).expect("answer");
    assert_eq!(r.status, 431, "{r:?}");
    let log = weir.log();
    assert!(log.contains("experimental.plugins.demo.moduleName is ignored: plugins"), "{log}");
}

#[test]
fn environment_variables_when_no_file_and_no_traefik_flag() {
    let backend = Whoami::start("env");
    let (m, scratch, cwd) = (TempDir::new(), TempDir::new(), TempDir::new());
    manifests(&m, &backend);
    let port = free_port();
    let sock = scratch.join("dp.sock");
    let args = ["--manifests", m.0.to_str().expect("utf-8"), "--socket", sock.to_str().expect("utf-8")];
    let env = [
        ("TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", format!("127.0.0.1:{port}")),
        ("TRAEFIK_ENTRYPOINTS_WEB_TRANSPORT_KEEPALIVEMAXREQUESTS", "2".to_string()),
        ("TRAEFIK_WEIR_WORKERS", "1".to_string()),
    ];
    let weir = Proc::start(&cwd.0, &scratch, &args, &env);
    assert_eq!(weir.wait_ok(port, "cfg.test").backend(), Some("env"));
    let mut c = Conn::open(port).expect("connect");
    let first = c.get("cfg.test", "/", &[]).expect("first");
    assert_eq!(first.header("connection"), None, "{first:?}");
    let second = c.get("cfg.test", "/", &[]).expect("second");
    assert_eq!(second.header("connection"), Some("close"), "{second:?}");
    assert!(weir.log().contains("configuration loaded from environment variables"), "{}", weir.log());
}

/// Reads until EOF or error; how long it took.
fn wait_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => return None,
            Err(_) => return Some(start.elapsed()),
        }
    }
}

#[test]
fn entrypoint_transport_options_change_behaviour() {
    let backend = Whoami::start("opts");
    let svc = service_yaml("default", "whoami", 80, "http", &[backend.addr]);
    let route = ingressroute_yaml("default", "r", &[("Host(`opts.test`)", None, &[("whoami", 80, 1)])]);
    let mw = "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: stamp\n  namespace: default\nspec:\n  headers:\n    customResponseHeaders:\n      X-Entrypoint-Stamp: yes\n";
    let weir = Weir::start(
        &[("app.yaml", &format!("{svc}---\n{route}---\n{mw}"))],
        &[
            "--entryPoints.web.http.maxHeaderBytes=2048",
            "--entryPoints.web.transport.keepAliveMaxRequests=3",
            "--entryPoints.web.transport.respondingTimeouts.idleTimeout=1s",
            "--entryPoints.web.transport.respondingTimeouts.readTimeout=1s",
            "--entryPoints.web.http.underscoreHeadersStrategy=reject",
            "--entryPoints.web.http.encodedCharacters.allowEncodedSlash=false",
            "--entryPoints.web.http.middlewares=default-stamp@kubernetescrd",
        ],
    );
    let ok = weir.wait_for("opts.test", "/", READY, |r| r.status == 200);
    // Entrypoint middlewares run for every router of the entrypoint.
    assert_eq!(ok.header("x-entrypoint-stamp"), Some("yes"), "{ok:?}");

    // maxHeaderBytes: within 2048+4096 passes, beyond gets 431.
    let fits = "a".repeat(3000);
    let r =
        Conn::open(weir.port).expect("connect").get("opts.test", "/", &[("X-Fits", &fits)]).expect("fits");
    assert_eq!(r.status, 200);
    let big = "a".repeat(10_000);
    let r = Conn::open(weir.port).expect("connect").get("opts.test", "/", &[("X-Big", &big)]).expect("431");
    assert_eq!(r.status, 431, "{r:?}");

    // keepAliveMaxRequests=3: the third response says close, then the connection ends.
    let mut c = Conn::open(weir.port).expect("connect");
    for i in 1..=3 {
        let r = c.get("opts.test", "/", &[]).expect("answer");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection") == Some("close"), i == 3, "request {i}: {r:?}");
    }
    assert!(c.get("opts.test", "/", &[]).is_err(), "connection must be closed after the third");

    // idleTimeout=1s: a connection used within it stays, an idle one is closed.
    let mut c = Conn::open(weir.port).expect("connect");
    assert_eq!(c.get("opts.test", "/", &[]).expect("first").status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.get("opts.test", "/", &[]).expect("within idle").status, 200);
    let mut idle = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: opts.test\r\n\r\n").expect("send");
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).expect("response");
    let closed = wait_closed(&mut idle, Duration::from_secs(5)).expect("idle connection closed");
    assert!(closed >= Duration::from_millis(700) && closed < Duration::from_millis(3000), "{closed:?}");

    // readTimeout=1s bounds a slowloris head.
    let mut slow = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    let start = Instant::now();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: opts.test\r\n").expect("send");
    let mut cut = false;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(150));
        if slow.write_all(b"X-Slow: 1\r\n").is_err() {
            cut = true;
            break;
        }
    }
    let closed = if cut { Some(start.elapsed()) } else { wait_closed(&mut slow, Duration::from_secs(3)) };
    let closed = closed.expect("slowloris connection closed");
    assert!(closed < Duration::from_millis(3500), "{closed:?}");

    // underscoreHeadersStrategy=reject and a refused encoded slash.
    let r =
        Conn::open(weir.port).expect("connect").get("opts.test", "/", &[("X_Under", "1")]).expect("answer");
    assert_eq!(r.status, 400, "{r:?}");
    let r = Conn::open(weir.port).expect("connect").get("opts.test", "/a%2Fb", &[]).expect("answer");
    assert_eq!(r.status, 400, "{r:?}");
    let r = Conn::open(weir.port).expect("connect").get("opts.test", "/a%20b", &[]).expect("answer");
    assert_eq!(r.status, 200, "{r:?}");
}
