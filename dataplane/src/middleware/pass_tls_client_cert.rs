//! PassTLSClientCert: Traefik's `passtlsclientcert` middleware. With a client certificate on
//! the TLS connection it sets `X-Forwarded-Tls-Client-Cert` (each certificate of the chain as
//! its PEM body: base64 of the DER without the BEGIN/END lines and newlines, comma-separated;
//! Traefik does not escape it) and `X-Forwarded-Tls-Client-Cert-Info` (the selected fields,
//! `Subject="…";Issuer="…";SerialNumber="…";NB="…";NA="…";SAN="…"` per certificate,
//! comma-separated, then Go's `url.QueryEscape`). Without a client certificate the request is
//! left alone (the entrypoint already dropped untrusted copies of those headers).

use base64::Engine;
use http::header::{HeaderName, HeaderValue};
use rustls::pki_types::CertificateDer;
use weir_proto::middleware::{ClientCertInfo, DistinguishedNameParts, PassTlsClientCert as Config};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

use super::{Exchange, Outcome};

static CERT: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
static CERT_INFO: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

const OID_C: &str = "2.5.4.6";
const OID_ST: &str = "2.5.4.8";
const OID_L: &str = "2.5.4.7";
const OID_O: &str = "2.5.4.10";
const OID_OU: &str = "2.5.4.11";
const OID_CN: &str = "2.5.4.3";
const OID_SN: &str = "2.5.4.5";
/// Domain component, RFC 2247.
const OID_DC: &str = "0.9.2342.19200300.100.1.25";

/// A compiled PassTLSClientCert.
#[derive(Debug)]
pub struct PassTlsClientCert {
    pem: bool,
    info: Option<ClientCertInfo>,
}

impl PassTlsClientCert {
    /// Builds it from its definition.
    pub fn new(c: &Config) -> PassTlsClientCert {
        PassTlsClientCert { pem: c.pem, info: c.info.clone() }
    }

    /// Sets the headers from the connection's client certificates, if any.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        if ex.client_certs.is_empty() {
            tracing::debug!("Tried to extract a certificate on a request without mutual TLS");
            return Outcome::Next;
        }
        if self.pem {
            if let Ok(v) = HeaderValue::from_str(&pem_bodies(ex.client_certs)) {
                ex.headers.insert(CERT.clone(), v);
            }
        }
        if let Some(info) = &self.info {
            let value = query_escape(&cert_info(info, ex.client_certs));
            if let Ok(v) = HeaderValue::from_str(&value) {
                ex.headers.insert(CERT_INFO.clone(), v);
            }
        }
        Outcome::Next
    }
}

/// Traefik's `getCertificates`: the PEM bodies, comma-separated.
pub fn pem_bodies(certs: &[CertificateDer<'_>]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    certs.iter().map(|c| b64.encode(c.as_ref())).collect::<Vec<_>>().join(",")
}

/// Traefik's `getCertInfo` (before escaping): per certificate the selected fields joined by
/// `;`, certificates joined by `,`. A certificate that does not parse contributes nothing.
pub fn cert_info(info: &ClientCertInfo, certs: &[CertificateDer<'_>]) -> String {
    let mut out = Vec::with_capacity(certs.len());
    for der in certs {
        let mut values = Vec::new();
        if let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) {
            if let Some(parts) = &info.subject {
                let s = dn(parts, cert.subject(), true);
                if !s.is_empty() {
                    values.push(format!("Subject=\"{}\"", s.trim_end_matches(',')));
                }
            }
            if let Some(parts) = &info.issuer {
                let s = dn(parts, cert.issuer(), false);
                if !s.is_empty() {
                    values.push(format!("Issuer=\"{}\"", s.trim_end_matches(',')));
                }
            }
            if info.serial_number {
                let sn = cert.tbs_certificate.serial.to_string();
                if !sn.is_empty() {
                    values.push(format!("SerialNumber=\"{sn}\""));
                }
            }
            if info.not_before {
                values.push(format!("NB=\"{}\"", cert.validity().not_before.timestamp() as u64));
            }
            if info.not_after {
                values.push(format!("NA=\"{}\"", cert.validity().not_after.timestamp() as u64));
            }
            if info.sans {
                let sans = sans(&cert);
                if !sans.is_empty() {
                    values.push(format!("SAN=\"{}\"", sans.join(",")));
                }
            }
        }
        out.push(values.join(";"));
    }
    out.join(",")
}

/// Go's `pkix.Name` rendering as Traefik writes it: DC (every one, in order), then C, ST, L, O,
/// OU (subject only) as lists, then SN and CN (the last of each, as Go keeps), each `K=v,`.
fn dn(parts: &DistinguishedNameParts, name: &X509Name<'_>, subject: bool) -> String {
    let values = |oid: &str| -> Vec<String> {
        name.iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect()
    };
    let mut s = String::new();
    let mut write = |prefix: &str, entries: &[String]| {
        for e in entries.iter().filter(|e| !e.is_empty()) {
            s.push_str(prefix);
            s.push('=');
            s.push_str(e);
            s.push(',');
        }
    };
    let last = |oid: &str| values(oid).pop().into_iter().collect::<Vec<_>>();
    if parts.domain_component {
        write("DC", &values(OID_DC));
    }
    if parts.country {
        write("C", &values(OID_C));
    }
    if parts.province {
        write("ST", &values(OID_ST));
    }
    if parts.locality {
        write("L", &values(OID_L));
    }
    if parts.organization {
        write("O", &values(OID_O));
    }
    if subject && parts.organizational_unit {
        write("OU", &values(OID_OU));
    }
    if parts.serial_number {
        write("SN", &last(OID_SN));
    }
    if parts.common_name {
        write("CN", &last(OID_CN));
    }
    s
}

/// Go's `getSANs`: DNS names, then e-mail addresses, then IPs, then URIs.
fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else { return Vec::new() };
    let names = &ext.value.general_names;
    let mut out = Vec::new();
    out.extend(names.iter().filter_map(|n| match n {
        GeneralName::DNSName(d) => Some(d.to_string()),
        _ => None,
    }));
    out.extend(names.iter().filter_map(|n| match n {
        GeneralName::RFC822Name(e) => Some(e.to_string()),
        _ => None,
    }));
    out.extend(names.iter().filter_map(|n| match n {
        GeneralName::IPAddress(b) => ip_string(b),
        _ => None,
    }));
    out.extend(names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some(u.to_string()),
        _ => None,
    }));
    out
}

