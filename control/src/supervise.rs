//! Local-mode supervision of the data plane: connect to its control socket, and when nobody
//! listens there, start `weir-dataplane` and retry every 50 ms for up to 10 s. Children are
//! reaped (their exit logged) but never killed: no kill-on-drop, no parent-death signal, so a
//! data plane outlives `weir` and keeps serving its last snapshot.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use weir_proto::channel::{ChannelError, Conn};

use crate::config::LogLevel;

/// Pause between connection attempts.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// How long a started data plane gets to open its socket.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no connection to a data plane could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuperviseError {
    /// The data plane binary could not be started.
    #[error("cannot start data plane {}: {source}", .program.display())]
    Spawn {
        /// The binary.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The data plane exited before it listened.
    #[error("data plane exited before opening {}: {status}", .socket.display())]
    ExitedEarly {
        /// The socket it should have opened.
        socket: PathBuf,
        /// How it ended.
        status: String,
    },
    /// Nothing listened in time.
    #[error("no data plane listens on {} after {:?}", .socket.display(), CONNECT_TIMEOUT)]
    Timeout {
        /// The socket.
        socket: PathBuf,
    },
    /// Connecting failed for another reason than "nobody listens".
    #[error("connecting to {}: {source}", .socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// Why.
        source: ChannelError,
    },
    /// The socket's directory is unusable.
    #[error("control socket directory {}: {reason}", .dir.display())]
    SocketDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Starts data planes. The seam exists so tests can stand a fake data plane up in-process.
pub trait Launcher: Send {
    /// Starts one; the receiver yields how it ended once it exits.
    fn launch(&mut self) -> Result<oneshot::Receiver<String>, SuperviseError>;
}

