//! IngressRoute → routers and services, route by route, as Traefik's CRD provider does: one
//! router per route (named from the rule's hash), one load balancer per referenced Service
//! port, a weighted service when a route lists several. A route that cannot be served exactly
//! as Traefik would serve it is disabled with a reason; the other routes are unaffected.

use std::sync::Arc;

use weir_proto::rule::{self, default_priority, Syntax, MAX_USER_PRIORITY};
use weir_proto::snapshot::{Router, Service, ServiceKind, WeightedService};

use super::error::TranslateError;
use super::{names, service, TranslateOptions, Translation};
use crate::objects::{IngressRoute, Route, ServiceRef};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

const KIND: &str = "IngressRoute";
/// Traefik's ingress-class annotation (deprecated in favour of `spec.ingressClassName`).
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// One IngressRoute translated on its own, before it joins the others' routers and services
/// ([`merge`]). It depends only on the object, the store and the options, which is what lets
/// `super::cache` keep it between compiles.
#[derive(Debug, Clone)]
pub struct Translated {
    namespace: String,
    name: String,
    /// Set when the object belongs to another controller (nothing else is).
    ignored: Option<Problem>,
    routes: Vec<RouteOutcome>,
    /// Middleware definitions the routes resolved (also those of routes that failed later on).
    middlewares: std::collections::BTreeMap<String, Arc<weir_proto::middleware::Middleware>>,
}

#[derive(Debug, Clone)]
struct RouteOutcome {
    index: usize,
    router_name: String,
    /// The router and its services, or the reason the route is disabled. Shared (`Arc`): a
    /// kept translation is merged into every later compile without copying it.
    result: Result<(Arc<Router>, Vec<Arc<Service>>), String>,
    warnings: Vec<String>,
}

/// Translates `ir` without looking at any other IngressRoute.
pub fn translate_object(ir: &IngressRoute, store: &ObjectStore, options: &TranslateOptions) -> Translated {
    let namespace = ir.metadata.namespace();
    let name = ir.metadata.name.as_str();
    let mut out = Translated {
        namespace: namespace.to_string(),
        name: name.to_string(),
        ignored: None,
        routes: Vec::with_capacity(ir.spec.routes.len()),
        middlewares: Default::default(),
    };
    if let Some(class) = foreign_ingress_class(ir) {
        out.ignored = Some(Problem::object(
            Severity::Info,
            KIND,
            namespace,
            name,
            format!("ingress class `{class}` is not handled by this controller; ignored"),
        ));
        return out;
    }
    let mut middlewares = std::collections::BTreeMap::new();
    for (index, route) in ir.spec.routes.iter().enumerate() {
        let router_name = names::router_name(namespace, name, &route.match_);
        let mut warnings = Vec::new();
        let result =
            translate_route(ir, route, &router_name, store, options, &mut warnings, &mut middlewares)
                .map(|(router, services)| (Arc::new(router), services.into_iter().map(Arc::new).collect()))
                .map_err(|e| e.to_string());
        out.routes.push(RouteOutcome { index, router_name, result, warnings });
    }
    out.middlewares = middlewares;
    out
}