fn ip_string(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).to_string()),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
            // Go prints IPv4-mapped addresses in dotted form.
            Some(v6.to_ipv4_mapped().map_or_else(|| v6.to_string(), |v4| v4.to_string()))
        }
        _ => None,
    }
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest `%XX` (upper case).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn cert() -> (CertificateDer<'static>, i64, i64) {
        let mut p = CertificateParams::new(vec!["a.test".into(), "b.test".into()]).expect("params");
        p.subject_alt_names.push(SanType::Rfc822Name("me@a.test".try_into().expect("email")));
        p.subject_alt_names.push(SanType::IpAddress("10.0.0.1".parse().expect("ip")));
        p.subject_alt_names.push(SanType::URI("spiffe://a/b".try_into().expect("uri")));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "FR");
        dn.push(DnType::StateOrProvinceName, "Some-State");
        dn.push(DnType::LocalityName, "Lyon");
        dn.push(DnType::OrganizationName, "Weir Org");
        dn.push(DnType::OrganizationalUnitName, "Edge");
        dn.push(DnType::CommonName, "client one");
        p.distinguished_name = dn;
        p.serial_number = Some(rcgen::SerialNumber::from(vec![0x01, 0x00]));
        p.not_before = rcgen::date_time_ymd(2024, 1, 2);
        p.not_after = rcgen::date_time_ymd(2030, 3, 4);
        let key = KeyPair::generate().expect("key");
        let c = p.self_signed(&key).expect("cert");
        (c.der().clone(), 1_704_153_600, 1_898_812_800)
    }

    fn all_parts() -> DistinguishedNameParts {
        DistinguishedNameParts {
            country: true,
            province: true,
            locality: true,
            organization: true,
            organizational_unit: true,
            common_name: true,
            serial_number: true,
            domain_component: true,
        }
    }

    #[test]
    fn info_fields_in_traefik_order() {
        let (der, nb, na) = cert();
        let full = ClientCertInfo {
            not_after: true,
            not_before: true,
            sans: true,
            serial_number: true,
            subject: Some(all_parts()),
            issuer: Some(all_parts()),
        };
        let dn = "C=FR,ST=Some-State,L=Lyon,O=Weir Org,OU=Edge,CN=client one";
        let issuer = "C=FR,ST=Some-State,L=Lyon,O=Weir Org,CN=client one";
        let cases = [
            (
                "everything",
                full.clone(),
                format!(
                    "Subject=\"{dn}\";Issuer=\"{issuer}\";SerialNumber=\"256\";NB=\"{nb}\";NA=\"{na}\";\
                     SAN=\"a.test,b.test,me@a.test,10.0.0.1,spiffe://a/b\""
                ),
            ),
            (
                "only CN and NA",
                ClientCertInfo {
                    not_after: true,
                    subject: Some(DistinguishedNameParts { common_name: true, ..Default::default() }),
                    ..Default::default()
                },
                format!("Subject=\"CN=client one\";NA=\"{na}\""),
            ),
            (
                "empty subject selection is left out",
                ClientCertInfo { subject: Some(DistinguishedNameParts::default()), ..Default::default() },
                String::new(),
            ),
        ];
        for (name, info, want) in cases {
            assert_eq!(cert_info(&info, std::slice::from_ref(&der)), want, "case {name}");
        }
        let two = cert_info(
            &ClientCertInfo { not_before: true, ..Default::default() },
            &[der.clone(), der.clone()],
        );
        assert_eq!(two, format!("NB=\"{nb}\",NB=\"{nb}\""), "chains are comma-separated");
    }

    #[test]
    fn pem_is_the_base64_der() {
        let (der, _, _) = cert();
        let one = pem_bodies(std::slice::from_ref(&der));
        let decoded = base64::engine::general_purpose::STANDARD.decode(&one).expect("base64");
        assert_eq!(decoded, der.as_ref());
        assert!(!one.contains('\n') && !one.contains("BEGIN"));
        assert_eq!(pem_bodies(&[der.clone(), der]), format!("{one},{one}"));
    }

    #[test]
    fn query_escape_as_go() {
        let cases = [
            ("plain", "abc-_.~09", "abc-_.~09"),
            ("space is plus", "a b", "a+b"),
            ("reserved", "Subject=\"C=FR,CN=x\";NB", "Subject%3D%22C%3DFR%2CCN%3Dx%22%3BNB"),
            ("utf-8", "é", "%C3%A9"),
        ];
        for (name, input, want) in cases {
            assert_eq!(query_escape(input), want, "case {name}");
        }
    }
}
