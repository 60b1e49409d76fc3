//! Minimal serde shapes of the Kubernetes objects weir reads (Traefik CRDs, `v1` Service,
//! `discovery.k8s.io/v1` EndpointSlice). Only the fields translation uses are typed; the rest is
//! ignored on read. These are data, not behaviour: resolution lives in `translate/`.

mod endpointslice;
mod ingress;
mod ingressroute;
mod ingressroutetcp;
mod ingressrouteudp;
mod meta;
pub mod middleware;
mod node;
mod secret;
mod serverstransport;
mod serverstransporttcp;
mod service;
mod service_spec;
mod tls;
mod traefikservice;

pub use endpointslice::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice, SERVICE_NAME_LABEL};
pub use ingress::{
    HttpIngressPath, HttpIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressClassSpec,
    IngressRule, IngressServiceBackend, IngressSpec, IngressTls, ServiceBackendPort,
};
pub use ingressroute::{IngressRoute, IngressRouteSpec, IngressRouteTls, ObjectRef, Route, ServiceRef};
pub use ingressroutetcp::{
    IngressRouteTcp, IngressRouteTcpSpec, ProxyProtocolSpec, RouteTcp, ServiceTcp, TlsTcp,
};
pub use ingressrouteudp::{IngressRouteUdp, IngressRouteUdpSpec, RouteUdp, ServiceUdp};
pub use meta::{IntOrString, ObjectMeta, DEFAULT_NAMESPACE};
pub use middleware::{Middleware, MiddlewareSpec, MiddlewareTcp, MiddlewareTcpSpec};
pub use node::{Node, NodeAddress, NodeStatus, NODE_INTERNAL_IP};
pub use secret::{Secret, SecretDataError};
pub use serverstransport::{ForwardingTimeouts, RootCa, ServersTransport, ServersTransportSpec};
pub use serverstransporttcp::{ServersTransportTcp, ServersTransportTcpSpec, TlsClientConfigTcp};
pub use service::{Service, ServicePort, ServiceSpec};
pub use service_spec::{Cookie, HealthCheckSpec, ResponseForwarding, Sticky};
pub use tls::{ClientAuthSpec, SecretRef, TlsOption, TlsOptionSpec, TlsStore, TlsStoreSpec};
pub use traefikservice::{Mirroring, TraefikService, TraefikServiceSpec, Weighted};

/// The Traefik API groups whose CRDs weir reads. `traefik.containo.us` is Traefik v2's group,
/// accepted as an alias (Traefik v3 itself no longer watches it).
pub const TRAEFIK_API_VERSIONS: [&str; 2] = ["traefik.io/v1alpha1", "traefik.containo.us/v1alpha1"];

/// Traefik CRD kinds that are stored but not translated yet.
pub const UNTRANSLATED_TRAEFIK_KINDS: [&str; 0] = [];

/// The kinds of object the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `traefik.io/v1alpha1` IngressRoute.
    IngressRoute,
    /// `v1` Service.
    Service,
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice,
    /// `traefik.io/v1alpha1` Middleware.
    Middleware,
    /// `traefik.io/v1alpha1` MiddlewareTCP.
    MiddlewareTcp,
    /// `v1` Secret.
    Secret,
    /// `traefik.io/v1alpha1` TLSOption.
    TlsOption,
    /// `traefik.io/v1alpha1` TLSStore.
    TlsStore,
    /// `traefik.io/v1alpha1` TraefikService.
    TraefikService,
    /// `traefik.io/v1alpha1` ServersTransport.
    ServersTransport,
    /// A Traefik CRD kind weir stores but does not translate yet (its name).
    Untranslated(&'static str),
    /// `traefik.io/v1alpha1` IngressRouteUDP.
    IngressRouteUdp,
    /// `networking.k8s.io/v1` Ingress.
    Ingress,
    /// `networking.k8s.io/v1` IngressClass.
    IngressClass,
    /// `traefik.io/v1alpha1` IngressRouteTCP.
    IngressRouteTcp,
    /// `traefik.io/v1alpha1` ServersTransportTCP.
    ServersTransportTcp,
    /// `v1` Node (for `nodePortLB`).
    Node,
}

