//! Resolution of one service reference (Traefik's `LoadBalancerSpec`) to the snapshot's
//! services, as Traefik's CRD provider does it: `kind: Service` becomes a load balancer over
//! the Service's serving endpoints (or its ClusterIP with `nativeLB`, its external name
//! with `allowExternalNameServices`, or every Node's InternalIP and the port's `nodePort` with
//! `nodePortLB` on a NodePort Service), with the reference's sticky cookie, health check,
//! servers transport and flush interval; `kind: TraefikService` is handed to
//! [`super::traefikservice`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use sha1::{Digest, Sha1};
use weir_proto::snapshot::{
    HealthCheck, LoadBalancer, Scheme, Server, Service, ServiceKind, StickyCookie, Strategy,
    DEFAULT_SERVERS_TRANSPORT,
};

use super::error::TranslateError;
use super::{duration, names, serverstransport, traefikservice};
use crate::objects::{Cookie, HealthCheckSpec, IntOrString, ServicePort, ServiceRef};
use crate::store::ObjectStore;

/// The provider name Traefik appends to the objects of the CRD provider.
pub const PROVIDER: &str = "kubernetescrd";
/// Traefik's `responseForwarding.flushInterval` default.
const DEFAULT_FLUSH_INTERVAL_MS: i64 = 100;
/// Traefik's health check defaults.
const DEFAULT_HEALTH_INTERVAL_MS: u64 = 30_000;
const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 5_000;

/// What resolving a reference needs besides the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServiceOptions {
    /// Allow references into other namespaces.
    pub allow_cross_namespace: bool,
    /// Keep load balancers without servers (they answer 503).
    pub allow_empty_services: bool,
    /// Allow ExternalName Services (`--providers.kubernetesCRD.allowExternalNameServices`).
    pub allow_external_name_services: bool,
    /// Use the ClusterIP unless a reference says `nativeLB: false`
    /// (`--providers.kubernetesCRD.nativeLBByDefault`).
    pub native_lb_by_default: bool,
    /// `disableClusterScopeResources`: Nodes are not looked up, so `nodePortLB` on a NodePort
    /// Service is an error (Traefik's `nodes lookup is disabled`).
    pub nodes_lookup_disabled: bool,
}

/// Services generated while resolving, by name.
pub type Generated = BTreeMap<String, Service>;

/// A resolved `kind: Service` reference.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedService {
    /// `<ns>-<svc>-<port>`, normalized.
    pub name: String,
    /// Its load balancer.
    pub load_balancer: LoadBalancer,
}

/// Resolves a reference of any kind written in an object of namespace `parent_namespace`;
/// returns the name of the service requests go to and adds every service it needs to `out`.
pub fn resolve_ref(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
    out: &mut Generated,
) -> Result<String, TranslateError> {
    resolve_ref_in(store, parent_namespace, sref, options, &mut Vec::new(), out)
}

/// [`resolve_ref`] inside a chain of TraefikServices being resolved (`visiting`, for cycles).
pub(super) fn resolve_ref_in(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
    visiting: &mut Vec<String>,
    out: &mut Generated,
) -> Result<String, TranslateError> {
    match sref.kind.as_deref() {
        None | Some("") | Some("Service") => {
            let r = resolve(store, parent_namespace, sref, options)?;
            let name = r.name.clone();
            out.insert(
                r.name,
                Service { name: name.clone(), kind: ServiceKind::LoadBalancer(r.load_balancer) },
            );
            Ok(name)
        }
        Some("TraefikService") => {
            traefikservice::resolve(store, parent_namespace, sref, options, visiting, out)
        }
        Some(other) => {
            Err(TranslateError::UnknownServiceKind { name: sref.name.clone(), kind: other.into() })
        }
    }
}

/// Resolves a `kind: Service` reference `sref`, written in an object of namespace
/// `parent_namespace`, as Traefik's IngressRoute provider does: `nativeLB` wins over
/// `nodePortLB` when a reference asks for both.
pub fn resolve(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
) -> Result<ResolvedService, TranslateError> {
    resolve_with(store, parent_namespace, sref, options, false)
}

