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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level)),
        )
        .with_writer(std::io::stderr)
        .init();

    #[cfg(feature = "alloc-count")]
    weir_dataplane::alloc_count::start_reporting();
    let hostname = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let hostname =
        ::http::HeaderValue::from_str(&hostname).unwrap_or(::http::HeaderValue::from_static("weir"));
    let cpus = args.cpus.clone().unwrap_or_else(|| (0..args.workers).collect());
    let mut workers = Vec::with_capacity(args.workers);
    for i in 0..args.workers {
        let cpu = cpus.get(i % cpus.len().max(1)).copied();
        workers.push(worker::spawn(i, cpu, hostname.clone()).context("starting worker")?);
    }
    tracing::info!(workers = args.workers, ?cpus, "weir-dataplane started");
    let state = args.state.clone().unwrap_or_else(|| args.socket.with_extension("state"));
    let mut control = control::Control::new(workers, Some(state));
    let worker_cpus = (0..args.workers).map(|i| cpus.get(i % cpus.len().max(1)).copied()).collect();
    control.set_steering(weir_dataplane::steering::Steering::new(args.ebpf, worker_cpus));
    control.restore();
    control.serve(&args.socket).context("control socket")?;
    Ok(())
}
