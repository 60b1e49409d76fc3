//! `traefik.io/v1alpha1` TraefikService: a weighted or mirroring service over Kubernetes
//! Services and other TraefikServices.

use serde::{Deserialize, Serialize};

use super::ingressroute::ServiceRef;
use super::meta::ObjectMeta;
use super::service_spec::Sticky;

/// A TraefikService object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraefikService {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec: exactly one kind of service.
    #[serde(default)]
    pub spec: TraefikServiceSpec,
}

/// `spec` of a TraefikService.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraefikServiceSpec {
    /// Weighted round robin.
    #[serde(default)]
    pub weighted: Option<Weighted>,
    /// Mirroring.
    #[serde(default)]
    pub mirroring: Option<Box<Mirroring>>,
    /// Highest random weight (Traefik 3.x): stored to be refused with a reason.
    #[serde(default)]
    pub highest_random_weight: Option<serde_json::Value>,
    /// Failover (Traefik 3.x): stored to be refused with a reason.
    #[serde(default)]
    pub failover: Option<serde_json::Value>,
}

/// `spec.weighted`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Weighted {
    /// Children with weights (default 1).
    #[serde(default)]
    pub services: Vec<ServiceRef>,
    /// Sticky sessions over the children.
    #[serde(default)]
    pub sticky: Option<Sticky>,
}

/// `spec.mirroring`: a main service (the flattened `LoadBalancerSpec`) and its mirrors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirroring {
    /// The main service.
    #[serde(flatten)]
    pub service: ServiceRef,
    /// Mirrors, each with `percent`.
    #[serde(default)]
    pub mirrors: Vec<ServiceRef>,
    /// Copy the request body to mirrors (default true).
    #[serde(default)]
    pub mirror_body: Option<bool>,
    /// Largest body mirrored (default -1: unlimited).
    #[serde(default)]
    pub max_body_size: Option<i64>,
}
