//! One TLS option → one `rustls::ServerConfig`: versions, cipher suites and key-exchange groups
//! mapped from the snapshot's enums onto the aws-lc-rs provider, the client-certificate policy
//! and ALPN. Runs on the control thread when a snapshot applies, never per connection.

use std::sync::Arc;

use rustls::crypto::aws_lc_rs::{self, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::{ProducesTickets, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use weir_proto::tls::{CipherSuite, ClientAuthType, Curve, TlsOption, TlsVersion};

use super::client_auth::AnyClientCert;
use super::store::{CertStore, SniResolver};

/// The rustls TLS 1.2 suite for a snapshot suite.
pub fn cipher_suite(suite: CipherSuite) -> SupportedCipherSuite {
    match suite {
        CipherSuite::EcdheEcdsaAes128GcmSha256 => cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheEcdsaAes256GcmSha384 => cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheEcdsaChacha20Poly1305 => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        CipherSuite::EcdheRsaAes128GcmSha256 => cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        CipherSuite::EcdheRsaAes256GcmSha384 => cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        CipherSuite::EcdheRsaChacha20Poly1305 => cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    }
}

/// The rustls key-exchange group for a snapshot curve.
pub fn kx(curve: Curve) -> &'static dyn SupportedKxGroup {
    match curve {
        Curve::X25519 => kx_group::X25519,
        Curve::P256 => kx_group::SECP256R1,
        Curve::P384 => kx_group::SECP384R1,
        Curve::X25519MlKem768 => kx_group::X25519MLKEM768,
        Curve::SecP256r1MlKem768 => kx_group::SECP256R1MLKEM768,
    }
}

/// The rustls version for a snapshot version.
pub fn version(v: TlsVersion) -> &'static SupportedProtocolVersion {
    match v {
        TlsVersion::Tls12 => &rustls::version::TLS12,
        TlsVersion::Tls13 => &rustls::version::TLS13,
    }
}

/// The crypto provider and versions an option allows. TLS 1.3 suites are always all of them
/// (Go does not let them be chosen); TLS 1.2 is dropped when no TLS 1.2 suite is left.
pub fn provider_and_versions(option: &TlsOption) -> (CryptoProvider, Vec<&'static SupportedProtocolVersion>) {
    let mut provider = aws_lc_rs::default_provider();
    if let Some(suites) = &option.cipher_suites {
        let tls13 = provider.cipher_suites.iter().copied().filter(|s| s.version() == &rustls::version::TLS13);
        provider.cipher_suites = tls13.chain(suites.iter().map(|s| cipher_suite(*s))).collect();
    }
    if let Some(curves) = &option.curves {
        provider.kx_groups = curves.iter().map(|c| kx(*c)).collect();
    }
    let has_tls12 = provider.cipher_suites.iter().any(|s| s.version() == &rustls::version::TLS12);
    let versions = [TlsVersion::Tls12, TlsVersion::Tls13]
        .into_iter()
        .filter(|v| (option.min_version..=option.max_version).contains(v))
        .filter(|v| *v != TlsVersion::Tls12 || has_tls12)
        .map(version)
        .collect();
    (provider, versions)
}

/// Builds the server configuration of one option over the default store.
pub fn server_config(
    option: &TlsOption,
    store: &Arc<CertStore>,
    ticketer: &Arc<dyn ProducesTickets>,
) -> Result<ServerConfig, String> {
    let (provider, versions) = provider_and_versions(option);
    if versions.is_empty() {
        return Err("no TLS version is left to serve".into());
    }
    let provider = Arc::new(provider);
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = match option.client_auth {
        ClientAuthType::NoClientCert => builder.with_no_client_auth(),
        kind => {
            let roots = Arc::new(client_roots(&option.client_cas_pem)?);
            let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = match kind {
                ClientAuthType::RequestClientCert => Arc::new(AnyClientCert::new(false, &roots, &provider)),
                ClientAuthType::RequireAnyClientCert => Arc::new(AnyClientCert::new(true, &roots, &provider)),
                ClientAuthType::VerifyClientCertIfGiven => {
                    WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| e.to_string())?
                }
                _ => WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()
                    .map_err(|e| e.to_string())?,
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(SniResolver::new(Arc::clone(store), option.sni_strict)));
    config.alpn_protocols = option.alpn_protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
    if !option.disable_session_tickets {
        config.ticketer = Arc::clone(ticketer);
    }
    Ok(config)
}

fn client_roots(bundles: &[Vec<u8>]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for pem in bundles {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect();
        roots.add_parsable_certificates(certs);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option() -> TlsOption {
        TlsOption::traefik_default()
    }

    #[test]
    fn suites_map_to_the_rustls_suite_of_the_same_name() {
        use CipherSuite::*;
        let cases = [
            (EcdheEcdsaAes128GcmSha256, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
            (EcdheEcdsaAes256GcmSha384, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
            (EcdheEcdsaChacha20Poly1305, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            (EcdheRsaAes128GcmSha256, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            (EcdheRsaAes256GcmSha384, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
            (EcdheRsaChacha20Poly1305, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        ];
        for (suite, name) in cases {
            assert_eq!(format!("{:?}", cipher_suite(suite).suite()), name);
        }
    }

    #[test]
    fn curves_map_to_the_rustls_group_of_the_same_name() {
        let cases = [
            (Curve::X25519, "X25519"),
            (Curve::P256, "secp256r1"),
            (Curve::P384, "secp384r1"),
            (Curve::X25519MlKem768, "X25519MLKEM768"),
            (Curve::SecP256r1MlKem768, "secp256r1MLKEM768"),
        ];
        for (curve, name) in cases {
            assert_eq!(format!("{:?}", kx(curve).name()), name);
        }
    }

    #[test]
    fn versions_and_suites_of_an_option() {
        type Case = (&'static str, TlsOption, &'static [&'static str], usize);
        let with = |f: fn(&mut TlsOption)| {
            let mut o = option();
            f(&mut o);
            o
        };
        let cases: Vec<Case> = vec![
            ("default: 1.2 and 1.3, every suite", option(), &["TLSv1_2", "TLSv1_3"], 9),
            ("1.3 only", with(|o| o.min_version = TlsVersion::Tls13), &["TLSv1_3"], 9),
            ("1.2 only", with(|o| o.max_version = TlsVersion::Tls12), &["TLSv1_2"], 9),
            (
                "one 1.2 suite keeps every 1.3 suite",
                with(|o| o.cipher_suites = Some(vec![CipherSuite::EcdheRsaAes128GcmSha256])),
                &["TLSv1_2", "TLSv1_3"],
                4,
            ),
            ("no 1.2 suite drops 1.2", with(|o| o.cipher_suites = Some(vec![])), &["TLSv1_3"], 3),
        ];
        for (name, o, want_versions, want_suites) in cases {
            let (provider, versions) = provider_and_versions(&o);
            let got: Vec<String> = versions.iter().map(|v| format!("{:?}", v.version)).collect();
            assert_eq!(got, want_versions, "case {name}");
            assert_eq!(provider.cipher_suites.len(), want_suites, "case {name}");
        }
        let (provider, _) =
            provider_and_versions(&with(|o| o.curves = Some(vec![Curve::P384, Curve::X25519])));
        let names: Vec<String> = provider.kx_groups.iter().map(|g| format!("{:?}", g.name())).collect();
        assert_eq!(names, ["secp384r1", "X25519"]);
    }
}
