//! The static-configuration audit: every option of Traefik's static configuration reference
//! (shared/reference/traefik/static-config.md), one row each, must be either honoured (parsed
//! without a warning) or named in a warning that says why weir ignores it — never the generic
//! "unknown option", never an error for a valid value. Rows say which of the two is expected,
//! so an option that silently changes category fails too. `weir --help` must mention every
//! honoured option.

use super::*;

fn env() -> Environment {
    Environment { xdg_runtime_dir: None, euid: 1000, exe_dir: Some(PathBuf::from("/opt/weir/bin")) }
}

/// What weir does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Parsed and applied: no warning.
    Honoured,
    /// Parsed, or recognised, and named in a warning with the reason.
    Warned,
}
use Known::*;

/// (flag as written in Traefik's documentation, value, expectation).
const OPTIONS: &[(&str, &str, Known)] = &[
    // Entrypoints.
    ("entryPoints.web.address", ":8000", Honoured),
    ("entryPoints.web.asDefault", "true", Honoured),
    ("entryPoints.web.reusePort", "true", Honoured),
    ("entryPoints.web.allowACMEByPass", "true", Warned),
    ("entryPoints.web.http.redirections.entryPoint.to", ":443", Honoured),
    ("entryPoints.web.http.redirections.entryPoint.scheme", "https", Honoured),
    ("entryPoints.web.http.redirections.entryPoint.permanent", "false", Honoured),
    ("entryPoints.web.http.redirections.entryPoint.priority", "10", Honoured),
    ("entryPoints.web.http.middlewares", "default-auth@kubernetescrd", Honoured),
    ("entryPoints.web.http.tls", "true", Honoured),
    ("entryPoints.web.http.tls.options", "default", Honoured),
    ("entryPoints.web.http.tls.certResolver", "le", Warned),
    ("entryPoints.web.http.tls.domains[0].main", "example.com", Warned),
    ("entryPoints.web.http.encodedCharacters.allowEncodedSlash", "false", Honoured),
    ("entryPoints.web.http.encodedCharacters.allowEncodedBackSlash", "false", Honoured),
    ("entryPoints.web.http.encodedCharacters.allowEncodedNullCharacter", "false", Honoured),
    ("entryPoints.web.http.encodedCharacters.allowEncodedSemicolon", "false", Honoured),
    ("entryPoints.web.http.encodedCharacters.allowEncodedPercent", "false", Honoured),
    ("entryPoints.web.http.encodedCharacters.allowEncodedQuestionMark", "false", Honoured),
    ("entryPoints.web.http.encodedCharacters.allowEncodedHash", "false", Honoured),
    ("entryPoints.web.http.encodeQuerySemicolons", "true", Warned),
    ("entryPoints.web.http.sanitizePath", "false", Warned),
    ("entryPoints.web.http.maxHeaderBytes", "4096", Honoured),
    ("entryPoints.web.http.underscoreHeadersStrategy", "delete", Honoured),
    ("entryPoints.web.http2.maxConcurrentStreams", "100", Honoured),
    ("entryPoints.web.http2.maxDecoderHeaderTableSize", "8192", Warned),
    ("entryPoints.web.http2.maxEncoderHeaderTableSize", "8192", Warned),
    ("entryPoints.web.http3", "true", Warned),
    ("entryPoints.web.http3.advertisedPort", "443", Warned),
    ("entryPoints.web.transport.respondingTimeouts.readTimeout", "10s", Honoured),
    ("entryPoints.web.transport.respondingTimeouts.writeTimeout", "10s", Honoured),
    ("entryPoints.web.transport.respondingTimeouts.idleTimeout", "10s", Honoured),
    ("entryPoints.web.transport.lifeCycle.requestAcceptGraceTimeout", "1s", Honoured),
    ("entryPoints.web.transport.lifeCycle.graceTimeOut", "5s", Honoured),
    ("entryPoints.web.transport.keepAliveMaxRequests", "5", Honoured),
    ("entryPoints.web.transport.keepAliveMaxTime", "10s", Honoured),
    ("entryPoints.web.proxyProtocol.trustedIPs", "127.0.0.1", Honoured),
    ("entryPoints.web.proxyProtocol.insecure", "true", Honoured),
    ("entryPoints.web.forwardedHeaders.trustedIPs", "10.0.0.0/8,127.0.0.1", Honoured),
    ("entryPoints.web.forwardedHeaders.insecure", "true", Honoured),
    ("entryPoints.web.forwardedHeaders.connection", "X-Foo", Warned),
    ("entryPoints.web.forwardedHeaders.notAppendXForwardedFor", "true", Warned),
    ("entryPoints.web.forwardedHeaders.addXForwardedSchemeHeaders", "true", Warned),
    ("entryPoints.web.udp.timeout", "5s", Honoured),
    ("entryPoints.web.observability.accessLogs", "false", Warned),
    ("entryPoints.web.observability.metrics", "false", Warned),
    ("entryPoints.web.observability.tracing", "false", Warned),
    ("entryPoints.web.observability.traceVerbosity", "detailed", Warned),
    // Other global options.
    ("providers.providersThrottleDuration", "2s", Warned),
    ("providers.precedence", "kubernetescrd", Warned),
    ("serversTransport.insecureSkipVerify", "true", Warned),
    ("serversTransport.rootCAs", "/etc/ca.pem", Warned),
    ("serversTransport.maxIdleConnsPerHost", "10", Warned),
    ("serversTransport.forwardingTimeouts.dialTimeout", "5s", Warned),
    ("serversTransport.forwardingTimeouts.responseHeaderTimeout", "5s", Warned),
    ("serversTransport.forwardingTimeouts.idleConnTimeout", "5s", Warned),
    ("serversTransport.spiffe", "true", Warned),
    ("tcpServersTransport.dialTimeout", "5s", Warned),
    ("tcpServersTransport.dialKeepAlive", "5s", Warned),
    ("tcpServersTransport.terminationDelay", "5s", Warned),
    ("tcpServersTransport.tls.insecureSkipVerify", "true", Warned),
    ("tcpServersTransport.tls.rootCAs", "/etc/ca.pem", Warned),
    ("tcpServersTransport.tls.spiffe", "true", Warned),
    ("global.checkNewVersion", "false", Warned),
    ("global.sendAnonymousUsage", "false", Warned),
    ("core.defaultRuleSyntax", "v3", Honoured),
    ("hostResolver.cnameFlattening", "true", Warned),
    ("hostResolver.resolvConfig", "/etc/resolv.conf", Warned),
    ("hostResolver.resolvDepth", "5", Warned),
    ("log.level", "DEBUG", Honoured),
    ("log.format", "json", Honoured),
    ("log.filePath", "/tmp/weir-audit.log", Honoured),
    // API, dashboard, ping.
    ("api", "true", Honoured),
    ("api.insecure", "true", Honoured),
    ("api.dashboard", "true", Honoured),
    ("api.basePath", "/", Honoured),
    ("api.debug", "true", Warned),
    ("ping", "true", Honoured),
    ("ping.entryPoint", "traefik", Honoured),
    ("ping.manualRouting", "false", Honoured),
    ("ping.terminatingStatusCode", "503", Honoured),
    // Prometheus and the other metrics backends.
    ("metrics.prometheus", "true", Honoured),
    ("metrics.prometheus.buckets", "0.1,0.3,1.2,5", Honoured),
    ("metrics.prometheus.addEntryPointsLabels", "true", Honoured),
    ("metrics.prometheus.addRoutersLabels", "true", Honoured),
    ("metrics.prometheus.addServicesLabels", "true", Honoured),
    ("metrics.prometheus.entryPoint", "traefik", Honoured),
    ("metrics.prometheus.manualRouting", "false", Honoured),
    ("metrics.prometheus.headerLabels.tenant", "X-Tenant", Honoured),
    ("metrics.datadog", "true", Warned),
    ("metrics.statsD", "true", Warned),
    ("metrics.influxDB2", "true", Warned),
    ("metrics.otlp", "true", Warned),
    // Access logs.
    ("accessLog", "true", Honoured),
    ("accessLog.filePath", "/tmp/weir-audit-access.log", Honoured),
    ("accessLog.format", "json", Honoured),
    ("accessLog.bufferingSize", "100", Honoured),
    ("accessLog.filters.statusCodes", "400-499,500", Honoured),
    ("accessLog.filters.retryAttempts", "true", Honoured),
    ("accessLog.filters.minDuration", "10ms", Honoured),
    ("accessLog.fields.defaultMode", "keep", Honoured),
    ("accessLog.fields.names.ClientHost", "drop", Honoured),
    ("accessLog.fields.headers.defaultMode", "keep", Honoured),
    ("accessLog.fields.headers.names.User-Agent", "redact", Honoured),
    ("accessLog.addInternals", "true", Warned),
];

