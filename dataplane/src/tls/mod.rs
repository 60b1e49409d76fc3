//! TLS termination: the per-generation [`TlsTable`] (one `rustls::ServerConfig` per TLS
//! option over the default certificate store, and per entrypoint the SNI → option map), built
//! on the control thread when a snapshot applies and shared read-only by the workers.
//!
//! Building reuses what did not change: the whole table when the snapshot's TLS section is
//! identical (so endpoint churn costs nothing here), else every certificate whose PEM did not
//! change; the generated default certificate and the session-ticket keys live as long as the
//! thread that builds tables (the control thread, for the whole process). The cache is that
//! thread's own: no lock, and workers never see it.

pub mod client_auth;
pub mod config;
pub mod default_cert;
pub mod store;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ProducesTickets;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use weir_proto::tls::{Certificate, Tls, DEFAULT_TLS_OPTION};

use store::CertStore;

/// Why TLS cannot be served at all (the snapshot is rejected).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsTableError {
    /// The self-signed default certificate could not be generated.
    #[error("generating the default certificate: {0}")]
    DefaultCertificate(String),
    /// No session-ticket keys.
    #[error("creating session-ticket keys: {0}")]
    Ticketer(String),
}

/// The configuration a handshake uses.
#[derive(Clone)]
pub struct Selected {
    /// Name of the TLS option.
    pub option: Arc<str>,
    /// Its configuration; `None` when the option is broken (the connection is closed).
    pub config: Option<Arc<ServerConfig>>,
}

