//! Per-core steering of one SO_REUSEPORT listener group: the `sk_reuseport` program of
//! `bpf/reuseport.bpf.c` hands each new connection or datagram to the worker pinned to the CPU
//! that received it (else to a worker chosen by the packet's hash). One instance per group; it
//! lives as long as the group's sockets are served, and the sockets are updated as workers come
//! and go.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::maps::{Array, MapData, PerCpuArray, ReusePortSockArray};
use aya::programs::SkReuseport;
use aya::Ebpf;

use crate::error::EbpfError;
use crate::object;

const PROGRAM: &str = "steer";
/// Largest CPU number the program's table holds (its `MAX_CPUS`).
const MAX_CPUS: usize = 1024;
/// Largest worker count the program's socket array holds (its `MAX_WORKERS`).
const MAX_WORKERS: usize = 256;

/// How many connections or datagrams the program steered, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReuseportCounters {
    /// Handed to the worker pinned to the receiving CPU.
    pub same_cpu: u64,
    /// Handed to a worker chosen by the packet's hash (no worker on that CPU).
    pub hashed: u64,
    /// Left to the kernel's own choice (the chosen socket was missing).
    pub kernel: u64,
    /// Bytes of the packets steered (TCP: the SYN's payload, UDP: the datagrams).
    pub bytes: u64,
}

/// The steering program attached to one listener group.
pub struct ReuseportSteering {
    ebpf: Ebpf,
}

impl std::fmt::Debug for ReuseportSteering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReuseportSteering").finish_non_exhaustive()
    }
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |e| EbpfError::Map { map, reason: e.to_string() }
}

impl ReuseportSteering {
    /// Loads the program and attaches it to the group of `sockets`: `sockets[i]` is worker
    /// i's listener (all bound to one address with SO_REUSEPORT), `cpus[i]` the CPU worker i is
    /// pinned to, if any.
    pub fn attach(sockets: &[BorrowedFd<'_>], cpus: &[Option<usize>]) -> Result<Self, EbpfError> {
        let bytes = object::REUSEPORT.ok_or(EbpfError::NotBuilt)?;
        if sockets.is_empty() || sockets.len() > MAX_WORKERS {
            return Err(EbpfError::Attach {
                program: PROGRAM,
                reason: format!("{} sockets (1 to {MAX_WORKERS} supported)", sockets.len()),
            });
        }
        let mut ebpf =
            Ebpf::load(bytes).map_err(|e| EbpfError::Load { program: PROGRAM, source: Box::new(e) })?;
        {
            let mut array: ReusePortSockArray<&mut MapData> =
                ReusePortSockArray::try_from(ebpf.map_mut("workers").ok_or(missing("workers"))?)
                    .map_err(map_err("workers"))?;
            for (i, socket) in sockets.iter().enumerate() {
                array.set(i as u32, &socket.as_raw_fd(), 0).map_err(map_err("workers"))?;
            }
        }
        {
            let mut table: Array<&mut MapData, u32> =
                Array::try_from(ebpf.map_mut("cpu_worker").ok_or(missing("cpu_worker"))?)
                    .map_err(map_err("cpu_worker"))?;
            for (i, cpu) in cpus.iter().enumerate().take(sockets.len()) {
                if let Some(cpu) = cpu.filter(|c| *c < MAX_CPUS) {
                    table.set(cpu as u32, i as u32 + 1, 0).map_err(map_err("cpu_worker"))?;
                }
            }
            let mut count: Array<&mut MapData, u32> =
                Array::try_from(ebpf.map_mut("worker_count").ok_or(missing("worker_count"))?)
                    .map_err(map_err("worker_count"))?;
            count.set(0, sockets.len() as u32, 0).map_err(map_err("worker_count"))?;
        }
        let program: &mut SkReuseport = ebpf
            .program_mut(PROGRAM)
            .ok_or(EbpfError::Attach { program: PROGRAM, reason: "not in the object".into() })?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| EbpfError::Attach {
                program: PROGRAM,
                reason: e.to_string(),
            })?;
        program.load().map_err(|e| EbpfError::Load { program: PROGRAM, source: Box::new(e) })?;
        program
            .attach(sockets[0].as_fd())
            .map_err(|e| EbpfError::Attach { program: PROGRAM, reason: e.to_string() })?;
        Ok(ReuseportSteering { ebpf })
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> ReuseportCounters {
        let mut out = ReuseportCounters::default();
        let Some(map) = self.ebpf.map("counters") else { return out };
        let Ok(counters) = PerCpuArray::<&MapData, u64>::try_from(map) else { return out };
        let sum = |i: u32| counters.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        out.same_cpu = sum(0);
        out.hashed = sum(1);
        out.kernel = sum(2);
        out.bytes = sum(3);
        out
    }
}

fn missing(map: &'static str) -> EbpfError {
    EbpfError::Map { map, reason: "not in the object".into() }
}
