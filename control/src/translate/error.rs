//! Why a router is disabled: one variant per cause, naming the object at fault. The `Display`
//! text is what the log and (later) the API show.

use weir_proto::rule::{RuleError, MAX_USER_PRIORITY};

/// A reason to disable one router.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TranslateError {
    /// `kind` other than `Rule`.
    #[error("route kind `{0}` is not supported (expected Rule)")]
    RouteKind(String),
    /// `match` missing or empty.
    #[error("match is empty")]
    EmptyMatch,
    /// The rule does not parse.
    #[error("invalid rule `{rule}`: {source}")]
    InvalidRule {
        /// The rule as written.
        rule: String,
        /// Parser error.
        source: RuleError,
    },
    /// Priority above what Traefik reserves for users.
    #[error("priority {0} is above the maximum user priority {MAX_USER_PRIORITY}")]
    PriorityTooHigh(i64),
    /// `spec.parentRefs` is set.
    #[error("parentRefs are not supported yet")]
    ParentRefsNotSupported,
    /// A middleware the route uses cannot be served; serving without it (e.g. auth) would be unsafe.
    #[error(transparent)]
    Middleware(#[from] super::middleware::MiddlewareError),
    /// None of the named entrypoints exists.
    #[error("no valid entrypoint: {} not defined", .names.join(", "))]
    NoEntryPoints {
        /// The names the route asked for.
        names: Vec<String>,
    },
    /// The route lists no service.
    #[error("route has no services")]
    NoServices,
    /// A service kind Traefik does not know.
    #[error("service `{name}`: unknown kind `{kind}` (expected Service or TraefikService)")]
    UnknownServiceKind {
        /// Referenced name.
        name: String,
        /// The kind as written.
        kind: String,
    },
    /// `name@provider` reference.
    #[error("service `{name}`: cross-provider references are not supported yet")]
    CrossProvider {
        /// Referenced name.
        name: String,
    },
    /// Reference into another namespace while that is not allowed.
    #[error(
        "service {namespace}/{name}: reference from namespace {from} is not allowed \
         (--providers.kubernetesCRD.allowCrossNamespace is false)"
    )]
    CrossNamespace {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
        /// Namespace of the IngressRoute.
        from: String,
    },
    /// Service reference without a port.
    #[error("service {namespace}/{name}: port is required")]
    MissingPort {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// The Service does not exist.
    #[error("service {namespace}/{name} not found")]
    MissingService {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// ExternalName service (Traefik: allowExternalNameServices defaults to false).
    #[error("service {namespace}/{name}: ExternalName services are not allowed")]
    ExternalName {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// The Service has no such port.
    #[error("service port not found: {namespace}/{name} has no port {port}")]
    PortNotFound {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
        /// The port as written.
        port: String,
    },
    /// `scheme` other than http, https, h2c.
    #[error("service {namespace}/{name}: invalid scheme `{scheme}` (expected http, https or h2c)")]
    InvalidScheme {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
        /// The scheme as written.
        scheme: String,
    },
    /// No serving endpoint and allowEmptyServices is false.
    #[error("no endpoints for service {namespace}/{name}")]
    NoEndpoints {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// Headless or IP-less Service referenced with `nativeLB`.
    #[error("service {namespace}/{name}: nativeLB needs a ClusterIP, and the Service has none (headless)")]
    NoClusterIp {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// `nodePortLB` on a NodePort Service with `disableClusterScopeResources` (Traefik's words).
    #[error("service {namespace}/{name}: nodes lookup is disabled (disableClusterScopeResources), needed by nodePortLB")]
    NodesLookupDisabled {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// `nodePortLB` on a NodePort Service while no Node is known (Traefik's message).
    #[error("nodes not found for NodePort service {namespace}/{name}")]
    NoNodes {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// `nodePortLB`: Nodes exist but none has an InternalIP address (Traefik's message).
    #[error("no servers were generated for service {namespace}/{name}")]
    NoNodeServers {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// `nodePortLB` on a Service port without a (valid) `nodePort`.
    #[error("service {namespace}/{name}: port {port} has no nodePort, needed by nodePortLB")]
    NoNodePort {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
        /// The Service port.
        port: i64,
    },
    /// `healthCheck` on a reference to a Service that is not ExternalName.
    #[error("healthCheck allowed only for ExternalName services: {namespace}/{name}")]
    HealthCheckNotAllowed {
        /// Service namespace.
        namespace: String,
        /// Service name.
        name: String,
    },
    /// A field of a service reference Traefik would refuse, or weir cannot honour.
    #[error("service `{name}`: {reason}")]
    InvalidServiceSpec {
        /// Referenced name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The TraefikService does not exist.
    #[error("TraefikService {namespace}/{name} not found")]
    MissingTraefikService {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// A TraefikService that cannot be built (naming the culprit inside it).
    #[error("TraefikService {namespace}/{name}: {reason}")]
    InvalidTraefikService {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why, including nested causes.
        reason: String,
    },
    /// TraefikServices that reference each other in a loop.
    #[error("TraefikServices form a cycle: {}", .chain.join(" -> "))]
    TraefikServiceCycle {
        /// The loop, first element repeated at the end.
        chain: Vec<String>,
    },
    /// A ServersTransport reference that does not resolve.
    #[error("serversTransport `{name}`: {reason}")]
    ServersTransport {
        /// The reference as written.
        name: String,
        /// Why.
        reason: String,
    },
    /// The route's TLS secret or option reference is not usable.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// Negative or oversized weight.
    #[error("service `{name}`: invalid weight {weight}")]
    InvalidWeight {
        /// Referenced name.
        name: String,
        /// The weight as written.
        weight: i64,
    },
}