impl Kind {
    /// The kind for an `apiVersion` / `kind` pair, if weir stores it.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        if TRAEFIK_API_VERSIONS.contains(&api_version) {
            if kind == "IngressRoute" {
                return Some(Kind::IngressRoute);
            }
            if kind == "Middleware" {
                return Some(Kind::Middleware);
            }
            if kind == "MiddlewareTCP" {
                return Some(Kind::MiddlewareTcp);
            }
            if kind == "TraefikService" {
                return Some(Kind::TraefikService);
            }
            if kind == "TLSOption" {
                return Some(Kind::TlsOption);
            }
            if kind == "TLSStore" {
                return Some(Kind::TlsStore);
            }
            if kind == "ServersTransport" {
                return Some(Kind::ServersTransport);
            }
            if kind == "IngressRouteTCP" {
                return Some(Kind::IngressRouteTcp);
            }
            if kind == "ServersTransportTCP" {
                return Some(Kind::ServersTransportTcp);
            }
            if kind == "IngressRouteUDP" {
                return Some(Kind::IngressRouteUdp);
            }
            return UNTRANSLATED_TRAEFIK_KINDS.iter().find(|k| **k == kind).map(|k| Kind::Untranslated(k));
        }
        match (api_version, kind) {
            ("v1", "Service") => Some(Kind::Service),
            ("v1", "Secret") => Some(Kind::Secret),
            ("v1", "Node") => Some(Kind::Node),
            ("discovery.k8s.io/v1", "EndpointSlice") => Some(Kind::EndpointSlice),
            ("networking.k8s.io/v1", "Ingress") => Some(Kind::Ingress),
            ("networking.k8s.io/v1", "IngressClass") => Some(Kind::IngressClass),
            _ => None,
        }
    }

    /// The Kubernetes kind name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::IngressRoute => "IngressRoute",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Middleware => "Middleware",
            Kind::MiddlewareTcp => "MiddlewareTCP",
            Kind::Secret => "Secret",
            Kind::TlsOption => "TLSOption",
            Kind::TlsStore => "TLSStore",
            Kind::TraefikService => "TraefikService",
            Kind::ServersTransport => "ServersTransport",
            Kind::Untranslated(k) => k,
            Kind::IngressRouteUdp => "IngressRouteUDP",
            Kind::Ingress => "Ingress",
            Kind::IngressClass => "IngressClass",
            Kind::IngressRouteTcp => "IngressRouteTCP",
            Kind::ServersTransportTcp => "ServersTransportTCP",
            Kind::Node => "Node",
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
    /// A Middleware.
    Middleware(Middleware),
    /// A MiddlewareTCP.
    MiddlewareTcp(MiddlewareTcp),
    /// A Secret.
    Secret(Secret),
    /// A TLSOption.
    TlsOption(TlsOption),
    /// A TLSStore.
    TlsStore(TlsStore),
    /// A TraefikService.
    TraefikService(TraefikService),
    /// A ServersTransport.
    ServersTransport(ServersTransport),
    /// A Traefik object kept raw until its kind is translated.
    Untranslated {
        /// Its kind.
        kind: &'static str,
        /// Its metadata.
        metadata: ObjectMeta,
        /// The whole document.
        raw: serde_yaml_ng::Value,
    },
    /// An IngressRouteUDP.
    IngressRouteUdp(IngressRouteUdp),
    /// An Ingress.
    Ingress(Ingress),
    /// An IngressClass.
    IngressClass(IngressClass),
    /// An IngressRouteTCP.
    IngressRouteTcp(IngressRouteTcp),
    /// A ServersTransportTCP.
    ServersTransportTcp(ServersTransportTcp),
    /// A Node.
    Node(Node),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::IngressRoute(_) => Kind::IngressRoute,
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Middleware(_) => Kind::Middleware,
            Object::MiddlewareTcp(_) => Kind::MiddlewareTcp,
            Object::Secret(_) => Kind::Secret,
            Object::TlsOption(_) => Kind::TlsOption,
            Object::TlsStore(_) => Kind::TlsStore,
            Object::TraefikService(_) => Kind::TraefikService,
            Object::ServersTransport(_) => Kind::ServersTransport,
            Object::Untranslated { kind, .. } => Kind::Untranslated(kind),
            Object::IngressRouteUdp(_) => Kind::IngressRouteUdp,
            Object::Ingress(_) => Kind::Ingress,
            Object::IngressClass(_) => Kind::IngressClass,
            Object::IngressRouteTcp(_) => Kind::IngressRouteTcp,
            Object::ServersTransportTcp(_) => Kind::ServersTransportTcp,
            Object::Node(_) => Kind::Node,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::IngressRoute(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Middleware(o) => &o.metadata,
            Object::MiddlewareTcp(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::TlsOption(o) => &o.metadata,
            Object::TlsStore(o) => &o.metadata,
            Object::TraefikService(o) => &o.metadata,
            Object::ServersTransport(o) => &o.metadata,
            Object::Untranslated { metadata, .. } => metadata,
            Object::IngressRouteUdp(o) => &o.metadata,
            Object::Ingress(o) => &o.metadata,
            Object::IngressClass(o) => &o.metadata,
            Object::IngressRouteTcp(o) => &o.metadata,
            Object::ServersTransportTcp(o) => &o.metadata,
            Object::Node(o) => &o.metadata,
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
            ("traefik.io/v1alpha1", "Middleware", Some(Kind::Middleware)),
            ("traefik.io/v1alpha1", "MiddlewareTCP", Some(Kind::MiddlewareTcp)),
            ("v1", "Secret", Some(Kind::Secret)),
            ("traefik.io/v1alpha1", "TLSStore", Some(Kind::TlsStore)),
            ("traefik.io/v1alpha1", "TLSOption", Some(Kind::TlsOption)),
            ("traefik.io/v1alpha1", "IngressRouteUDP", Some(Kind::IngressRouteUdp)),
            ("traefik.io/v1alpha1", "IngressRouteTCP", Some(Kind::IngressRouteTcp)),
            ("traefik.io/v1alpha1", "ServersTransportTCP", Some(Kind::ServersTransportTcp)),
            ("traefik.io/v1alpha1", "Service", None),
            ("v1", "Service", Some(Kind::Service)),
            ("v1", "ConfigMap", None),
            ("v1", "Node", Some(Kind::Node)),
            ("discovery.k8s.io/v1", "EndpointSlice", Some(Kind::EndpointSlice)),
            ("discovery.k8s.io/v1beta1", "EndpointSlice", None),
            ("apps/v1", "Deployment", None),
            ("networking.k8s.io/v1", "Ingress", Some(Kind::Ingress)),
            ("networking.k8s.io/v1", "IngressClass", Some(Kind::IngressClass)),
            ("networking.k8s.io/v1beta1", "Ingress", None),
        ];
        for (api, kind, want) in cases {
            assert_eq!(Kind::from_type(api, kind), want, "{api} {kind}");
        }
    }
}
