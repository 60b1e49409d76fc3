//! `v1` Service: name, type and ports — what resolving an IngressRoute's service entry needs.

use serde::{Deserialize, Serialize};

use super::meta::{IntOrString, ObjectMeta};

/// A Service object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ServiceSpec,
}

/// `spec` of a Service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` (default), `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    /// Ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// Target of an ExternalName service.
    #[serde(default)]
    pub external_name: Option<String>,
    /// The virtual IP (`None` for headless services).
    #[serde(default, rename = "clusterIP")]
    pub cluster_ip: Option<String>,
}

/// One entry of `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name (may be absent when the service has one port).
    #[serde(default)]
    pub name: Option<String>,
    /// Service port number.
    pub port: i64,
    /// Container port.
    #[serde(default)]
    pub target_port: Option<IntOrString>,
    /// Port on every Node (NodePort and LoadBalancer Services; `nodePortLB` dials it).
    #[serde(default)]
    pub node_port: Option<i64>,
    /// `TCP` (default), `UDP`, `SCTP`.
    #[serde(default)]
    pub protocol: Option<String>,
}
