//! The object store: every object a source delivered, indexed by kind, namespace and name, and
//! EndpointSlices also by the Service they belong to. It holds data only; translation reads it.
//!
//! For incremental translation (`crate::translate::cache`) the store also numbers every change
//! (a revision per object, per kind and per Service's set of EndpointSlices; replacing an object
//! with an equal one changes nothing) and, while a [`ReadScope`] is open, records which of those
//! the translator read through the accessors below, so a cached result knows exactly what it
//! depends on without hand-kept lists.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use crate::objects::{
    EndpointSlice, IngressRoute, Kind, Middleware, MiddlewareTcp, Object, Secret, ServersTransport, Service,
    TraefikService,
};

type Key = (String, String);

/// Something translation can read from the store, whose revision says whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dep {
    /// One object, present or not (absent objects have revision 0).
    Object(Kind, String, String),
    /// Every object of a kind (an iteration over the kind).
    Kind(Kind),
    /// The set of EndpointSlices of a Service (namespace, service name) and their contents.
    Slices(String, String),
}

/// Revisions of everything a translator can read (see [`Dep`]), looked up without copying
/// the key: checking a cached translation costs a few hash lookups.
#[derive(Debug, Default, Clone)]
struct Revisions {
    /// Last revision handed out.
    last: u64,
    of: HashMap<Dep, u64>,
    /// Every dependency changed, with the revision of the change, oldest first; bounded by
    /// [`CHANGE_LOG_LIMIT`] (cleared when full: see `log_floor`).
    log: Vec<(u64, Dep)>,
    /// Changes up to this revision are no longer in `log`.
    log_floor: u64,
}

/// Entries kept in the change log before it is cleared (a reader that falls behind checks
/// every dependency instead).
const CHANGE_LOG_LIMIT: usize = 16 * 1024;

impl Revisions {
    fn get(&self, dep: &Dep) -> u64 {
        self.of.get(dep).copied().unwrap_or(0)
    }

    /// Records a change of `(kind, key)`: present afterwards or not.
    fn changed(&mut self, kind: Kind, key: &Key, present: bool) {
        self.last += 1;
        let dep = Dep::Object(kind, key.0.clone(), key.1.clone());
        self.log_change(dep.clone());
        self.log_change(Dep::Kind(kind));
        if present {
            self.of.insert(dep, self.last);
        } else {
            self.of.remove(&dep);
        }
        self.of.insert(Dep::Kind(kind), self.last);
    }

    fn slices_changed(&mut self, namespace: &str, service: &str) {
        let dep = Dep::Slices(namespace.to_string(), service.to_string());
        self.log_change(dep.clone());
        self.of.insert(dep, self.last);
    }

    fn log_change(&mut self, dep: Dep) {
        if self.log.len() >= CHANGE_LOG_LIMIT {
            self.log.clear();
            self.log_floor = self.last;
        }
        self.log.push((self.last, dep));
    }
}

/// The reads recorded while a [`ReadScope`] is open. Cloning a store does not clone them.
#[derive(Debug, Default)]
struct ReadLog(Mutex<Option<Vec<Dep>>>);

impl Clone for ReadLog {
    fn clone(&self) -> ReadLog {
        ReadLog::default()
    }
}

impl ReadLog {
    fn record(&self, dep: impl FnOnce() -> Dep) {
        // A poisoned lock only means a translator panicked while recording; keep going.
        let mut log = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reads) = log.as_mut() {
            reads.push(dep());
        }
    }
}

/// Records every read of the store until [`ReadScope::finish`]. Scopes do not nest.
pub struct ReadScope<'a> {
    store: &'a ObjectStore,
}

impl ReadScope<'_> {
    /// The reads made since the scope opened, each with its current revision, deduplicated.
    pub fn finish(self) -> Vec<(Dep, u64)> {
        let reads = self.store.reads.0.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
        let mut deps: Vec<Dep> = reads;
        deps.sort();
        deps.dedup();
        deps.into_iter()
            .map(|d| {
                let rev = self.store.revision(&d);
                (d, rev)
            })
            .collect()
    }
}

