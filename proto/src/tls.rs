//! TLS in the snapshot: the default store's certificates (PEM, with the names each one answers
//! for), TLS options (Traefik's `TLSOption`, already validated by the control plane) and, per
//! entrypoint, which option the TLS handshake uses for which SNI. It also owns the mapping of
//! Traefik's (Go's) names for versions, cipher suites, curves and client-auth types to the
//! enums below, so both planes agree on what a name means. Plain data: no crypto here.

use serde::{Deserialize, Serialize};

/// Name of the TLS option used when a router names none, and of the default store.
pub const DEFAULT_TLS_OPTION: &str = "default";

/// Everything the data plane needs to terminate TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tls {
    /// Certificates of the default store, in the order Traefik adds them (by
    /// `<namespace>/<secret>`); for a set of names seen twice, the first one is kept.
    pub certificates: Vec<Certificate>,
    /// The default store's `defaultCertificate`; `None` means the data plane's self-signed
    /// `TRAEFIK DEFAULT CERT`.
    pub default_certificate: Option<Certificate>,
    /// TLS options by name. [`DEFAULT_TLS_OPTION`] is always present.
    pub options: Vec<TlsOption>,
    /// Per entrypoint: which option serves which SNI, and which option each TLS router expects.
    pub entrypoints: Vec<EntryPointTls>,
}

/// A certificate chain with its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// Where it came from (`<namespace>/<secret>`), for logs.
    pub source: String,
    /// PEM certificate chain, leaf first.
    pub chain_pem: Vec<u8>,
    /// PEM private key.
    pub key_pem: Vec<u8>,
    /// Lower-case names it serves: its subject CN, DNS SANs (`*.x` wildcards kept) and IP SANs.
    pub names: Vec<String>,
}

/// A TLS option, Traefik's `tls.options.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsOption {
    /// `default` or `<namespace>-<name>`.
    pub name: String,
    /// Why the option cannot be used; handshakes that select it are refused (Traefik closes
    /// the connection of a host whose TLS options are broken).
    pub broken: Option<String>,
    /// Lowest version accepted.
    pub min_version: TlsVersion,
    /// Highest version accepted.
    pub max_version: TlsVersion,
    /// TLS 1.2 cipher suites, in preference order; `None` means all. TLS 1.3 suites are not
    /// configurable (as in Go).
    pub cipher_suites: Option<Vec<CipherSuite>>,
    /// Key-exchange groups, in preference order; `None` means the defaults.
    pub curves: Option<Vec<Curve>>,
    /// Client certificate policy.
    pub client_auth: ClientAuthType,
    /// PEM bundles of CAs that client certificates must chain to.
    pub client_cas_pem: Vec<Vec<u8>>,
    /// Refuse handshakes whose SNI is absent or matches no certificate.
    pub sni_strict: bool,
    /// ALPN protocols offered, in preference order (`acme-tls/1` already removed).
    pub alpn_protocols: Vec<String>,
    /// Issue no session tickets.
    pub disable_session_tickets: bool,
}

impl TlsOption {
    /// Traefik's built-in `default` option: TLS 1.2+, every suite, `h2` then `http/1.1`.
    pub fn traefik_default() -> TlsOption {
        TlsOption {
            name: DEFAULT_TLS_OPTION.into(),
            broken: None,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: None,
            curves: None,
            client_auth: ClientAuthType::NoClientCert,
            client_cas_pem: Vec::new(),
            sni_strict: false,
            alpn_protocols: vec!["h2".into(), "http/1.1".into()],
            disable_session_tickets: false,
        }
    }
}

/// TLS settings of one entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EntryPointTls {
    /// Entrypoint name.
    pub entrypoint: String,
    /// SNI → option, from the `Host` matchers of the TLS routers (lower-case; `*.x` matches one
    /// label). An SNI listed nowhere uses [`DEFAULT_TLS_OPTION`].
    pub hosts: Vec<SniOption>,
    /// The option each TLS router expects the connection to have used; a request whose
    /// connection used another one is answered `421 Misdirected Request` (Traefik's SNI check).
    /// Routers not listed expect [`DEFAULT_TLS_OPTION`].
    pub routers: Vec<RouterTlsOption>,
}

