//! IngressRouteTCP (with its MiddlewareTCPs and ServersTransportTCPs) → TCP routers, services,
//! middlewares and transports, as Traefik's CRD provider builds them: one router per route,
//! named like HTTP routers (`<ns>-<name>-<hash of match>`); its service is a weighted round
//! robin with the router's name over one load balancer per reference, named
//! `<router>-<svc>-<port>`. A route whose rule, TLS, middleware, transport or services cannot be
//! resolved is disabled alone and reported. Runs after the TLS pass: a terminating route's
//! secret joins the default store's certificates.

use std::collections::BTreeMap;

use weir_proto::rule::{default_priority_tcp, parse_tcp, TcpExpr, TcpMatcher, MAX_USER_PRIORITY};
use weir_proto::snapshot::DEFAULT_SERVERS_TRANSPORT;
use weir_proto::tcp::{
    TcpLoadBalancer, TcpMiddleware, TcpMiddlewareKind, TcpRouter, TcpRouterTls, TcpServer,
    TcpServersTransport, TcpService, TcpServiceKind, TcpTransportTls, TcpWeighted,
};
use weir_proto::tls::DEFAULT_TLS_OPTION;

use super::serverstransport::{ca_bundle_config_map, ca_bundle_secret, tls_pair};
use super::{duration, names, service, tls, TranslateOptions, Translation};
use crate::objects::{IngressRouteTcp, IntOrString, ObjectRef, ServiceRef, ServiceTcp, TlsTcp};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

const KIND: &str = "IngressRouteTCP";
/// Traefik's ingress-class annotation (deprecated in favour of `spec.ingressClassName`).
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Translates every IngressRouteTCP of the store into `out.tcp`.
pub fn translate_all(store: &ObjectStore, options: &TranslateOptions, out: &mut Translation) {
    let mut routers: BTreeMap<String, TcpRouter> = BTreeMap::new();
    let mut services: BTreeMap<String, TcpService> = BTreeMap::new();
    let mut middlewares: BTreeMap<String, TcpMiddleware> = BTreeMap::new();
    let mut transports: BTreeMap<String, TcpServersTransport> = BTreeMap::new();
    transports.insert(DEFAULT_SERVERS_TRANSPORT.into(), TcpServersTransport::default());
    for ir in store.ingress_routes_tcp() {
        let mut ctx = Ctx {
            store,
            options,
            ir,
            services: &mut services,
            middlewares: &mut middlewares,
            transports: &mut transports,
            out_tls: &mut out.tls,
        };
        for (index, route) in ir.spec.routes.iter().enumerate() {
            let namespace = ir.metadata.namespace();
            let router_name = names::router_name(namespace, &ir.metadata.name, &route.match_);
            let subject = Subject::Route {
                kind: KIND.into(),
                namespace: namespace.into(),
                name: ir.metadata.name.clone(),
                route: index,
                router: router_name.clone(),
            };
            if let Some(class) = ingress_class(ir) {
                let message = format!("ingress class `{class}` is not handled by this controller; ignored");
                out.problems.push(Problem { severity: Severity::Info, subject, message });
                break;
            }
            let mut warnings = Vec::new();
            match ctx.route(index, &router_name, &mut warnings) {
                Ok(router) => {
                    routers.insert(router_name.clone(), router);
                }
                Err(message) => out.problems.push(Problem {
                    severity: Severity::Error,
                    subject: subject.clone(),
                    message,
                }),
            }
            out.problems.extend(warnings.into_iter().map(|message| Problem {
                severity: Severity::Warning,
                subject: subject.clone(),
                message,
            }));
        }
    }
    // Keep only what the routers use (a disabled route may have added some).
    out.tcp.routers = routers.into_values().collect();
    out.tcp.services = services.into_values().collect();
    out.tcp.middlewares = middlewares.into_values().collect();
    out.tcp.servers_transports = transports.into_values().collect();
}

fn ingress_class(ir: &IngressRouteTcp) -> Option<&str> {
    ir.spec
        .ingress_class_name
        .as_deref()
        .or_else(|| ir.metadata.annotations.get(INGRESS_CLASS_ANNOTATION).map(String::as_str))
        .filter(|c| !c.is_empty() && *c != "traefik")
}

