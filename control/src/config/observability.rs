//! Observability options: `--metrics.prometheus.*`, `--accessLog.*` and `--log.*` (format,
//! file, colour; the level is parsed in `mod.rs`). Keys arrive lowercased with the original
//! spelling beside them, because label, field and header names keep their case.

use weir_proto::observability::{AccessLog, AccessLogFormat, FieldMode, Observability, Prometheus};

/// `--log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (Traefik's `common`, the default).
    #[default]
    Common,
    /// One JSON object per line.
    Json,
}

/// `--log.*` beyond the level; both processes honour them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// `--log.format`.
    pub format: LogFormat,
    /// `--log.filePath`: append to this file instead of standard error.
    pub file_path: Option<String>,
    /// `--log.noColor`.
    pub no_color: bool,
}

/// The observability part of the static configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservabilityConfig {
    /// `--metrics.prometheus`.
    pub metrics: Option<Prometheus>,
    /// `--accessLog`.
    pub access_log: Option<AccessLog>,
    /// `--log.*`.
    pub log: LogOptions,
}

impl ObservabilityConfig {
    /// The snapshot form.
    pub fn to_snapshot(&self) -> Observability {
        Observability { metrics: self.metrics.clone(), access_log: self.access_log.clone() }
    }

    /// Whether the lowercased key is one of these options.
    pub fn owns(lower: &str) -> bool {
        lower.starts_with("metrics.prometheus")
            || lower == "metrics.addinternals"
            || lower == "accesslog"
            || lower.starts_with("accesslog.")
            || matches!(lower, "log.format" | "log.filepath" | "log.nocolor")
    }

    /// Applies one option whose key [`ObservabilityConfig::owns`].
    pub fn set(&mut self, key: &str, lower: &str, value: &str) -> Result<(), String> {
        self.apply(key, lower, value).unwrap_or_else(|| Err(format!("unknown option {key}")))
    }

    fn apply(&mut self, key: &str, lower: &str, value: &str) -> Option<Result<(), String>> {
        if let Some(rest) = lower.strip_prefix("metrics.prometheus") {
            // The original spelling of the part after the section, for label names.
            let original = &key[key.len() - rest.len()..];
            return Some(set_prometheus(
                self.metrics.get_or_insert_with(Prometheus::default),
                rest,
                original,
                value,
            ));
        }
        if lower == "metrics.addinternals" {
            return Some(parse_bool(value).map(|_| ()));
        }
        if let Some(rest) = lower.strip_prefix("accesslog") {
            if rest.is_empty() || rest.starts_with('.') {
                let original = &key[key.len() - rest.len()..];
                if rest.is_empty() {
                    return Some(parse_bool(value).map(|on| self.access_log = on.then(AccessLog::default)));
                }
                return Some(set_access_log(
                    self.access_log.get_or_insert_with(AccessLog::default),
                    rest,
                    original,
                    value,
                ));
            }
        }
        let log = &mut self.log;
        let result = match lower {
            "log.format" => match value.to_ascii_lowercase().as_str() {
                "common" => {
                    log.format = LogFormat::Common;
                    Ok(())
                }
                "json" => {
                    log.format = LogFormat::Json;
                    Ok(())
                }
                _ => Err("expected common or json".into()),
            },
            "log.filepath" => {
                log.file_path = Some(value.to_string()).filter(|v| !v.is_empty());
                Ok(())
            }
            "log.nocolor" => parse_bool(value).map(|b| log.no_color = b),
            _ => return None,
        };
        Some(result)
    }
}

/// How long `weir` waits for the data plane it started to drain after SIGTERM: the longest
/// `requestAcceptGraceTimeout + graceTimeOut` of the entrypoints, plus 5 s.
pub fn shutdown_wait(config: &super::StaticConfig) -> std::time::Duration {
    let longest = config
        .entrypoints
        .iter()
        .map(|e| {
            let o = e.to_snapshot().options;
            o.request_accept_grace_timeout_ms.saturating_add(o.grace_timeout_ms)
        })
        .max()
        .unwrap_or(weir_proto::entrypoint::DEFAULT_GRACE_TIMEOUT_MS);
    std::time::Duration::from_millis(longest.saturating_add(5_000))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    super::value::parse_bool(s)
}

