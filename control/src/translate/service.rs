//! Resolution of one IngressRoute service reference (`kind: Service`) to a load balancer:
//! the Service's port, its EndpointSlices' serving endpoints, and the servers' URLs, following
//! Traefik's CRD provider (port by number or name, slice port by the Service port's name,
//! `serving` endpoints only, scheme inferred from port 443 or an `https*` port name).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use weir_proto::snapshot::{LoadBalancer, Server};

use super::error::TranslateError;
use super::names;
use crate::objects::{IntOrString, ServicePort, ServiceRef};
use crate::store::ObjectStore;

/// What resolving a reference needs besides the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceOptions {
    /// Allow references into other namespaces.
    pub allow_cross_namespace: bool,
    /// Keep load balancers without servers (they answer 503).
    pub allow_empty_services: bool,
}

/// A resolved `kind: Service` reference.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedService {
    /// `<ns>-<svc>-<port>`, normalized.
    pub name: String,
    /// Its load balancer.
    pub load_balancer: LoadBalancer,
}

/// Resolves `sref`, written in an object of namespace `parent_namespace`.
pub fn resolve(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
) -> Result<ResolvedService, TranslateError> {
    let name = sref.name.as_str();
    if name.contains('@') {
        return Err(TranslateError::CrossProvider { name: name.into() });
    }
    let namespace = sref.namespace.as_deref().filter(|ns| !ns.is_empty()).unwrap_or(parent_namespace);
    let id = || (namespace.to_string(), name.to_string());
    if namespace != parent_namespace && !options.allow_cross_namespace {
        return Err(TranslateError::CrossNamespace {
            namespace: namespace.into(),
            name: name.into(),
            from: parent_namespace.into(),
        });
    }
    let port = match &sref.port {
        None | Some(IntOrString::Int(0)) => {
            let (namespace, name) = id();
            return Err(TranslateError::MissingPort { namespace, name });
        }
        Some(IntOrString::String(s)) if s.is_empty() => {
            let (namespace, name) = id();
            return Err(TranslateError::MissingPort { namespace, name });
        }
        Some(p) => p,
    };
    let Some(service) = store.service(namespace, name) else {
        let (namespace, name) = id();
        return Err(TranslateError::MissingService { namespace, name });
    };
    if service.spec.type_.as_deref() == Some("ExternalName") {
        let (namespace, name) = id();
        return Err(TranslateError::ExternalName { namespace, name });
    }
    let Some(service_port) = service.spec.ports.iter().find(|p| port_matches(p, port)) else {
        let (namespace, name) = id();
        return Err(TranslateError::PortNotFound { namespace, name, port: port.to_string() });
    };
    let scheme = match sref.scheme.as_deref() {
        Some(s @ ("http" | "https" | "h2c")) => s,
        Some(other) => {
            let (namespace, name) = id();
            return Err(TranslateError::InvalidScheme { namespace, name, scheme: other.into() });
        }
        None => infer_scheme(service_port),
    };

    let port_name = service_port.name.as_deref().unwrap_or("");
    let mut addresses = BTreeSet::new();
    for slice in store.endpoint_slices_of(namespace, name) {
        let Some(slice_port) = slice.ports.iter().find(|p| p.name.as_deref().unwrap_or("") == port_name)
        else {
            continue;
        };
        let Some(target_port) = slice_port.port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0)
        else {
            continue;
        };
        for endpoint in slice.endpoints.iter().filter(|e| e.conditions.is_serving()) {
            for address in &endpoint.addresses {
                match address.parse::<IpAddr>() {
                    Ok(ip) => {
                        addresses.insert(SocketAddr::new(ip, target_port));
                    }
                    // FQDN slices and garbage: nothing to connect to without a resolver.
                    Err(_) => tracing::debug!(
                        namespace,
                        slice = slice.metadata.name,
                        address,
                        "endpoint address is not an IP; skipped"
                    ),
                }
            }
        }
    }
    if addresses.is_empty() && !options.allow_empty_services {
        let (namespace, name) = id();
        return Err(TranslateError::NoEndpoints { namespace, name });
    }
    let servers = addresses
        .into_iter()
        // SocketAddr's Display brackets IPv6 addresses, as URLs need.
        .map(|address| Server { url: format!("{scheme}://{address}"), address, weight: 1 })
        .collect();
    Ok(ResolvedService {
        name: names::service_name(namespace, name, port),
        load_balancer: LoadBalancer { servers, pass_host_header: sref.pass_host_header.unwrap_or(true) },
    })
}

/// Traefik: an int port matches `spec.ports[].port`, a string port matches `spec.ports[].name`.
fn port_matches(p: &ServicePort, port: &IntOrString) -> bool {
    match port {
        IntOrString::Int(n) => p.port == *n,
        IntOrString::String(s) => p.name.as_deref() == Some(s.as_str()),
    }
}

/// Traefik: `https` when the service port is 443 or its name starts with `https`.
fn infer_scheme(p: &ServicePort) -> &'static str {
    if p.port == 443 || p.name.as_deref().is_some_and(|n| n.starts_with("https")) {
        "https"
    } else {
        "http"
    }
}
