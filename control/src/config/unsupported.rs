//! Traefik static options weir does not implement: each is named in a warning that says why,
//! so nothing in a migrated configuration is silently dropped.

/// Traefik option prefixes (lower-case) weir knows and does not implement, with the reason.
const KNOWN: [(&str, &str); 39] = [
    ("certificatesresolvers", "ACME is not supported; serve certificates from Kubernetes TLS Secrets"),
    ("experimental", "plugins and experimental features are not supported"),
    ("providers.docker", "only the Kubernetes providers exist in weir"),
    ("providers.swarm", "only the Kubernetes providers exist in weir"),
    ("providers.file", "only the Kubernetes providers exist in weir (use a manifests directory)"),
    ("providers.consul", "only the Kubernetes providers exist in weir"),
    ("providers.etcd", "only the Kubernetes providers exist in weir"),
    ("providers.redis", "only the Kubernetes providers exist in weir"),
    ("providers.zookeeper", "only the Kubernetes providers exist in weir"),
    ("providers.http", "only the Kubernetes providers exist in weir"),
    ("providers.nomad", "only the Kubernetes providers exist in weir"),
    ("providers.ecs", "only the Kubernetes providers exist in weir"),
    ("providers.plugin", "plugins are not supported"),
    ("providers.rest", "the REST provider is not supported"),
    ("providers.providersthrottleduration", "weir applies changes as they come"),
    ("tracing", "tracing backends are not supported"),
    ("hub", "Traefik Hub is not supported"),
    ("pilot", "Traefik Pilot is not supported"),
    ("global", "weir neither checks for new versions nor sends usage data"),
    ("hostresolver", "CNAME flattening is not supported"),
    ("spiffe", "SPIFFE is not supported"),
    ("ocsp", "OCSP stapling is not supported"),
    ("serverstransport.spiffe", "SPIFFE is not supported"),
    ("entrypoints.*.http3", "HTTP/3 is not supported"),
    ("entrypoints.*.allowacmebypass", "ACME is not supported, so there are no challenge paths to hand over"),
    ("entrypoints.*.http.tls.domains", "TLS domains feed ACME certificate resolvers, which weir does not support"),
    (
        "entrypoints.*.http2.maxdecoderheadertablesize",
        "weir keeps the HPACK table size at 4096 bytes (Traefik's default)",
    ),
    (
        "entrypoints.*.http2.maxencoderheadertablesize",
        "weir keeps the HPACK table size at 4096 bytes (Traefik's default)",
    ),
    (
        "entrypoints.*.forwardedheaders.notappendxforwardedfor",
        "weir always appends the client to X-Forwarded-For",
    ),
    (
        "entrypoints.*.forwardedheaders.addxforwardedschemeheaders",
        "weir does not set X-Forwarded-Scheme or X-Scheme",
    ),
    (
        "entrypoints.*.observability",
        "per-entrypoint observability toggles are not supported: metrics and access logs cover every entrypoint, and tracing is not supported",
    ),
    ("providers.precedence", "weir does not rank providers; equal-priority routers are ordered as docs/routing.md says"),
    (
        "serverstransport",
        "the default servers transport is fixed (Traefik's defaults); configure transports per service with a ServersTransport object",
    ),
    (
        "tcpserverstransport",
        "the default TCP servers transport is fixed (Traefik's defaults); configure it per service with a ServersTransportTCP object",
    ),
    ("metrics.datadog", "only Prometheus metrics are supported"),
    ("metrics.statsd", "only Prometheus metrics are supported"),
    ("metrics.influxdb2", "only Prometheus metrics are supported"),
    ("metrics.influxdb", "only Prometheus metrics are supported"),
    ("metrics.otlp", "only Prometheus metrics are supported"),
];

/// The warning for an option no parser took. `flag` says whether it came from the command line
/// (it is then written `--key`).
pub fn warning(key: &str, flag: bool) -> String {
    let lower = key.to_ascii_lowercase();
    let shown = if flag { format!("--{key}") } else { key.to_string() };
    let generic = lower
        .split('.')
        .enumerate()
        .map(|(i, s)| if i == 1 && lower.starts_with("entrypoints.") { "*" } else { s })
        .collect::<Vec<_>>()
        .join(".");
    for (prefix, why) in KNOWN {
        let hit = |k: &str| {
            k == prefix || k.starts_with(&format!("{prefix}.")) || k.starts_with(&format!("{prefix}["))
        };
        if hit(&lower) || hit(&generic) {
            return format!("option {shown} is ignored: {why}");
        }
    }
    format!("unknown option {shown} is ignored (weir does not support it yet)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn warnings() {
        let cases = [
            (
                "certificatesResolvers.le.acme.email",
                true,
                "option --certificatesResolvers.le.acme.email is ignored: ACME",
            ),
            (
                "experimental.plugins.x.moduleName",
                false,
                "option experimental.plugins.x.moduleName is ignored: plugins",
            ),
            ("entryPoints.web.http3", true, "option --entryPoints.web.http3 is ignored: HTTP/3"),
            ("providers.docker", true, "option --providers.docker is ignored: only the Kubernetes"),
            ("providers.dockerish", true, "unknown option --providers.dockerish"),
            ("frobnicate", true, "unknown option --frobnicate"),
        ];
        for (key, flag, want) in cases {
            let got = super::warning(key, flag);
            assert!(got.starts_with(want), "{key}: {got}");
        }
    }
}
