//! `IngressRouteTCP` (traefik.io/v1alpha1): entrypoints, routes (a TCP rule, priority,
//! MiddlewareTCP references, weighted Service references) and TLS (passthrough or termination).
//! Data only; `translate::ingressroutetcp` resolves it.

use serde::{Deserialize, Serialize};

use super::{IntOrString, ObjectMeta, ObjectRef};

/// An IngressRouteTCP object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteTcp {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: IngressRouteTcpSpec,
}

/// `spec` of an IngressRouteTCP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteTcpSpec {
    /// Entrypoint names; empty means the default entrypoints.
    #[serde(default)]
    pub entry_points: Vec<String>,
    /// Routes: one TCP router each.
    #[serde(default)]
    pub routes: Vec<RouteTcp>,
    /// TLS: termination or passthrough.
    #[serde(default)]
    pub tls: Option<TlsTcp>,
    /// Ingress class (Traefik 3.6+).
    #[serde(default)]
    pub ingress_class_name: Option<String>,
}

/// One route of an IngressRouteTCP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTcp {
    /// The TCP rule.
    #[serde(rename = "match", default)]
    pub match_: String,
    /// Priority (0 or absent: the default).
    #[serde(default)]
    pub priority: Option<i64>,
    /// `v2` or `v3` (deprecated).
    #[serde(default)]
    pub syntax: Option<String>,
    /// Services connections are balanced over.
    #[serde(default)]
    pub services: Vec<ServiceTcp>,
    /// MiddlewareTCP references.
    #[serde(default)]
    pub middlewares: Vec<ObjectRef>,
}

/// `tls` of an IngressRouteTCP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsTcp {
    /// Secret holding the certificate (in the route's namespace).
    #[serde(default)]
    pub secret_name: Option<String>,
    /// Forward TLS untouched.
    #[serde(default)]
    pub passthrough: bool,
    /// TLSOption reference.
    #[serde(default)]
    pub options: Option<ObjectRef>,
    /// TLSStore reference.
    #[serde(default)]
    pub store: Option<ObjectRef>,
    /// ACME resolver (not supported).
    #[serde(default)]
    pub cert_resolver: Option<String>,
    /// Domains (ACME only).
    #[serde(default)]
    pub domains: Vec<serde_yaml_ng::Value>,
}

/// Traefik's `ServiceTCP`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceTcp {
    /// Service name.
    pub name: String,
    /// Namespace (defaults to the route's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Port: number or name (required).
    #[serde(default)]
    pub port: Option<IntOrString>,
    /// Weight (default 1).
    #[serde(default)]
    pub weight: Option<i64>,
    /// Dial the servers with TLS.
    #[serde(default)]
    pub tls: bool,
    /// Deprecated: ms before closing the other half after one side closed.
    #[serde(default)]
    pub termination_delay: Option<i64>,
    /// Deprecated: PROXY protocol to the servers.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocolSpec>,
    /// ServersTransportTCP name (in the Service's namespace).
    #[serde(default)]
    pub servers_transport: Option<String>,
    /// Balance to the ClusterIP.
    #[serde(default, rename = "nativeLB")]
    pub native_lb: Option<bool>,
    /// Balance to the nodes' NodePort.
    #[serde(default, rename = "nodePortLB")]
    pub node_port_lb: Option<bool>,
}

/// `proxyProtocol`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyProtocolSpec {
    /// 1 or 2 (Traefik default 2).
    #[serde(default)]
    pub version: Option<i64>,
}
