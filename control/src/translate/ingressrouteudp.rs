//! IngressRouteUDP → UDP routers and services, as Traefik's CRD provider builds them: one router
//! per route, named `<ns>-<name>-<route index>`, whose service has the same name; a route with
//! one Service reference gets that Service's load balancer under the router's name, a route with
//! several gets a weighted service over `<router>-<svc>-<port>` load balancers. A reference that
//! cannot be resolved is left out (Traefik: "Cannot create service") and reported; the route
//! goes on with the others. Traefik serves one UDP router per entrypoint (the first by name):
//! the later ones lose that entrypoint, with a warning.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use weir_proto::udp::{UdpRouter, UdpService, UdpServiceKind, UdpWeighted};

use super::error::TranslateError;
use super::{service, TranslateOptions, Translation};
use crate::objects::{IngressRouteUdp, IntOrString, ServiceRef, ServiceUdp};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

const KIND: &str = "IngressRouteUDP";
/// Traefik's ingress-class annotation (deprecated in favour of `spec.ingressClassName`).
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Translates every IngressRouteUDP of the store into `out.udp` (routers and services).
pub fn translate_all(store: &ObjectStore, options: &TranslateOptions, out: &mut Translation) {
    let mut routers: BTreeMap<String, UdpRouter> = BTreeMap::new();
    let mut services: BTreeMap<String, UdpService> = BTreeMap::new();
    // Where each router came from, to report a lost entrypoint against the right object.
    let mut origin: BTreeMap<String, Subject> = BTreeMap::new();
    for ir in store.ingress_routes_udp() {
        translate(ir, store, options, &mut routers, &mut services, &mut origin, &mut out.problems);
    }
    one_router_per_entrypoint(&mut routers, &origin, &mut out.problems);
    out.udp.routers = routers.into_values().collect();
    out.udp.services = services.into_values().collect();
}

fn translate(
    ir: &IngressRouteUdp,
    store: &ObjectStore,
    options: &TranslateOptions,
    routers: &mut BTreeMap<String, UdpRouter>,
    services: &mut BTreeMap<String, UdpService>,
    origin: &mut BTreeMap<String, Subject>,
    problems: &mut Vec<Problem>,
) {
    let namespace = ir.metadata.namespace();
    let name = ir.metadata.name.as_str();
    let class = ir
        .spec
        .ingress_class_name
        .as_deref()
        .or_else(|| ir.metadata.annotations.get(INGRESS_CLASS_ANNOTATION).map(String::as_str));
    if let Some(class) = class.filter(|c| !c.is_empty() && *c != "traefik") {
        let message = format!("ingress class `{class}` is not handled by this controller; ignored");
        problems.push(Problem::object(Severity::Info, KIND, namespace, name, message));
        return;
    }
    for (index, route) in ir.spec.routes.iter().enumerate() {
        // Traefik: `makeID(namespace, fmt.Sprintf("%s-%d", name, i))`.
        let router_name = format!("{namespace}-{name}-{index}");
        let subject = Subject::Route {
            kind: KIND.into(),
            namespace: namespace.into(),
            name: name.into(),
            route: index,
            router: router_name.clone(),
        };
        let problem = |severity, message| Problem { severity, subject: subject.clone(), message };
        let mut warnings = Vec::new();
        let entrypoints = entrypoints(&ir.spec.entry_points, options, &mut warnings);
        problems.extend(warnings.into_iter().map(|w| problem(Severity::Warning, w)));
        let entrypoints = match entrypoints {
            Ok(valid) => valid,
            Err(e) => {
                problems.push(problem(Severity::Error, e));
                continue;
            }
        };
        if route.services.is_empty() {
            problems.push(problem(Severity::Error, TranslateError::NoServices.to_string()));
            continue;
        }
        let mut children = Vec::with_capacity(route.services.len());
        for sref in &route.services {
            match resolve(store, namespace, sref, options) {
                Ok(servers) if route.services.len() == 1 => {
                    let kind = UdpServiceKind::LoadBalancer(servers);
                    services.insert(router_name.clone(), UdpService { name: router_name.clone(), kind });
                }
                Ok(servers) => {
                    let port = sref.port.as_ref().map(ToString::to_string).unwrap_or_default();
                    let child = format!("{router_name}-{}-{port}", sref.name);
                    let kind = UdpServiceKind::LoadBalancer(servers);
                    services.insert(child.clone(), UdpService { name: child.clone(), kind });
                    children.push(UdpWeighted { service: child, weight: weight(sref) });
                }
                Err(e) => problems.push(problem(Severity::Error, e)),
            }
        }
        if route.services.len() > 1 {
            if children.is_empty() {
                continue;
            }
            let kind = UdpServiceKind::Weighted(children);
            services.insert(router_name.clone(), UdpService { name: router_name.clone(), kind });
        } else if !services.contains_key(&router_name) {
            continue;
        }
        origin.insert(router_name.clone(), subject.clone());
        routers.insert(
            router_name.clone(),
            UdpRouter { name: router_name.clone(), entrypoints, service: router_name },
        );
    }
}