/// Adds translated IngressRoutes to `out`, in store order: a later router with the same name,
/// or a later definition of a service, wins; the first definition of a middleware stays (the
/// same name always resolves to the same definition: it comes from the store). The result is
/// what inserting them one by one gives, built in one pass: names are gathered, sorted (store
/// order is nearly name order, so the sort is close to linear) and the maps built in bulk,
/// which at 10,000 IngressRoutes costs a fraction of 30,000 map insertions (W8).
pub fn merge_all<'a>(translated: impl IntoIterator<Item = &'a Translated>, out: &mut Translation) {
    use std::collections::{BTreeMap, HashMap};
    let mut routers: Vec<(&str, &Arc<Router>)> = Vec::new();
    let mut services: Vec<(&str, &Arc<Service>)> = Vec::new();
    let mut middlewares: Vec<(&str, &Arc<weir_proto::middleware::Middleware>)> = Vec::new();
    // The definition of each service name so far, for the "generated differently" warning.
    let mut defined: HashMap<&str, &Arc<Service>> = HashMap::new();
    let earlier = std::mem::take(&mut out.services);
    for (name, def) in &earlier {
        defined.insert(name.as_str(), def);
    }
    for t in translated {
        if let Some(p) = &t.ignored {
            out.problems.push(p.clone());
            continue;
        }
        middlewares.extend(t.middlewares.iter().map(|(name, def)| (name.as_str(), def)));
        for route in &t.routes {
            let problem = |severity, message| Problem {
                severity,
                subject: Subject::Route {
                    kind: KIND.into(),
                    namespace: t.namespace.clone(),
                    name: t.name.clone(),
                    route: route.index,
                    router: route.router_name.clone(),
                },
                message,
            };
            let mut warnings = route.warnings.clone();
            match &route.result {
                Ok((router, defs)) => {
                    for service in defs {
                        let name = service.name.as_str();
                        if let Some(old) = defined.insert(name, service) {
                            if !Arc::ptr_eq(old, service) && old != service {
                                warnings.push(format!(
                                    "service {name} is also generated, differently, by another route; this \
                                     route's definition wins"
                                ));
                            }
                        }
                        services.push((name, service));
                    }
                    // Traefik: two identical rules in one IngressRoute share a router name; the
                    // later wins.
                    routers.push((route.router_name.as_str(), router));
                }
                Err(err) => out.problems.push(problem(Severity::Error, err.clone())),
            }
            out.problems.extend(warnings.into_iter().map(|w| problem(Severity::Warning, w)));
        }
    }
    out.routers.append(&mut bulk(routers, Keep::Last));
    let mut merged = bulk(services, Keep::Last);
    out.services = earlier;
    out.services.append(&mut merged);
    // Earlier entries win: appending them last overwrites the new ones of the same name.
    let mut merged = bulk(middlewares, Keep::First);
    merged.append(&mut out.middlewares);
    out.middlewares = merged;

    enum Keep {
        First,
        Last,
    }
    /// The map of `items` (in insertion order), one entry per name.
    fn bulk<T>(mut items: Vec<(&str, &Arc<T>)>, keep: Keep) -> BTreeMap<String, Arc<T>> {
        // Stable: items of one name stay in insertion order.
        items.sort_by(|a, b| a.0.cmp(b.0));
        let mut out: Vec<(String, Arc<T>)> = Vec::with_capacity(items.len());
        for (name, item) in items {
            match out.last_mut() {
                Some(last) if last.0 == name => {
                    if let Keep::Last = keep {
                        last.1 = Arc::clone(item);
                    }
                }
                _ => out.push((name.to_string(), Arc::clone(item))),
            }
        }
        // Sorted and unique: the map is built in bulk, not by insertion.
        out.into_iter().collect()
    }
}

/// Traefik with no `ingressClass` configured handles objects of class "" or "traefik" only.
fn foreign_ingress_class(ir: &IngressRoute) -> Option<&str> {
    let class = ir
        .spec
        .ingress_class_name
        .as_deref()
        .or_else(|| ir.metadata.annotations.get(INGRESS_CLASS_ANNOTATION).map(String::as_str))?;
    (!class.is_empty() && class != "traefik").then_some(class)
}

