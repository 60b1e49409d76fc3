//! `traefik.io/v1alpha1` ServersTransport: how load balancers that name it reach their
//! servers (TLS verification and client certificates, pool size, timeouts, HTTP/2).

use serde::{Deserialize, Serialize};

use super::meta::{IntOrString, ObjectMeta};

/// A ServersTransport object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransport {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ServersTransportSpec,
}

/// `spec` of a ServersTransport.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransportSpec {
    /// SNI sent to TLS servers.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Skip server certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// CAs from Secrets or ConfigMaps (keys `tls.ca` or `ca.crt`).
    #[serde(default, rename = "rootCAs")]
    pub root_cas: Vec<RootCa>,
    /// Deprecated: CA Secrets by name.
    #[serde(default, rename = "rootCAsSecrets")]
    pub root_cas_secrets: Vec<String>,
    /// Client certificate Secrets (`tls.crt`, `tls.key`).
    #[serde(default)]
    pub certificates_secrets: Vec<String>,
    /// Idle connections kept per server (default 200; negative disables reuse).
    #[serde(default)]
    pub max_idle_conns_per_host: Option<i64>,
    /// Timeouts.
    #[serde(default)]
    pub forwarding_timeouts: Option<ForwardingTimeouts>,
    /// Never use HTTP/2 with TLS servers.
    #[serde(default, rename = "disableHTTP2")]
    pub disable_http2: bool,
    /// Deprecated SPIFFE / peer checks: stored to be refused with a reason.
    #[serde(default, rename = "peerCertURI")]
    pub peer_cert_uri: Option<String>,
    /// SPIFFE settings: refused with a reason.
    #[serde(default)]
    pub spiffe: Option<serde_json::Value>,
}

/// One `rootCAs` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootCa {
    /// Secret name.
    #[serde(default)]
    pub secret: Option<String>,
    /// ConfigMap name.
    #[serde(default)]
    pub config_map: Option<String>,
}

/// `forwardingTimeouts`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardingTimeouts {
    /// Connect timeout (default 30s).
    #[serde(default)]
    pub dial_timeout: Option<IntOrString>,
    /// Response head timeout (default 0: none).
    #[serde(default)]
    pub response_header_timeout: Option<IntOrString>,
    /// Idle pooled connection lifetime (default 90s).
    #[serde(default)]
    pub idle_conn_timeout: Option<IntOrString>,
    /// HTTP/2 ping interval (default 0).
    #[serde(default)]
    pub read_idle_timeout: Option<IntOrString>,
    /// HTTP/2 ping timeout (default 15s).
    #[serde(default)]
    pub ping_timeout: Option<IntOrString>,
}
