//! UDP routing (Traefik's IngressRouteUDP and UDP entrypoints): the sans-IO flow table
//! ([`flows`]), the routing table and per-session backend choice ([`table`]), the control
//! thread's socket binding ([`sockets`]), each worker's proxy loops ([`proxy`]) and the batched
//! system calls they move datagrams with ([`batch`]); [`fast`] mirrors established flows into
//! the kernel's UDP fast path when `--experimental.udpFastPath` is on. Every worker
//! has its own SO_REUSEPORT socket per UDP entrypoint, so the kernel keeps a client's datagrams
//! on one worker and that worker's flow table is the only one that knows the client.

pub mod batch;
pub mod fast;
pub mod flows;
pub mod proxy;
pub mod sockets;
pub mod table;

pub use proxy::{UdpApply, WorkerUdp};
pub use sockets::UdpSockets;
pub use table::UdpTable;

/// Flows one worker keeps per UDP entrypoint; a new client beyond that evicts the longest-idle
/// flow. Each flow holds one connected socket (one file descriptor) and a few hundred bytes.
pub const MAX_FLOWS_PER_WORKER: usize = 16_384;

/// Largest datagram relayed (Traefik's `maxDatagramSize`).
pub const MAX_DATAGRAM: usize = 65_535;