/// What is known about a connection that arrived over TLS (its requests get it in `http::proxy::Conn`).
#[derive(Debug, Clone)]
pub struct TlsConn {
    /// The TLS option the handshake used.
    pub option: Arc<str>,
    /// The SNI the client sent, lower-case.
    pub server_name: Option<Arc<str>>,
    /// The certificate chain the client presented (leaf first; empty when it sent none).
    pub peer_certs: Arc<[CertificateDer<'static>]>,
    /// Negotiated version as Traefik labels it (`1.2`, `1.3`), for metrics and access logs.
    pub version: &'static str,
    /// Negotiated cipher suite under Go's name (`TLS_AES_128_GCM_SHA256`).
    pub cipher: &'static str,
}

/// One TLS option, ready or refused.
enum OptionState {
    Ready(Arc<ServerConfig>),
    Broken,
}

/// Per entrypoint: SNI → option, and the routers that expect a non-default option.
#[derive(Default)]
struct EntryPointSni {
    exact: HashMap<String, Arc<str>>,
    /// `*.domain` entries, keyed by `domain` (Traefik's `HostSNI` wildcard covers one label).
    wildcard: HashMap<String, Arc<str>>,
    /// `Host(`*`)`: every SNI.
    catch_all: Option<Arc<str>>,
    routers: HashMap<String, Arc<str>>,
}

/// Everything the workers need to terminate TLS for one generation.
#[derive(Default)]
pub struct TlsTable {
    options: HashMap<Arc<str>, OptionState>,
    default_option: Option<Arc<str>>,
    entrypoints: HashMap<String, EntryPointSni>,
    /// Expiry of every configured certificate (`traefik_tls_certs_not_after`).
    pub cert_expiries: Vec<crate::metrics::tls::CertExpiry>,
}

impl std::fmt::Debug for TlsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTable")
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("entrypoints", &self.entrypoints.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TlsTable {
    /// Builds (or reuses) the table for a snapshot's TLS section.
    pub fn build(tls: &Tls) -> Result<Arc<TlsTable>, TlsTableError> {
        CACHE.with(|cache| cache.borrow_mut().build(tls))
    }

    /// The option and configuration for a handshake on `entrypoint` with `server_name`
    /// (lower-case, no trailing dot). `None`: no option at all (no snapshot yet).
    pub fn select(&self, entrypoint: &str, server_name: Option<&str>) -> Option<Selected> {
        let name = match (self.entrypoints.get(entrypoint), server_name) {
            (Some(ep), Some(sni)) => ep
                .exact
                .get(sni)
                .or_else(|| sni.split_once('.').and_then(|(_, parent)| ep.wildcard.get(parent)))
                .or(ep.catch_all.as_ref()),
            (Some(ep), None) => ep.catch_all.as_ref(),
            (None, _) => None,
        };
        let name = name.or(self.default_option.as_ref())?;
        let config = match self.options.get(name) {
            Some(OptionState::Ready(c)) => Some(Arc::clone(c)),
            Some(OptionState::Broken) | None => None,
        };
        Some(Selected { option: Arc::clone(name), config })
    }

    /// The configuration of TLS option `name` (TCP routers that terminate name theirs);
    /// `None` when it is unknown or broken.
    pub fn option_config(&self, name: &str) -> Option<Arc<ServerConfig>> {
        match self.options.get(name) {
            Some(OptionState::Ready(c)) => Some(Arc::clone(c)),
            _ => None,
        }
    }

    /// Whether a request routed to `router` on `entrypoint` may be served on a connection whose
    /// handshake used option `used` (Traefik's SNI check: else `421 Misdirected Request`).
    pub fn router_accepts(&self, entrypoint: &str, router: &str, used: &str) -> bool {
        let expected = self.entrypoints.get(entrypoint).and_then(|ep| ep.routers.get(router));
        match expected {
            Some(option) => **option == *used,
            None => used == DEFAULT_TLS_OPTION,
        }
    }
}

thread_local! {
    /// Tables are built on the control thread only; its cache lives there.
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// What survives from one build to the next.
#[derive(Default)]
struct Cache {
    default_certificate: Option<Arc<CertifiedKey>>,
    ticketer: Option<Arc<dyn ProducesTickets>>,
    /// Loaded certificates by their PEM (chain, key).
    keys: HashMap<(Vec<u8>, Vec<u8>), Arc<CertifiedKey>>,
    last: Option<(Tls, Arc<TlsTable>)>,
}

impl Cache {
    fn build(&mut self, tls: &Tls) -> Result<Arc<TlsTable>, TlsTableError> {
        if let Some((last, table)) = &self.last {
            if last == tls {
                return Ok(Arc::clone(table));
            }
        }
        let generated = match &self.default_certificate {
            Some(c) => Arc::clone(c),
            None => {
                let c = default_cert::generate().map_err(TlsTableError::DefaultCertificate)?;
                self.default_certificate = Some(Arc::clone(&c));
                c
            }
        };
        let ticketer = match &self.ticketer {
            Some(t) => Arc::clone(t),
            None => {
                let t = rustls::crypto::aws_lc_rs::Ticketer::new()
                    .map_err(|e| TlsTableError::Ticketer(e.to_string()))?;
                self.ticketer = Some(Arc::clone(&t));
                t
            }
        };

        let mut keys = HashMap::new();
        let mut load = |c: &Certificate| -> Option<Arc<CertifiedKey>> {
            let id = (c.chain_pem.clone(), c.key_pem.clone());
            if let Some(k) = self.keys.get(&id).or_else(|| keys.get(&id)) {
                let k = Arc::clone(k);
                keys.insert(id, Arc::clone(&k));
                return Some(k);
            }
            match certified_key(c) {
                Ok(k) => {
                    keys.insert(id, Arc::clone(&k));
                    Some(k)
                }
                Err(e) => {
                    tracing::error!(source = %c.source, "certificate not served: {e}");
                    None
                }
            }
        };
        let default = tls.default_certificate.as_ref().and_then(&mut load).unwrap_or(generated);
        let mut store = CertStore::new(default);
        for c in &tls.certificates {
            if let Some(k) = load(c) {
                store.add(&c.names, &k);
            }
        }
        let store = Arc::new(store);

        let mut options = HashMap::new();
        for option in &tls.options {
            let state = match &option.broken {
                Some(_) => OptionState::Broken,
                None => match config::server_config(option, &store, &ticketer) {
                    Ok(c) => OptionState::Ready(Arc::new(c)),
                    Err(e) => {
                        tracing::error!(option = %option.name, "TLS option not usable, its handshakes are refused: {e}");
                        OptionState::Broken
                    }
                },
            };
            options.insert(Arc::<str>::from(option.name.as_str()), state);
        }
        let intern = |name: &str| -> Arc<str> {
            options.get_key_value(name).map(|(k, _)| Arc::clone(k)).unwrap_or_else(|| Arc::from(name))
        };
        let mut entrypoints = HashMap::new();
        for ep in &tls.entrypoints {
            let mut sni = EntryPointSni::default();
            for h in &ep.hosts {
                let option = intern(&h.option);
                let host = h.host.trim_end_matches('.');
                if host == "*" {
                    sni.catch_all = Some(option);
                } else if let Some(parent) = host.strip_prefix("*.") {
                    sni.wildcard.insert(parent.to_string(), option);
                } else {
                    sni.exact.insert(host.to_string(), option);
                }
            }
            for r in &ep.routers {
                sni.routers.insert(r.router.clone(), intern(&r.option));
            }
            entrypoints.insert(ep.entrypoint.clone(), sni);
        }
        let default_option = Some(intern(DEFAULT_TLS_OPTION));
        let cert_expiries = crate::metrics::tls::expiries(tls);
        let table = Arc::new(TlsTable { options, default_option, entrypoints, cert_expiries });
        self.keys = keys;
        self.last = Some((tls.clone(), Arc::clone(&table)));
        Ok(table)
    }
}

/// Loads one certificate chain and key.
fn certified_key(c: &Certificate) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&c.chain_pem).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if chain.is_empty() {
        return Err("no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&c.key_pem).map_err(|e| e.to_string())?;
    let signer = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::tls::{EntryPointTls, RouterTlsOption, SniOption, TlsOption};

    fn tls() -> Tls {
        let mut strict = TlsOption::traefik_default();
        strict.name = "apps-strict".into();
        let mut broken = TlsOption::traefik_default();
        broken.name = "apps-broken".into();
        broken.broken = Some("invalid CipherSuite: X".into());
        let sni = |h: &str, o: &str| SniOption { host: h.into(), option: o.into() };
        Tls {
            options: vec![TlsOption::traefik_default(), strict, broken],
            entrypoints: vec![EntryPointTls {
                entrypoint: "websecure".into(),
                hosts: vec![
                    sni("a.test", "apps-strict"),
                    sni("*.w.test", "apps-strict"),
                    sni("bad.test", "apps-broken"),
                ],
                routers: vec![RouterTlsOption { router: "r-a".into(), option: "apps-strict".into() }],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn selects_the_option_by_sni() {
        let table = TlsTable::build(&tls()).expect("table");
        let cases = [
            ("exact", "websecure", Some("a.test"), "apps-strict", true),
            ("wildcard", "websecure", Some("x.w.test"), "apps-strict", true),
            ("wildcard covers one label", "websecure", Some("y.x.w.test"), "default", true),
            ("unknown", "websecure", Some("other.test"), "default", true),
            ("no SNI", "websecure", None, "default", true),
            ("broken option", "websecure", Some("bad.test"), "apps-broken", false),
            ("other entrypoint", "web", Some("a.test"), "default", true),
        ];
        for (name, ep, sni, want, usable) in cases {
            let s = table.select(ep, sni).expect("an option");
            assert_eq!(&*s.option, want, "case {name}");
            assert_eq!(s.config.is_some(), usable, "case {name}");
        }
        assert!(table.router_accepts("websecure", "r-a", "apps-strict"));
        assert!(!table.router_accepts("websecure", "r-a", "default"));
        assert!(table.router_accepts("websecure", "other", "default"));
        assert!(!table.router_accepts("websecure", "other", "apps-strict"));
        // An identical section reuses the table.
        assert!(Arc::ptr_eq(&table, &TlsTable::build(&tls()).expect("again")));
    }
}
