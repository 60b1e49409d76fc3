//! The certificate served when nothing else matches and no TLSStore names one: generated once
//! per data-plane process, self-signed, like Traefik's (`CN=TRAEFIK DEFAULT CERT`, an RSA 2048
//! key, one random `<hex>.<hex>.traefik.default` DNS name, valid for a year).

use std::sync::Arc;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, KeyUsagePurpose, RsaKeySize};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::CertifiedKey;

/// Traefik's subject CN for its generated default certificate.
pub const DEFAULT_CN: &str = "TRAEFIK DEFAULT CERT";

/// Generates the default certificate.
pub fn generate() -> Result<Arc<CertifiedKey>, String> {
    let key =
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048).map_err(|e| e.to_string())?;
    // 32 random bytes as hex, split like Traefik's sha256-of-random name.
    let mut bytes = [0u8; 32];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|e| format!("no randomness for the default certificate: {e:?}"))?;
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let domain = format!("{}.{}.traefik.default", &random[..32], &random[32..]);
    let mut params = CertificateParams::new(vec![domain]).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, DEFAULT_CN);
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(365);
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::DataEncipherment,
    ];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| e.to_string())?;
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_certificate_is_traefiks() {
        let key = super::generate().expect("generated");
        assert_eq!(key.cert.len(), 1);
        assert!(key.keys_match().is_ok());
        // The CN is in the DER as a PrintableString/UTF8String.
        let der = key.cert[0].as_ref();
        assert!(der.windows(super::DEFAULT_CN.len()).any(|w| w == super::DEFAULT_CN.as_bytes()));
        assert!(der.windows(16).any(|w| w == b".traefik.default"));
    }
}