/// [`resolve`] for IngressRouteTCP, IngressRouteUDP and Ingress references, where Traefik
/// looks at `nodePortLB` first: on a NodePort Service it wins over `nativeLB` (and the default).
pub fn resolve_node_port_first(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
) -> Result<ResolvedService, TranslateError> {
    resolve_with(store, parent_namespace, sref, options, true)
}

fn resolve_with(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
    node_port_first: bool,
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
    let external = service.spec.type_.as_deref() == Some("ExternalName");
    // Traefik: an ExternalName Service may be reached on an int port it does not declare.
    let undeclared;
    let service_port = match service.spec.ports.iter().find(|p| port_matches(p, port)) {
        Some(p) => p,
        None => match port {
            IntOrString::Int(n) if external => {
                undeclared = ServicePort { port: *n, ..ServicePort::default() };
                &undeclared
            }
            _ => {
                let (namespace, name) = id();
                return Err(TranslateError::PortNotFound { namespace, name, port: port.to_string() });
            }
        },
    };
    if !external && sref.health_check.is_some() {
        let (namespace, name) = id();
        return Err(TranslateError::HealthCheckNotAllowed { namespace, name });
    }
    if !external && sref.passive_health_check.is_some() {
        return Err(invalid(name, "passiveHealthCheck allowed only for ExternalName services"));
    }
    let scheme = match sref.scheme.as_deref() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some("h2c") => Scheme::H2c,
        Some(other) => {
            let (namespace, name) = id();
            return Err(TranslateError::InvalidScheme { namespace, name, scheme: other.into() });
        }
        None => infer_scheme(service_port),
    };
    let strategy = match sref.strategy.as_deref() {
        None | Some("" | "wrr" | "RoundRobin") => Strategy::Wrr,
        Some("p2c") => Strategy::P2c,
        Some("hrw") => Strategy::Hrw,
        Some("leasttime") => Strategy::LeastTime,
        // Traefik: `unsupported load-balancer strategy "x"`.
        Some(other) => return Err(invalid(name, format!("unsupported load-balancer strategy {other:?}"))),
    };
    let service_name = names::service_name(namespace, name, port);
    let service_port_number = u16::try_from(service_port.port)
        .map_err(|_| invalid(name, format!("invalid port {}", service_port.port)))?;

    // Traefik ignores `nodePortLB` on a Service that is not of type NodePort.
    let node_port_lb = sref.node_port_lb == Some(true) && service.spec.type_.as_deref() == Some("NodePort");
    let native_lb = sref.native_lb.unwrap_or(options.native_lb_by_default);
    let servers = if node_port_lb && (node_port_first || !native_lb) {
        if options.nodes_lookup_disabled {
            let (namespace, name) = id();
            return Err(TranslateError::NodesLookupDisabled { namespace, name });
        }
        node_port_servers(store, namespace, name, service_port, scheme)?
    } else if external {
        if !options.allow_external_name_services {
            let (namespace, name) = id();
            return Err(TranslateError::ExternalName { namespace, name });
        }
        let host = service.spec.external_name.as_deref().unwrap_or("").trim_end_matches('.');
        if host.is_empty() {
            return Err(invalid(name, "ExternalName service has no externalName"));
        }
        vec![host_server(scheme, host, service_port_number)]
    } else if native_lb {
        let ip = service
            .spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        let Some(ip) = ip else {
            let (namespace, name) = id();
            return Err(TranslateError::NoClusterIp { namespace, name });
        };
        vec![ip_server(scheme, SocketAddr::new(ip, service_port_number), false)]
    } else {
        endpoint_servers(store, namespace, name, service_port, scheme)
    };
    if servers.is_empty() && !options.allow_empty_services {
        let (namespace, name) = id();
        return Err(TranslateError::NoEndpoints { namespace, name });
    }

    let flush_interval_ms = match sref.response_forwarding.as_ref().and_then(|r| r.flush_interval.as_ref()) {
        None => DEFAULT_FLUSH_INTERVAL_MS,
        Some(IntOrString::String(s)) if s.is_empty() => DEFAULT_FLUSH_INTERVAL_MS,
        Some(v) => duration::parse_millis(v)
            .ok_or_else(|| invalid(name, format!("unable to parse flushInterval {v}")))?,
    };
    let qualified = format!("{service_name}@{PROVIDER}");
    let sticky = sref.sticky.as_ref().and_then(|s| s.cookie.as_ref()).map(|c| sticky_cookie(c, &qualified));
    let health_check = sref.health_check.as_ref().map(|h| health_check(name, h)).transpose()?;
    let servers_transport = servers_transport(store, namespace, sref, options)?;
    Ok(ResolvedService {
        name: service_name,
        load_balancer: LoadBalancer {
            servers,
            pass_host_header: sref.pass_host_header.unwrap_or(true),
            sticky,
            health_check,
            servers_transport,
            flush_interval_ms,
            strategy,
        },
    })
}

