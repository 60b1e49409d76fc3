//! `weir`: the control plane binary. Parses the command line, sets up logging, then runs the
//! manifests source → compile → publish pipeline until SIGINT or SIGTERM. Errors become a
//! message and exit status 1 here, and only here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use weir_control::compile::{CompileOptions, Compiler};
use weir_control::config::{self, Command, Environment, StaticConfig};
use weir_control::publish::Publisher;
use weir_control::source::kube::{self, KubeStore};
use weir_control::source::{manifests, watch::DirWatcher};
use weir_control::status::{Problem, ProblemLog};
use weir_control::store::ObjectStore;
use weir_control::supervise::{self, DataplaneCommand, ProcessLauncher, Supervisor};
use weir_proto::Snapshot;

/// See the `mimalloc` line of Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `weir check PATH`: the offline migration report (see `weir_control::check`).
    if std::env::args().nth(1).as_deref() == Some("check") {
        return weir_control::check::main(std::env::args().skip(2));
    }
    // `weir crds`: print the Traefik CRDs (deploy/crds.yaml is this output).
    if std::env::args().nth(1).as_deref() == Some("crds") {
        print!("{}", weir_control::crds::yaml());
        return ExitCode::SUCCESS;
    }
    let env = Environment::current();
    let sources = config::Sources::current();
    let (config, warnings) = match config::parse_with(std::env::args().skip(1), &env, &sources) {
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
    weir_control::logging::init_with(config.log_level, &config.observability.log);
    tracing::info!("configuration loaded from {}", config.source);
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
    /// The manifests directory, when one is a source.
    dir: Option<PathBuf>,
    /// What the directory held at the last read.
    manifests: ObjectStore,
    manifest_problems: Vec<Problem>,
    /// Both sources together, when both run (kept so that revisions persist).
    merged: ObjectStore,
    /// What the Kubernetes watchers delivered, when they run.
    kube: Option<KubeStore>,
}

impl Pipeline {
    /// Re-reads the manifests directory (when there is one).
    fn read_manifests(&mut self) {
        if let Some(dir) = &self.dir {
            let loaded = manifests::load_cached(dir, &mut self.parsed);
            tracing::info!(files = loaded.files, objects = loaded.store.len(), "read manifests");
            // Synced rather than replaced: unchanged objects keep their revisions, so only
            // what changed is translated again (`weir_control::translate::cache`).
            self.manifests.sync_from(loaded.store);
            self.manifest_problems = loaded.problems;
        }
    }

    /// Compiles every source; the snapshot when it changed.
    fn compile(&mut self) -> Option<std::sync::Arc<Snapshot>> {
        let kube_problems = self.kube.iter().flat_map(|k| k.problems().cloned());
        self.source_problems.report(self.manifest_problems.iter().cloned().chain(kube_problems));
        match (&self.dir, &self.kube) {
            (None, Some(kube)) => self.compiler.update(&kube.store),
            (Some(_), Some(kube)) => {
                let mut merged = self.manifests.clone();
                kube.merge_into(&mut merged);
                self.merged.sync_from(merged);
                self.compiler.update(&self.merged)
            }
            (_, None) => self.compiler.update(&self.manifests),
        }
    }

    /// Every object problem of the latest build (sources and translation), for Events.
    fn problems(&self) -> Vec<Problem> {
        self.source_problems.current().chain(self.compiler.problems()).cloned().collect()
    }

    /// Runs `f` on a blocking thread (compiling 10,000 objects takes a while).
    async fn blocking<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut Pipeline) -> T + Send + 'static,
    ) -> anyhow::Result<(Pipeline, T)> {
        let mut p = self;
        tokio::task::spawn_blocking(move || {
            let out = f(&mut p);
            (p, out)
        })
        .await
        .context("reload task")
    }
}