fn translate_route(
    ir: &IngressRoute,
    route: &Route,
    router_name: &str,
    store: &ObjectStore,
    options: &TranslateOptions,
    warnings: &mut Vec<String>,
    middleware_defs: &mut std::collections::BTreeMap<String, Arc<weir_proto::middleware::Middleware>>,
) -> Result<(Router, Vec<Service>), TranslateError> {
    let namespace = ir.metadata.namespace();
    if let Some(kind) = route.kind.as_deref().filter(|k| *k != "Rule") {
        return Err(TranslateError::RouteKind(kind.into()));
    }
    if route.match_.is_empty() {
        return Err(TranslateError::EmptyMatch);
    }
    let syntax = rule_syntax(route.syntax.as_deref(), options.default_rule_syntax, warnings);
    let expr = rule::parse_with(&route.match_, syntax)
        .map_err(|source| TranslateError::InvalidRule { rule: route.match_.clone(), source })?;
    // Traefik: the default priority is the rule's length in bytes, whatever its syntax.
    let priority = match route.priority {
        None | Some(0) => default_priority(&route.match_),
        Some(p) if p > MAX_USER_PRIORITY => return Err(TranslateError::PriorityTooHigh(p)),
        Some(p) => p,
    };
    // Traefik: `spec.tls` makes the routers TLS-only. A missing or bad secret, or a forbidden
    // option reference, disables the route (the certificate itself is SNI-selected: `super::tls`).
    if let Some(tls) = &ir.spec.tls {
        super::tls::check_route(namespace, tls, store, options)?;
    }
    if !ir.spec.parent_refs.is_empty() {
        return Err(TranslateError::ParentRefsNotSupported);
    }
    // Traefik: service middlewares run right after the router's; weir appends them to the
    // router's chain, which is exact for a single service.
    let service_middlewares: Vec<&[crate::objects::ObjectRef]> =
        route.services.iter().map(|s| s.middlewares.as_slice()).collect();
    // Services of any kind (Service, TraefikService, noop@internal), resolved as Traefik's
    // CRD provider does (`service::resolve_ref`); Errors middlewares add their page services.
    let mut generated = service::Generated::new();
    let middlewares = super::middleware::resolve_route(
        &route.middlewares,
        &service_middlewares,
        namespace,
        store,
        options.services,
        middleware_defs,
        &mut generated,
    )?;
    let entrypoints = entrypoints(&ir.spec.entry_points, options, warnings)?;

    let mut children = Vec::with_capacity(route.services.len());
    for sref in &route.services {
        let weight = weight(sref)?;
        let name = service::resolve_ref(store, namespace, sref, options.services, &mut generated)?;
        children.push(WeightedService { service: name, weight });
    }
    let service_name = match children.len() {
        0 => return Err(TranslateError::NoServices),
        1 => children.remove(0).service,
        _ => {
            // Traefik: several services become a weighted round robin named like the router.
            generated.insert(
                router_name.to_string(),
                Service { name: router_name.to_string(), kind: ServiceKind::Weighted(children) },
            );
            router_name.to_string()
        }
    };
    let services: Vec<Service> = generated.into_values().collect();
    let router = Router {
        name: router_name.to_string(),
        entrypoints,
        rule: route.match_.clone(),
        expr,
        priority,
        service: service_name,
        // Traefik: `spec.tls` makes the routers TLS-only (secrets and options: `super::tls`).
        tls: ir.spec.tls.is_some(),
        middlewares,
    };
    Ok((router, services))
}

/// The syntax a route's rule is parsed with. Traefik: an absent or empty `syntax` takes
/// `core.defaultRuleSyntax`; a value it has no parser for (`v4`, `V2`, `default`) silently parses
/// as v3 (`SyntaxParser.parse`). weir does the same, saying so; any explicit value is deprecated.
fn rule_syntax(named: Option<&str>, default: Syntax, warnings: &mut Vec<String>) -> Syntax {
    match named {
        None | Some("") => default,
        Some(name) => match Syntax::from_name(name) {
            Some(syntax) => {
                warnings.push(format!(
                    "the route's `syntax: {name}` is deprecated in Traefik; rewrite the rule in v3 syntax \
                     and remove it"
                ));
                syntax
            }
            None => {
                warnings.push(format!(
                    "unknown rule syntax `{name}` (expected v2 or v3); the rule is parsed as v3, as Traefik does"
                ));
                Syntax::V3
            }
        },
    }
}

/// The route's entrypoints: those named (undefined ones dropped with a warning), else the
/// default set.
fn entrypoints(
    named: &[String],
    options: &TranslateOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, TranslateError> {
    if named.is_empty() {
        return Ok(options.default_entrypoints.clone());
    }
    let mut valid = Vec::with_capacity(named.len());
    for name in named {
        if options.entrypoints.contains(name) {
            valid.push(name.clone());
        } else {
            warnings.push(format!("entrypoint `{name}` is not defined; the router is not attached to it"));
        }
    }
    if valid.is_empty() {
        return Err(TranslateError::NoEntryPoints { names: named.to_vec() });
    }
    valid.sort();
    valid.dedup();
    Ok(valid)
}

fn weight(sref: &ServiceRef) -> Result<u32, TranslateError> {
    let w = sref.weight.unwrap_or(1);
    u32::try_from(w).map_err(|_| TranslateError::InvalidWeight { name: sref.name.clone(), weight: w })
}
