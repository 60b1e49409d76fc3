//! weir-ebpf: the BPF programs weir loads (C, in `bpf/`, built by `build.rs` with clang and
//! embedded here) and typed loaders for them with aya. Nothing here is required: without the
//! objects (no clang at build time) or without the capability (CAP_BPF + CAP_NET_ADMIN, or root)
//! every loader returns an error that says why, and the data plane stays on its userspace paths.

mod error;
mod object;
pub mod reuseport;
pub mod splice;
pub mod udp_fast;

pub use error::EbpfError;
pub use reuseport::{ReuseportCounters, ReuseportSteering};
pub use splice::{duplicate, read_to_short, Direction, SpliceCounters, Spliced, Splicer};
pub use udp_fast::{FlowActivity, FlowMap, FlowPair, UdpFastCounters, UdpFastPath};

/// Whether this build carries the BPF objects (clang was found when it was compiled).
pub fn objects_built() -> bool {
    object::REUSEPORT.is_some()
}
