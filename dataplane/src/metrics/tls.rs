//! TLS facts the metrics and access logs report under Traefik's spellings: the negotiated
//! version and cipher of a connection (`traefik_*_requests_tls_total`, `TLSVersion`,
//! `TLSCipher`), and the expiry of every configured certificate
//! (`traefik_tls_certs_not_after`). Computed at handshake or table-build time, never per
//! request.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, ProtocolVersion};
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

/// `(tls_version, tls_cipher)` label values of a request that arrived over TLS.
pub type TlsLabels = (&'static str, &'static str);

/// Traefik's version label (`pkg/tls`'s `GetVersion`: `1.0` … `1.3`, else `unknown`).
pub fn version_label(v: Option<ProtocolVersion>) -> &'static str {
    match v {
        Some(ProtocolVersion::TLSv1_0) => "1.0",
        Some(ProtocolVersion::TLSv1_1) => "1.1",
        Some(ProtocolVersion::TLSv1_2) => "1.2",
        Some(ProtocolVersion::TLSv1_3) => "1.3",
        _ => "unknown",
    }
}

/// The cipher suite under Go's constant name, which Traefik reports. rustls spells the
/// TLS 1.2 suites as Go does; its TLS 1.3 names carry a `13` Go's lack.
pub fn cipher_label(suite: Option<CipherSuite>) -> &'static str {
    match suite {
        Some(CipherSuite::TLS13_AES_128_GCM_SHA256) => "TLS_AES_128_GCM_SHA256",
        Some(CipherSuite::TLS13_AES_256_GCM_SHA384) => "TLS_AES_256_GCM_SHA384",
        Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256) => "TLS_CHACHA20_POLY1305_SHA256",
        Some(other) => other.as_str().unwrap_or("unknown"),
        None => "unknown",
    }
}

/// Both labels of an established server connection.
pub fn labels(conn: &rustls::ServerConnection) -> TlsLabels {
    (version_label(conn.protocol_version()), cipher_label(conn.negotiated_cipher_suite().map(|s| s.suite())))
}

/// One series of `traefik_tls_certs_not_after`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CertExpiry {
    /// The leaf's subject common name (Go's `Subject.CommonName`: the last CN).
    pub cn: String,
    /// The serial number in decimal (Go's `big.Int` string).
    pub serial: String,
    /// The DNS names of the subject alternative names, comma-joined in certificate order.
    pub sans: String,
    /// `notAfter` in Unix seconds.
    pub not_after: i64,
}

/// The expiry of a PEM chain's leaf; `None` when it does not parse (the TLS table logs that).
pub fn expiry(chain_pem: &[u8]) -> Option<CertExpiry> {
    let leaf = CertificateDer::pem_slice_iter(chain_pem).next()?.ok()?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .last()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut sans = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                if let GeneralName::DNSName(d) = name {
                    sans.push(*d);
                }
            }
        }
    }
    Some(CertExpiry {
        cn,
        serial: cert.tbs_certificate.serial.to_string(),
        sans: sans.join(","),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Every certificate a TLS section configures (the default store's certificates and a
/// configured default certificate; the generated `TRAEFIK DEFAULT CERT` is not one), once per
/// label set, sorted.
pub fn expiries(tls: &weir_proto::tls::Tls) -> Vec<CertExpiry> {
    let mut out: Vec<CertExpiry> = tls
        .certificates
        .iter()
        .chain(&tls.default_certificate)
        .filter_map(|c| expiry(&c.chain_pem))
        .collect();
    out.sort();
    out.dedup_by(|a, b| (&a.cn, &a.serial, &a.sans) == (&b.cn, &b.serial, &b.sans));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_as_traefik_spells_them() {
        let cases = [
            (
                Some(ProtocolVersion::TLSv1_2),
                Some(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
                "1.2",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ),
            (
                Some(ProtocolVersion::TLSv1_3),
                Some(CipherSuite::TLS13_AES_256_GCM_SHA384),
                "1.3",
                "TLS_AES_256_GCM_SHA384",
            ),
            (
                Some(ProtocolVersion::TLSv1_3),
                Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256),
                "1.3",
                "TLS_CHACHA20_POLY1305_SHA256",
            ),
            (None, None, "unknown", "unknown"),
        ];
        for (v, s, want_v, want_s) in cases {
            assert_eq!((version_label(v), cipher_label(s)), (want_v, want_s));
        }
    }

    #[test]
    fn expiry_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string(), "*.b.test".to_string()])
            .expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "a.test");
        params.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x00]));
        params.not_after = rcgen::date_time_ymd(2031, 5, 6);
        let cert = params.self_signed(&key).expect("cert");
        let e = expiry(cert.pem().as_bytes()).expect("parses");
        assert_eq!(e.cn, "a.test");
        assert_eq!(e.serial, "256");
        assert_eq!(e.sans, "a.test,*.b.test");
        assert_eq!(e.not_after, 1_935_792_000);
        assert_eq!(expiry(b"not pem"), None);
    }
}
