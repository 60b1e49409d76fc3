//! The default certificate store and its SNI resolver: the certificate for a server name is the
//! one with that exact name, else the most specific wildcard (`*.example.com` before
//! `*.*.example.com`), else the store's default certificate — or none under `sniStrict`, which
//! refuses the handshake (Traefik's `GetBestCertificate` / `GetCertificate`).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Certificates by the names they serve.
#[derive(Debug)]
pub struct CertStore {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl CertStore {
    /// A store with `default` for unmatched names; add certificates with [`CertStore::add`].
    pub fn new(default: Arc<CertifiedKey>) -> CertStore {
        CertStore { exact: HashMap::new(), wildcard: HashMap::new(), default }
    }

    /// Adds a certificate under its names; a name already taken keeps its first certificate.
    pub fn add(&mut self, names: &[String], key: &Arc<CertifiedKey>) {
        for name in names {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let map = if name.starts_with('*') { &mut self.wildcard } else { &mut self.exact };
            map.entry(name).or_insert_with(|| Arc::clone(key));
        }
    }

    /// The certificate whose names match `server_name` (lower-case), if any.
    pub fn best(&self, server_name: &str) -> Option<&Arc<CertifiedKey>> {
        if let Some(c) = self.exact.get(server_name) {
            return Some(c);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        // Replace leading labels with `*` one at a time: fewer stars is more specific.
        let labels: Vec<&str> = server_name.split('.').collect();
        let mut candidate = String::with_capacity(server_name.len() + labels.len());
        for stars in 1..=labels.len() {
            candidate.clear();
            for (i, label) in labels.iter().enumerate() {
                if i > 0 {
                    candidate.push('.');
                }
                candidate.push_str(if i < stars { "*" } else { label });
            }
            if let Some(c) = self.wildcard.get(&candidate) {
                return Some(c);
            }
        }
        None
    }

    /// The certificate served when none matches.
    pub fn default_certificate(&self) -> &Arc<CertifiedKey> {
        &self.default
    }
}

/// The resolver of one TLS option over the shared store.
#[derive(Debug)]
pub struct SniResolver {
    store: Arc<CertStore>,
    sni_strict: bool,
}

impl SniResolver {
    /// A resolver over `store`; `sni_strict` refuses absent or unknown server names.
    pub fn new(store: Arc<CertStore>, sni_strict: bool) -> SniResolver {
        SniResolver { store, sni_strict }
    }

    /// The certificate for a server name (`None`: no SNI), or `None` to refuse the handshake.
    pub fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let found = server_name.and_then(|name| {
            let name = name.trim_end_matches('.');
            match name.bytes().any(|b| b.is_ascii_uppercase()) {
                true => self.store.best(&name.to_ascii_lowercase()).cloned(),
                false => self.store.best(name).cloned(),
            }
        });
        match found {
            Some(c) => Some(c),
            None if self.sni_strict => {
                tracing::debug!(
                    ?server_name,
                    "strict SNI: no certificate for the server name; handshake refused"
                );
                None
            }
            None => Some(Arc::clone(self.store.default_certificate())),
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(client_hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let k = rcgen::KeyPair::generate().expect("key");
        let c = rcgen::CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .self_signed(&k)
            .expect("cert");
        let der = rustls::pki_types::PrivateKeyDer::try_from(k.serialize_der()).expect("key der");
        let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("signer");
        Arc::new(CertifiedKey::new(vec![c.der().clone()], signer))
    }

    #[test]
    fn picks_exact_then_wildcard_then_default() {
        let (exact, wild, deep, default) =
            (key("a.example.com"), key("*.example.com"), key("*.*.example.com"), key("d"));
        let mut store = CertStore::new(Arc::clone(&default));
        store.add(&["a.example.com".into()], &exact);
        store.add(&["*.example.com".into()], &wild);
        store.add(&["*.*.example.com".into()], &deep);
        let store = Arc::new(store);
        let loose = SniResolver::new(Arc::clone(&store), false);
        let strict = SniResolver::new(store, true);
        type Want<'a> = Option<&'a Arc<CertifiedKey>>;
        let cases: [(&str, Option<&str>, Want<'_>, Want<'_>); 7] = [
            ("exact", Some("a.example.com"), Some(&exact), Some(&exact)),
            ("exact, any case, trailing dot", Some("A.Example.COM."), Some(&exact), Some(&exact)),
            ("wildcard", Some("b.example.com"), Some(&wild), Some(&wild)),
            ("two labels", Some("x.b.example.com"), Some(&deep), Some(&deep)),
            ("apex is not under the wildcard", Some("example.com"), Some(&default), None),
            ("unknown", Some("other.test"), Some(&default), None),
            ("no SNI", None, Some(&default), None),
        ];
        for (name, sni, want_loose, want_strict) in cases {
            assert_eq!(loose.pick(sni).as_ref().map(Arc::as_ptr), want_loose.map(Arc::as_ptr), "case {name}");
            assert_eq!(
                strict.pick(sni).as_ref().map(Arc::as_ptr),
                want_strict.map(Arc::as_ptr),
                "case {name} (strict)"
            );
        }
    }

    #[test]
    fn first_certificate_keeps_a_shared_name() {
        let (first, second) = (key("a"), key("b"));
        let mut store = CertStore::new(key("d"));
        store.add(&["a.test".into()], &first);
        store.add(&["a.test".into(), "b.test".into()], &second);
        assert!(Arc::ptr_eq(store.best("a.test").expect("a"), &first));
        assert!(Arc::ptr_eq(store.best("b.test").expect("b"), &second));
    }
}
