//! Translation of stored objects into the snapshot's model (routers and services), with a
//! per-route problem list. Pure: reads the store and options, touches no IO, logs nothing
//! except debug detail; `compile` decides what to publish and what to log.

pub mod cache;
pub mod duration;
pub mod entrypoints;
mod error;
pub mod ingress;
pub mod ingressroute;
pub mod ingressroutetcp;
pub mod ingressrouteudp;
pub mod middleware;
pub mod names;
pub mod serverstransport;
pub mod service;
pub mod tls;
mod tls_cert;
pub mod traefikservice;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use error::TranslateError;
pub use service::ServiceOptions;

use weir_proto::rule::Syntax;
use weir_proto::snapshot::{Router, ServersTransport, Service};

use crate::status::Problem;
use crate::store::ObjectStore;

/// What translation needs from the static configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranslateOptions {
    /// Every defined entrypoint name.
    pub entrypoints: Vec<String>,
    /// Every UDP entrypoint name (sorted); HTTP routers never attach to these.
    pub udp_entrypoints: Vec<String>,
    /// Entrypoints of routers that name none (sorted).
    pub default_entrypoints: Vec<String>,
    /// Service resolution options.
    pub services: ServiceOptions,
    /// Syntax of rules whose route names none (`--core.defaultRuleSyntax`).
    pub default_rule_syntax: Syntax,
    /// Per entrypoint: its port and `http.*` options (redirection, entrypoint TLS).
    pub entrypoint_http: BTreeMap<String, entrypoints::EntryPointInfo>,
    /// Whether Ingress objects are translated (`ingress::enabled`).
    pub ingress_enabled: bool,
    /// `--providers.kubernetesIngress.*`.
    pub ingress: crate::config::IngressProviderConfig,
}

/// Routers and services by name, and the problems met.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    /// Routers by name (shared with the translation cache and the snapshot: see
    /// `weir_proto::Snapshot::routers`).
    pub routers: BTreeMap<String, Arc<Router>>,
    /// Services by name (shared, as routers).
    pub services: BTreeMap<String, Arc<Service>>,
    /// Valid servers transports, sorted by name.
    pub servers_transports: Vec<ServersTransport>,
    /// Middlewares used by routers, by name (shared, as routers).
    pub middlewares: BTreeMap<String, Arc<weir_proto::middleware::Middleware>>,
    /// Problems, in the order met.
    pub problems: Vec<Problem>,
    /// TLS certificates, options and SNI mapping (after the TLS pass).
    pub tls: weir_proto::tls::Tls,
    /// UDP routers and services (entrypoints are added by `compile`).
    pub udp: weir_proto::udp::Udp,
    /// TCP routers, services, middlewares and transports (entrypoint PROXY protocol is added by
    /// `compile`).
    pub tcp: weir_proto::tcp::Tcp,
    /// Certificates and TLS routers of Ingresses, for the TLS pass.
    pub ingress_tls: ingress::IngressTlsInputs,
}

/// Translates every object in the store.
pub fn translate(store: &ObjectStore, options: &TranslateOptions) -> Translation {
    let mut out = Translation::default();
    out.servers_transports = serverstransport::translate_all(store, &mut out.problems);
    middleware::report(store, &mut out.problems);
    let translated: Vec<_> =
        store.ingress_routes().map(|ir| ingressroute::translate_object(ir, store, options)).collect();
    ingressroute::merge_all(&translated, &mut out);
    // The kubernetesIngress provider: Ingress → routers named `…@kubernetes`.
    ingress::translate_all(store, options, &mut out);
    // Traefik's internal provider: `http.redirections.entryPoint` routers.
    entrypoints::redirections(options, &mut out);
    // After the routers: TLS may disable some and splits conflicting ones.
    tls::translate(store, options, &mut out);
    ingressrouteudp::translate_all(store, options, &mut out);
    // After the TLS pass: terminating TCP routes add their certificates to the store.
    ingressroutetcp::translate_all(store, options, &mut out);
    out
}

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