fn set_prometheus(p: &mut Prometheus, rest: &str, original: &str, value: &str) -> Result<(), String> {
    match rest {
        // A bare `--metrics.prometheus` enables the section with its defaults.
        "" => {
            parse_bool(value)?;
            Ok(())
        }
        ".buckets" => {
            p.buckets = parse_buckets(value)?;
            Ok(())
        }
        ".addentrypointslabels" => parse_bool(value).map(|b| p.add_entry_points_labels = b),
        ".addrouterslabels" => parse_bool(value).map(|b| p.add_routers_labels = b),
        ".addserviceslabels" => parse_bool(value).map(|b| p.add_services_labels = b),
        ".entrypoint" if !value.is_empty() => {
            p.entry_point = value.to_string();
            Ok(())
        }
        ".manualrouting" => parse_bool(value).map(|b| p.manual_routing = b),
        _ => match original.get(".headerLabels.".len()..) {
            Some(label) if rest.starts_with(".headerlabels.") && valid_label(label) => {
                p.header_labels.retain(|(l, _)| l != label);
                p.header_labels.push((label.to_string(), value.to_string()));
                p.header_labels.sort();
                Ok(())
            }
            _ => Err(format!("unknown or invalid option metrics.prometheus{original}")),
        },
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn valid_label(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `0.1,0.3,1.2,5.0`: finite numbers, sorted and deduplicated as Prometheus wants them.
pub fn parse_buckets(s: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<f64>() {
            Ok(v) if v.is_finite() => out.push(v),
            _ => return Err(format!("`{part}` is not a number")),
        }
    }
    if out.is_empty() {
        return Err("no buckets".into());
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

fn set_access_log(a: &mut AccessLog, rest: &str, original: &str, value: &str) -> Result<(), String> {
    match rest {
        ".filepath" => {
            a.file_path = Some(value.to_string()).filter(|v| !v.is_empty());
            Ok(())
        }
        ".format" => {
            a.format = match value.to_ascii_lowercase().as_str() {
                "common" | "" => AccessLogFormat::Common,
                "json" => AccessLogFormat::Json,
                "genericclf" => AccessLogFormat::GenericClf,
                _ => return Err("expected common, json or genericCLF".into()),
            };
            Ok(())
        }
        ".bufferingsize" => {
            value.trim().parse().map(|n| a.buffering_size = n).map_err(|_| "expected a count".into())
        }
        ".addinternals" | ".dualoutput" => parse_bool(value).map(|_| ()),
        ".filters" => parse_bool(value).map(|_| ()),
        ".filters.statuscodes" => {
            a.filters.status_codes = parse_status_ranges(value)?;
            Ok(())
        }
        ".filters.retryattempts" => parse_bool(value).map(|b| a.filters.retry_attempts = b),
        ".filters.minduration" => {
            let ns = crate::translate::duration::parse_str_nanos(value.trim())
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("`{value}` is not a duration"))?;
            a.filters.min_duration_ms = u64::try_from(ns / 1_000_000).unwrap_or(u64::MAX);
            Ok(())
        }
        ".fields" => parse_bool(value).map(|_| ()),
        ".fields.defaultmode" => parse_mode(value, false).map(|m| a.fields.default_mode = m),
        ".fields.headers.defaultmode" => parse_mode(value, true).map(|m| a.fields.headers_default_mode = m),
        ".fields.queryparameters.defaultmode" => {
            parse_mode(value, false).map(|m| a.fields.keep_query = m == FieldMode::Keep)
        }
        _ if rest.starts_with(".fields.headers.names.") => {
            let name = canonical_header(&original[".fields.headers.names.".len()..]);
            let mode = parse_mode(value, true)?;
            a.fields.header_names.retain(|(n, _)| *n != name);
            a.fields.header_names.push((name, mode));
            a.fields.header_names.sort_by(|x, y| x.0.cmp(&y.0));
            Ok(())
        }
        _ if rest.starts_with(".fields.names.") => {
            // Traefik compares field names case-insensitively.
            let name = rest[".fields.names.".len()..].to_string();
            let mode = parse_mode(value, false)?;
            a.fields.names.retain(|(n, _)| *n != name);
            a.fields.names.push((name, mode));
            a.fields.names.sort_by(|x, y| x.0.cmp(&y.0));
            Ok(())
        }
        _ => Err(format!("unknown option accessLog{original}")),
    }
}

/// `keep`, `drop`, and for headers `redact`.
fn parse_mode(s: &str, header: bool) -> Result<FieldMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "keep" => Ok(FieldMode::Keep),
        "drop" => Ok(FieldMode::Drop),
        "redact" if header => Ok(FieldMode::Redact),
        _ if header => Err("expected keep, drop or redact".into()),
        _ => Err("expected keep or drop".into()),
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `x-request-id` → `X-Request-Id`.
pub fn canonical_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
        upper = c == '-';
    }
    out
}

/// Traefik's `statusCodes`: `200,300-302` (a comma list; each item a code or a range).
pub fn parse_status_ranges(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let code =
            |v: &str| v.trim().parse::<u16>().map_err(|_| format!("`{part}` is not a status code range"));
        let (a, b) = (code(a)?, code(b)?);
        if a > b {
            return Err(format!("`{part}`: the range is reversed"));
        }
        out.push((a, b));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(pairs: &[(&str, &str)]) -> Result<ObservabilityConfig, String> {
        let mut c = ObservabilityConfig::default();
        for (k, v) in pairs {
            let lower = k.to_ascii_lowercase();
            assert!(ObservabilityConfig::owns(&lower), "{k} is ours");
            c.set(k, &lower, v)?;
        }
        Ok(c)
    }

    #[test]
    fn metrics_options() {
        let c = apply(&[("metrics.prometheus", "true")]).expect("valid");
        assert_eq!(c.metrics, Some(Prometheus::default()));
        let c = apply(&[
            ("metrics.prometheus.buckets", "5,0.1,1"),
            ("metrics.prometheus.addRoutersLabels", "true"),
            ("metrics.prometheus.addEntryPointsLabels", "false"),
            ("metrics.prometheus.entryPoint", "metrics"),
            ("metrics.prometheus.headerLabels.Tenant", "X-Tenant"),
        ])
        .expect("valid");
        let m = c.metrics.expect("enabled by any of its keys");
        assert_eq!(m.buckets, vec![0.1, 1.0, 5.0]);
        assert!(m.add_routers_labels && !m.add_entry_points_labels && m.add_services_labels);
        assert_eq!(m.entry_point, "metrics");
        assert_eq!(m.header_labels, vec![("Tenant".to_string(), "X-Tenant".to_string())]);
        let bad = [
            ("buckets not numbers", ("metrics.prometheus.buckets", "a,b")),
            ("NaN bucket", ("metrics.prometheus.buckets", "NaN")),
            ("bad label", ("metrics.prometheus.headerLabels.1x", "X")),
            ("bad bool", ("metrics.prometheus.manualRouting", "maybe")),
        ];
        for (name, pair) in bad {
            assert!(apply(&[pair]).is_err(), "case {name}");
        }
    }

    #[test]
    fn access_log_options() {
        let c = apply(&[
            ("accessLog", "true"),
            ("accessLog.filePath", "/tmp/a.log"),
            ("accessLog.format", "json"),
            ("accessLog.filters.statusCodes", "200,400-499"),
            ("accessLog.filters.minDuration", "10ms"),
            ("accessLog.fields.names.ClientHost", "drop"),
            ("accessLog.fields.headers.defaultMode", "keep"),
            ("accessLog.fields.headers.names.user-agent", "redact"),
        ])
        .expect("valid");
        let a = c.access_log.expect("enabled");
        assert_eq!(a.file_path.as_deref(), Some("/tmp/a.log"));
        assert_eq!(a.format, AccessLogFormat::Json);
        assert_eq!(a.filters.status_codes, vec![(200, 200), (400, 499)]);
        assert_eq!(a.filters.min_duration_ms, 10);
        assert_eq!(a.fields.names, vec![("clienthost".to_string(), FieldMode::Drop)]);
        assert_eq!(a.fields.headers_default_mode, FieldMode::Keep);
        assert_eq!(a.fields.header_names, vec![("User-Agent".to_string(), FieldMode::Redact)]);
        let bad = [
            ("reversed range", ("accessLog.filters.statusCodes", "499-400")),
            ("redact a field", ("accessLog.fields.defaultMode", "redact")),
            ("unknown format", ("accessLog.format", "xml")),
            ("unknown key", ("accessLog.bogus", "1")),
        ];
        for (name, pair) in bad {
            assert!(apply(&[pair]).is_err(), "case {name}");
        }
        assert_eq!(apply(&[("accessLog", "false")]).expect("valid").access_log, None);
    }

    #[test]
    fn log_options_and_foreign_keys() {
        let c = apply(&[("log.format", "JSON"), ("log.filePath", "/tmp/w.log"), ("log.noColor", "true")])
            .expect("valid");
        assert_eq!(
            c.log,
            LogOptions { format: LogFormat::Json, file_path: Some("/tmp/w.log".into()), no_color: true }
        );
        for key in ["log.level", "accesslogs", "entrypoints.web.address", "metrics", "metrics.datadog"] {
            assert!(!ObservabilityConfig::owns(key), "{key} is not ours");
        }
    }

    #[test]
    fn canonical_headers() {
        for (raw, want) in
            [("user-agent", "User-Agent"), ("X-REQUEST-ID", "X-Request-Id"), ("referer", "Referer")]
        {
            assert_eq!(canonical_header(raw), want);
        }
    }
}
