//! weir-dataplane: serves the routing snapshots the control plane (`weir`) sends over the
//! control socket, with one pinned monoio worker per core. Links neither tokio nor kube.
#![forbid(unsafe_code)]

use weir_dataplane::{args, control, worker};

use anyhow::Context as _;

/// Measurement builds count allocations (see `alloc_count`).
#[cfg(feature = "alloc-count")]
#[global_allocator]
static ALLOCATOR: weir_dataplane::alloc_count::Counting = weir_dataplane::alloc_count::Counting;

fn main() -> anyhow::Result<()> {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(args::ArgsError::Help) => {
            print!("{}", args::HELP);
            return Ok(());
        }
        Err(e) => anyhow::bail!("{e}\n\n{}", args::HELP),
    };
    init_logging(&args);
    weir_dataplane::http::conn_limit::set_limit(args.max_connections_per_worker);

    #[cfg(feature = "alloc-count")]
    weir_dataplane::alloc_count::start_reporting();
    let hostname = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let hostname =
        ::http::HeaderValue::from_str(&hostname).unwrap_or(::http::HeaderValue::from_static("weir"));
    let cpus = args.cpus.clone().unwrap_or_else(|| (0..args.workers).collect());
    let mut workers = Vec::with_capacity(args.workers);
    // One RateLimit/InFlightReq/CircuitBreaker state for the instance, shared by the workers.
    let limits = std::sync::Arc::new(weir_dataplane::middleware::shared::SharedLimits::default());
    for i in 0..args.workers {
        let cpu = cpus.get(i % cpus.len().max(1)).copied();
        workers.push(worker::spawn(i, cpu, hostname.clone(), limits.clone()).context("starting worker")?);
    }
    tracing::info!(workers = args.workers, ?cpus, "weir-dataplane started");
    let state = args.state.clone().unwrap_or_else(|| args.socket.with_extension("state"));
    let mut control = control::Control::new(workers, Some(state));
    let worker_cpus = (0..args.workers).map(|i| cpus.get(i % cpus.len().max(1)).copied()).collect();
    control.set_steering(weir_dataplane::steering::Steering::new(args.ebpf, worker_cpus));
    if args.sockmap {
        weir_dataplane::tcp::sockmap::enable();
    }
    if args.udp_fast_path {
        weir_dataplane::udp::fast::enable(args.udp_fast_path_interfaces.clone());
    }
    // SIGTERM/SIGINT drain and exit 0; SIGUSR1 reopens access logs.
    let socket = args.socket.clone();
    weir_dataplane::shutdown::install(move || {
        let _ = std::fs::remove_file(&socket);
        // Detach the TC program (TCX links would go with the process; netlink filters would not).
        weir_dataplane::udp::fast::disable();
    })
    .context("installing signal handlers")?;
    control.serve(&args.socket).context("control socket")?;
    Ok(())
}

/// `--log.level` (RUST_LOG wins), `--log.format`, `--log.filePath`, `--log.noColor`.
fn init_logging(args: &args::Args) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    let file = args.log_file.as_ref().and_then(|p| {
        match std::fs::OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!(
                    "weir-dataplane: cannot open log file {}: {e}; logging to standard error",
                    p.display()
                );
                None
            }
        }
    });
    let ansi = file.is_none() && !args.log_no_color && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match (file, args.log_json) {
        (Some(f), true) => builder.json().with_writer(std::sync::Arc::new(f)).init(),
        (Some(f), false) => builder.with_writer(std::sync::Arc::new(f)).init(),
        (None, true) => builder.json().with_writer(std::io::stderr).init(),
        (None, false) => builder.with_writer(std::io::stderr).init(),
    }
}
