//! Observability settings the data plane applies: Prometheus metrics (`--metrics.prometheus.*`)
//! and access logs (`--accessLog.*`), as Traefik's static configuration has them. Plain data;
//! the control plane parses the options, the data plane counts and writes.

use serde::{Deserialize, Serialize};

/// Traefik's default histogram buckets for request durations, in seconds.
pub const DEFAULT_BUCKETS: [f64; 4] = [0.1, 0.3, 1.2, 5.0];

/// Metrics and access-log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Observability {
    /// `--metrics.prometheus`: exposition at `/metrics`, when enabled.
    pub metrics: Option<Prometheus>,
    /// `--accessLog`: one line per request, when enabled.
    pub access_log: Option<AccessLog>,
}

/// Traefik's `metrics.prometheus` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prometheus {
    /// Entrypoint that serves `/metrics` (Traefik default `traefik`).
    pub entry_point: String,
    /// Upper bounds of the request-duration histogram buckets, in seconds, ascending.
    pub buckets: Vec<f64>,
    /// `traefik_entrypoint_*` series (default true).
    pub add_entry_points_labels: bool,
    /// `traefik_router_*` series (default false).
    pub add_routers_labels: bool,
    /// `traefik_service_*` series (default true).
    pub add_services_labels: bool,
    /// `/metrics` is not served on the entrypoint; a router must name `prometheus@internal`.
    pub manual_routing: bool,
    /// Extra labels of the `*_requests_total` series: (label, request header).
    pub header_labels: Vec<(String, String)>,
}

// Buckets are finite numbers (the parser refuses NaN), so equality is reflexive.
impl Eq for Prometheus {}

impl Default for Prometheus {
    fn default() -> Prometheus {
        Prometheus {
            entry_point: "traefik".into(),
            buckets: DEFAULT_BUCKETS.to_vec(),
            add_entry_points_labels: true,
            add_routers_labels: false,
            add_services_labels: true,
            manual_routing: false,
            header_labels: Vec::new(),
        }
    }
}

/// Traefik's `accessLog` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccessLog {
    /// `filePath`: the file lines are appended to; standard output when `None`.
    pub file_path: Option<String>,
    /// `format`.
    pub format: AccessLogFormat,
    /// `bufferingSize`: lines kept before a write (weir flushes at least every 100 ms too).
    pub buffering_size: u64,
    /// `filters`: a line is written when any filter keeps it (or when none is set).
    pub filters: AccessLogFilters,
    /// `fields`: which fields and headers appear.
    pub fields: AccessLogFields,
}

/// Line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum AccessLogFormat {
    /// Traefik's extended Common Log Format (the default).
    #[default]
    Common,
    /// Plain CLF (`genericCLF`): without request count, router, server URL and duration.
    GenericClf,
    /// One JSON object per line with Traefik's field names.
    Json,
}

/// `accessLog.filters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AccessLogFilters {
    /// `statusCodes`: inclusive ranges (`404` is `(404, 404)`).
    pub status_codes: Vec<(u16, u16)>,
    /// `retryAttempts`: keep requests that were retried.
    pub retry_attempts: bool,
    /// `minDuration` in milliseconds: keep requests that took longer; 0 = unset.
    pub min_duration_ms: u64,
}

/// What happens to a field or header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldMode {
    /// Written as is.
    Keep,
    /// Left out.
    Drop,
    /// Written as `REDACTED` (headers only).
    Redact,
}

/// `accessLog.fields`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLogFields {
    /// `defaultMode` of fields (Traefik default keep).
    pub default_mode: FieldMode,
    /// `names.<Field>`: per-field modes, field names as Traefik spells them.
    pub names: Vec<(String, FieldMode)>,
    /// `headers.defaultMode` (Traefik default drop).
    pub headers_default_mode: FieldMode,
    /// `headers.names.<Header>`: per-header modes, header names canonicalised (`User-Agent`).
    pub header_names: Vec<(String, FieldMode)>,
    /// `queryParameters.defaultMode` is keep (the query stays in `RequestPath`).
    pub keep_query: bool,
}

impl Default for AccessLogFields {
    fn default() -> AccessLogFields {
        AccessLogFields {
            default_mode: FieldMode::Keep,
            names: Vec::new(),
            headers_default_mode: FieldMode::Drop,
            header_names: Vec::new(),
            keep_query: true,
        }
    }
}
