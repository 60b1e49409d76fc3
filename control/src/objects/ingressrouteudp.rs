//! `IngressRouteUDP` (traefik.io/v1alpha1): entrypoints and routes of weighted Service
//! references; no rule, no TLS, no middlewares. Data only; `translate::ingressrouteudp`
//! resolves it.

use serde::{Deserialize, Serialize};

use super::{IntOrString, ObjectMeta};

/// An IngressRouteUDP object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteUdp {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: IngressRouteUdpSpec,
}

/// `spec` of an IngressRouteUDP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteUdpSpec {
    /// UDP entrypoint names; empty means every UDP entrypoint (Traefik).
    #[serde(default)]
    pub entry_points: Vec<String>,
    /// Routes: one UDP router each.
    #[serde(default)]
    pub routes: Vec<RouteUdp>,
    /// Ingress class (Traefik 3.6+).
    #[serde(default)]
    pub ingress_class_name: Option<String>,
}

/// One route of an IngressRouteUDP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteUdp {
    /// Services sessions are balanced over.
    #[serde(default)]
    pub services: Vec<ServiceUdp>,
}

/// Traefik's `ServiceUDP`: a Kubernetes Service port with a weight.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceUdp {
    /// Service name.
    pub name: String,
    /// Namespace (defaults to the IngressRouteUDP's).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Service port: number or name (required).
    #[serde(default)]
    pub port: Option<IntOrString>,
    /// Weight among the route's services (default 1).
    #[serde(default)]
    pub weight: Option<i64>,
    /// Balance to the ClusterIP instead of the endpoints.
    #[serde(default, rename = "nativeLB")]
    pub native_lb: Option<bool>,
    /// Balance to the nodes' NodePort.
    #[serde(default, rename = "nodePortLB")]
    pub node_port_lb: Option<bool>,
}
