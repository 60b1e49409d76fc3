//! `discovery.k8s.io/v1` EndpointSlice: the addresses and ports behind a Service.

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;

/// The label tying a slice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An EndpointSlice object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// `IPv4`, `IPv6` or `FQDN`.
    #[serde(default)]
    pub address_type: Option<String>,
    /// Endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Ports shared by all endpoints of the slice.
    #[serde(default)]
    pub ports: Vec<EndpointPort>,
}

impl EndpointSlice {
    /// The Service this slice belongs to (its `kubernetes.io/service-name` label).
    pub fn service_name(&self) -> Option<&str> {
        self.metadata.labels.get(SERVICE_NAME_LABEL).map(String::as_str)
    }
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Addresses (all of one pod).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Readiness conditions.
    #[serde(default)]
    pub conditions: EndpointConditions,
}

/// `conditions` of an endpoint; absent values are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConditions {
    /// Ready for traffic.
    #[serde(default)]
    pub ready: Option<bool>,
    /// Serving (ready, even when terminating).
    #[serde(default)]
    pub serving: Option<bool>,
    /// Terminating.
    #[serde(default)]
    pub terminating: Option<bool>,
}

impl EndpointConditions {
    /// Whether the endpoint may receive traffic. Traefik reads `serving` alone (absent means
    /// true; `ready` is not consulted): a terminating endpoint that still serves is kept.
    pub fn is_serving(&self) -> bool {
        self.serving.unwrap_or(true)
    }
}

/// One port of a slice.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    /// Name, matching the Service port's name (absent == "").
    #[serde(default)]
    pub name: Option<String>,
    /// Port number on the endpoints.
    #[serde(default)]
    pub port: Option<i64>,
    /// Protocol.
    #[serde(default)]
    pub protocol: Option<String>,
}
