//! Entrypoint options beyond the address (Traefik's `entryPoints.<name>.transport.*` and
//! `http.*` request limits), carried from the control plane to the data plane.

use serde::{Deserialize, Serialize};

/// Traefik's `http.maxHeaderBytes` default (1 MiB).
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 1 << 20;
/// Traefik's `transport.respondingTimeouts.readTimeout` default (60 s).
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 60_000;
/// Traefik's `transport.respondingTimeouts.idleTimeout` default (180 s).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 180_000;
/// Traefik's `transport.lifeCycle.graceTimeOut` default (10 s).
pub const DEFAULT_GRACE_TIMEOUT_MS: u64 = 10_000;

/// What to do with request headers whose name holds `_` (Traefik 3.6
/// `http.underscoreHeadersStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum UnderscoreHeaders {
    /// Pass them on (Traefik's default).
    #[default]
    Keep,
    /// Remove them before routing.
    Delete,
    /// Answer 400.
    Reject,
}

/// Options of one entrypoint; `Default` is Traefik's defaults. Durations are milliseconds,
/// `0` meaning no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPointOptions {
    /// `transport.respondingTimeouts.readTimeout`: bounds reading a request's headers.
    pub read_timeout_ms: u64,
    /// `transport.respondingTimeouts.writeTimeout`: bounds producing a response.
    pub write_timeout_ms: u64,
    /// `transport.respondingTimeouts.idleTimeout`: a keep-alive connection idle this long closes.
    pub idle_timeout_ms: u64,
    /// `transport.lifeCycle.requestAcceptGraceTimeout`: keep accepting after SIGTERM this long.
    pub request_accept_grace_timeout_ms: u64,
    /// `transport.lifeCycle.graceTimeOut`: time in-flight requests get on shutdown.
    pub grace_timeout_ms: u64,
    /// `transport.keepAliveMaxRequests`: close a connection after this many requests.
    pub keep_alive_max_requests: u64,
    /// `transport.keepAliveMaxTime`: close a connection once it is this old.
    pub keep_alive_max_time_ms: u64,
    /// `http.maxHeaderBytes`: larger request headers get 431.
    pub max_header_bytes: u64,
    /// `http.underscoreHeadersStrategy`.
    pub underscore_headers: UnderscoreHeaders,
    /// `http.encodedCharacters.allowEncoded*`: the escapes (upper-case hex, e.g. `2F`) refused
    /// with 400 on this entrypoint; empty = all allowed (Traefik's default).
    pub denied_encoded: Vec<String>,
    /// `forwardedHeaders.connection`: headers listed in `Connection` that are kept.
    pub forwarded_connection: Vec<String>,
}

impl Default for EntryPointOptions {
    fn default() -> Self {
        EntryPointOptions {
            read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
            write_timeout_ms: 0,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            request_accept_grace_timeout_ms: 0,
            grace_timeout_ms: DEFAULT_GRACE_TIMEOUT_MS,
            keep_alive_max_requests: 0,
            keep_alive_max_time_ms: 0,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            underscore_headers: UnderscoreHeaders::Keep,
            denied_encoded: Vec::new(),
            forwarded_connection: Vec::new(),
        }
    }
}