/// One SNI → option entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SniOption {
    /// Host name (lower-case) or `*.domain` wildcard.
    pub host: String,
    /// Option name.
    pub option: String,
}

/// The option a TLS router expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterTlsOption {
    /// Router name.
    pub router: String,
    /// Option name.
    pub option: String,
}

/// A protocol version weir can serve (rustls has no TLS 1.0 or 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// A Traefik version name, including the ones weir cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionName {
    /// `VersionTLS10` or `VersionTLS11`: known to Traefik, not servable by weir.
    Legacy(&'static str),
    /// A version weir serves.
    Supported(TlsVersion),
}

impl VersionName {
    /// Parses Traefik's `VersionTLS10` … `VersionTLS13`.
    pub fn parse(name: &str) -> Result<VersionName, UnknownName> {
        match name {
            "VersionTLS10" => Ok(VersionName::Legacy("VersionTLS10")),
            "VersionTLS11" => Ok(VersionName::Legacy("VersionTLS11")),
            "VersionTLS12" => Ok(VersionName::Supported(TlsVersion::Tls12)),
            "VersionTLS13" => Ok(VersionName::Supported(TlsVersion::Tls13)),
            _ => Err(UnknownName { what: "TLS version", name: name.into() }),
        }
    }
}

/// A name Traefik would refuse too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {name}")]
pub struct UnknownName {
    /// What kind of name (`CipherSuite`, `CurveID in curvePreferences`, …).
    pub what: &'static str,
    /// The name as written.
    pub name: String,
}

/// A cipher suite weir can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CipherSuite {
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    EcdheEcdsaAes128GcmSha256,
    /// `TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`.
    EcdheEcdsaAes256GcmSha384,
    /// `TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305(_SHA256)`.
    EcdheEcdsaChacha20Poly1305,
    /// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`.
    EcdheRsaAes128GcmSha256,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
    EcdheRsaAes256GcmSha384,
    /// `TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305(_SHA256)`.
    EcdheRsaChacha20Poly1305,
}

/// What a Go cipher-suite name means to weir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherSuiteName {
    /// A TLS 1.2 suite weir serves.
    Tls12(CipherSuite),
    /// A TLS 1.3 suite: always enabled, the name has no effect (as in Go).
    Tls13,
    /// A suite Go knows but rustls does not implement (CBC, RC4, 3DES, RSA key exchange).
    Unsupported,
}

impl CipherSuiteName {
    /// Parses a Go `crypto/tls` cipher-suite name, as Traefik's `cipherSuites` takes them.
    pub fn parse(name: &str) -> Result<CipherSuiteName, UnknownName> {
        use CipherSuite::*;
        Ok(match name {
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => CipherSuiteName::Tls12(EcdheEcdsaAes128GcmSha256),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => CipherSuiteName::Tls12(EcdheEcdsaAes256GcmSha384),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
                CipherSuiteName::Tls12(EcdheEcdsaChacha20Poly1305)
            }
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => CipherSuiteName::Tls12(EcdheRsaAes128GcmSha256),
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => CipherSuiteName::Tls12(EcdheRsaAes256GcmSha384),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
                CipherSuiteName::Tls12(EcdheRsaChacha20Poly1305)
            }
            "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256" => {
                CipherSuiteName::Tls13
            }
            "TLS_RSA_WITH_RC4_128_SHA"
            | "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
            | "TLS_RSA_WITH_AES_128_CBC_SHA"
            | "TLS_RSA_WITH_AES_256_CBC_SHA"
            | "TLS_RSA_WITH_AES_128_CBC_SHA256"
            | "TLS_RSA_WITH_AES_128_GCM_SHA256"
            | "TLS_RSA_WITH_AES_256_GCM_SHA384"
            | "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"
            | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
            | "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"
            | "TLS_ECDHE_RSA_WITH_RC4_128_SHA"
            | "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"
            | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
            | "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
            | "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"
            | "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"
            | "TLS_FALLBACK_SCSV" => CipherSuiteName::Unsupported,
            _ => return Err(UnknownName { what: "CipherSuite", name: name.into() }),
        })
    }
}

