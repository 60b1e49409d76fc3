//! The parts of Traefik's `LoadBalancerSpec` shared by IngressRoute services and
//! TraefikServices: sticky cookies, health checks, response forwarding.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::IntOrString;

/// `responseForwarding`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseForwarding {
    /// Go duration; negative flushes after every write (default 100ms).
    #[serde(default)]
    pub flush_interval: Option<IntOrString>,
}

/// `sticky`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sticky {
    /// Cookie stickiness; absent means no stickiness.
    #[serde(default)]
    pub cookie: Option<Cookie>,
}

/// `sticky.cookie`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    /// Cookie name; derived from the service name when empty.
    #[serde(default)]
    pub name: Option<String>,
    /// `Secure`.
    #[serde(default)]
    pub secure: bool,
    /// `HttpOnly`.
    #[serde(default)]
    pub http_only: bool,
    /// `none`, `lax` or `strict`.
    #[serde(default)]
    pub same_site: Option<String>,
    /// `Max-Age` in seconds.
    #[serde(default)]
    pub max_age: Option<i64>,
    /// `Path` (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// `Domain`.
    #[serde(default)]
    pub domain: Option<String>,
}

/// `healthCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// `http` or `https`: overrides the server's scheme.
    #[serde(default)]
    pub scheme: Option<String>,
    /// `http` (default) or `grpc`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Path of the check request.
    #[serde(default)]
    pub path: Option<String>,
    /// Method (default GET).
    #[serde(default)]
    pub method: Option<String>,
    /// Expected status (default: any 2xx or 3xx).
    #[serde(default)]
    pub status: Option<i64>,
    /// Port override.
    #[serde(default)]
    pub port: Option<i64>,
    /// Interval between checks (default 30s).
    #[serde(default)]
    pub interval: Option<IntOrString>,
    /// Interval between checks of unhealthy servers (default: interval).
    #[serde(default)]
    pub unhealthy_interval: Option<IntOrString>,
    /// Timeout of one check (default 5s).
    #[serde(default)]
    pub timeout: Option<IntOrString>,
    /// Host header of the check.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Follow redirects (default true).
    #[serde(default)]
    pub follow_redirects: Option<bool>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}