fn invalid(name: &str, reason: impl Into<String>) -> TranslateError {
    TranslateError::InvalidServiceSpec { name: name.into(), reason: reason.into() }
}

/// The serving endpoints of the Service port, as Traefik reads them: the slice port named like
/// the Service port, endpoints whose `serving` is not false (nil is true), terminating ones
/// kept but fenced, each address once. Traefik de-duplicates on the IP alone; weir on IP and
/// port, so that slices putting one IP behind different ports (local setups, tests on
/// loopback) keep every server (docs/architecture.md).
fn endpoint_servers(
    store: &ObjectStore,
    namespace: &str,
    name: &str,
    service_port: &ServicePort,
    scheme: Scheme,
) -> Vec<Server> {
    let port_name = service_port.name.as_deref().unwrap_or("");
    // The first occurrence of an address wins.
    let mut by_address: BTreeMap<SocketAddr, bool> = BTreeMap::new();
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
            let fenced = endpoint.conditions.terminating.unwrap_or(false);
            for address in &endpoint.addresses {
                match address.parse::<IpAddr>() {
                    Ok(ip) => {
                        by_address.entry(SocketAddr::new(ip, target_port)).or_insert(fenced);
                    }
                    // FQDN slices and garbage: nothing to connect to.
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
    by_address.into_iter().map(|(address, fenced)| ip_server(scheme, address, fenced)).collect()
}

/// `nodePortLB`: one server per InternalIP address of every Node (sorted by Node name), at the
/// Service port's `nodePort`. As in Traefik, no Node or no InternalIP is an error even with
/// `allowEmptyServices` (there is nothing to fall back to). Unlike Traefik, an address two
/// Nodes share is one server (servers are keyed by address in the data plane).
fn node_port_servers(
    store: &ObjectStore,
    namespace: &str,
    name: &str,
    service_port: &ServicePort,
    scheme: Scheme,
) -> Result<Vec<Server>, TranslateError> {
    let id = || (namespace.to_string(), name.to_string());
    let Some(node_port) = service_port.node_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0)
    else {
        let (namespace, name) = id();
        return Err(TranslateError::NoNodePort { namespace, name, port: service_port.port });
    };
    let mut nodes = store.nodes().peekable();
    if nodes.peek().is_none() {
        let (namespace, name) = id();
        return Err(TranslateError::NoNodes { namespace, name });
    }
    let mut servers: Vec<Server> = Vec::new();
    for node in nodes {
        for address in node.internal_ips() {
            match address.parse::<IpAddr>() {
                Ok(ip) => {
                    let address = SocketAddr::new(ip, node_port);
                    if !servers.iter().any(|s| s.address == address) {
                        servers.push(ip_server(scheme, address, false));
                    }
                }
                Err(_) => tracing::debug!(
                    node = node.metadata.name,
                    address,
                    "node InternalIP is not an IP address; skipped"
                ),
            }
        }
    }
    if servers.is_empty() {
        let (namespace, name) = id();
        return Err(TranslateError::NoNodeServers { namespace, name });
    }
    Ok(servers)
}

fn ip_server(scheme: Scheme, address: SocketAddr, fenced: bool) -> Server {
    // SocketAddr's Display brackets IPv6 addresses, as URLs need.
    Server {
        url: format!("{}://{address}", scheme.as_str()),
        address,
        weight: 1,
        scheme,
        hostname: None,
        fenced,
    }
}

/// A server named by host: an IP literal connects directly, a name is resolved by the data plane.
fn host_server(scheme: Scheme, host: &str, port: u16) -> Server {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip_server(scheme, SocketAddr::new(ip, port), false);
    }
    Server {
        url: format!("{}://{host}:{port}", scheme.as_str()),
        address: SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port),
        weight: 1,
        scheme,
        hostname: Some(host.to_string()),
        fenced: false,
    }
}

