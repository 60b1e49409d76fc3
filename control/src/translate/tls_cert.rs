//! Loading a certificate/key pair the way the data plane will (rustls with aws-lc-rs), so a bad
//! Secret is reported by the control plane with its name instead of failing a handshake later,
//! and reading the names the certificate serves (Traefik: subject CN, DNS SANs, IP SANs).

use std::collections::HashMap;
use std::sync::Mutex;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

/// Results of [`check`] by a digest of the PEM pair: every compile reads every TLS secret, and
/// loading keys is the costly part. Bounded: cleared when it grows past this many entries.
const CACHE_LIMIT: usize = 4096;
type Checked = HashMap<[u8; 32], Result<Vec<String>, String>>;
static CHECKED: Mutex<Option<Checked>> = Mutex::new(None);

/// Checks that `chain_pem` and `key_pem` load and belong together; returns the lower-case names
/// the leaf certificate serves, CN first, without duplicates.
pub fn check(chain_pem: &[u8], key_pem: &[u8]) -> Result<Vec<String>, String> {
    let mut digest = Sha256::new();
    digest.update((chain_pem.len() as u64).to_le_bytes());
    digest.update(chain_pem);
    digest.update(key_pem);
    let id: [u8; 32] = digest.finalize().into();
    // A poisoned lock only means a panic while inserting; the map is still usable.
    let mut cache = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    let map = cache.get_or_insert_with(HashMap::new);
    if let Some(found) = map.get(&id) {
        return found.clone();
    }
    let result = load(chain_pem, key_pem);
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(id, result.clone());
    result
}

fn load(chain_pem: &[u8], key_pem: &[u8]) -> Result<Vec<String>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt is not PEM certificates: {e}"))?;
    let Some(leaf) = chain.first() else {
        return Err("tls.crt holds no certificate".into());
    };
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("tls.key holds no private key: {e}"))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| format!("tls.key is not a usable private key: {e}"))?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => return Err("tls.key does not match the certificate in tls.crt".into()),
    }
    names(leaf)
}

/// The names a certificate serves: its subject CN, then DNS and IP SANs, lower-case.
pub fn names(der: &[u8]) -> Result<Vec<String>, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("tls.crt does not parse: {e}"))?;
    let mut out: Vec<String> = Vec::new();
    let mut push = |n: String| {
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    };
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            push(s.to_ascii_lowercase());
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                        16 => {
                            <[u8; 16]>::try_from(*bytes).ok().map(|b| std::net::IpAddr::from(b).to_string())
                        }
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        push(ip);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Checks that a CA bundle holds at least one PEM certificate (Go's `AppendCertsFromPEM`).
pub fn check_ca_bundle(pem: &[u8]) -> Result<(), String> {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err("invalid certificate(s) content".into());
    }
    Ok(())
}
