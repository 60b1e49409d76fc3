//! Traefik's API, dashboard and ping as the data plane serves them: which internal services
//! exist and the runtime model (routers, services, middlewares, entrypoints with their status
//! and errors) the control plane rendered as JSON, because only it knows disabled routers and
//! the problems met. The data plane filters, sorts and pages the model; it never rebuilds it.

use serde::{Deserialize, Serialize};

/// The API, dashboard and ping settings plus the rendered runtime model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Api {
    /// `--api` is on: `api@internal` answers (on the `traefik` entrypoint with
    /// `--api.insecure`, else through a user's router).
    pub enabled: bool,
    /// `--api.dashboard` (Traefik default true with `--api`).
    pub dashboard: bool,
    /// `--api.basePath`: the API and the dashboard are served under this prefix.
    pub base_path: String,
    /// `--ping.terminatingStatusCode` (Traefik default 503), the answer of `ping@internal`
    /// while the data plane is shutting down.
    pub ping_terminating_status: u16,
    /// The runtime model, a JSON object (see [`RUNTIME_KEYS`]); empty when the API is off.
    pub runtime_json: String,
}

/// The top-level keys of [`Api::runtime_json`]: each maps an object's qualified name
/// (`name@provider`) to its Traefik representation, except `entryPoints` (name → static
/// entrypoint representation), `features`, `providers` and `version` (overview and
/// `/api/version` data).
pub const RUNTIME_KEYS: [&str; 8] = [
    "routers",
    "services",
    "middlewares",
    "tcpRouters",
    "tcpServices",
    "tcpMiddlewares",
    "udpRouters",
    "udpServices",
];

/// Traefik's internal HTTP services besides `noop@internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InternalService {
    /// `api@internal`: the JSON API.
    Api,
    /// `dashboard@internal`: the web UI.
    Dashboard,
    /// `ping@internal`: `200 OK`, or the terminating status while shutting down.
    Ping,
    /// `prometheus@internal`: the metrics exposition.
    Prometheus,
}

impl InternalService {
    /// Every internal service, for lookups by name.
    pub const ALL: [InternalService; 4] = [
        InternalService::Api,
        InternalService::Dashboard,
        InternalService::Ping,
        InternalService::Prometheus,
    ];

    /// The service's name as routers reference it (`api@internal`).
    pub fn name(self) -> &'static str {
        match self {
            InternalService::Api => "api@internal",
            InternalService::Dashboard => "dashboard@internal",
            InternalService::Ping => "ping@internal",
            InternalService::Prometheus => "prometheus@internal",
        }
    }

    /// The internal service with this name, if any.
    pub fn from_name(name: &str) -> Option<InternalService> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Traefik's name of the entrypoint internal services listen on by default.
pub const INTERNAL_ENTRYPOINT: &str = "traefik";

/// Traefik's default address of the `traefik` entrypoint.
pub const INTERNAL_ENTRYPOINT_PORT: u16 = 8080;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_round_trip() {
        for s in InternalService::ALL {
            assert_eq!(InternalService::from_name(s.name()), Some(s));
        }
        assert_eq!(InternalService::from_name("noop@internal"), None);
        assert_eq!(InternalService::from_name("api"), None);
    }
}