impl Drop for ReadScope<'_> {
    fn drop(&mut self) {
        self.store.reads.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Identifies one store instance: revisions are numbered per instance, so a cache must only
/// compare revisions of the store it was filled from. A clone is another instance.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct StoreId(u64);

impl Default for StoreId {
    fn default() -> StoreId {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        StoreId(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// All known objects.
#[derive(Debug, Default)]
pub struct ObjectStore {
    id: StoreId,
    revisions: Revisions,
    reads: ReadLog,
    ingress_routes: BTreeMap<Key, IngressRoute>,
    services: BTreeMap<Key, Service>,
    endpoint_slices: BTreeMap<Key, EndpointSlice>,
    /// (namespace, service name) → slice names.
    slices_by_service: BTreeMap<Key, BTreeSet<String>>,
    traefik_services: BTreeMap<Key, TraefikService>,
    servers_transports: BTreeMap<Key, ServersTransport>,
    untranslated: BTreeMap<(Kind, String, String), Object>,
    middlewares: BTreeMap<Key, Middleware>,
    middlewares_tcp: BTreeMap<Key, MiddlewareTcp>,
    secrets: BTreeMap<Key, Secret>,
    tls_options: BTreeMap<Key, crate::objects::TlsOption>,
    tls_stores: BTreeMap<Key, crate::objects::TlsStore>,
    ingress_routes_udp: BTreeMap<Key, crate::objects::IngressRouteUdp>,
    ingresses: BTreeMap<Key, crate::objects::Ingress>,
    ingress_classes: BTreeMap<Key, crate::objects::IngressClass>,
    ingress_routes_tcp: BTreeMap<Key, crate::objects::IngressRouteTcp>,
    servers_transports_tcp: BTreeMap<Key, crate::objects::ServersTransportTcp>,
    nodes: BTreeMap<Key, crate::objects::Node>,
}

impl Clone for ObjectStore {
    fn clone(&self) -> ObjectStore {
        ObjectStore {
            id: StoreId::default(),
            revisions: self.revisions.clone(),
            reads: ReadLog::default(),
            ingress_routes: self.ingress_routes.clone(),
            services: self.services.clone(),
            endpoint_slices: self.endpoint_slices.clone(),
            slices_by_service: self.slices_by_service.clone(),
            traefik_services: self.traefik_services.clone(),
            servers_transports: self.servers_transports.clone(),
            untranslated: self.untranslated.clone(),
            middlewares: self.middlewares.clone(),
            middlewares_tcp: self.middlewares_tcp.clone(),
            secrets: self.secrets.clone(),
            tls_options: self.tls_options.clone(),
            tls_stores: self.tls_stores.clone(),
            ingress_routes_udp: self.ingress_routes_udp.clone(),
            ingresses: self.ingresses.clone(),
            ingress_classes: self.ingress_classes.clone(),
            ingress_routes_tcp: self.ingress_routes_tcp.clone(),
            servers_transports_tcp: self.servers_transports_tcp.clone(),
            nodes: self.nodes.clone(),
        }
    }
}

impl ObjectStore {
    /// This store instance (see [`StoreId`]).
    pub fn id(&self) -> StoreId {
        self.id
    }

    /// An empty store.
    pub fn new() -> ObjectStore {
        ObjectStore::default()
    }

    /// Adds or replaces an object; returns the object it replaced. Replacing an object with an
    /// equal one keeps its revision.
    pub fn insert(&mut self, object: Object) -> Option<Object> {
        let kind = object.kind();
        let key = (object.metadata().namespace().to_string(), object.metadata().name.clone());
        let old = self.take(kind, &key.0, &key.1);
        if old.as_ref() != Some(&object) {
            self.revisions.changed(kind, &key, true);
            for o in old.iter().chain(std::iter::once(&object)) {
                if let Object::EndpointSlice(slice) = o {
                    if let Some(svc) = slice.service_name() {
                        self.revisions.slices_changed(&key.0, svc);
                    }
                }
            }
        }
        match object {
            Object::IngressRoute(o) => {
                self.ingress_routes.insert(key, o);
            }
            Object::Service(o) => {
                self.services.insert(key, o);
            }
            Object::EndpointSlice(o) => {
                if let Some(svc) = o.service_name() {
                    self.slices_by_service
                        .entry((key.0.clone(), svc.to_string()))
                        .or_default()
                        .insert(key.1.clone());
                }
                self.endpoint_slices.insert(key, o);
            }
            Object::TraefikService(o) => {
                self.traefik_services.insert(key, o);
            }
            Object::ServersTransport(o) => {
                self.servers_transports.insert(key, o);
            }
            Object::Middleware(o) => {
                self.middlewares.insert(key, o);
            }
            Object::MiddlewareTcp(o) => {
                self.middlewares_tcp.insert(key, o);
            }
            Object::Secret(o) => {
                self.secrets.insert(key, o);
            }
            Object::TlsOption(o) => {
                self.tls_options.insert(key, o);
            }
            Object::TlsStore(o) => {
                self.tls_stores.insert(key, o);
            }
            Object::IngressRouteUdp(o) => {
                self.ingress_routes_udp.insert(key, o);
            }
            Object::Ingress(o) => {
                self.ingresses.insert(key, o);
            }
            Object::IngressClass(o) => {
                self.ingress_classes.insert(key, o);
            }
            Object::IngressRouteTcp(o) => {
                self.ingress_routes_tcp.insert(key, o);
            }
            Object::ServersTransportTcp(o) => {
                self.servers_transports_tcp.insert(key, o);
            }
            Object::Node(o) => {
                self.nodes.insert(key, o);
            }
            o @ Object::Untranslated { .. } => {
                self.untranslated.insert((kind, key.0, key.1), o);
            }
        }
        old
    }

    /// Removes an object; returns it.
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Object> {
        let old = self.take(kind, namespace, name)?;
        let key = (namespace.to_string(), name.to_string());
        self.revisions.changed(kind, &key, false);
        if let Object::EndpointSlice(slice) = &old {
            if let Some(svc) = slice.service_name() {
                self.revisions.slices_changed(namespace, svc);
            }
        }
        Some(old)
    }

    /// Makes this store hold exactly what `other` holds, keeping the revisions of objects that
    /// did not change (a source that rebuilds its store on every read, like the manifests
    /// directory, then invalidates only what it changed).
    pub fn sync_from(&mut self, other: ObjectStore) {
        let gone: Vec<(Kind, String, String)> =
            self.keys().filter(|(kind, ns, name)| !other.contains(*kind, ns, name)).collect();
        for (kind, ns, name) in gone {
            self.remove(kind, &ns, &name);
        }
        for object in other.into_objects() {
            // The common case, an unchanged object, is compared in place and not moved.
            if !self.holds(&object) {
                self.insert(object);
            }
        }
    }

    /// Whether an object of `kind` is stored under `namespace`/`name`.
    fn contains(&self, kind: Kind, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_string(), name.to_string());
        match kind {
            Kind::IngressRoute => self.ingress_routes.contains_key(&key),
            Kind::Service => self.services.contains_key(&key),
            Kind::EndpointSlice => self.endpoint_slices.contains_key(&key),
            Kind::TraefikService => self.traefik_services.contains_key(&key),
            Kind::ServersTransport => self.servers_transports.contains_key(&key),
            Kind::Middleware => self.middlewares.contains_key(&key),
            Kind::MiddlewareTcp => self.middlewares_tcp.contains_key(&key),
            Kind::Secret => self.secrets.contains_key(&key),
            Kind::TlsOption => self.tls_options.contains_key(&key),
            Kind::TlsStore => self.tls_stores.contains_key(&key),
            Kind::Untranslated(_) => self.untranslated.contains_key(&(kind, key.0, key.1)),
            Kind::IngressRouteUdp => self.ingress_routes_udp.contains_key(&key),
            Kind::Ingress => self.ingresses.contains_key(&key),
            Kind::IngressClass => self.ingress_classes.contains_key(&key),
            Kind::IngressRouteTcp => self.ingress_routes_tcp.contains_key(&key),
            Kind::ServersTransportTcp => self.servers_transports_tcp.contains_key(&key),
            Kind::Node => self.nodes.contains_key(&key),
        }
    }

    /// Whether an object equal to `object` is stored under its kind, namespace and name.
    fn holds(&self, object: &Object) -> bool {
        let meta = object.metadata();
        let key = (meta.namespace().to_string(), meta.name.clone());
        match object {
            Object::IngressRoute(o) => self.ingress_routes.get(&key) == Some(o),
            Object::Service(o) => self.services.get(&key) == Some(o),
            Object::EndpointSlice(o) => self.endpoint_slices.get(&key) == Some(o),
            Object::TraefikService(o) => self.traefik_services.get(&key) == Some(o),
            Object::ServersTransport(o) => self.servers_transports.get(&key) == Some(o),
            Object::Middleware(o) => self.middlewares.get(&key) == Some(o),
            Object::MiddlewareTcp(o) => self.middlewares_tcp.get(&key) == Some(o),
            Object::Secret(o) => self.secrets.get(&key) == Some(o),
            Object::TlsOption(o) => self.tls_options.get(&key) == Some(o),
            Object::TlsStore(o) => self.tls_stores.get(&key) == Some(o),
            Object::IngressRouteUdp(o) => self.ingress_routes_udp.get(&key) == Some(o),
            Object::Ingress(o) => self.ingresses.get(&key) == Some(o),
            Object::IngressClass(o) => self.ingress_classes.get(&key) == Some(o),
            Object::IngressRouteTcp(o) => self.ingress_routes_tcp.get(&key) == Some(o),
            Object::ServersTransportTcp(o) => self.servers_transports_tcp.get(&key) == Some(o),
            Object::Node(o) => self.nodes.get(&key) == Some(o),
            o @ Object::Untranslated { .. } => self.untranslated.get(&(o.kind(), key.0, key.1)) == Some(o),
        }
    }

    /// Every object's kind, namespace and name.
    fn keys(&self) -> impl Iterator<Item = (Kind, String, String)> + '_ {
        fn of<'a, T: 'a>(
            kind: Kind,
            m: &'a BTreeMap<Key, T>,
        ) -> impl Iterator<Item = (Kind, String, String)> + 'a {
            m.keys().map(move |(ns, name)| (kind, ns.clone(), name.clone()))
        }
        of(Kind::IngressRoute, &self.ingress_routes)
            .chain(of(Kind::Service, &self.services))
            .chain(of(Kind::EndpointSlice, &self.endpoint_slices))
            .chain(of(Kind::TraefikService, &self.traefik_services))
            .chain(of(Kind::ServersTransport, &self.servers_transports))
            .chain(self.untranslated.keys().cloned())
            .chain(of(Kind::Middleware, &self.middlewares))
            .chain(of(Kind::MiddlewareTcp, &self.middlewares_tcp))
            .chain(of(Kind::Secret, &self.secrets))
            .chain(of(Kind::TlsOption, &self.tls_options))
            .chain(of(Kind::TlsStore, &self.tls_stores))
            .chain(of(Kind::IngressRouteUdp, &self.ingress_routes_udp))
            .chain(of(Kind::Ingress, &self.ingresses))
            .chain(of(Kind::IngressClass, &self.ingress_classes))
            .chain(of(Kind::IngressRouteTcp, &self.ingress_routes_tcp))
            .chain(of(Kind::ServersTransportTcp, &self.servers_transports_tcp))
            .chain(of(Kind::Node, &self.nodes))
    }

    /// Every object, moved out.
    fn into_objects(self) -> impl Iterator<Item = Object> {
        let ObjectStore {
            ingress_routes,
            services,
            endpoint_slices,
            traefik_services,
            servers_transports,
            untranslated,
            middlewares,
            middlewares_tcp,
            secrets,
            tls_options,
            tls_stores,
            ingress_routes_udp,
            ingresses,
            ingress_classes,
            ingress_routes_tcp,
            servers_transports_tcp,
            nodes,
            ..
        } = self;
        ingress_routes
            .into_values()
            .map(Object::IngressRoute)
            .chain(services.into_values().map(Object::Service))
            .chain(endpoint_slices.into_values().map(Object::EndpointSlice))
            .chain(traefik_services.into_values().map(Object::TraefikService))
            .chain(servers_transports.into_values().map(Object::ServersTransport))
            .chain(untranslated.into_values())
            .chain(middlewares.into_values().map(Object::Middleware))
            .chain(middlewares_tcp.into_values().map(Object::MiddlewareTcp))
            .chain(secrets.into_values().map(Object::Secret))
            .chain(tls_options.into_values().map(Object::TlsOption))
            .chain(tls_stores.into_values().map(Object::TlsStore))
            .chain(ingress_routes_udp.into_values().map(Object::IngressRouteUdp))
            .chain(ingresses.into_values().map(Object::Ingress))
            .chain(ingress_classes.into_values().map(Object::IngressClass))
            .chain(ingress_routes_tcp.into_values().map(Object::IngressRouteTcp))
            .chain(servers_transports_tcp.into_values().map(Object::ServersTransportTcp))
            .chain(nodes.into_values().map(Object::Node))
    }

    /// The revision of `dep`: changes whenever what it names changes (0: absent).
    pub fn revision(&self, dep: &Dep) -> u64 {
        self.revisions.get(dep)
    }

    /// The latest revision handed out (0 before any change).
    pub fn last_revision(&self) -> u64 {
        self.revisions.last
    }

    /// Every dependency changed after `revision` (with repeats), or `None` when the change
    /// log no longer reaches back that far.
    pub fn changed_since(&self, revision: u64) -> Option<impl Iterator<Item = &Dep>> {
        if revision < self.revisions.log_floor {
            return None;
        }
        let start = self.revisions.log.partition_point(|(r, _)| *r <= revision);
        Some(self.revisions.log[start..].iter().map(|(_, d)| d))
    }

    /// Starts recording reads (see [`ReadScope`]).
    pub fn record_reads(&self) -> ReadScope<'_> {
        *self.reads.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
        ReadScope { store: self }
    }

    /// Records a read made outside the accessors (the cache's own key object).
    pub fn note_read(&self, dep: Dep) {
        self.reads.record(|| dep);
    }

    fn note_object(&self, kind: Kind, namespace: &str, name: &str) {
        self.reads.record(|| Dep::Object(kind, namespace.to_string(), name.to_string()));
    }

    fn note_kind(&self, kind: Kind) {
        self.reads.record(|| Dep::Kind(kind));
    }

    /// Removes an object without recording a change.
    fn take(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Object> {
        let key = (namespace.to_string(), name.to_string());
        match kind {
            Kind::IngressRoute => self.ingress_routes.remove(&key).map(Object::IngressRoute),
            Kind::Service => self.services.remove(&key).map(Object::Service),
            Kind::EndpointSlice => {
                let slice = self.endpoint_slices.remove(&key)?;
                if let Some(svc) = slice.service_name() {
                    let index_key = (key.0.clone(), svc.to_string());
                    if let Some(names) = self.slices_by_service.get_mut(&index_key) {
                        names.remove(&key.1);
                        if names.is_empty() {
                            self.slices_by_service.remove(&index_key);
                        }
                    }
                }
                Some(Object::EndpointSlice(slice))
            }
            Kind::TraefikService => self.traefik_services.remove(&key).map(Object::TraefikService),
            Kind::ServersTransport => self.servers_transports.remove(&key).map(Object::ServersTransport),
            Kind::Middleware => self.middlewares.remove(&key).map(Object::Middleware),
            Kind::MiddlewareTcp => self.middlewares_tcp.remove(&key).map(Object::MiddlewareTcp),
            Kind::Secret => self.secrets.remove(&key).map(Object::Secret),
            Kind::TlsOption => self.tls_options.remove(&key).map(Object::TlsOption),
            Kind::TlsStore => self.tls_stores.remove(&key).map(Object::TlsStore),
            Kind::Untranslated(_) => self.untranslated.remove(&(kind, key.0, key.1)),
            Kind::IngressRouteUdp => self.ingress_routes_udp.remove(&key).map(Object::IngressRouteUdp),
            Kind::Ingress => self.ingresses.remove(&key).map(Object::Ingress),
            Kind::IngressClass => self.ingress_classes.remove(&key).map(Object::IngressClass),
            Kind::IngressRouteTcp => self.ingress_routes_tcp.remove(&key).map(Object::IngressRouteTcp),
            Kind::ServersTransportTcp => {
                self.servers_transports_tcp.remove(&key).map(Object::ServersTransportTcp)
            }
            Kind::Node => self.nodes.remove(&key).map(Object::Node),
        }
    }

    /// IngressRoutes sorted by namespace, then name.
    pub fn ingress_routes(&self) -> impl Iterator<Item = &IngressRoute> {
        self.note_kind(Kind::IngressRoute);
        self.ingress_routes.values()
    }

    /// IngressRouteTCPs sorted by namespace, then name.
    pub fn ingress_routes_tcp(&self) -> impl Iterator<Item = &crate::objects::IngressRouteTcp> {
        self.note_kind(Kind::IngressRouteTcp);
        self.ingress_routes_tcp.values()
    }

    /// A ServersTransportTCP by namespace and name.
    pub fn servers_transport_tcp(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&crate::objects::ServersTransportTcp> {
        self.note_object(Kind::ServersTransportTcp, namespace, name);
        self.servers_transports_tcp.get(&(namespace.to_string(), name.to_string()))
    }

    /// IngressRouteUDPs sorted by namespace, then name.
    pub fn ingress_routes_udp(&self) -> impl Iterator<Item = &crate::objects::IngressRouteUdp> {
        self.note_kind(Kind::IngressRouteUdp);
        self.ingress_routes_udp.values()
    }

    /// Ingresses sorted by namespace, then name.
    pub fn ingresses(&self) -> impl Iterator<Item = &crate::objects::Ingress> {
        self.note_kind(Kind::Ingress);
        self.ingresses.values()
    }

    /// IngressClasses sorted by name (they are cluster scoped).
    pub fn ingress_classes(&self) -> impl Iterator<Item = &crate::objects::IngressClass> {
        self.note_kind(Kind::IngressClass);
        self.ingress_classes.values()
    }

    /// Nodes sorted by name (cluster scoped), for `nodePortLB`.
    pub fn nodes(&self) -> impl Iterator<Item = &crate::objects::Node> {
        self.note_kind(Kind::Node);
        self.nodes.values()
    }

    /// A Service by namespace and name.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.note_object(Kind::Service, namespace, name);
        self.services.get(&(namespace.to_string(), name.to_string()))
    }

    /// A TraefikService by namespace and name.
    pub fn traefik_service(&self, namespace: &str, name: &str) -> Option<&TraefikService> {
        self.note_object(Kind::TraefikService, namespace, name);
        self.traefik_services.get(&(namespace.to_string(), name.to_string()))
    }

    /// A ServersTransport by namespace and name.
    pub fn servers_transport(&self, namespace: &str, name: &str) -> Option<&ServersTransport> {
        self.note_object(Kind::ServersTransport, namespace, name);
        self.servers_transports.get(&(namespace.to_string(), name.to_string()))
    }

    /// ServersTransports sorted by namespace, then name.
    pub fn servers_transports(&self) -> impl Iterator<Item = &ServersTransport> {
        self.note_kind(Kind::ServersTransport);
        self.servers_transports.values()
    }

    /// The EndpointSlices of a Service, sorted by slice name.
    pub fn endpoint_slices_of<'a>(
        &'a self,
        namespace: &'a str,
        service: &str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.reads.record(|| Dep::Slices(namespace.to_string(), service.to_string()));
        self.slices_by_service
            .get(&(namespace.to_string(), service.to_string()))
            .into_iter()
            .flatten()
            .filter_map(move |name| self.endpoint_slices.get(&(namespace.to_string(), name.clone())))
    }

    /// Middlewares sorted by namespace, then name.
    pub fn middlewares(&self) -> impl Iterator<Item = &Middleware> {
        self.note_kind(Kind::Middleware);
        self.middlewares.values()
    }

    /// A Middleware by namespace and name.
    pub fn middleware(&self, namespace: &str, name: &str) -> Option<&Middleware> {
        self.note_object(Kind::Middleware, namespace, name);
        self.middlewares.get(&(namespace.to_string(), name.to_string()))
    }

    /// MiddlewareTCPs sorted by namespace, then name.
    pub fn middlewares_tcp(&self) -> impl Iterator<Item = &MiddlewareTcp> {
        self.note_kind(Kind::MiddlewareTcp);
        self.middlewares_tcp.values()
    }

    /// A MiddlewareTCP by namespace and name.
    pub fn middleware_tcp(&self, namespace: &str, name: &str) -> Option<&MiddlewareTcp> {
        self.note_object(Kind::MiddlewareTcp, namespace, name);
        self.middlewares_tcp.get(&(namespace.to_string(), name.to_string()))
    }

    /// TLSOptions sorted by namespace, then name.
    pub fn tls_options(&self) -> impl Iterator<Item = &crate::objects::TlsOption> {
        self.note_kind(Kind::TlsOption);
        self.tls_options.values()
    }

    /// TLSStores sorted by namespace, then name.
    pub fn tls_stores(&self) -> impl Iterator<Item = &crate::objects::TlsStore> {
        self.note_kind(Kind::TlsStore);
        self.tls_stores.values()
    }

    /// A Secret by namespace and name.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.note_object(Kind::Secret, namespace, name);
        self.secrets.get(&(namespace.to_string(), name.to_string()))
    }

    /// Number of objects of every kind.
    pub fn len(&self) -> usize {
        self.ingress_routes.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.traefik_services.len()
            + self.servers_transports.len()
            + self.untranslated.len()
            + self.ingress_routes_udp.len()
            + self.ingress_routes_tcp.len()
            + self.servers_transports_tcp.len()
            + self.nodes.len()
            + self.ingresses.len()
            + self.ingress_classes.len()
            + self.middlewares.len()
            + self.middlewares_tcp.len()
            + self.secrets.len()
            + self.tls_options.len()
            + self.tls_stores.len()
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::ObjectMeta;

    fn slice(ns: &str, name: &str, svc: &str) -> Object {
        Object::EndpointSlice(EndpointSlice {
            metadata: ObjectMeta {
                name: name.into(),
                namespace: Some(ns.into()),
                labels: [("kubernetes.io/service-name".to_string(), svc.to_string())].into(),
                ..Default::default()
            },
            address_type: None,
            endpoints: vec![],
            ports: vec![],
        })
    }

    fn slice_names(store: &ObjectStore, ns: &str, svc: &str) -> Vec<String> {
        store.endpoint_slices_of(ns, svc).map(|s| s.metadata.name.clone()).collect()
    }

    #[test]
    fn slices_are_indexed_by_service() {
        let mut store = ObjectStore::new();
        store.insert(slice("default", "web-b", "web"));
        store.insert(slice("default", "web-a", "web"));
        store.insert(slice("other", "web-c", "web"));
        assert_eq!(slice_names(&store, "default", "web"), ["web-a", "web-b"]);
        // Relabelled: moves to the other service's index.
        assert!(store.insert(slice("default", "web-a", "api")).is_some());
        assert_eq!(slice_names(&store, "default", "web"), ["web-b"]);
        assert_eq!(slice_names(&store, "default", "api"), ["web-a"]);
        assert!(store.remove(Kind::EndpointSlice, "default", "web-b").is_some());
        assert!(slice_names(&store, "default", "web").is_empty());
        assert_eq!(store.len(), 2);
    }
}