/// A key-exchange group weir can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Curve {
    /// X25519.
    X25519,
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// X25519 + ML-KEM-768 hybrid.
    X25519MlKem768,
    /// P-256 + ML-KEM-768 hybrid.
    SecP256r1MlKem768,
}

/// What a Traefik curve name means to weir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveName {
    /// A group weir offers.
    Supported(Curve),
    /// A group Traefik knows but the crypto provider does not implement (P-521,
    /// P-384+ML-KEM-1024).
    Unsupported,
}

impl CurveName {
    /// Parses a Traefik `curvePreferences` entry (Go names and the RFC 8446 names).
    pub fn parse(name: &str) -> Result<CurveName, UnknownName> {
        Ok(match name {
            "CurveP256" | "secp256r1" => CurveName::Supported(Curve::P256),
            "CurveP384" | "secp384r1" => CurveName::Supported(Curve::P384),
            "X25519" | "x25519" => CurveName::Supported(Curve::X25519),
            "X25519MLKEM768" | "x25519mlkem768" => CurveName::Supported(Curve::X25519MlKem768),
            "SecP256r1MLKEM768" | "secp256r1mlkem768" => CurveName::Supported(Curve::SecP256r1MlKem768),
            "CurveP521" | "secp521r1" | "SecP384r1MLKEM1024" | "secp384r1mlkem1024" => CurveName::Unsupported,
            _ => return Err(UnknownName { what: "CurveID in curvePreferences", name: name.into() }),
        })
    }
}

/// Traefik's `clientAuth.clientAuthType` (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ClientAuthType {
    /// No certificate is asked for.
    #[default]
    NoClientCert,
    /// A certificate is asked for, not required, not verified.
    RequestClientCert,
    /// A certificate is required, not verified against the CAs.
    RequireAnyClientCert,
    /// A certificate is optional; one that is sent must chain to the CAs.
    VerifyClientCertIfGiven,
    /// A certificate chaining to the CAs is required.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// Parses the Traefik name.
    pub fn parse(name: &str) -> Result<ClientAuthType, UnknownName> {
        Ok(match name {
            "NoClientCert" => ClientAuthType::NoClientCert,
            "RequestClientCert" => ClientAuthType::RequestClientCert,
            "RequireAnyClientCert" => ClientAuthType::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuthType::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerifyClientCert,
            _ => return Err(UnknownName { what: "client auth type", name: name.into() }),
        })
    }

    /// Whether this type verifies certificates and so needs CAs.
    pub fn verifies(self) -> bool {
        matches!(self, ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert)
    }
}