/// The warnings a run with `--key=value` (and what the option needs beside it) produces.
fn warnings_for(key: &str, value: &str) -> Result<Vec<String>, ConfigError> {
    let mut args = vec!["--manifests=/tmp".to_string(), format!("--{key}={value}")];
    let lower = key.to_ascii_lowercase();
    if lower.starts_with("entrypoints.web.") && !lower.ends_with(".address") {
        // A UDP option belongs on a UDP entrypoint.
        let address = if lower.ends_with("udp.timeout") { ":8053/udp" } else { ":8000" };
        args.insert(1, format!("--entryPoints.web.address={address}"));
    }
    match parse(args, &env())? {
        Command::Run { warnings, .. } => Ok(warnings),
        other => panic!("--{key}: expected a run configuration, got {other:?}"),
    }
}

#[test]
fn every_reference_option_is_honoured_or_named() {
    let mut failures = Vec::new();
    for (key, value, expected) in OPTIONS {
        let warnings = match warnings_for(key, value) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("--{key}={value}: refused: {e}"));
                continue;
            }
        };
        let generic = warnings.iter().find(|w| w.starts_with("unknown option"));
        // The reason must name the option (its last segment is enough for grouped warnings).
        let leaf = leaf(key);
        let named = warnings.iter().any(|w| w.to_ascii_lowercase().contains(&leaf));
        match (expected, generic, warnings.is_empty(), named) {
            (_, Some(w), _, _) => failures.push(format!("--{key}: only a generic warning: {w}")),
            (Honoured, None, true, _) => {}
            (Honoured, None, false, _) => {
                failures.push(format!("--{key}: expected honoured, warned {warnings:?}"))
            }
            (Warned, None, true, _) => failures.push(format!("--{key}: expected a warning, got none")),
            (Warned, None, false, false) => {
                failures.push(format!("--{key}: the warning does not name it: {warnings:?}"))
            }
            (Warned, None, false, true) => {}
        }
    }
    assert!(failures.is_empty(), "{} option(s) not accounted for:\n{}", failures.len(), failures.join("\n"));
}

