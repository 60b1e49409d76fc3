//! Per-core steering of each entrypoint's SO_REUSEPORT socket group (TCP listeners and UDP
//! sockets alike) with the `sk_reuseport` BPF program (weir-ebpf): a connection or datagram is
//! taken by the worker pinned to the CPU that received it. Optional: without the BPF objects or
//! the capability the kernel's own hash spreads them, and the reason is logged once. The
//! attached programs live in a keeper thread, so a `/metrics` scrape on any worker can read
//! their counters without a lock.

use std::collections::BTreeMap;
use std::os::fd::BorrowedFd;
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use weir_ebpf::{ReuseportCounters, ReuseportSteering};

/// How long a scrape waits for the programs' counters.
const COUNTERS_TIMEOUT: Duration = Duration::from_secs(1);

type CountersReply = futures_channel::oneshot::Sender<Vec<(String, ReuseportCounters)>>;

/// What the keeper thread is asked.
enum Keep {
    /// Keep this group's program (replacing the one it had).
    Attach(String, ReuseportSteering),
    /// Drop this group's program.
    Detach(String),
    /// Read every program's counters.
    Counters(CountersReply),
}

/// The keeper: one thread that owns every attached program (by entrypoint; TCP and UDP
/// entrypoints share Traefik's one namespace of names), so the control thread that attaches
/// them and the workers that scrape `/metrics` share no lock. Started with the first program.
static KEEPER: OnceLock<Option<mpsc::Sender<Keep>>> = OnceLock::new();

fn keeper() -> Option<&'static mpsc::Sender<Keep>> {
    KEEPER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Keep>();
            let spawned = std::thread::Builder::new().name("weir-ebpf-keeper".into()).spawn(move || {
                let mut groups: BTreeMap<String, ReuseportSteering> = BTreeMap::new();
                for ask in rx {
                    match ask {
                        Keep::Attach(name, program) => {
                            groups.insert(name, program);
                        }
                        Keep::Detach(name) => {
                            groups.remove(&name);
                        }
                        Keep::Counters(reply) => {
                            let _ =
                                reply.send(groups.iter().map(|(n, p)| (n.clone(), p.counters())).collect());
                        }
                    }
                }
            });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!("eBPF steering: cannot start its keeper thread, steering stays off: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Counters of every attached program, by entrypoint (for a `/metrics` scrape).
pub async fn counters() -> Vec<(String, ReuseportCounters)> {
    let Some(keeper) = KEEPER.get().and_then(Option::as_ref) else { return Vec::new() };
    let (tx, rx) = futures_channel::oneshot::channel();
    if keeper.send(Keep::Counters(tx)).is_err() {
        return Vec::new();
    }
    match monoio::time::timeout(COUNTERS_TIMEOUT, rx).await {
        Ok(Ok(counters)) => counters,
        _ => Vec::new(),
    }
}

/// The steering programs of the socket groups the data plane serves.
pub struct Steering {
    /// `--ebpf` was not turned off.
    enabled: bool,
    /// CPU of each worker, by worker index.
    cpus: Vec<Option<usize>>,
    /// The reason steering is off was logged.
    warned: bool,
}

impl Steering {
    /// Steering for workers pinned to `cpus` (by worker index); `enabled: false` keeps the
    /// kernel's hash.
    pub fn new(enabled: bool, cpus: Vec<Option<usize>>) -> Steering {
        if !enabled {
            tracing::info!("eBPF steering is off (--ebpf=off): the kernel's hash spreads connections");
        }
        Steering { enabled, cpus, warned: false }
    }

    /// Steers the new TCP listener group of `entrypoint` (`sockets[i]` is worker i's listener)
    /// to the worker on the CPU that received the SYN, replacing the group's previous program.
    pub fn attach(&mut self, entrypoint: &str, sockets: &[BorrowedFd<'_>]) {
        let cpus = self.cpus.clone();
        self.attach_with(entrypoint, sockets, &cpus, "eBPF per-core steering attached");
    }

    /// Steers the new UDP socket group of `entrypoint` by the flow's hash only. Per-CPU choice
    /// is wrong for UDP: the program runs for every datagram, so a client whose thread moves
    /// between CPUs would have its flow split over workers, each with its own flow table and
    /// upstream socket (the backend would see two source ports; one that connected its socket
    /// to the first drops the rest: 30 % loss in the e2e iperf3 test). The hash keeps a flow on
    /// one worker, as the kernel's own choice does, and the program's counters still count.
    pub fn attach_by_flow(&mut self, entrypoint: &str, sockets: &[BorrowedFd<'_>]) {
        let no_cpus = vec![None; self.cpus.len().max(sockets.len())];
        self.attach_with(entrypoint, sockets, &no_cpus, "eBPF flow-hash steering attached");
    }

    fn attach_with(
        &mut self,
        entrypoint: &str,
        sockets: &[BorrowedFd<'_>],
        cpus: &[Option<usize>],
        attached: &str,
    ) {
        if !self.enabled || sockets.len() < 2 {
            self.detach(entrypoint);
            return;
        }
        let Some(keeper) = keeper() else { return };
        match ReuseportSteering::attach(sockets, cpus) {
            Ok(program) => {
                tracing::info!(entrypoint, workers = sockets.len(), "{attached}");
                let _ = keeper.send(Keep::Attach(entrypoint.to_string(), program));
            }
            Err(e) if !self.warned => {
                self.warned = true;
                tracing::warn!(
                    "eBPF per-core steering is not in use, the kernel's hash spreads connections: {e}"
                );
            }
            Err(e) => tracing::debug!(entrypoint, "eBPF steering not attached: {e}"),
        }
    }

    /// No steering, and nothing logged about it (before the options are known).
    pub fn disabled() -> Steering {
        Steering { enabled: false, cpus: Vec::new(), warned: true }
    }

    /// Forgets the program of a closed socket group.
    pub fn detach(&mut self, entrypoint: &str) {
        if let Some(keeper) = KEEPER.get().and_then(Option::as_ref) {
            let _ = keeper.send(Keep::Detach(entrypoint.to_string()));
        }
    }
}