/// How to run `weir-dataplane`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneCommand {
    /// The binary.
    pub program: PathBuf,
    /// `--socket`.
    pub socket: PathBuf,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--cpus`.
    pub cpus: Option<String>,
    /// `--max-connections-per-worker`.
    pub max_connections_per_worker: Option<usize>,
    /// `--experimental.sockmap`.
    pub experimental_sockmap: bool,
    /// `--experimental.udpFastPath`.
    pub experimental_udp_fast_path: bool,
    /// `--experimental.udpFastPath.interfaces`.
    pub experimental_udp_fast_path_interfaces: Option<String>,
    /// `--log.level`, passed on when weir's own was given.
    pub log_level: Option<LogLevel>,
    /// `--log.format`, `--log.filePath`, `--log.noColor`, passed on.
    pub log: crate::config::LogOptions,
}

impl DataplaneCommand {
    /// The arguments passed to the binary.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--socket".to_string(), self.socket.display().to_string()];
        if let Some(w) = self.workers {
            args.extend(["--workers".to_string(), w.to_string()]);
        }
        if let Some(c) = &self.cpus {
            args.extend(["--cpus".to_string(), c.clone()]);
        }
        if let Some(n) = self.max_connections_per_worker {
            args.extend(["--max-connections-per-worker".to_string(), n.to_string()]);
        }
        if self.experimental_sockmap {
            args.push("--experimental.sockmap".to_string());
        }
        if self.experimental_udp_fast_path {
            args.push("--experimental.udpFastPath".to_string());
            if let Some(list) = &self.experimental_udp_fast_path_interfaces {
                args.push(format!("--experimental.udpFastPath.interfaces={list}"));
            }
        }
        if let Some(level) = self.log_level {
            args.extend(["--log.level".to_string(), level.directive().to_string()]);
        }
        if self.log.format == crate::config::LogFormat::Json {
            args.push("--log.format=json".to_string());
        }
        if let Some(path) = &self.log.file_path {
            args.push(format!("--log.filePath={path}"));
        }
        if self.log.no_color {
            args.push("--log.noColor=true".to_string());
        }
        args
    }
}

/// Starts `weir-dataplane` as a child process in weir's process group, with weir's stdout and
/// stderr, and reaps it from a task.
#[derive(Debug)]
pub struct ProcessLauncher {
    command: DataplaneCommand,
}

impl ProcessLauncher {
    /// A launcher for `command`.
    pub fn new(command: DataplaneCommand) -> ProcessLauncher {
        ProcessLauncher { command }
    }
}

impl Launcher for ProcessLauncher {
    fn launch(&mut self) -> Result<oneshot::Receiver<String>, SuperviseError> {
        let program = &self.command.program;
        // Neither kill_on_drop nor a parent-death signal: the data plane must survive weir.
        let mut child = tokio::process::Command::new(program)
            .args(self.command.args())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| SuperviseError::Spawn { program: program.clone(), source })?;
        let pid = child.id().unwrap_or(0);
        CHILD_PID.store(pid, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(pid, program = %program.display(), "started dataplane");
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => {
                    if status.success() {
                        tracing::info!(pid, "dataplane exited: {status}");
                    } else {
                        tracing::error!(pid, "dataplane exited: {status}");
                    }
                    status.to_string()
                }
                Err(e) => {
                    tracing::error!(pid, "waiting for dataplane: {e}");
                    e.to_string()
                }
            };
            let _ = CHILD_PID.compare_exchange(
                pid,
                0,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
            let _ = tx.send(status);
        });
        Ok(rx)
    }
}

/// The pid of the data plane this process started, while it runs (0 when none).
static CHILD_PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Graceful shutdown: sends SIGTERM to the data plane this `weir` started (a data plane
/// started by another `weir`, or by the DaemonSet, gets its own signal), then waits up to
/// `limit` for it to exit. `false` when it was still running at the limit.
pub async fn stop_child(limit: Duration) -> bool {
    let pid = CHILD_PID.load(std::sync::atomic::Ordering::Relaxed);
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else { return true };
    tracing::info!(
        pid = pid.as_raw_nonzero().get(),
        "forwarding SIGTERM to the dataplane; waiting for it to drain"
    );
    if let Err(e) = rustix::process::kill_process(pid, rustix::process::Signal::TERM) {
        tracing::warn!("cannot signal the dataplane: {e}");
        return true;
    }
    let deadline = Instant::now() + limit;
    while CHILD_PID.load(std::sync::atomic::Ordering::Relaxed) != 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(RETRY_INTERVAL).await;
    }
    true
}

/// Connects to the data plane, starting one when nobody listens.
pub struct Supervisor<L> {
    socket: PathBuf,
    launcher: L,
    /// The child started last, while it runs.
    child: Option<oneshot::Receiver<String>>,
}

impl<L: Launcher> Supervisor<L> {
    /// A supervisor for the socket at `socket`.
    pub fn new(socket: PathBuf, launcher: L) -> Supervisor<L> {
        Supervisor { socket, launcher, child: None }
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Connects, starting a data plane if nobody listens and none of ours is starting up.
    pub async fn connect(&mut self) -> Result<Conn, SuperviseError> {
        let mut deadline = Instant::now() + CONNECT_TIMEOUT;
        let mut launched = false;
        loop {
            match Conn::connect(&self.socket) {
                Ok(conn) => return Ok(conn),
                Err(e) if nobody_listens(&e) => {
                    if let Some(status) = self.child_exit() {
                        if launched {
                            return Err(SuperviseError::ExitedEarly { socket: self.socket.clone(), status });
                        }
                    }
                    if self.child.is_none() {
                        tracing::info!(socket = %self.socket.display(), "no dataplane listening; starting one");
                        self.child = Some(self.launcher.launch()?);
                        launched = true;
                        deadline = Instant::now() + CONNECT_TIMEOUT;
                    }
                }
                Err(source) => return Err(SuperviseError::Connect { socket: self.socket.clone(), source }),
            }
            if Instant::now() >= deadline {
                return Err(SuperviseError::Timeout { socket: self.socket.clone() });
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }

    /// How our last child ended, if it has (and forgets it).
    fn child_exit(&mut self) -> Option<String> {
        let rx = self.child.as_mut()?;
        let status = match rx.try_recv() {
            Ok(status) => status,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => "unknown status".into(),
        };
        self.child = None;
        Some(status)
    }
}

/// ENOENT (no socket file) or ECONNREFUSED (a stale one): nobody listens.
fn nobody_listens(e: &ChannelError) -> bool {
    matches!(e, ChannelError::Io { source, .. }
        if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused))
}

/// Creates the socket's directory (mode 0700) when missing, and refuses one that another user
/// owns or that others may write to: whoever can replace the socket can feed us a fake data
/// plane.
pub fn prepare_socket_dir(socket: &Path) -> Result<(), SuperviseError> {
    let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let fail = |reason: String| SuperviseError::SocketDir { dir: dir.to_path_buf(), reason };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(e.to_string()))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| fail(e.to_string()))?;
    if !meta.is_dir() {
        return Err(fail("not a directory".into()));
    }
    let euid = rustix::process::geteuid().as_raw();
    let mode = meta.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    if meta.uid() != euid && meta.uid() != 0 {
        return Err(fail(format!("owned by uid {}, not by us (uid {euid})", meta.uid())));
    }
    if mode & 0o022 != 0 && !sticky {
        return Err(fail(format!("writable by other users (mode {:o})", mode & 0o777)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataplane_arguments() {
        let mut cmd = DataplaneCommand {
            program: "/bin/weir-dataplane".into(),
            socket: "/run/w.sock".into(),
            workers: None,
            cpus: None,
            max_connections_per_worker: None,
            experimental_sockmap: false,
            experimental_udp_fast_path: false,
            experimental_udp_fast_path_interfaces: None,
            log_level: None,
            log: Default::default(),
        };
        assert_eq!(cmd.args(), ["--socket", "/run/w.sock"]);
        cmd.workers = Some(2);
        cmd.cpus = Some("0-1".into());
        cmd.log_level = Some(LogLevel::Debug);
        assert_eq!(
            cmd.args(),
            ["--socket", "/run/w.sock", "--workers", "2", "--cpus", "0-1", "--log.level", "debug"]
        );
        cmd.max_connections_per_worker = Some(100);
        assert!(
            cmd.args().windows(2).any(|w| w == ["--max-connections-per-worker", "100"]),
            "{:?}",
            cmd.args()
        );
        assert!(!cmd.args().contains(&"--experimental.sockmap".to_string()));
        cmd.experimental_sockmap = true;
        assert!(cmd.args().contains(&"--experimental.sockmap".to_string()), "{:?}", cmd.args());
        cmd.experimental_udp_fast_path = true;
        cmd.experimental_udp_fast_path_interfaces = Some("lo".into());
        assert!(
            cmd.args()
                .windows(2)
                .any(|w| w == ["--experimental.udpFastPath", "--experimental.udpFastPath.interfaces=lo"]),
            "{:?}",
            cmd.args()
        );
    }

    #[test]
    fn socket_directory_is_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let socket = tmp.path().join("a/b/dataplane.sock");
        prepare_socket_dir(&socket).expect("created");
        let mode = std::fs::metadata(tmp.path().join("a/b")).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(matches!(prepare_socket_dir(&open.join("s.sock")), Err(SuperviseError::SocketDir { .. })));
    }

    struct FailingLauncher;
    impl Launcher for FailingLauncher {
        fn launch(&mut self) -> Result<oneshot::Receiver<String>, SuperviseError> {
            let (tx, rx) = oneshot::channel();
            let _ = tx.send("exit status: 1".to_string());
            Ok(rx)
        }
    }

    #[tokio::test]
    async fn data_plane_that_dies_at_start_is_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut sup = Supervisor::new(tmp.path().join("none.sock"), FailingLauncher);
        match sup.connect().await {
            Err(SuperviseError::ExitedEarly { status, .. }) => assert_eq!(status, "exit status: 1"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[tokio::test]
    async fn missing_binary_is_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cmd = DataplaneCommand {
            program: tmp.path().join("no-such-dataplane"),
            socket: tmp.path().join("s.sock"),
            workers: None,
            cpus: None,
            max_connections_per_worker: None,
            experimental_sockmap: false,
            experimental_udp_fast_path: false,
            experimental_udp_fast_path_interfaces: None,
            log_level: None,
            log: Default::default(),
        };
        let mut sup = Supervisor::new(cmd.socket.clone(), ProcessLauncher::new(cmd));
        assert!(matches!(sup.connect().await, Err(SuperviseError::Spawn { .. })));
    }
}
