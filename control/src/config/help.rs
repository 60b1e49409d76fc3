//! `weir --help`: every option weir understands, with its default.

use super::Environment;

/// The help text, with defaults computed for this environment.
pub fn text(env: &Environment) -> String {
    format!(
        "\
weir — Kubernetes ingress controller reading Traefik's CRDs (control plane)

USAGE:
    weir --manifests DIR [OPTIONS]

Traefik static configuration (keys are case-insensitive; written --key=value, a bare --key means true):
    --entryPoints.<name>.address=[host]:port[/tcp]
                         Listen address of entrypoint <name> (`:port` = all IPv4 addresses).
                         Default when no entrypoint is configured: http on :80
    --entryPoints.<name>.asDefault[=BOOL]
                         Attach routers that name no entrypoint here (default false; when no
                         entrypoint has it, such routers attach to all entrypoints)
    --entryPoints.<name>.forwardedHeaders.trustedIPs=IP|CIDR,...
                         Peers whose X-Forwarded-* headers are kept (default none)
    --entryPoints.<name>.forwardedHeaders.insecure[=BOOL]
                         Keep X-Forwarded-* headers from every peer (default false)
    --entryPoints.<name>.http2.maxConcurrentStreams=N
                         HTTP/2 streams a client may open at once (default 250)
    --entryPoints.<name>.http.redirections.entryPoint.to=ENTRYPOINT|:PORT
                         Redirect every request to that entrypoint's port; also .scheme (default
                         https), .permanent (default true: 301/308, false: 302/307), .priority
                         (default MaxInt64-1)
    --entryPoints.<name>.http.tls[=BOOL]
                         Every router of the entrypoint is a TLS router; also .options=TLSOPTION
                         (<ns>-<name>) and .certResolver (ACME is not supported: reported)
    --providers.kubernetesCRD[=BOOL]
                         Accepted; the Kubernetes API watcher is not built yet (use --manifests)
    --providers.kubernetesCRD.allowCrossNamespace[=BOOL]
                         Allow IngressRoutes to reference Services in other namespaces (default false)
    --providers.kubernetesCRD.allowEmptyServices[=BOOL]
                         Serve routes whose Service has no ready endpoint, answering 503
                         (default false: such routes are disabled)
    --providers.kubernetesCRD.allowExternalNameServices[=BOOL]
                         Allow references to ExternalName Services (default false)
    --providers.kubernetesCRD.nativeLBByDefault[=BOOL]
                         Balance to Services' ClusterIP instead of their endpoints, unless a
                         reference says nativeLB: false (default false)
    --core.defaultRuleSyntax=v2|v3
                         Syntax of rules whose route sets no `syntax` (default v3; v2 is deprecated)
    --log.level=LEVEL    TRACE, DEBUG, INFO, WARN or ERROR (default INFO; without it RUST_LOG is honoured)

weir options (also written --key VALUE):
    --manifests DIR      Read Kubernetes objects from the YAML files under DIR and watch it (required)
    --socket PATH        Control socket of the data plane (default {socket})
    --dataplane PATH     Data plane binary started when none listens (default {dataplane})
    --workers N          Worker threads of a data plane weir starts (default: its own)
    --cpus LIST          CPUs for a data plane weir starts, e.g. 0-3,6 (default: its own)
    -h, --help           Print this help
    --version            Print the version
",
        socket = env.default_socket().display(),
        dataplane = env.default_dataplane().display(),
    )
}