/// Traefik: an int port matches `spec.ports[].port`, a string port matches `spec.ports[].name`.
fn port_matches(p: &ServicePort, port: &IntOrString) -> bool {
    match port {
        IntOrString::Int(n) => p.port == *n,
        IntOrString::String(s) => p.name.as_deref() == Some(s.as_str()),
    }
}

/// Traefik: `https` when the service port is 443 or its name starts with `https`.
fn infer_scheme(p: &ServicePort) -> Scheme {
    if p.port == 443 || p.name.as_deref().is_some_and(|n| n.starts_with("https")) {
        Scheme::Https
    } else {
        Scheme::Http
    }
}

/// Traefik's `cookie.GetName`: the given name with characters outside RFC 2616 tokens replaced
/// by `_`, or, when none is given, `_` + the first 5 hex digits of
/// sha1("_TRAEFIK_BACKEND_" + qualified service name).
pub fn cookie_name(name: Option<&str>, qualified_service: &str) -> String {
    match name.filter(|n| !n.is_empty()) {
        Some(n) => n
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c) { c } else { '_' })
            .collect(),
        None => {
            let digest = Sha1::digest(format!("_TRAEFIK_BACKEND_{qualified_service}").as_bytes());
            format!("_{}", hex::encode(digest))[..6].to_string()
        }
    }
}

/// The snapshot's cookie for a `sticky.cookie` of service `qualified_service`.
pub fn sticky_cookie(c: &Cookie, qualified_service: &str) -> StickyCookie {
    let same_site = match c.same_site.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("none") => Some("None".to_string()),
        Some("lax") => Some("Lax".to_string()),
        Some("strict") => Some("Strict".to_string()),
        _ => None,
    };
    StickyCookie {
        name: cookie_name(c.name.as_deref(), qualified_service),
        secure: c.secure,
        http_only: c.http_only,
        same_site,
        max_age: c.max_age.unwrap_or(0),
        path: Some(c.path.clone().unwrap_or_else(|| "/".to_string())),
        domain: c.domain.clone().filter(|d| !d.is_empty()),
    }
}

