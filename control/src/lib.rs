//! weir-control: the control plane of weir. It reads the static configuration (Traefik-style
//! flags), watches a source of Kubernetes objects, translates Traefik's CRDs into a routing
//! snapshot, and publishes snapshots to the data plane (starting it in local mode). It never
//! serves user traffic.
// One `unsafe` block: registering the control socket with tokio (`publish::register`).
#![deny(unsafe_code)]

pub mod api;
pub mod check;
pub mod compile;
pub mod config;
pub mod crds;
pub mod events;
pub mod logging;
pub mod objects;
pub mod publish;
pub mod source;
pub mod status;
pub mod store;
pub mod supervise;
pub mod translate;