/// Waits for the next tick of an optional directory watcher (forever without one).
async fn dir_changed(watcher: &mut Option<DirWatcher>) -> Option<()> {
    match watcher {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}

/// Waits for the next update of optional Kubernetes watchers (forever without them).
async fn kube_update(rx: &mut Option<mpsc::UnboundedReceiver<kube::Update>>) -> Option<kube::Update> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn serve(config: StaticConfig) -> anyhow::Result<()> {
    let dir = Some(config.manifests.clone()).filter(|d| !d.as_os_str().is_empty());
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        manifests = %dir.as_deref().map(|d| d.display().to_string()).unwrap_or_else(|| "(none)".into()),
        socket = %config.socket.display(),
        "weir starting"
    );
    for ep in &config.entrypoints {
        tracing::info!(entrypoint = ep.name, address = %ep.address, "entrypoint");
    }
    if let Some(dir) = &dir {
        let meta =
            std::fs::metadata(dir).with_context(|| format!("manifests directory {}", dir.display()))?;
        anyhow::ensure!(meta.is_dir(), "manifests path {} is not a directory", dir.display());
    }
    supervise::prepare_socket_dir(&config.socket)?;

    // Watch before the first read so no change falls between the two.
    let mut watcher = match &dir {
        Some(dir) => Some(
            DirWatcher::new(dir)
                .with_context(|| format!("watching manifests directory {}", dir.display()))?,
        ),
        None => None,
    };
    let compile_options = CompileOptions::from_config(&config);
    let translate_options = compile_options.translate.clone();
    let mut pipeline = Pipeline {
        source_problems: ProblemLog::default(),
        compiler: Compiler::new(compile_options),
        parsed: manifests::ParseCache::default(),
        dir: dir.clone(),
        manifests: ObjectStore::new(),
        manifest_problems: Vec::new(),
        merged: ObjectStore::new(),
        kube: None,
    };
    let kube = kube::KubeSource::start(&config).await?;
    let mut kube_rx = None;
    let mut reporters = None;
    let throttle = config.kube.crd.throttle.max(config.kube.ingress.throttle);
    if let Some(mut source) = kube {
        let mut store = KubeStore::new(source.watchers, dir.is_some());
        source.initial_sync(&mut store, kube::INITIAL_SYNC_TIMEOUT).await;
        pipeline.kube = Some(store);
        reporters = Some(source.reporters(&config, translate_options));
        kube_rx = Some(source.updates);
    }
    let (p, initial) = pipeline
        .blocking(|p| {
            p.read_manifests();
            p.compile()
        })
        .await?;
    pipeline = p;
    if let Some(r) = &reporters {
        r.after_compile(&pipeline.problems(), pipeline.kube.as_ref().map(|k| &k.store));
    }
    let (snapshots, receiver) = watch::channel(initial.unwrap_or_default());

    let command = DataplaneCommand {
        program: config.dataplane.clone(),
        socket: config.socket.clone(),
        workers: config.workers,
        cpus: config.cpus.clone(),
        max_connections_per_worker: config.max_connections_per_worker,
        experimental_sockmap: config.experimental_sockmap,
        experimental_udp_fast_path: config.experimental_udp_fast_path,
        experimental_udp_fast_path_interfaces: config.experimental_udp_fast_path_interfaces.clone(),
        log_level: config.log_level,
        log: config.observability.log.clone(),
    };
    // Graceful shutdown: the data plane drains for up to its lifeCycle timeouts; weir waits.
    let drain_limit = weir_control::config::shutdown_wait(&config);
    let mut publisher = tokio::spawn(async move {
        let mut supervisor = Supervisor::new(command.socket.clone(), ProcessLauncher::new(command));
        Publisher::new().run(&mut supervisor, receiver).await
    });

    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    loop {
        let snapshot = tokio::select! {
            _ = sigint.recv() => {
                tracing::info!("SIGINT received; stopping the dataplane this weir started, then exiting");
                if !supervise::stop_child(drain_limit).await {
                    tracing::warn!("the dataplane is still running after {drain_limit:?}");
                }
                return Ok(());
            }
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM received; stopping the dataplane this weir started, then exiting");
                if !supervise::stop_child(drain_limit).await {
                    tracing::warn!("the dataplane is still running after {drain_limit:?}");
                }
                return Ok(());
            }
            ended = &mut publisher => {
                return match ended {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e).context("publishing to the dataplane"),
                    Err(e) => Err(e).context("publisher task"),
                };
            }
            tick = dir_changed(&mut watcher) => {
                if tick.is_none() {
                    anyhow::bail!("the manifests watcher stopped");
                }
                let (p, snapshot) = pipeline
                    .blocking(|p| {
                        p.read_manifests();
                        p.compile()
                    })
                    .await?;
                pipeline = p;
                snapshot
            }
            update = kube_update(&mut kube_rx) => {
                let Some(update) = update else {
                    anyhow::bail!("the Kubernetes watchers stopped");
                };
                let (Some(store), Some(rx)) = (pipeline.kube.as_mut(), kube_rx.as_mut()) else {
                    continue;
                };
                if !kube::Coalesce::collect(store, update, rx, throttle).await {
                    continue;
                }
                let (p, snapshot) = pipeline.blocking(|p| p.compile()).await?;
                pipeline = p;
                snapshot
            }
        };
        if let Some(r) = &reporters {
            r.after_compile(&pipeline.problems(), pipeline.kube.as_ref().map(|k| &k.store));
        }
        if let Some(snapshot) = snapshot {
            // Only fails when the publisher is gone, which the branch above reports.
            let _ = snapshots.send(snapshot);
        }
    }
}
