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

/// `spec.tls`; kept loose because only its presence matters for now.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteTls {
    /// Kubernetes TLS secret.
    #[serde(default)]
    pub secret_name: Option<String>,
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
}
