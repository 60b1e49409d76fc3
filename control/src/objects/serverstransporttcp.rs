//! `ServersTransportTCP` (traefik.io/v1alpha1): how TCP services reach their servers (dial
//! timeout and keep-alive, termination delay, PROXY protocol, TLS). Data only;
//! `translate::ingressroutetcp` resolves it.

use serde::{Deserialize, Serialize};

use super::{IntOrString, ObjectMeta, ProxyProtocolSpec, RootCa};

/// A ServersTransportTCP object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransportTcp {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ServersTransportTcpSpec,
}

/// `spec` of a ServersTransportTCP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServersTransportTcpSpec {
    /// Connect timeout (Go duration or seconds).
    pub dial_timeout: Option<IntOrString>,
    /// Keep-alive period.
    pub dial_keep_alive: Option<IntOrString>,
    /// Delay before closing the other direction once one side closed.
    pub termination_delay: Option<IntOrString>,
    /// PROXY protocol sent to the servers.
    pub proxy_protocol: Option<ProxyProtocolSpec>,
    /// TLS to the servers.
    pub tls: Option<TlsClientConfigTcp>,
}

/// `spec.tls` of a ServersTransportTCP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TlsClientConfigTcp {
    /// SNI and verification name.
    pub server_name: Option<String>,
    /// Skip verification.
    pub insecure_skip_verify: bool,
    /// CA references.
    #[serde(rename = "rootCAs")]
    pub root_cas: Vec<RootCa>,
    /// Secrets of client certificates.
    pub certificates_secrets: Vec<String>,
    /// Required URI SAN.
    #[serde(rename = "peerCertURI")]
    pub peer_cert_uri: Option<String>,
}
