//! `weir`: the control plane binary. Parses the command line, sets up logging, then runs the
//! manifests source → compile → publish pipeline until SIGINT or SIGTERM. Errors become a
//! message and exit status 1 here, and only here.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use weir_control::compile::{CompileOptions, Compiler};
use weir_control::config::{self, Command, Environment, StaticConfig};
use weir_control::publish::Publisher;
use weir_control::source::{manifests, watch::DirWatcher};
use weir_control::status::ProblemLog;
use weir_control::supervise::{self, DataplaneCommand, ProcessLauncher, Supervisor};
use weir_proto::Snapshot;

fn main() -> ExitCode {
    let env = Environment::current();
    let (config, warnings) = match config::parse(std::env::args().skip(1), &env) {
        Ok(Command::Run { config, warnings }) => (config, warnings),
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("weir {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("weir: {e}\nRun `weir --help` for the options.");
            return ExitCode::from(2);
        }
    };
    weir_control::logging::init(config.log_level);
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(*config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The reload state, moved to a blocking thread for each reload.
struct Pipeline {
    source_problems: ProblemLog,
    compiler: Compiler,
    parsed: manifests::ParseCache,
}

impl Pipeline {
    /// Reads the manifests and compiles them; the snapshot when it changed.
    fn reload(&mut self, dir: &Path) -> Option<Snapshot> {
        let loaded = manifests::load_cached(dir, &mut self.parsed);
        tracing::info!(files = loaded.files, objects = loaded.store.len(), "read manifests");
        self.source_problems.report(loaded.problems);
        self.compiler.update(&loaded.store)
    }
}

async fn serve(config: StaticConfig) -> anyhow::Result<()> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        manifests = %config.manifests.display(),
        socket = %config.socket.display(),
        "weir starting"
    );
    for ep in &config.entrypoints {
        tracing::info!(entrypoint = ep.name, address = %ep.address, "entrypoint");
    }
    let dir = config.manifests.clone();
    let meta = std::fs::metadata(&dir).with_context(|| format!("manifests directory {}", dir.display()))?;
    anyhow::ensure!(meta.is_dir(), "manifests path {} is not a directory", dir.display());
    supervise::prepare_socket_dir(&config.socket)?;

    // Watch before the first read so no change falls between the two.
    let mut watcher =
        DirWatcher::new(&dir).with_context(|| format!("watching manifests directory {}", dir.display()))?;
    let mut pipeline = Pipeline {
        source_problems: ProblemLog::default(),
        compiler: Compiler::new(CompileOptions::from_config(&config)),
        parsed: manifests::ParseCache::default(),
    };
    let initial = pipeline.reload(&dir).unwrap_or_default();
    let (snapshots, receiver) = watch::channel(initial);

    let command = DataplaneCommand {
        program: config.dataplane.clone(),
        socket: config.socket.clone(),
        workers: config.workers,
        cpus: config.cpus.clone(),
        log_level: config.log_level,
    };
    let mut publisher = tokio::spawn(async move {
        let mut supervisor = Supervisor::new(command.socket.clone(), ProcessLauncher::new(command));
        Publisher::new().run(&mut supervisor, receiver).await
    });

    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    loop {
        tokio::select! {
            _ = sigint.recv() => {
                tracing::info!("SIGINT received; exiting (a dataplane keeps serving its last snapshot)");
                return Ok(());
            }
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM received; exiting (a dataplane keeps serving its last snapshot)");
                return Ok(());
            }
            ended = &mut publisher => {
                return match ended {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e).context("publishing to the dataplane"),
                    Err(e) => Err(e).context("publisher task"),
                };
            }
            tick = watcher.changed() => {
                if tick.is_none() {
                    anyhow::bail!("the manifests watcher stopped");
                }
                let dir = dir.clone();
                let (p, snapshot) = tokio::task::spawn_blocking(move || {
                    let snapshot = pipeline.reload(&dir);
                    (pipeline, snapshot)
                })
                .await
                .context("reload task")?;
                pipeline = p;
                if let Some(snapshot) = snapshot {
                    // Only fails when the publisher is gone, which the branch above reports.
                    let _ = snapshots.send(snapshot);
                }
            }
        }
    }
}
