//! The object store: every object a source delivered, indexed by kind, namespace and name, and
//! EndpointSlices also by the Service they belong to. It holds data only; translation reads it.

use std::collections::{BTreeMap, BTreeSet};

use crate::objects::{
    EndpointSlice, IngressRoute, Kind, Middleware, MiddlewareTcp, Object, Secret, ServersTransport, Service,
    TraefikService,
};

type Key = (String, String);

/// All known objects.
#[derive(Debug, Default, Clone)]
pub struct ObjectStore {
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
}

impl ObjectStore {
    /// An empty store.
    pub fn new() -> ObjectStore {
        ObjectStore::default()
    }

    /// Adds or replaces an object; returns the object it replaced.
    pub fn insert(&mut self, object: Object) -> Option<Object> {
        let kind = object.kind();
        let key = (object.metadata().namespace().to_string(), object.metadata().name.clone());
        let old = self.remove(kind, &key.0, &key.1);
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
            o @ Object::Untranslated { .. } => {
                self.untranslated.insert((kind, key.0, key.1), o);
            }
        }
        old
    }

    /// Removes an object; returns it.
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Object> {
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
        }
    }

    /// IngressRoutes sorted by namespace, then name.
    pub fn ingress_routes(&self) -> impl Iterator<Item = &IngressRoute> {
        self.ingress_routes.values()
    }

    /// IngressRouteTCPs sorted by namespace, then name.
    pub fn ingress_routes_tcp(&self) -> impl Iterator<Item = &crate::objects::IngressRouteTcp> {
        self.ingress_routes_tcp.values()
    }

    /// A ServersTransportTCP by namespace and name.
    pub fn servers_transport_tcp(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<&crate::objects::ServersTransportTcp> {
        self.servers_transports_tcp.get(&(namespace.to_string(), name.to_string()))
    }

    /// IngressRouteUDPs sorted by namespace, then name.
    pub fn ingress_routes_udp(&self) -> impl Iterator<Item = &crate::objects::IngressRouteUdp> {
        self.ingress_routes_udp.values()
    }

    /// Ingresses sorted by namespace, then name.
    pub fn ingresses(&self) -> impl Iterator<Item = &crate::objects::Ingress> {
        self.ingresses.values()
    }

    /// IngressClasses sorted by name (they are cluster scoped).
    pub fn ingress_classes(&self) -> impl Iterator<Item = &crate::objects::IngressClass> {
        self.ingress_classes.values()
    }

    /// A Service by namespace and name.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.get(&(namespace.to_string(), name.to_string()))
    }

    /// A TraefikService by namespace and name.
    pub fn traefik_service(&self, namespace: &str, name: &str) -> Option<&TraefikService> {
        self.traefik_services.get(&(namespace.to_string(), name.to_string()))
    }

    /// A ServersTransport by namespace and name.
    pub fn servers_transport(&self, namespace: &str, name: &str) -> Option<&ServersTransport> {
        self.servers_transports.get(&(namespace.to_string(), name.to_string()))
    }

    /// ServersTransports sorted by namespace, then name.
    pub fn servers_transports(&self) -> impl Iterator<Item = &ServersTransport> {
        self.servers_transports.values()
    }

    /// The EndpointSlices of a Service, sorted by slice name.
    pub fn endpoint_slices_of<'a>(
        &'a self,
        namespace: &'a str,
        service: &str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + 'a {
        self.slices_by_service
            .get(&(namespace.to_string(), service.to_string()))
            .into_iter()
            .flatten()
            .filter_map(move |name| self.endpoint_slices.get(&(namespace.to_string(), name.clone())))
    }

    /// Middlewares sorted by namespace, then name.
    pub fn middlewares(&self) -> impl Iterator<Item = &Middleware> {
        self.middlewares.values()
    }

    /// A Middleware by namespace and name.
    pub fn middleware(&self, namespace: &str, name: &str) -> Option<&Middleware> {
        self.middlewares.get(&(namespace.to_string(), name.to_string()))
    }

    /// MiddlewareTCPs sorted by namespace, then name.
    pub fn middlewares_tcp(&self) -> impl Iterator<Item = &MiddlewareTcp> {
        self.middlewares_tcp.values()
    }

    /// A MiddlewareTCP by namespace and name.
    pub fn middleware_tcp(&self, namespace: &str, name: &str) -> Option<&MiddlewareTcp> {
        self.middlewares_tcp.get(&(namespace.to_string(), name.to_string()))
    }

    /// TLSOptions sorted by namespace, then name.
    pub fn tls_options(&self) -> impl Iterator<Item = &crate::objects::TlsOption> {
        self.tls_options.values()
    }

    /// TLSStores sorted by namespace, then name.
    pub fn tls_stores(&self) -> impl Iterator<Item = &crate::objects::TlsStore> {
        self.tls_stores.values()
    }

    /// A Secret by namespace and name.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
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
