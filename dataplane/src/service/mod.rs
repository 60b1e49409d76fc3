//! HTTP services as Traefik runs them: compiled per snapshot (`compiled`), balanced per
//! worker (`state`, over `lb::wrr`), with sticky cookies (`sticky`), mirroring accounting
//! (`mirror`), the upstream request body (`body`) and the per-request forwarding (`forward`).
//! Routing and entrypoint header handling stay in `http::proxy`; connections in `http::pool`.

pub mod body;
pub mod compiled;
pub mod forward;
pub mod mirror;
pub mod state;
pub mod sticky;

pub use body::UpstreamBody;
pub use compiled::{LoadBalancer, Server, Service};
pub use forward::forward;
pub use state::Balancers;
