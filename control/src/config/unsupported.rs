//! Traefik static options weir does not implement: each is named in a warning that says why,
//! so nothing in a migrated configuration is silently dropped.

/// Traefik option prefixes (lower-case) weir knows and does not implement, with the reason.
const KNOWN: [(&str, &str); 24] = [
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
        let hit = |k: &str| k == prefix || k.starts_with(&format!("{prefix}."));
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
