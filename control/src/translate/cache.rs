//! Incremental translation: each IngressRoute's translation is kept between compiles, with
//! the revision of everything it read from the store (recorded by the store itself, see
//! `crate::store::ReadScope`, so a translator that starts reading something new is tracked
//! without anyone updating a list). A compile re-translates only the IngressRoutes whose
//! object or reads changed and merges the kept results in store order, exactly as the
//! uncached `super::translate` does; the passes over the whole configuration (TLS, entrypoint
//! redirections, TCP and UDP routers, Ingresses) still run every time, and are cheap next to
//! thousands of routes. The result must always equal `super::translate`: the property test
//! below checks that over random change sequences.

use super::{
    entrypoints, ingress, ingressroute, ingressroutetcp, ingressrouteudp, middleware, serverstransport, tls,
    TranslateOptions, Translation,
};
use crate::objects::Kind;
use std::collections::{BTreeSet, HashMap};

use crate::store::{Dep, ObjectStore, StoreId};

/// A kept result and what it was computed from.
#[derive(Debug, Clone)]
struct Entry<T> {
    /// Everything read, with its revision at the time.
    deps: Vec<(Dep, u64)>,
    output: T,
}

impl<T> Entry<T> {
    /// Whether nothing the result was computed from has changed since.
    fn fresh(&self, store: &ObjectStore) -> bool {
        self.deps.iter().all(|(dep, rev)| store.revision(dep) == *rev)
    }
}

/// How much of the last translation came from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// IngressRoutes whose kept translation was used.
    pub reused: usize,
    /// IngressRoutes translated again (new, changed, or something they read changed).
    pub translated: usize,
}

/// Per-object translations kept between compiles (see the module documentation).
#[derive(Debug, Default)]
pub struct TranslationCache {
    /// The options the entries were computed with; other options drop them all.
    options: Option<TranslateOptions>,
    /// The store they were read from; revisions of another store mean nothing to them.
    store: Option<StoreId>,
    /// IngressRoutes by (namespace, name), in the store's order.
    ingress_routes: Vec<((String, String), Entry<ingressroute::Translated>)>,
    /// Which IngressRoutes read each dependency. It may still name some that no longer read
    /// it (those are checked precisely, and kept when fresh), never misses one that does.
    readers: HashMap<Dep, BTreeSet<(String, String)>>,
    /// The store's revision when the entries were last checked.
    seen: u64,
    stats: CacheStats,
}

impl TranslationCache {
    /// An empty cache.
    pub fn new() -> TranslationCache {
        TranslationCache::default()
    }

    /// What the last [`TranslationCache::translate`] reused and recomputed.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Translates every object in the store, reusing what did not change: the same result as
    /// `super::translate(store, options)`.
    pub fn translate(&mut self, store: &ObjectStore, options: &TranslateOptions) -> Translation {
        if self.options.as_ref() != Some(options) || self.store != Some(store.id()) {
            self.ingress_routes.clear();
            self.readers.clear();
            self.options = Some(options.clone());
            self.store = Some(store.id());
        }
        self.stats = CacheStats::default();
        let mut out = Translation::default();
        // The same steps, in the same order, as `super::translate`.
        out.servers_transports = serverstransport::translate_all(store, &mut out.problems);
        middleware::report(store, &mut out.problems);
        self.ingress_routes(store, options, &mut out);
        ingress::translate_all(store, options, &mut out);
        entrypoints::redirections(options, &mut out);
        tls::translate(store, options, &mut out);
        ingressrouteudp::translate_all(store, options, &mut out);
        ingressroutetcp::translate_all(store, options, &mut out);
        out
    }

    /// The IngressRoutes whose kept translation may be stale: the readers of every dependency
    /// changed since the last translation, sorted; `None` when the store's change log does
    /// not reach back that far (then every entry is checked).
    fn suspects(&self, store: &ObjectStore) -> Option<Vec<(String, String)>> {
        let mut suspects = BTreeSet::new();
        for dep in store.changed_since(self.seen)? {
            if let Some(readers) = self.readers.get(dep) {
                suspects.extend(readers.iter());
            }
        }
        Some(suspects.into_iter().cloned().collect())
    }

    /// The IngressRoutes: kept entries are walked beside the store (both sorted by namespace
    /// and name), so matching them costs no lookups; only the suspects' dependencies are
    /// looked up (a change to one object checks the few IngressRoutes that read it, not all).
    fn ingress_routes(&mut self, store: &ObjectStore, options: &TranslateOptions, out: &mut Translation) {
        let suspects = if self.ingress_routes.is_empty() { None } else { self.suspects(store) };
        let mut suspects = suspects.map(|s| s.into_iter().peekable());
        self.seen = store.last_revision();
        let mut old = std::mem::take(&mut self.ingress_routes).into_iter().peekable();
        let mut next = Vec::with_capacity(old.len());
        for ir in store.ingress_routes() {
            let (ns, name) = (ir.metadata.namespace(), ir.metadata.name.as_str());
            // Entries of IngressRoutes that are gone sort before this one: drop them.
            while old.peek().is_some_and(|((n, m), _)| (n.as_str(), m.as_str()) < (ns, name)) {
                old.next();
            }
            let kept = match old.peek() {
                Some(((n, m), _)) if (n.as_str(), m.as_str()) == (ns, name) => old.next(),
                _ => None,
            };
            // Whether this IngressRoute read something that changed (both lists are sorted).
            let suspect = match suspects.as_mut() {
                None => true,
                Some(list) => {
                    while list.peek().is_some_and(|(n, m)| (n.as_str(), m.as_str()) < (ns, name)) {
                        list.next();
                    }
                    list.peek().is_some_and(|(n, m)| (n.as_str(), m.as_str()) == (ns, name))
                }
            };
            let (key, entry) = match kept.filter(|(_, e)| !suspect || e.fresh(store)) {
                Some(kept) => {
                    self.stats.reused += 1;
                    kept
                }
                None => {
                    self.stats.translated += 1;
                    let scope = store.record_reads();
                    store.note_read(Dep::Object(Kind::IngressRoute, ns.to_string(), name.to_string()));
                    let output = ingressroute::translate_object(ir, store, options);
                    let key = (ns.to_string(), name.to_string());
                    let deps = scope.finish();
                    for (dep, _) in &deps {
                        self.readers.entry(dep.clone()).or_default().insert(key.clone());
                    }
                    (key, Entry { deps, output })
                }
            };
            next.push((key, entry));
        }
        ingressroute::merge_all(next.iter().map(|(_, entry)| &entry.output), out);
        self.ingress_routes = next;
    }
}

#[cfg(test)]
mod tests;
