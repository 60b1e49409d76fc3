//! weir-proto: the contract between the control plane (`weir`) and the data plane
//! (`weir-dataplane`). It owns the snapshot types, the rule-language parser and its priority
//! function, the frame codec, and the Unix-socket/memfd helpers that carry snapshots.
//! It must stay free of tokio, monoio and kube: both planes link it.
#![warn(missing_docs)]

pub mod api;
pub mod breaker;
pub mod channel;
pub mod client_hello;
pub mod config_delta;
pub mod delta;
pub mod entrypoint;
pub mod frame;
pub mod middleware;
pub mod mime;
pub mod net;
pub mod observability;
pub mod proxy_protocol;
pub mod retry_expression;
pub mod rule;
pub mod snapshot;
pub mod tcp;
pub mod tls;
pub mod udp;

pub use config_delta::ConfigDelta;
pub use delta::EndpointsDelta;
pub use frame::{DeltaBody, Frame, FrameError, FRAME_VERSION};
pub use snapshot::Snapshot;