/// Whether `server_name` is served by a certificate (or option) name, Traefik's `matchDomain`:
/// equal, or equal after replacing leading labels of the server name with `*` one at a time
/// (so `*.example.com` matches `a.example.com` but not `a.b.example.com`).
pub fn name_matches(server_name: &str, name: &str) -> bool {
    if server_name == name {
        return true;
    }
    let name = name.trim_end_matches('.');
    let want: Vec<&str> = name.split('.').collect();
    let have: Vec<&str> = server_name.split('.').collect();
    // Traefik replaces the server name's leading labels with `*` one at a time and compares.
    let stars = want.iter().take_while(|w| **w == "*").count();
    stars > 0 && want.len() == have.len() && want[stars..] == have[stars..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let cases = [
            ("VersionTLS12", Ok(VersionName::Supported(TlsVersion::Tls12))),
            ("VersionTLS13", Ok(VersionName::Supported(TlsVersion::Tls13))),
            ("VersionTLS10", Ok(VersionName::Legacy("VersionTLS10"))),
            ("VersionTLS11", Ok(VersionName::Legacy("VersionTLS11"))),
            ("TLS13", Err(())),
            ("versiontls12", Err(())),
            ("", Err(())),
        ];
        for (name, want) in cases {
            assert_eq!(VersionName::parse(name).map_err(|_| ()), want, "{name:?}");
        }
    }

    #[test]
    fn cipher_suites() {
        use CipherSuite::*;
        let cases = [
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Ok(CipherSuiteName::Tls12(EcdheRsaAes128GcmSha256))),
            ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Ok(CipherSuiteName::Tls12(EcdheRsaAes256GcmSha384))),
            (
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                Ok(CipherSuiteName::Tls12(EcdheEcdsaAes128GcmSha256)),
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                Ok(CipherSuiteName::Tls12(EcdheEcdsaAes256GcmSha384)),
            ),
            ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", Ok(CipherSuiteName::Tls12(EcdheRsaChacha20Poly1305))),
            (
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                Ok(CipherSuiteName::Tls12(EcdheRsaChacha20Poly1305)),
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                Ok(CipherSuiteName::Tls12(EcdheEcdsaChacha20Poly1305)),
            ),
            ("TLS_AES_128_GCM_SHA256", Ok(CipherSuiteName::Tls13)),
            ("TLS_CHACHA20_POLY1305_SHA256", Ok(CipherSuiteName::Tls13)),
            ("TLS_RSA_WITH_AES_128_CBC_SHA", Ok(CipherSuiteName::Unsupported)),
            ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", Ok(CipherSuiteName::Unsupported)),
            ("TLS_FALLBACK_SCSV", Ok(CipherSuiteName::Unsupported)),
            ("ECDHE-RSA-AES128-GCM-SHA256", Err(())),
            ("tls_ecdhe_rsa_with_aes_128_gcm_sha256", Err(())),
        ];
        for (name, want) in cases {
            assert_eq!(CipherSuiteName::parse(name).map_err(|_| ()), want, "{name:?}");
        }
        let err = CipherSuiteName::parse("NOPE").expect_err("unknown");
        assert_eq!(err.to_string(), "invalid CipherSuite: NOPE");
    }

    #[test]
    fn curves() {
        let cases = [
            ("CurveP256", Ok(CurveName::Supported(Curve::P256))),
            ("secp256r1", Ok(CurveName::Supported(Curve::P256))),
            ("CurveP384", Ok(CurveName::Supported(Curve::P384))),
            ("secp384r1", Ok(CurveName::Supported(Curve::P384))),
            ("X25519", Ok(CurveName::Supported(Curve::X25519))),
            ("x25519", Ok(CurveName::Supported(Curve::X25519))),
            ("X25519MLKEM768", Ok(CurveName::Supported(Curve::X25519MlKem768))),
            ("SecP256r1MLKEM768", Ok(CurveName::Supported(Curve::SecP256r1MlKem768))),
            ("CurveP521", Ok(CurveName::Unsupported)),
            ("secp521r1", Ok(CurveName::Unsupported)),
            ("P256", Err(())),
            ("curvep256", Err(())),
        ];
        for (name, want) in cases {
            assert_eq!(CurveName::parse(name).map_err(|_| ()), want, "{name:?}");
        }
    }

    #[test]
    fn client_auth_types() {
        let cases = [
            ("NoClientCert", Ok(ClientAuthType::NoClientCert)),
            ("RequestClientCert", Ok(ClientAuthType::RequestClientCert)),
            ("RequireAnyClientCert", Ok(ClientAuthType::RequireAnyClientCert)),
            ("VerifyClientCertIfGiven", Ok(ClientAuthType::VerifyClientCertIfGiven)),
            ("RequireAndVerifyClientCert", Ok(ClientAuthType::RequireAndVerifyClientCert)),
            ("requireandverifyclientcert", Err(())),
        ];
        for (name, want) in cases {
            assert_eq!(ClientAuthType::parse(name).map_err(|_| ()), want, "{name:?}");
        }
    }

    #[test]
    fn names_match_like_traefik() {
        let cases = [
            ("exact", "a.example.com", "a.example.com", true),
            ("wildcard one label", "a.example.com", "*.example.com", true),
            ("wildcard is one label only", "a.b.example.com", "*.example.com", false),
            ("double wildcard", "a.b.example.com", "*.*.example.com", true),
            ("wildcard not the apex", "example.com", "*.example.com", false),
            ("other domain", "a.example.org", "*.example.com", false),
            ("trailing dot on the name", "a.example.com", "*.example.com.", true),
            ("star inside is literal", "a.example.com", "a.*.com", false),
        ];
        for (case, server_name, name, want) in cases {
            assert_eq!(name_matches(server_name, name), want, "case {case}");
        }
    }
}
