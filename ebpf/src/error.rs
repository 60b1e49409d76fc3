//! Why an eBPF feature is not in use.

/// Errors from loading or attaching a BPF program.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EbpfError {
    /// This build has no BPF objects: clang was missing when weir was compiled.
    #[error("this build has no BPF programs (clang was missing when weir was compiled)")]
    NotBuilt,
    /// The kernel refused to load the object (often: no CAP_BPF / CAP_NET_ADMIN).
    #[error("cannot load the BPF program {program}: {source}")]
    Load {
        /// Program name.
        program: &'static str,
        /// What aya reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A map is missing from the object or could not be updated.
    #[error("BPF map {map}: {reason}")]
    Map {
        /// Map name.
        map: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A splice join failed halfway and the bytes the kernel had already moved could not be
    /// confirmed delivered: the connection cannot continue without risking a gap; close it.
    #[error(
        "a sockmap join failed halfway and moved bytes could not be confirmed; the connection must be closed"
    )]
    HalfJoined,
    /// Attaching the program failed.
    #[error("cannot attach the BPF program {program}: {reason}")]
    Attach {
        /// Program name.
        program: &'static str,
        /// What went wrong.
        reason: String,
    },
}