struct Ctx<'a> {
    store: &'a ObjectStore,
    options: &'a TranslateOptions,
    ir: &'a IngressRouteTcp,
    services: &'a mut BTreeMap<String, TcpService>,
    middlewares: &'a mut BTreeMap<String, TcpMiddleware>,
    transports: &'a mut BTreeMap<String, TcpServersTransport>,
    out_tls: &'a mut weir_proto::tls::Tls,
}

impl Ctx<'_> {
    fn route(
        &mut self,
        index: usize,
        router_name: &str,
        warnings: &mut Vec<String>,
    ) -> Result<TcpRouter, String> {
        let ir = self.ir;
        let namespace = ir.metadata.namespace();
        let route = &ir.spec.routes[index];
        if route.match_.is_empty() {
            return Err("route has no match rule".into());
        }
        let expr = parse_tcp(&route.match_).map_err(|e| format!("invalid rule {:?}: {e}", route.match_))?;
        let priority = match route.priority {
            None | Some(0) => default_priority_tcp(&route.match_),
            Some(p) if p > MAX_USER_PRIORITY => {
                return Err(format!("priority {p} is above the maximum {MAX_USER_PRIORITY}"))
            }
            Some(p) => p,
        };
        let tls = match &ir.spec.tls {
            None => {
                // Traefik: a cleartext router can only be `HostSNI(`*`)`.
                if has_specific_sni(&expr) {
                    return Err(format!(
                        "invalid rule {:?}: has a HostSNI matcher other than `*`, but no TLS on the router",
                        route.match_
                    ));
                }
                None
            }
            Some(t) => Some(self.router_tls(t, warnings)?),
        };
        let entrypoints = self.entrypoints(warnings)?;
        let mut chain = Vec::with_capacity(route.middlewares.len());
        for m in &route.middlewares {
            chain.push(self.middleware(m)?);
        }
        if route.services.is_empty() {
            return Err("route has no services".into());
        }
        let mut children = Vec::with_capacity(route.services.len());
        for sref in &route.services {
            let (name, weight) = self.service(router_name, sref)?;
            children.push(TcpWeighted { service: name, weight });
        }
        self.services.insert(
            router_name.to_string(),
            TcpService { name: router_name.to_string(), kind: TcpServiceKind::Weighted(children) },
        );
        let _ = namespace;
        Ok(TcpRouter {
            name: router_name.to_string(),
            entrypoints,
            rule: route.match_.clone(),
            expr,
            priority,
            service: router_name.to_string(),
            tls,
            middlewares: chain,
        })
    }

    fn entrypoints(&self, warnings: &mut Vec<String>) -> Result<Vec<String>, String> {
        let named = &self.ir.spec.entry_points;
        if named.is_empty() {
            if self.options.default_entrypoints.is_empty() {
                return Err("no entrypoint is defined".into());
            }
            return Ok(self.options.default_entrypoints.clone());
        }
        let mut valid = Vec::new();
        for ep in named {
            if self.options.entrypoints.contains(ep) {
                valid.push(ep.clone());
            } else {
                warnings.push(format!(
                    "entrypoint `{ep}` is not a TCP entrypoint; the router is not attached to it"
                ));
            }
        }
        if valid.is_empty() {
            return Err(format!("no valid entrypoint among {}", named.join(", ")));
        }
        valid.sort();
        valid.dedup();
        Ok(valid)
    }

    fn router_tls(&mut self, t: &TlsTcp, warnings: &mut Vec<String>) -> Result<TcpRouterTls, String> {
        let namespace = self.ir.metadata.namespace();
        if t.cert_resolver.as_deref().is_some_and(|r| !r.is_empty()) {
            warnings.push(
                "certResolver: ACME is not supported; serving the matching or default certificate".into(),
            );
        }
        if t.passthrough {
            return Ok(TcpRouterTls { passthrough: true, option: DEFAULT_TLS_OPTION.into() });
        }
        if let Some(secret) = t.secret_name.as_deref().filter(|s| !s.is_empty()) {
            let cert = tls::certificate(self.store, namespace, secret).map_err(|e| e.to_string())?;
            let known = self.out_tls.certificates.iter().any(|c| c.names == cert.names);
            if !known {
                self.out_tls.certificates.push(cert);
            }
        }
        let option = match t.options.as_ref().filter(|o| !o.name.is_empty()) {
            None => DEFAULT_TLS_OPTION.to_string(),
            Some(r) if r.name == DEFAULT_TLS_OPTION => DEFAULT_TLS_OPTION.to_string(),
            Some(r) if r.name.contains('@') => {
                return Err(format!("TLSOption `{}`: cross-provider references are not supported", r.name))
            }
            Some(r) => {
                let ns = r.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
                if ns != namespace && !self.options.services.allow_cross_namespace {
                    return Err(format!(
                        "TLSOption {ns}/{}: reference from namespace {namespace} is not allowed \
                         (--providers.kubernetesCRD.allowCrossNamespace is false)",
                        r.name
                    ));
                }
                names::normalize(&format!("{ns}-{}", r.name))
            }
        };
        match self.out_tls.options.iter().find(|o| o.name == option) {
            None => return Err(format!("unknown TLS options: {option}")),
            Some(o) if o.broken.is_some() => {
                return Err(format!(
                    "TLS options {option} are invalid: {}",
                    o.broken.clone().unwrap_or_default()
                ))
            }
            Some(_) => {}
        }
        Ok(TcpRouterTls { passthrough: false, option })
    }

    fn middleware(&mut self, r: &ObjectRef) -> Result<String, String> {
        let namespace = self.ir.metadata.namespace();
        if r.name.contains('@') {
            return Err(format!("MiddlewareTCP `{}`: cross-provider references are not supported", r.name));
        }
        let ns = r.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
        if ns != namespace && !self.options.services.allow_cross_namespace {
            return Err(format!("MiddlewareTCP {ns}/{}: cross-namespace reference is not allowed", r.name));
        }
        let name = names::normalize(&format!("{ns}-{}", r.name));
        if self.middlewares.contains_key(&name) {
            return Ok(name);
        }
        let m = self
            .store
            .middleware_tcp(ns, &r.name)
            .ok_or_else(|| format!("MiddlewareTCP {ns}/{} does not exist", r.name))?;
        let spec = &m.spec;
        let kind = if let Some(f) = &spec.in_flight_conn {
            let amount = super::middleware::in_flight_conn_amount(f.amount)
                .map_err(|e| format!("MiddlewareTCP {ns}/{}: {e}", r.name))?;
            TcpMiddlewareKind::InFlightConn { amount }
        } else if let Some(a) = spec.ip_allow_list.as_ref().or(spec.ip_white_list.as_ref()) {
            for range in &a.source_range {
                weir_proto::net::Cidr::parse(range)
                    .map_err(|e| format!("MiddlewareTCP {ns}/{}: ipAllowList.sourceRange: {e}", r.name))?;
            }
            TcpMiddlewareKind::IpAllowList { source_range: a.source_range.clone() }
        } else {
            return Err(format!("MiddlewareTCP {ns}/{}: no middleware configured", r.name));
        };
        self.middlewares.insert(name.clone(), TcpMiddleware { name: name.clone(), kind });
        Ok(name)
    }

    /// Adds the load balancer of one reference; returns its name and weight.
    fn service(&mut self, router_name: &str, sref: &ServiceTcp) -> Result<(String, u32), String> {
        let namespace = self.ir.metadata.namespace();
        let weight = match sref.weight {
            None => 1,
            Some(w) => u32::try_from(w).map_err(|_| format!("service {}: invalid weight {w}", sref.name))?,
        };
        let Some(port) = sref.port.clone() else {
            return Err(format!("service {}: port is required", sref.name));
        };
        let as_lb = ServiceRef {
            name: sref.name.clone(),
            namespace: sref.namespace.clone(),
            port: Some(port.clone()),
            native_lb: sref.native_lb,
            node_port_lb: sref.node_port_lb,
            ..ServiceRef::default()
        };
        let resolved = service::resolve_node_port_first(self.store, namespace, &as_lb, self.options.services)
            .map_err(|e| e.to_string())?;
        let mut servers = Vec::new();
        for s in &resolved.load_balancer.servers {
            if let Some(host) = &s.hostname {
                return Err(format!(
                    "service {}: ExternalName `{host}` is a host name; weir's TCP services need an IP address",
                    sref.name
                ));
            }
            if !s.fenced {
                servers.push(TcpServer { address: s.address, tls: sref.tls });
            }
        }
        let svc_ns = sref.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
        let transport = match sref.servers_transport.as_deref().filter(|t| !t.is_empty()) {
            None => DEFAULT_SERVERS_TRANSPORT.to_string(),
            Some(t) => self.transport(svc_ns, t)?,
        };
        let proxy_protocol = match &sref.proxy_protocol {
            None => None,
            Some(p) => Some(proxy_version(p.version)?),
        };
        let port_text = match &port {
            IntOrString::Int(n) => n.to_string(),
            IntOrString::String(s) => s.clone(),
        };
        let name = names::normalize(&format!("{router_name}-{}-{port_text}", sref.name));
        let lb = TcpLoadBalancer {
            servers,
            servers_transport: transport,
            proxy_protocol,
            termination_delay_ms: sref.termination_delay,
        };
        self.services
            .insert(name.clone(), TcpService { name: name.clone(), kind: TcpServiceKind::LoadBalancer(lb) });
        Ok((name, weight))
    }

    /// Resolves a ServersTransportTCP named in namespace `ns`; returns its snapshot name.
    fn transport(&mut self, ns: &str, name: &str) -> Result<String, String> {
        if name.contains('@') {
            return Err(format!("serversTransport `{name}`: cross-provider references are not supported"));
        }
        let st = self
            .store
            .servers_transport_tcp(ns, name)
            .ok_or_else(|| format!("ServersTransportTCP {ns}/{name} does not exist"))?;
        let key = names::normalize(&format!("{ns}-{name}"));
        if self.transports.contains_key(&key) {
            return Ok(key);
        }
        let spec = &st.spec;
        let defaults = TcpServersTransport::default();
        let ms = |v: &Option<IntOrString>, field: &str, default: i64| -> Result<i64, String> {
            match v {
                None => Ok(default),
                Some(v) => duration::parse_millis(v)
                    .ok_or_else(|| format!("ServersTransportTCP {ns}/{name}: {field}: invalid duration {v}")),
            }
        };
        let tls = match &spec.tls {
            None => None,
            Some(t) => {
                let mut root_cas = Vec::new();
                for ca in &t.root_cas {
                    if let Some(secret) = ca.secret.as_deref() {
                        root_cas.push(ca_bundle_secret(self.store, ns, secret)?);
                    } else if let Some(cm) = ca.config_map.as_deref() {
                        root_cas.push(ca_bundle_config_map(self.store, ns, cm)?);
                    }
                }
                let mut certificates = Vec::new();
                for secret in &t.certificates_secrets {
                    certificates.push(tls_pair(self.store, ns, secret)?);
                }
                Some(TcpTransportTls {
                    server_name: t.server_name.clone().filter(|s| !s.is_empty()),
                    insecure_skip_verify: t.insecure_skip_verify,
                    root_cas,
                    certificates,
                    peer_cert_uri: t.peer_cert_uri.clone().filter(|s| !s.is_empty()),
                })
            }
        };
        let transport = TcpServersTransport {
            name: key.clone(),
            dial_timeout_ms: ms(&spec.dial_timeout, "dialTimeout", defaults.dial_timeout_ms as i64)?.max(0)
                as u64,
            dial_keep_alive_ms: ms(
                &spec.dial_keep_alive,
                "dialKeepAlive",
                defaults.dial_keep_alive_ms as i64,
            )?
            .max(0) as u64,
            termination_delay_ms: ms(
                &spec.termination_delay,
                "terminationDelay",
                defaults.termination_delay_ms,
            )?,
            proxy_protocol: match &spec.proxy_protocol {
                None => None,
                Some(p) => Some(proxy_version(p.version)?),
            },
            tls,
        };
        self.transports.insert(key.clone(), transport);
        Ok(key)
    }
}

/// Traefik: `proxyProtocol.version` defaults to 2; only 1 and 2 exist.
fn proxy_version(v: Option<i64>) -> Result<u8, String> {
    match v {
        None | Some(2) => Ok(2),
        Some(1) => Ok(1),
        Some(other) => Err(format!("proxyProtocol.version {other} is not 1 or 2")),
    }
}

/// Whether the rule has a `HostSNI` other than `*` (or any `HostSNIRegexp`).
fn has_specific_sni(expr: &TcpExpr) -> bool {
    match expr {
        TcpExpr::Matcher(TcpMatcher::HostSni(h)) => h != "*",
        TcpExpr::Matcher(TcpMatcher::HostSniRegexp(_)) => true,
        TcpExpr::Matcher(_) => false,
        TcpExpr::Not(e) => has_specific_sni(e),
        TcpExpr::And(a, b) | TcpExpr::Or(a, b) => has_specific_sni(a) || has_specific_sni(b),
    }
}

#[cfg(test)]
mod tests;