/// The option's last name segment (`domains` for `http.tls.domains[0].main`), lower-case.
fn leaf(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    let indexed = lower.split('.').find(|s| s.contains('['));
    let last = indexed.or_else(|| lower.rsplit('.').next()).unwrap_or(&lower);
    last.split('[').next().unwrap_or(last).to_string()
}

#[test]
fn help_lists_every_option() {
    let help = help::text(&env()).to_ascii_lowercase();
    let mut missing = Vec::new();
    for (key, _, expected) in OPTIONS {
        // Entrypoint options are documented on `<name>`, map keys on a placeholder; a leaf may
        // be grouped on a line with its siblings (`.scheme`).
        let generic = key
            .replacen("entryPoints.web.", "entryPoints.<name>.", 1)
            .replace("headerLabels.tenant", "headerLabels.<label>")
            .replace("names.ClientHost", "names.<Field>")
            .replace("names.User-Agent", "names.<Header>")
            .to_ascii_lowercase();
        let found = match expected {
            Honoured => help.contains(&generic) || help.contains(&format!(".{}", leaf(&generic))),
            Warned => help.contains(&leaf(key)),
        };
        if !found {
            missing.push(*key);
        }
    }
    assert!(missing.is_empty(), "weir --help does not mention: {missing:?}");
}