fn health_check(name: &str, h: &HealthCheckSpec) -> Result<HealthCheck, TranslateError> {
    let ms = |v: &Option<IntOrString>, field: &str, default: u64| -> Result<u64, TranslateError> {
        match v {
            None => Ok(default),
            Some(v) => {
                let ms = duration::parse_millis(v)
                    .ok_or_else(|| invalid(name, format!("healthCheck.{field}: invalid duration {v}")))?;
                // Traefik: a non-positive interval or timeout falls back to the default.
                Ok(if ms <= 0 { default } else { ms as u64 })
            }
        }
    };
    let interval_ms = ms(&h.interval, "interval", DEFAULT_HEALTH_INTERVAL_MS)?;
    let unhealthy_interval_ms = ms(&h.unhealthy_interval, "unhealthyInterval", interval_ms)?;
    let timeout_ms = ms(&h.timeout, "timeout", DEFAULT_HEALTH_TIMEOUT_MS)?;
    let status = match h.status {
        None | Some(0) => 0,
        Some(s) => u16::try_from(s)
            .ok()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| invalid(name, format!("healthCheck.status {s} is not an HTTP status")))?,
    };
    let port = match h.port {
        None | Some(0) => 0,
        Some(p) => u16::try_from(p).map_err(|_| invalid(name, format!("healthCheck.port {p} is invalid")))?,
    };
    let scheme = h.scheme.clone().filter(|s| !s.is_empty());
    if let Some(s) = &scheme {
        if !matches!(s.as_str(), "http" | "https") {
            return Err(invalid(name, format!("healthCheck.scheme {s} is not http or https")));
        }
    }
    Ok(HealthCheck {
        grpc: h.mode.as_deref() == Some("grpc"),
        scheme,
        path: h.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into()),
        method: h.method.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| "GET".into()),
        status,
        port,
        hostname: h.hostname.clone().filter(|s| !s.is_empty()),
        headers: h.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        follow_redirects: h.follow_redirects.unwrap_or(true),
        interval_ms,
        unhealthy_interval_ms,
        timeout_ms,
    })
}

/// Traefik's `makeServersTransportKey`: `<name>` → `<ns>-<name>`; `name@provider` verbatim
/// (`default@internal` is the default; `x@kubernetescrd` only with cross-namespace
/// references allowed). The transport must exist and be valid.
fn servers_transport(
    store: &ObjectStore,
    namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
) -> Result<Option<String>, TranslateError> {
    let Some(written) = sref.servers_transport.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let err = |reason: &str| TranslateError::ServersTransport { name: written.into(), reason: reason.into() };
    if written == DEFAULT_SERVERS_TRANSPORT {
        return Ok(None);
    }
    let key = match written.split_once('@') {
        Some((key, PROVIDER)) => {
            if !options.allow_cross_namespace {
                return Err(err(
                    "namespace-name@kubernetescrd format is not allowed when cross-namespace references are disallowed",
                ));
            }
            key.to_string()
        }
        Some(_) => {
            return Err(err("only ServersTransports of this provider and default@internal exist in weir"))
        }
        None => names::normalize(&format!("{namespace}-{written}")),
    };
    match serverstransport::by_key(store, &key) {
        Some(Ok(_)) => Ok(Some(key)),
        Some(Err(reason)) => Err(err(&reason)),
        None => Err(err("not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_names() {
        let cases = [
            ("given name kept", Some("lvl1"), "default-whoami-80@kubernetescrd", "lvl1"),
            ("invalid characters replaced", Some("my cookie;x"), "s", "my_cookie_x"),
            ("token punctuation kept", Some("a!#$%&'*+-.^_`|~z"), "s", "a!#$%&'*+-.^_`|~z"),
            // sha1("_TRAEFIK_BACKEND_default-whoami-80@kubernetescrd") = 9fb22f…, as Traefik derives it.
            ("derived from the service", None, "default-whoami-80@kubernetescrd", "_9fb22"),
            ("empty name is derived", Some(""), "default-whoami-80@kubernetescrd", "_9fb22"),
        ];
        for (case, name, service, want) in cases {
            assert_eq!(cookie_name(name, service), want, "case {case}");
        }
    }

    #[test]
    fn same_site_and_path_defaults() {
        let c = Cookie { same_site: Some("LAX".into()), ..Cookie::default() };
        let s = sticky_cookie(&c, "svc@kubernetescrd");
        assert_eq!(s.same_site.as_deref(), Some("Lax"));
        assert_eq!(s.path.as_deref(), Some("/"));
        let c = Cookie { same_site: Some("bogus".into()), path: Some("/app".into()), ..Cookie::default() };
        let s = sticky_cookie(&c, "svc@kubernetescrd");
        assert_eq!(s.same_site, None);
        assert_eq!(s.path.as_deref(), Some("/app"));
    }
}

#[cfg(test)]
#[path = "service_nodeport_tests.rs"]
mod nodeport_tests;
