//! `networking.k8s.io/v1` Ingress and IngressClass: the fields Traefik's kubernetesIngress
//! provider reads. Resource backends are typed only so that they can be refused by name.

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;

/// An Ingress object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// Metadata (annotations carry Traefik's `router.*` options).
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: IngressSpec,
}

/// `spec` of an Ingress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Name of the IngressClass; absent means the legacy annotation decides.
    #[serde(default)]
    pub ingress_class_name: Option<String>,
    /// Backend of requests no rule matches (used by Traefik only when there are no rules).
    #[serde(default)]
    pub default_backend: Option<IngressBackend>,
    /// TLS secrets (certificates go to the default store; `hosts` is not used for routing).
    #[serde(default)]
    pub tls: Vec<IngressTls>,
    /// Host rules.
    #[serde(default)]
    pub rules: Vec<IngressRule>,
}

/// One `spec.tls` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    /// Hosts the certificate is meant for (informational in Traefik).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `kubernetes.io/tls` Secret in the Ingress's namespace.
    #[serde(default)]
    pub secret_name: Option<String>,
}

/// One `spec.rules` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// Host (`foo.com` or `*.foo.com`); empty matches every host.
    #[serde(default)]
    pub host: Option<String>,
    /// HTTP paths; a rule without them yields nothing.
    #[serde(default)]
    pub http: Option<HttpIngressRuleValue>,
}

/// `rules[].http`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressRuleValue {
    /// Paths.
    #[serde(default)]
    pub paths: Vec<HttpIngressPath>,
}

/// `rules[].http.paths[]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressPath {
    /// Path; empty means none (host only).
    #[serde(default)]
    pub path: Option<String>,
    /// `Exact`, `Prefix` or `ImplementationSpecific` (absent: ImplementationSpecific).
    #[serde(default)]
    pub path_type: Option<String>,
    /// Backend.
    #[serde(default)]
    pub backend: IngressBackend,
}

/// A backend: a Service port or (refused) a resource.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressBackend {
    /// Service backend.
    #[serde(default)]
    pub service: Option<IngressServiceBackend>,
    /// Resource backend (not supported by Traefik).
    #[serde(default)]
    pub resource: Option<serde_json::Value>,
}

/// `backend.service`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressServiceBackend {
    /// Service name (same namespace).
    #[serde(default)]
    pub name: String,
    /// Port by number or name.
    #[serde(default)]
    pub port: ServiceBackendPort,
}

/// `backend.service.port`: `number` or `name`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceBackendPort {
    /// Port name.
    #[serde(default)]
    pub name: Option<String>,
    /// Port number.
    #[serde(default)]
    pub number: Option<i64>,
}

impl ServiceBackendPort {
    /// Traefik's `portString`: the name when given, else the number.
    pub fn as_string(&self) -> String {
        match self.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => self.number.unwrap_or(0).to_string(),
        }
    }
}

/// An IngressClass object (cluster scoped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClass {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: IngressClassSpec,
}

/// `spec` of an IngressClass.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressClassSpec {
    /// Controller name; Traefik's is `traefik.io/ingress-controller`.
    #[serde(default)]
    pub controller: String,
}
