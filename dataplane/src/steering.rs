//! Per-core steering of each entrypoint's SO_REUSEPORT listener group with the `sk_reuseport`
//! BPF program (weir-ebpf): a connection is accepted by the worker pinned to the CPU that
//! received it. Optional: without the BPF objects or the capability the kernel's own hash
//! spreads connections, and the reason is logged once.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;

use weir_ebpf::{ReuseportCounters, ReuseportSteering};

/// The steering programs of the listener groups the data plane serves.
pub struct Steering {
    /// `--ebpf` was not turned off.
    enabled: bool,
    /// CPU of each worker, by worker index.
    cpus: Vec<Option<usize>>,
    /// Attached programs by listener group (entrypoint name).
    groups: HashMap<String, ReuseportSteering>,
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
        Steering { enabled, cpus, groups: HashMap::new(), warned: false }
    }

    /// Steers the new listener group of `entrypoint` (`sockets[i]` is worker i's listener),
    /// replacing the program of the group it had before.
    pub fn attach(&mut self, entrypoint: &str, sockets: &[BorrowedFd<'_>]) {
        self.groups.remove(entrypoint);
        if !self.enabled || sockets.len() < 2 {
            return;
        }
        match ReuseportSteering::attach(sockets, &self.cpus) {
            Ok(program) => {
                tracing::info!(entrypoint, workers = sockets.len(), "eBPF per-core steering attached");
                self.groups.insert(entrypoint.to_string(), program);
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
        Steering { enabled: false, cpus: Vec::new(), groups: HashMap::new(), warned: true }
    }

    /// Forgets the program of a closed listener group.
    pub fn detach(&mut self, entrypoint: &str) {
        self.groups.remove(entrypoint);
    }

    /// Counters of every attached program, by entrypoint.
    pub fn counters(&self) -> Vec<(String, ReuseportCounters)> {
        let mut out: Vec<_> = self.groups.iter().map(|(name, p)| (name.clone(), p.counters())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}
