//! `traefik.io/v1alpha1` TLSOption and TLSStore: the fields weir translates (every documented
//! one; `preferServerCipherSuites` is read only to say it does nothing, as Traefik does).

use serde::{Deserialize, Serialize};

use super::meta::ObjectMeta;

/// A TLSOption object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsOption {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: TlsOptionSpec,
}

/// `spec` of a TLSOption.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptionSpec {
    /// `VersionTLS10` … `VersionTLS13`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// `VersionTLS10` … `VersionTLS13`.
    #[serde(default)]
    pub max_version: Option<String>,
    /// Go cipher-suite names; absent means all.
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
    /// Curve names; absent means the defaults.
    #[serde(default)]
    pub curve_preferences: Option<Vec<String>>,
    /// Client certificates.
    #[serde(default)]
    pub client_auth: ClientAuthSpec,
    /// Refuse unknown or absent SNI.
    #[serde(default)]
    pub sni_strict: bool,
    /// ALPN protocols; absent means `h2`, `http/1.1`, `acme-tls/1`.
    #[serde(default, rename = "alpnProtocols")]
    pub alpn_protocols: Option<Vec<String>>,
    /// Issue no session tickets.
    #[serde(default)]
    pub disable_session_tickets: bool,
    /// Deprecated, no effect.
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
}

/// `spec.clientAuth` of a TLSOption.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuthSpec {
    /// Secrets (same namespace) holding CA bundles under `tls.ca` or `ca.crt`.
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// Go's client-auth type name.
    #[serde(default)]
    pub client_auth_type: Option<String>,
}

/// A TLSStore object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsStore {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: TlsStoreSpec,
}

/// `spec` of a TLSStore.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsStoreSpec {
    /// The certificate served when no other matches.
    #[serde(default)]
    pub default_certificate: Option<SecretRef>,
    /// An ACME-generated default certificate (not supported: reported).
    #[serde(default)]
    pub default_generated_cert: Option<serde_yaml_ng::Value>,
    /// Certificates added to the store.
    #[serde(default)]
    pub certificates: Vec<SecretRef>,
}

/// `{secretName}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret in the object's namespace.
    #[serde(default)]
    pub secret_name: String,
}