/// The router's UDP entrypoints: those named (undefined or TCP ones dropped with a warning),
/// else every UDP entrypoint (Traefik: "If not specified, UDP routers are attached to all UDP
/// entry points").
fn entrypoints(
    named: &[String],
    options: &TranslateOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    if named.is_empty() {
        if options.udp_entrypoints.is_empty() {
            return Err("no UDP entrypoint is defined".into());
        }
        return Ok(options.udp_entrypoints.clone());
    }
    let mut valid = Vec::with_capacity(named.len());
    for ep in named {
        if options.udp_entrypoints.contains(ep) {
            valid.push(ep.clone());
        } else if options.entrypoints.contains(ep) {
            warnings.push(format!(
                "entrypoint `{ep}` is not a UDP entrypoint; the UDP router is not attached to it"
            ));
        } else {
            warnings.push(format!("entrypoint `{ep}` is not defined; the router is not attached to it"));
        }
    }
    if valid.is_empty() {
        return Err(format!("no valid UDP entrypoint among {}", named.join(", ")));
    }
    valid.sort();
    valid.dedup();
    Ok(valid)
}

/// Traefik: "There can only be one UDP router per entrypoint"; it serves the first router by
/// name and ignores the others there.
fn one_router_per_entrypoint(
    routers: &mut BTreeMap<String, UdpRouter>,
    origin: &BTreeMap<String, Subject>,
    problems: &mut Vec<Problem>,
) {
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for router in routers.values_mut() {
        router.entrypoints.retain(|ep| match owner.get(ep) {
            None => {
                owner.insert(ep.clone(), router.name.clone());
                true
            }
            Some(first) => {
                if let Some(subject) = origin.get(&router.name) {
                    problems.push(Problem {
                        severity: Severity::Warning,
                        subject: subject.clone(),
                        message: format!(
                            "UDP entrypoint `{ep}` already serves router {first} (Traefik serves one UDP \
                             router per entrypoint, the first by name); not attached there"
                        ),
                    });
                }
                false
            }
        });
    }
    routers.retain(|_, r| !r.entrypoints.is_empty());
}

/// The UDP servers (`ip:port`) of one reference, resolved like an HTTP load balancer's
/// (EndpointSlices, nativeLB, ExternalName, cross-namespace rules).
fn resolve(
    store: &ObjectStore,
    namespace: &str,
    sref: &ServiceUdp,
    options: &TranslateOptions,
) -> Result<Vec<SocketAddr>, String> {
    if let Some(w) = sref.weight.filter(|w| u32::try_from(*w).is_err()) {
        return Err(TranslateError::InvalidWeight { name: sref.name.clone(), weight: w }.to_string());
    }
    let as_lb = ServiceRef {
        name: sref.name.clone(),
        namespace: sref.namespace.clone(),
        port: udp_port(store, namespace, sref),
        native_lb: sref.native_lb,
        node_port_lb: sref.node_port_lb,
        ..ServiceRef::default()
    };
    let resolved = service::resolve_node_port_first(store, namespace, &as_lb, options.services)
        .map_err(|e| e.to_string())?;
    let mut servers = Vec::with_capacity(resolved.load_balancer.servers.len());
    for s in &resolved.load_balancer.servers {
        if let Some(host) = &s.hostname {
            return Err(format!(
                "service {}: ExternalName `{host}` is a host name; UDP services need an IP address",
                sref.name
            ));
        }
        // Terminating endpoints take no new sessions, and UDP has no sticky sessions.
        if !s.fenced {
            servers.push(s.address);
        }
    }
    if servers.is_empty() && !options.services.allow_empty_services {
        let ns = sref.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
        return Err(TranslateError::NoEndpoints { namespace: ns.into(), name: sref.name.clone() }.to_string());
    }
    Ok(servers)
}

/// The port to resolve. Traefik matches a numeric port on the number alone, so a Service that
/// declares 53/TCP before 53/UDP would send datagrams to the TCP port's endpoints; weir prefers
/// the UDP entry of that number (by its name) when there is one (docs/architecture.md).
fn udp_port(store: &ObjectStore, namespace: &str, sref: &ServiceUdp) -> Option<IntOrString> {
    let Some(IntOrString::Int(n)) = sref.port else { return sref.port.clone() };
    let ns = sref.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
    let udp_name = store.service(ns, &sref.name).and_then(|svc| {
        let same_number: Vec<_> = svc.spec.ports.iter().filter(|p| p.port == n).collect();
        if same_number.len() < 2 {
            return None;
        }
        same_number
            .into_iter()
            .find(|p| p.protocol.as_deref().is_some_and(|pr| pr.eq_ignore_ascii_case("UDP")))
            .and_then(|p| p.name.clone())
    });
    match udp_name {
        Some(name) => Some(IntOrString::String(name)),
        None => sref.port.clone(),
    }
}

fn weight(sref: &ServiceUdp) -> u32 {
    // Checked by `resolve`.
    sref.weight.and_then(|w| u32::try_from(w).ok()).unwrap_or(1)
}

#[cfg(test)]
mod tests;
