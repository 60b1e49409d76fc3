//! Support for weir's end-to-end tests: builds the real binaries once, starts `weir` (which
//! starts `weir-dataplane`) on ephemeral loopback ports with a manifests directory, starts real
//! `weir-whoami` backends, and speaks HTTP/1.1 over real sockets. Every process is killed by
//! process group when its guard drops, so a failing test leaves nothing behind.

pub mod kube_api;
pub mod passthrough;
pub mod upgrade_echo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Directory holding the built binaries (same profile as the running test).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test binary lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir =
            exe.parent().and_then(Path::parent).expect("target/<profile>/deps layout").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "-p", "weir-control", "-p", "weir-dataplane", "-p", "weir-whoami"]);
        if release {
            cmd.arg("--release");
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        profile_dir
    })
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("ephemeral port").port()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/weir-e2e-<pid>-<n>`.
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("weir-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// Path of a file inside.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kill_group(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// A running `weir-whoami` backend.
pub struct Whoami {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its name (the `X-Whoami-Name` it answers with).
    pub name: String,
}

impl Whoami {
    /// Starts a backend named `name` on an ephemeral loopback port.
    pub fn start(name: &str) -> Whoami {
        Whoami::start_on(name, "127.0.0.1:0")
    }

    /// Starts a backend on a given address.
    pub fn start_on(name: &str, listen: &str) -> Whoami {
        let mut child = Command::new(bin_dir().join("weir-whoami"))
            .args(["--listen", listen, "--name", name])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("start weir-whoami");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout piped"))
            .read_line(&mut line)
            .expect("whoami output");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected whoami output {line:?}"));
        Whoami { child, addr, name: name.to_string() }
    }
}

impl Drop for Whoami {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;

/// A running `weir` (and the `weir-dataplane` it started) on one `web` entrypoint.
pub struct Weir {
    child: Option<Child>,
    /// The directory of manifests weir watches.
    pub manifests: TempDir,
    /// Scratch directory (socket, logs).
    pub scratch: TempDir,
    /// Port of the `web` entrypoint on 127.0.0.1.
    pub port: u16,
    group: u32,
    /// Started without `--manifests` (a Kubernetes provider is the source).
    no_manifests: bool,
}

impl Weir {
    /// Writes `files` into a new manifests directory and starts weir with `extra` flags.
    pub fn start(files: &[(&str, &str)], extra: &[&str]) -> Weir {
        let manifests = TempDir::new();
        for (name, body) in files {
            std::fs::write(manifests.join(name), body).expect("write manifest");
        }
        let scratch = TempDir::new();
        let port = free_port();
        let mut w = Weir { child: None, manifests, scratch, port, group: 0, no_manifests: false };
        w.spawn(extra);
        w
    }

    /// Starts weir without a manifests directory (`extra` names a Kubernetes provider and its
    /// endpoint), with no in-cluster or KUBECONFIG settings inherited.
    pub fn start_without_manifests(extra: &[&str]) -> Weir {
        let (manifests, scratch, port) = (TempDir::new(), TempDir::new(), free_port());
        let mut w = Weir { child: None, manifests, scratch, port, group: 0, no_manifests: true };
        w.spawn(extra);
        w
    }

    fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.join("weir.log"))
            .expect("log file");
        let mut cmd = Command::new(bin_dir().join("weir"));
        if self.no_manifests {
            cmd.env_remove("KUBECONFIG").env_remove("KUBERNETES_SERVICE_HOST");
        } else {
            cmd.arg("--manifests").arg(&self.manifests.0);
        }
        cmd.arg("--socket")
            .arg(self.scratch.join("dataplane.sock"))
            .arg(format!("--entryPoints.web.address=127.0.0.1:{}", self.port))
            .args(["--workers", "2"])
            .args(extra)
            .stdout(Stdio::from(log.try_clone().expect("log fd")))
            .stderr(Stdio::from(log));
        if self.group == 0 {
            cmd.process_group(0);
        } else {
            cmd.process_group(self.group as i32);
        }
        let child = cmd.spawn().expect("start weir");
        if self.group == 0 {
            self.group = child.id();
        }
        self.child = Some(child);
    }

    /// Restarts `weir` (after `kill_weir`), in the same process group.
    pub fn restart_weir(&mut self, extra: &[&str]) {
        self.spawn(extra);
    }

    /// pid of the `weir` process.
    pub fn weir_pid(&self) -> u32 {
        self.child.as_ref().expect("weir running").id()
    }

    /// Waits up to `limit` for `weir` to exit by itself; its exit status, `None` if it still runs.
    pub fn wait_weir_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs `weir` only; its data plane stays.
    pub fn kill_weir(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a `weir-dataplane` by hand on weir's socket (as a container restart would),
    /// in the same process group so it is cleaned up with the rest.
    pub fn start_dataplane(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.scratch.join("weir.log"))
            .expect("log file");
        Command::new(bin_dir().join("weir-dataplane"))
            .arg("--socket")
            .arg(self.scratch.join("dataplane.sock"))
            .args(["--workers", "2"])
            .stdout(Stdio::from(log.try_clone().expect("log fd")))
            .stderr(Stdio::from(log))
            .process_group(self.group as i32)
            .spawn()
            .expect("start weir-dataplane")
    }

    /// pid of the data plane: the `weir-dataplane` in our process group.
    pub fn dataplane_pid(&self) -> Option<u32> {
        let group = self.group as i32;
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the parenthesised command: state ppid pgrp ...
            let (comm, rest) = stat.split_once(") ")?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let pgrp: i32 = fields.get(2)?.parse().ok()?;
            let is_dataplane = comm.ends_with("(weir-dataplan") || comm.ends_with("(weir-dataplane");
            (is_dataplane && pgrp == group && fields[0] != "Z").then_some(pid)
        })
    }

    /// Everything weir and its data plane logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.join("weir.log")).unwrap_or_default()
    }

    /// Writes (or replaces) a manifest file atomically (write + rename, as editors do).
    pub fn write_manifest(&self, name: &str, body: &str) {
        let tmp = self.scratch.join(&format!(".{name}.tmp"));
        std::fs::write(&tmp, body).expect("write temp manifest");
        std::fs::rename(&tmp, self.manifests.join(name)).expect("rename manifest");
    }

    /// Removes a manifest file.
    pub fn remove_manifest(&self, name: &str) {
        std::fs::remove_file(self.manifests.join(name)).expect("remove manifest");
    }

    /// GET `path` with `Host: host` on a new connection.
    pub fn get(&self, host: &str, path: &str) -> std::io::Result<Response> {
        get(self.port, host, path)
    }

    /// Waits until `check` holds for a GET, or panics after `limit` with the last response and the log.
    pub fn wait_for(
        &self,
        host: &str,
        path: &str,
        limit: Duration,
        check: impl Fn(&Response) -> bool,
    ) -> Response {
        let start = Instant::now();
        loop {
            let last = match self.get(host, path) {
                Ok(r) if check(&r) => return r,
                other => other,
            };
            if start.elapsed() > limit {
                panic!(
                    "condition not met within {limit:?} for {host}{path}; last: {last:?}\n--- log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        kill_group(self.group);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Name of the whoami backend that answered.
    pub fn backend(&self) -> Option<&str> {
        self.header("x-whoami-name")
    }

    /// A request header as the whoami backend received it (from its echo body).
    pub fn echoed_header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.text()
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
}

/// A keep-alive HTTP/1.1 client connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_nodelay(true)?;
        Ok(Conn { reader: BufReader::new(s) })
    }

    /// Sends a raw request head (and body) and reads one response.
    pub fn raw(&mut self, request: &str) -> std::io::Result<Response> {
        self.reader.get_mut().write_all(request.as_bytes())?;
        read_response(&mut self.reader)
    }

    /// GET on this connection.
    pub fn get(
        &mut self,
        host: &str,
        path: &str,
        extra_headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: weir-e2e\r\n");
        for (k, v) in extra_headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.raw(&req)
    }

    /// The local address of the connection (to prove it was reused).
    pub fn local_addr(&self) -> SocketAddr {
        self.reader.get_ref().local_addr().expect("connected socket")
    }
}

/// GET on a new connection, closed afterwards.
pub fn get(port: u16, host: &str, path: &str) -> std::io::Result<Response> {
    Conn::open(port)?.get(host, path, &[("Connection", "close")])
}

fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status: u16 =
        line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad(&line))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad(l))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(&line))?;
            if size == 0 {
                line.clear();
                r.read_line(&mut line)?;
                break;
            }
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().map_err(|_| bad("content-length"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if status != 204 && status != 304 {
        r.read_to_end(&mut body)?;
    }
    Ok(Response { status, headers, body })
}

/// YAML for a `v1` Service with one named port and one EndpointSlice per backend address.
pub fn service_yaml(
    namespace: &str,
    name: &str,
    port: u16,
    port_name: &str,
    backends: &[SocketAddr],
) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  ports:\n    - name: {port_name}\n      port: {port}\n"
    );
    for (i, b) in backends.iter().enumerate() {
        y.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-{i}\n  namespace: {namespace}\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n  - name: {port_name}\n    port: {}\n    protocol: TCP\nendpoints:\n  - addresses: [\"{}\"]\n    conditions:\n      ready: true\n      serving: true\n",
            b.port(),
            b.ip()
        ));
    }
    y
}

/// A route for [`ingressroute_yaml`]: `(match, priority, [(service, port, weight)])`.
pub type RouteSpec<'a> = (&'a str, Option<i64>, &'a [(&'a str, u16, u32)]);

/// YAML for an IngressRoute on the `web` entrypoint.
pub fn ingressroute_yaml(namespace: &str, name: &str, routes: &[RouteSpec<'_>]) -> String {
    let mut y = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  entryPoints: [web]\n  routes:\n"
    );
    for (rule, priority, services) in routes {
        y.push_str(&format!("    - match: '{}'\n      kind: Rule\n", rule.replace('\'', "''")));
        if let Some(p) = priority {
            y.push_str(&format!("      priority: {p}\n"));
        }
        y.push_str("      services:\n");
        for (svc, port, weight) in services.iter() {
            y.push_str(&format!(
                "        - name: {svc}\n          port: {port}\n          weight: {weight}\n"
            ));
        }
    }
    y
}
