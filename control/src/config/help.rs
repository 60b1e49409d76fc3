//! `weir --help`: every option weir understands, with its default.

use super::Environment;

/// The help text, with defaults computed for this environment.
pub fn text(env: &Environment) -> String {
    format!(
        "\
weir — Kubernetes ingress controller reading Traefik's CRDs (control plane)

USAGE:
    weir --manifests DIR [OPTIONS]
    weir check PATH [OPTIONS]   Offline migration report of a manifests directory or
                                `kubectl get -o yaml` dump (exit 1 on errors)
    weir crds                   Print the traefik.io CRDs as YAML (deploy/crds.yaml)

Configuration sources (one, not merged, as Traefik): a file given with --configFile=PATH or
found as traefik.toml, traefik.yaml, traefik.yml in /etc/traefik/, $XDG_CONFIG_HOME/,
$HOME/.config/, . (in that order); else these flags; else TRAEFIK_* environment variables
(TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80; `_` separates keys). weir's own options below are read
from every source (file section `weir:`, TRAEFIK_WEIR_*), flags last.

Traefik static configuration (keys are case-insensitive; written --key=value, a bare --key means true):
    --entryPoints.<name>.address=[host]:port[/tcp|/udp]
                         Listen address of entrypoint <name> (`:port` = all IPv4 addresses;
                         `/udp`: a UDP entrypoint, for IngressRouteUDP only).
                         Default when no entrypoint is configured: http on :80
    --entryPoints.<name>.udp.timeout=DURATION
                         Idle time after which a UDP session ends (default 3s)
    --entryPoints.<name>.asDefault[=BOOL]
                         Attach routers that name no entrypoint here (default false; when no
                         entrypoint has it, such routers attach to all entrypoints)
    --entryPoints.<name>.forwardedHeaders.trustedIPs=IP|CIDR,...
                         Peers whose X-Forwarded-* headers are kept (default none)
    --entryPoints.<name>.forwardedHeaders.insecure[=BOOL]
                         Keep X-Forwarded-* headers from every peer (default false)
    --entryPoints.<name>.proxyProtocol.trustedIPs=IP|CIDR,...
                         Peers whose PROXY protocol (v1/v2) header is read
    --entryPoints.<name>.proxyProtocol.insecure[=BOOL]
                         Read the PROXY header from every peer (default false)
    --entryPoints.<name>.http2.maxConcurrentStreams=N
                         HTTP/2 streams a client may open at once (default 250)
    --entryPoints.<name>.http.redirections.entryPoint.to=ENTRYPOINT|:PORT
                         Redirect every request to that entrypoint's port; also .scheme (default
                         https), .permanent (default true: 301/308, false: 302/307), .priority
                         (default MaxInt64-1)
    --entryPoints.<name>.http.tls[=BOOL]
                         Every router of the entrypoint is a TLS router; also .options=TLSOPTION
                         (<ns>-<name>) and .certResolver (ACME is not supported: reported)
    --entryPoints.<name>.http.middlewares=NAME@kubernetescrd,...
                         Middlewares prepended to every router of the entrypoint (default none)
    --entryPoints.<name>.http.maxHeaderBytes=N
                         Larger request heads get 431 (default 1048576; Go's 4096 slack added)
    --entryPoints.<name>.http.underscoreHeadersStrategy=keep|delete|reject
                         Request headers whose name holds `_` (default keep; reject = 400)
    --entryPoints.<name>.http.encodedCharacters.allowEncodedSlash=BOOL, .allowEncodedBackSlash,
      .allowEncodedNullCharacter, .allowEncodedSemicolon, .allowEncodedPercent,
      .allowEncodedQuestionMark, .allowEncodedHash
                         false refuses paths holding that escape with 400 (default true)
    --entryPoints.<name>.http.sanitizePath=BOOL, .http.encodeQuerySemicolons=BOOL
                         Read; weir always cleans paths and never re-encodes `;` (warned)
    --entryPoints.<name>.transport.respondingTimeouts.readTimeout=DURATION
                         A request head must arrive within it, from its first byte (default 60s; 0 = none)
    --entryPoints.<name>.transport.respondingTimeouts.writeTimeout=DURATION
                         A response not produced within it closes the connection (default 0 = none)
    --entryPoints.<name>.transport.respondingTimeouts.idleTimeout=DURATION
                         Keep-alive connections idle this long are closed (default 180s; 0 = none)
    --entryPoints.<name>.transport.keepAliveMaxRequests=N, .transport.keepAliveMaxTime=DURATION
                         The response reaching N requests / the age answers `Connection: close`
                         (default 0 = no limit)
    --entryPoints.<name>.transport.lifeCycle.requestAcceptGraceTimeout=DURATION
                         Keep accepting requests this long after SIGTERM (default 0)
    --entryPoints.<name>.transport.lifeCycle.graceTimeOut=DURATION
                         Time in-flight requests get on shutdown (default 10s)
    --entryPoints.<name>.forwardedHeaders.connection=HEADER,...
                         Read; not honoured yet (warned)
    --entryPoints.<name>.reusePort[=BOOL]
                         Always on: every worker has its own SO_REUSEPORT listener (false is warned)
    --api[=BOOL]         Traefik's API (api@internal) and dashboard (dashboard@internal); reach them
                         through an IngressRoute to `kind: TraefikService, name: api@internal`
    --api.insecure[=BOOL]
                         Serve /api and /dashboard/ on the `traefik` entrypoint (created on :8080
                         when not configured); `/` redirects to /dashboard/ (default false)
    --api.dashboard=BOOL Serve the dashboard (default true)
    --api.basePath=PATH  Prefix of /api and /dashboard on the traefik entrypoint (default /)
    --api.debug[=BOOL]   Accepted with a warning; weir has no /debug endpoints
    --ping[=BOOL]        GET/HEAD /ping answer `200 OK` (ping@internal)
    --ping.entryPoint=NAME
                         Entrypoint of the /ping router (default traefik, created on :8080)
    --ping.manualRouting[=BOOL]
                         No /ping router; route to ping@internal yourself (default false)
    --ping.terminatingStatusCode=CODE
                         Ping's answer while shutting down (default 503)
    --providers.kubernetesCRD[=BOOL]
                         Read Traefik's CRDs, Services, EndpointSlices and Secrets from the
                         Kubernetes API (in cluster, else .endpoint, else $KUBECONFIG); with
                         --manifests, from that directory unless .endpoint/.token is given
    --providers.kubernetesCRD.endpoint=URL, .token=TOKEN, .certAuthFilePath=PATH
                         API server, bearer token, CA bundle (same keys for kubernetesIngress)
    --providers.kubernetesCRD.namespaces=NS,NS, .labelSelector=SELECTOR, .ingressClass=NAME,
      .throttleDuration=DURATION, .disableClusterScopeResources[=BOOL]
                         As Traefik's kubernetesCRD provider (docs/kubernetes.md)
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
    --providers.kubernetesIngress[=BOOL]
                         Read Ingress/IngressClass objects (default: read when no provider is
                         named; with only --providers.kubernetesCRD they are ignored)
    --providers.kubernetesIngress.ingressClass=NAME
                         Handle only IngressClass NAME / kubernetes.io/ingress.class NAME
    --providers.kubernetesIngress.allowEmptyServices[=BOOL], .allowExternalNameServices[=BOOL],
      .nativeLBByDefault[=BOOL], .strictPrefixMatching[=BOOL], .disableIngressClassLookup[=BOOL],
      .disableClusterScopeResources[=BOOL], .labelSelector=SELECTOR, .namespaces=NS,NS,
      .ingressEndpoint.ip=IP, .ingressEndpoint.hostname=NAME, .ingressEndpoint.publishedService=NS/NAME
                         As Traefik's kubernetesIngress provider (docs/ingress.md)
    --core.defaultRuleSyntax=v2|v3
                         Syntax of rules whose route sets no `syntax` (default v3; v2 is deprecated)
    --log.level=LEVEL    TRACE, DEBUG, INFO, WARN or ERROR (default INFO; without it RUST_LOG is honoured)
    --log.format=common|json
                         Log line format of weir and its data plane (default common)
    --log.filePath=PATH  Append logs to PATH instead of standard error (default: standard error)
    --log.noColor[=BOOL] No ANSI colours (default false; colours only on a terminal)
    --metrics.prometheus[=BOOL]
                         Prometheus metrics at /metrics (prometheus@internal), Traefik's names
    --metrics.prometheus.entryPoint=NAME
                         Entrypoint of the /metrics router (default traefik, created on :8080)
    --metrics.prometheus.buckets=S,S,...
                         Request-duration histogram buckets in seconds (default 0.1,0.3,1.2,5)
    --metrics.prometheus.addEntryPointsLabels=BOOL, .addRoutersLabels=BOOL, .addServicesLabels=BOOL
                         traefik_entrypoint_*, traefik_router_*, traefik_service_* series
                         (defaults true, false, true)
    --metrics.prometheus.manualRouting[=BOOL]
                         No /metrics router; route to prometheus@internal yourself (default false)
    --metrics.prometheus.headerLabels.<label>=HEADER
                         Extra label of the *_requests_total series from a request header
    --accessLog[=BOOL]   One line per request (default off)
    --accessLog.filePath=PATH
                         Append to PATH, reopened on SIGUSR1 (default standard output)
    --accessLog.format=common|genericCLF|json
                         Traefik's line formats (default common)
    --accessLog.bufferingSize=N
                         Lines kept per worker before a write; also written every 100 ms (default 0:
                         every line at once)
    --accessLog.filters.statusCodes=CODE|FROM-TO,...
                         Keep only these statuses; .filters.retryAttempts[=BOOL] keeps retried
                         requests, .filters.minDuration=DURATION slower ones (any filter keeps)
    --accessLog.fields.defaultMode=keep|drop, .fields.names.<Field>=keep|drop
                         Which fields appear (default keep)
    --accessLog.fields.headers.defaultMode=keep|drop|redact, .fields.headers.names.<Header>=MODE
                         Which request_/origin_/downstream_ headers appear (default drop)

Traefik options weir does not implement are named in a warning at startup with the reason
(unknown options too), and weir runs with Traefik's default behaviour for them:
    certificatesResolvers.* (ACME); entryPoints.<name>.allowACMEByPass, .http.tls.certResolver,
      .http.tls.domains
    entryPoints.<name>.http3, .http3.advertisedPort (no HTTP/3)
    entryPoints.<name>.http2.maxDecoderHeaderTableSize, .maxEncoderHeaderTableSize (fixed 4096)
    entryPoints.<name>.forwardedHeaders.notAppendXForwardedFor (always appended),
      .forwardedHeaders.addXForwardedSchemeHeaders (never added)
    entryPoints.<name>.observability.accessLogs, .metrics, .tracing, .traceVerbosity (every
      entrypoint is logged and counted)
    serversTransport.insecureSkipVerify, .rootCAs, .maxIdleConnsPerHost (200),
      .forwardingTimeouts.dialTimeout (30s), .responseHeaderTimeout (0), .idleConnTimeout (90s),
      .spiffe; tcpServersTransport.dialTimeout (30s), .dialKeepAlive (15s), .terminationDelay
      (100ms), .tls.* — set transports per service with ServersTransport/ServersTransportTCP
    providers.providersThrottleDuration, providers.precedence, providers other than Kubernetes
    metrics.datadog, metrics.statsD, metrics.influxDB2, metrics.otlp (Prometheus only);
      metrics.addInternals, accessLog.addInternals (internal services are never counted)
    api.debug; tracing.*; experimental.plugins, .localPlugins and Traefik's other
      experimental features (weir's own: --experimental.sockmap below); hub; global.checkNewVersion,
      global.sendAnonymousUsage; hostResolver.cnameFlattening, .resolvConfig, .resolvDepth;
      spiffe; ocsp

weir options (also written --key VALUE, or --weir.KEY[=VALUE]):
    --configFile PATH    Traefik static configuration file (YAML or TOML), read alone
    --manifests DIR      Read Kubernetes objects from the YAML files under DIR and watch it (required)
    --socket PATH        Control socket of the data plane (default {socket})
    --dataplane PATH     Data plane binary started when none listens (default {dataplane})
    --workers N          Worker threads of a data plane weir starts (default: its own)
    --cpus LIST          CPUs for a data plane weir starts, e.g. 0-3,6 (default: its own)
    --weir.maxConnectionsPerWorker N
                         Client connections each data-plane worker serves at once; beyond
                         it new connections are closed at accept (default 65536)
    --experimental.sockmap
                         TCP passthrough bytes moved in the kernel by a sockmap (eBPF);
                         needs root or CAP_BPF + CAP_NET_ADMIN (default false)
    --experimental.udpFastPath
                         established UDP flows forwarded in the kernel by a TC program
                         (eBPF); needs root or CAP_BPF + CAP_NET_ADMIN (default false)
    --experimental.udpFastPath.interfaces LIST
                         interfaces it is attached to, e.g. lo,eth0 (default: lo and
                         every interface with a route)
    -h, --help           Print this help
    --version            Print the version
",
        socket = env.default_socket().display(),
        dataplane = env.default_dataplane().display(),
    )
}
