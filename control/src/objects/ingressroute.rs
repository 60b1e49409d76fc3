//! `traefik.io/v1alpha1` IngressRoute: the fields weir translates, plus the ones it must notice
//! to refuse (TLS, middlewares) rather than silently serve differently from Traefik.

use serde::{Deserialize, Serialize};

use super::meta::{IntOrString, ObjectMeta};

/// An IngressRoute object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRoute {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: IngressRouteSpec,
}

/// `spec` of an IngressRoute.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteSpec {
    /// Entrypoint names; empty means the default entrypoints.
    #[serde(default)]
    pub entry_points: Vec<String>,
    /// One router per route.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Present → TLS-only routers.
    #[serde(default)]
    pub tls: Option<IngressRouteTls>,
    /// Ingress class filter (Traefik 3.6+).
    #[serde(default)]
    pub ingress_class_name: Option<String>,
    /// Multi-layer routing parents (Traefik 3.7).
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
}

/// `spec.tls`: present → the routers are TLS-only.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteTls {
    /// Kubernetes TLS secret (same namespace); its certificate joins the default store.
    #[serde(default)]
    pub secret_name: Option<String>,
    /// TLSOption reference; absent means the `default` option.
    #[serde(default)]
    pub options: Option<ObjectRef>,
    /// TLSStore reference; only `default` exists.
    #[serde(default)]
    pub store: Option<ObjectRef>,
    /// ACME resolver name (ACME is not supported: reported, the route still serves).
    #[serde(default)]
    pub cert_resolver: Option<String>,
    /// Domains for ACME.
    #[serde(default)]
    pub domains: Vec<serde_yaml_ng::Value>,
}

/// One route of an IngressRoute.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The rule.
    #[serde(default, rename = "match")]
    pub match_: String,
    /// Must be `Rule` when present.
    #[serde(default)]
    pub kind: Option<String>,
    /// Priority; absent or 0 means the default priority.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Rule syntax (`v3` or `v2`, deprecated in Traefik); absent or empty means
    /// `--core.defaultRuleSyntax`. `ruleSyntax` (the file provider's spelling) is read too.
    #[serde(default, alias = "ruleSyntax")]
    pub syntax: Option<String>,
    /// Backends.
    #[serde(default)]
    pub services: Vec<ServiceRef>,
    /// Middleware references.
    #[serde(default)]
    pub middlewares: Vec<ObjectRef>,
}

/// A `{name, namespace}` reference.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Name.
    pub name: String,
    /// Namespace; defaults to the referencing object's.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A route's service entry (Traefik's `LoadBalancerSpec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Service (or TraefikService) name.
    pub name: String,
    /// `Service` (default) or `TraefikService`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Namespace; defaults to the IngressRoute's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Service port, by number or name.
    #[serde(default)]
    pub port: Option<IntOrString>,
    /// `http`, `https` or `h2c`; inferred when absent.
    #[serde(default)]
    pub scheme: Option<String>,
    /// Weight among the route's services (default 1).
    #[serde(default)]
    pub weight: Option<i64>,
    /// Forward the client's Host header (default true).
    #[serde(default)]
    pub pass_host_header: Option<bool>,
    /// Service-level middlewares.
    #[serde(default)]
    pub middlewares: Vec<ObjectRef>,
    /// Balance to the Service's ClusterIP instead of its endpoints (default: the provider's
    /// `nativeLBByDefault`).
    #[serde(default, rename = "nativeLB")]
    pub native_lb: Option<bool>,
    /// Balance to the node ports of a NodePort Service.
    #[serde(default, rename = "nodePortLB")]
    pub node_port_lb: Option<bool>,
    /// Servers load-balancing strategy (`wrr`, `p2c`, `hrw`, `leasttime`; `RoundRobin` is an
    /// alias of `wrr`).
    #[serde(default)]
    pub strategy: Option<String>,
    /// `responseForwarding.flushInterval`.
    #[serde(default)]
    pub response_forwarding: Option<super::service_spec::ResponseForwarding>,
    /// ServersTransport by name (`<name>` in the same namespace, or `name@provider`).
    #[serde(default)]
    pub servers_transport: Option<String>,
    /// Sticky sessions.
    #[serde(default)]
    pub sticky: Option<super::service_spec::Sticky>,
    /// Active health check (ExternalName services only).
    #[serde(default)]
    pub health_check: Option<super::service_spec::HealthCheckSpec>,
    /// Passive health check (ExternalName services only; Traefik 3.6+).
    #[serde(default)]
    pub passive_health_check: Option<serde_json::Value>,
    /// Percentage of requests copied to this service, when it is a mirror.
    #[serde(default)]
    pub percent: Option<i64>,
}
