//! Minimal serde shapes of the Kubernetes objects weir reads (Traefik CRDs, `v1` Service,
//! `discovery.k8s.io/v1` EndpointSlice). Only the fields translation uses are typed; the rest is
//! ignored on read. These are data, not behaviour: resolution lives in `translate/`.

mod endpointslice;
mod ingressroute;
mod meta;
mod service;

pub use endpointslice::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice, SERVICE_NAME_LABEL};
pub use ingressroute::{IngressRoute, IngressRouteSpec, IngressRouteTls, ObjectRef, Route, ServiceRef};
pub use meta::{IntOrString, ObjectMeta, DEFAULT_NAMESPACE};
pub use service::{Service, ServicePort, ServiceSpec};

/// The Traefik API groups whose CRDs weir reads. `traefik.containo.us` is Traefik v2's group,
/// accepted as an alias (Traefik v3 itself no longer watches it).
pub const TRAEFIK_API_VERSIONS: [&str; 2] = ["traefik.io/v1alpha1", "traefik.containo.us/v1alpha1"];

/// Traefik CRD kinds that are stored but not translated yet.
pub const UNTRANSLATED_TRAEFIK_KINDS: [&str; 9] = [
    "IngressRouteTCP",
    "IngressRouteUDP",
    "Middleware",
    "MiddlewareTCP",
    "TraefikService",
    "TLSOption",
    "TLSStore",
    "ServersTransport",
    "ServersTransportTCP",
];

/// The kinds of object the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `traefik.io/v1alpha1` IngressRoute.
    IngressRoute,
    /// `v1` Service.
    Service,
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice,
    /// A Traefik CRD kind weir stores but does not translate yet (its name).
    Untranslated(&'static str),
}

impl Kind {
    /// The kind for an `apiVersion` / `kind` pair, if weir stores it.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        if TRAEFIK_API_VERSIONS.contains(&api_version) {
            if kind == "IngressRoute" {
                return Some(Kind::IngressRoute);
            }
            return UNTRANSLATED_TRAEFIK_KINDS.iter().find(|k| **k == kind).map(|k| Kind::Untranslated(k));
        }
        match (api_version, kind) {
            ("v1", "Service") => Some(Kind::Service),
            ("discovery.k8s.io/v1", "EndpointSlice") => Some(Kind::EndpointSlice),
            _ => None,
        }
    }

    /// The Kubernetes kind name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::IngressRoute => "IngressRoute",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Untranslated(k) => k,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One typed object, as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An IngressRoute.
    IngressRoute(IngressRoute),
    /// A Service.
    Service(Service),
    /// An EndpointSlice.
    EndpointSlice(EndpointSlice),
    /// A Traefik object kept raw until its kind is translated.
    Untranslated {
        /// Its kind.
        kind: &'static str,
        /// Its metadata.
        metadata: ObjectMeta,
        /// The whole document.
        raw: serde_yaml_ng::Value,
    },
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::IngressRoute(_) => Kind::IngressRoute,
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Untranslated { kind, .. } => Kind::Untranslated(kind),
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::IngressRoute(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Untranslated { metadata, .. } => metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_type() {
        let cases = [
            ("traefik.io/v1alpha1", "IngressRoute", Some(Kind::IngressRoute)),
            ("traefik.containo.us/v1alpha1", "IngressRoute", Some(Kind::IngressRoute)),
            ("traefik.io/v1alpha1", "Middleware", Some(Kind::Untranslated("Middleware"))),
            ("traefik.io/v1alpha1", "TLSStore", Some(Kind::Untranslated("TLSStore"))),
            ("traefik.io/v1alpha1", "Service", None),
            ("v1", "Service", Some(Kind::Service)),
            ("v1", "ConfigMap", None),
            ("discovery.k8s.io/v1", "EndpointSlice", Some(Kind::EndpointSlice)),
            ("discovery.k8s.io/v1beta1", "EndpointSlice", None),
            ("apps/v1", "Deployment", None),
        ];
        for (api, kind, want) in cases {
            assert_eq!(Kind::from_type(api, kind), want, "{api} {kind}");
        }
    }
}
