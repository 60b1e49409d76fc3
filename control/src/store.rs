//! The object store: every object a source delivered, indexed by kind, namespace and name, and
//! EndpointSlices also by the Service they belong to. It holds data only; translation reads it.

use std::collections::{BTreeMap, BTreeSet};

use crate::objects::{EndpointSlice, IngressRoute, Kind, Object, Service};

type Key = (String, String);

/// All known objects.
#[derive(Debug, Default, Clone)]
pub struct ObjectStore {
    ingress_routes: BTreeMap<Key, IngressRoute>,
    services: BTreeMap<Key, Service>,
    endpoint_slices: BTreeMap<Key, EndpointSlice>,
    /// (namespace, service name) → slice names.
    slices_by_service: BTreeMap<Key, BTreeSet<String>>,
    untranslated: BTreeMap<(Kind, String, String), Object>,
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
            Kind::Untranslated(_) => self.untranslated.remove(&(kind, key.0, key.1)),
        }
    }

    /// IngressRoutes sorted by namespace, then name.
    pub fn ingress_routes(&self) -> impl Iterator<Item = &IngressRoute> {
        self.ingress_routes.values()
    }

    /// A Service by namespace and name.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&Service> {
        self.services.get(&(namespace.to_string(), name.to_string()))
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

    /// Number of objects of every kind.
    pub fn len(&self) -> usize {
        self.ingress_routes.len() + self.services.len() + self.endpoint_slices.len() + self.untranslated.len()
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
