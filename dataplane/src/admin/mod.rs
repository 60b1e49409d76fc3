//! Traefik's internal services, reached through ordinary routers whose service is internal
//! (`api@internal`, `dashboard@internal`, `ping@internal`, `prometheus@internal`): the API's
//! JSON, the dashboard's embedded files, ping, and the hook metrics fill. Also the process's
//! "terminating" flag that graceful shutdown raises and ping reports. No routing here: the
//! control plane adds the internal routers to the snapshot.

pub mod api;
pub mod dashboard;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use weir_proto::api::InternalService;

use crate::http::Body;
use crate::service::compiled::Service;
use crate::table::Table;
use crate::worker::Generation;

/// Raised once the data plane starts shutting down (SIGTERM): ping then answers the
/// terminating status (Traefik's `ping.terminatingStatusCode`).
static TERMINATING: AtomicBool = AtomicBool::new(false);
static START: OnceLock<SystemTime> = OnceLock::new();

/// Marks the process as terminating (graceful shutdown calls this first).
pub fn set_terminating() {
    TERMINATING.store(true, Ordering::Relaxed);
}

/// Whether [`set_terminating`] was called.
pub fn is_terminating() -> bool {
    TERMINATING.load(Ordering::Relaxed)
}

/// The admin part of one table: the parsed runtime model and the API settings.
#[derive(Debug, Default)]
pub struct AdminState {
    /// The runtime model.
    pub model: api::Model,
    /// `--api` is on.
    pub api_enabled: bool,
    /// `--api.dashboard`.
    pub dashboard: bool,
    /// `--api.basePath` without a trailing slash (`""` for `/`).
    pub base_path: String,
    /// `--ping.terminatingStatusCode`.
    pub ping_terminating_status: u16,
}

impl AdminState {
    /// Builds the admin state for a snapshot's API section.
    pub fn build(api: &weir_proto::api::Api) -> AdminState {
        START.get_or_init(SystemTime::now);
        AdminState {
            model: if api.enabled { api::Model::parse(&api.runtime_json) } else { api::Model::default() },
            api_enabled: api.enabled,
            dashboard: api.dashboard,
            base_path: api.base_path.trim_end_matches('/').to_string(),
            ping_terminating_status: api.ping_terminating_status,
        }
    }
}

/// Answers a request whose router led to an internal service.
pub fn serve<B>(kind: InternalService, generation: &Generation, req: &Request<B>) -> Response<Body> {
    let table = &generation.table;
    let admin = &table.admin;
    match kind {
        InternalService::Ping => ping(admin.ping_terminating_status),
        InternalService::Prometheus => metrics_response(generation, req),
        InternalService::Api if admin.api_enabled => {
            let path = req.uri().path();
            let path = path.strip_prefix(admin.base_path.as_str()).unwrap_or(path);
            let reply = api::respond(
                &admin.model,
                &LiveTable(table),
                req.method().as_str(),
                path,
                req.uri().query(),
                &rfc3339(*START.get_or_init(SystemTime::now)),
            );
            to_response(reply)
        }
        InternalService::Dashboard if admin.api_enabled && admin.dashboard => {
            to_response(dashboard::respond(req.method().as_str(), req.uri().path()))
        }
        InternalService::Api | InternalService::Dashboard => to_response(api::Reply::not_found()),
    }
}

/// `ping@internal` (Traefik's ping handler): `200 OK`, or the terminating status and its
/// text while shutting down; any method.
pub fn ping(terminating_status: u16) -> Response<Body> {
    let status = if is_terminating() {
        StatusCode::from_u16(terminating_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        StatusCode::OK
    };
    let text = status.canonical_reason().unwrap_or("");
    let mut resp = Response::new(Body::full(Bytes::from(text.as_bytes().to_vec())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// `prometheus@internal`: the exposition of every worker's counters (`crate::metrics`).
pub fn metrics_response<B>(generation: &Generation, _req: &Request<B>) -> Response<Body> {
    crate::metrics::response(generation)
}

fn to_response(reply: api::Reply) -> Response<Body> {
    let mut resp = Response::new(Body::full(Bytes::from(reply.body)));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// Servers and health of the current table's load balancers.
struct LiveTable<'a>(&'a Table);

impl api::Live for LiveTable<'_> {
    fn servers(&self, name: &str) -> Option<Vec<(String, u32, bool)>> {
        let id = self.0.service_names.iter().position(|n| n == name)?;
        match &self.0.services[id] {
            Service::LoadBalancer(lb) => {
                Some(lb.servers.iter().map(|s| (s.url.clone(), s.weight, s.healthy())).collect())
            }
            _ => None,
        }
    }
}

/// A time as Go's JSON encoding writes it (RFC 3339 with nanoseconds), in UTC.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let nanos = d.subsec_nanos();
    let frac =
        if nanos == 0 { String::new() } else { format!(".{nanos:09}").trim_end_matches('0').to_string() };
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z", rem / 3600, (rem / 60) % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ping_reports_terminating() {
        // The only test that raises the process-wide flag.
        let cases = [(false, 503, 200), (true, 503, 503), (true, 204, 204), (true, 42, 503)];
        for (terminating, configured, want) in cases {
            if terminating {
                set_terminating();
            }
            let r = ping(configured);
            assert_eq!(r.status().as_u16(), want, "terminating={terminating} configured={configured}");
        }
    }

    #[test]
    fn go_time_format() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00Z"),
            (951_782_400, 500_000_000, "2000-02-29T00:00:00.5Z"),
            (1_795_469_284, 123_456_789, "2026-11-23T21:28:04.123456789Z"),
        ];
        for (secs, nanos, want) in cases {
            let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
            assert_eq!(rfc3339(t), want);
        }
    }
}
