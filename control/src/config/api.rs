//! `--api*` and `--ping*`, Traefik's static options for the API, the dashboard and ping, and
//! Traefik's rule for the implicit `traefik` entrypoint (:8080) those need. Keys arrive
//! lowercased; a bare key means `true` and enables its section.

use super::value::parse_bool;

/// `--api.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiOptions {
    /// `--api.insecure`: the API and the dashboard on the `traefik` entrypoint.
    pub insecure: bool,
    /// `--api.dashboard` (Traefik default true).
    pub dashboard: bool,
    /// `--api.basePath` (default `/`).
    pub base_path: String,
    /// `--api.debug` (accepted, not served: the Go debug handlers have no equivalent).
    pub debug: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions { insecure: false, dashboard: true, base_path: "/".into(), debug: false }
    }
}

/// `--ping.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingOptions {
    /// `--ping.entryPoint` (Traefik default `traefik`).
    pub entry_point: String,
    /// `--ping.manualRouting`: no `ping@internal` router; users route to the service.
    pub manual_routing: bool,
    /// `--ping.terminatingStatusCode` (Traefik default 503).
    pub terminating_status_code: u16,
}

impl Default for PingOptions {
    fn default() -> Self {
        PingOptions {
            entry_point: weir_proto::api::INTERNAL_ENTRYPOINT.into(),
            manual_routing: false,
            terminating_status_code: 503,
        }
    }
}

/// The API and ping part of the static configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiConfig {
    /// `--api`.
    pub api: Option<ApiOptions>,
    /// `--ping`.
    pub ping: Option<PingOptions>,
}

impl ApiConfig {
    /// Whether the lowercased key is one of these options.
    pub fn owns(lower: &str) -> bool {
        matches!(lower, "api" | "ping") || lower.starts_with("api.") || lower.starts_with("ping.")
    }

    /// Applies one option whose key [`ApiConfig::owns`]; `Ok(Some(msg))` is a warning to log.
    pub fn set(&mut self, lower: &str, value: &str) -> Result<Option<String>, String> {
        match lower {
            // An empty value is a section written without options (`api: {}` in a file).
            "api" => self.api = (value.is_empty() || parse_bool(value)?).then(ApiOptions::default),
            "ping" => self.ping = (value.is_empty() || parse_bool(value)?).then(PingOptions::default),
            _ => {}
        }
        if let Some(key) = lower.strip_prefix("api.") {
            let api = self.api.get_or_insert_with(ApiOptions::default);
            match key {
                "insecure" => api.insecure = parse_bool(value)?,
                "dashboard" => api.dashboard = parse_bool(value)?,
                "basepath" => api.base_path = parse_base_path(value)?,
                "debug" => {
                    api.debug = parse_bool(value)?;
                    if api.debug {
                        return Ok(Some(
                            "--api.debug is accepted but weir serves no /debug endpoints (they are Go's pprof and expvar)"
                                .into(),
                        ));
                    }
                }
                "disabledashboardad" => {
                    parse_bool(value)?;
                }
                other => return Err(format!("unknown option api.{other}")),
            }
        } else if let Some(key) = lower.strip_prefix("ping.") {
            let ping = self.ping.get_or_insert_with(PingOptions::default);
            match key {
                "entrypoint" => {
                    if value.is_empty() {
                        return Err("the entrypoint name is empty".into());
                    }
                    ping.entry_point = value.into();
                }
                "manualrouting" => ping.manual_routing = parse_bool(value)?,
                "terminatingstatuscode" => ping.terminating_status_code = parse_status(value)?,
                other => return Err(format!("unknown option ping.{other}")),
            }
        }
        Ok(None)
    }

    /// Traefik's rule: the `traefik` entrypoint is created at :8080 when the insecure API,
    /// automatic ping routing on it, or automatic metrics routing on it needs it.
    pub fn needs_internal_entrypoint(&self, metrics_on_traefik: bool) -> bool {
        let name = weir_proto::api::INTERNAL_ENTRYPOINT;
        self.api.as_ref().is_some_and(|a| a.insecure)
            || self.ping.as_ref().is_some_and(|p| !p.manual_routing && p.entry_point == name)
            || metrics_on_traefik
    }
}

/// `--api.basePath`: a path starting with `/`, kept without a trailing slash except `/`.
fn parse_base_path(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok("/".into());
    }
    if !trimmed.starts_with('/') {
        return Err("the base path must start with `/`".into());
    }
    let kept = trimmed.trim_end_matches('/');
    Ok(if kept.is_empty() { "/".into() } else { kept.into() })
}

/// An HTTP status code, 100–599.
fn parse_status(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err("expected an HTTP status code (100-599)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Options as `(lowercased key, value)`.
    type Options<'a> = &'a [(&'a str, &'a str)];

    fn apply(options: Options<'_>) -> Result<ApiConfig, String> {
        let mut c = ApiConfig::default();
        for (k, v) in options {
            c.set(k, v)?;
        }
        Ok(c)
    }

    #[test]
    fn options() {
        let api = |insecure, dashboard, base: &str| {
            Some(ApiOptions { insecure, dashboard, base_path: base.into(), debug: false })
        };
        let ping = |ep: &str, manual, code| {
            Some(PingOptions {
                entry_point: ep.into(),
                manual_routing: manual,
                terminating_status_code: code,
            })
        };
        let cases: [(&str, Options<'_>, Result<ApiConfig, ()>); 9] = [
            ("nothing", &[], Ok(ApiConfig::default())),
            ("bare api", &[("api", "true")], Ok(ApiConfig { api: api(false, true, "/"), ping: None })),
            (
                "insecure enables api",
                &[("api.insecure", "true")],
                Ok(ApiConfig { api: api(true, true, "/"), ping: None }),
            ),
            (
                "dashboard off, base path",
                &[("api.dashboard", "false"), ("api.basepath", "/admin/")],
                Ok(ApiConfig { api: api(false, false, "/admin"), ping: None }),
            ),
            ("api=false", &[("api", "false")], Ok(ApiConfig::default())),
            (
                "bare ping",
                &[("ping", "true")],
                Ok(ApiConfig { api: None, ping: ping("traefik", false, 503) }),
            ),
            (
                "ping options",
                &[
                    ("ping.entrypoint", "web"),
                    ("ping.manualrouting", "true"),
                    ("ping.terminatingstatuscode", "204"),
                ],
                Ok(ApiConfig { api: None, ping: ping("web", true, 204) }),
            ),
            ("bad status", &[("ping.terminatingstatuscode", "99")], Err(())),
            ("bad base path", &[("api.basepath", "admin")], Err(())),
        ];
        for (name, opts, want) in cases {
            assert_eq!(apply(opts).map_err(|_| ()), want, "{name}");
        }
    }

    #[test]
    fn internal_entrypoint_rule() {
        let cases: [(&str, Options<'_>, bool, bool); 6] = [
            ("nothing", &[], false, false),
            ("secure api", &[("api", "true")], false, false),
            ("insecure api", &[("api.insecure", "true")], false, true),
            ("ping on traefik", &[("ping", "true")], false, true),
            ("ping elsewhere", &[("ping.entrypoint", "web")], false, false),
            ("metrics", &[], true, true),
        ];
        for (name, opts, metrics, want) in cases {
            let c = apply(opts).expect("valid");
            assert_eq!(c.needs_internal_entrypoint(metrics), want, "{name}");
        }
    }
}
