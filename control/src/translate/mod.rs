//! Translation of stored objects into the snapshot's model (routers and services), with a
//! per-route problem list. Pure: reads the store and options, touches no IO, logs nothing
//! except debug detail; `compile` decides what to publish and what to log.

mod error;
pub mod ingressroute;
pub mod names;
pub mod service;

use std::collections::BTreeMap;

pub use error::TranslateError;
pub use service::ServiceOptions;

use weir_proto::rule::Syntax;
use weir_proto::snapshot::{Router, Service};

use crate::status::Problem;
use crate::store::ObjectStore;

/// What translation needs from the static configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranslateOptions {
    /// Every defined entrypoint name.
    pub entrypoints: Vec<String>,
    /// Entrypoints of routers that name none (sorted).
    pub default_entrypoints: Vec<String>,
    /// Service resolution options.
    pub services: ServiceOptions,
    /// Syntax of rules whose route names none (`--core.defaultRuleSyntax`).
    pub default_rule_syntax: Syntax,
}

/// Routers and services by name, and the problems met.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    /// Routers by name.
    pub routers: BTreeMap<String, Router>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Problems, in the order met.
    pub problems: Vec<Problem>,
}

/// Translates every object in the store.
pub fn translate(store: &ObjectStore, options: &TranslateOptions) -> Translation {
    let mut out = Translation::default();
    for ir in store.ingress_routes() {
        ingressroute::translate(ir, store, options, &mut out);
    }
    out
}

#[cfg(test)]
mod tests;
