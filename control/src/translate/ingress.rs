//! `networking.k8s.io/v1` Ingress → routers and services, as Traefik's kubernetesIngress
//! provider (provider name `kubernetes`) generates them: which Ingresses are handled (class,
//! namespaces, label selector), one router per path named
//! `<ns>-<ingress>-<host><path>` (normalized; a `-<hash of the rule>` suffix when two paths give
//! the same name), rules `Host("h") && PathPrefix("/p")` / `Path` / strict prefixes, the default
//! backend as `default-router` → `default-backend`, the `router.*` annotations of the Ingress and
//! the `service.*` annotations of its Services. Generated routers and services carry Traefik's
//! `@kubernetes` suffix, so they never collide with the CRD provider's.
//!
//! Services are resolved by [`super::service::resolve`]; certificates and TLS routers are handed
//! to the TLS pass ([`super::tls`]) through [`IngressTlsInputs`].

mod annotations;
pub mod status;

use std::collections::BTreeMap;

use weir_proto::rule::{self, default_priority, Syntax, MAX_USER_PRIORITY};
use weir_proto::snapshot::{Router, Service, ServiceKind};
use weir_proto::tls::{Certificate, DEFAULT_TLS_OPTION};

use super::service::{self, ServiceOptions};
use super::{names, TranslateOptions, Translation};
use crate::config::IngressProviderConfig;
use crate::objects::{
    HttpIngressPath, Ingress, IngressRule, IngressServiceBackend, IntOrString, ObjectRef, ServiceRef,
};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

pub use annotations::{RouterAnnotations, ServiceAnnotations, PREFIX as ANNOTATION_PREFIX};

/// Traefik's name of this provider, appended to its routers and services.
pub const PROVIDER: &str = "kubernetes";
/// The IngressClass controller Traefik handles.
pub const CONTROLLER: &str = "traefik.io/ingress-controller";
/// The legacy class annotation.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The class handled through the annotation when no `ingressClass` is configured.
const DEFAULT_CLASS: &str = "traefik";
const KIND: &str = "Ingress";
/// The default backend's router and service (one per cluster).
pub const DEFAULT_ROUTER: &str = "default-router";
/// The default backend's service.
pub const DEFAULT_BACKEND: &str = "default-backend";
/// Traefik gives the default backend `math.MinInt32`: the lowest priority.
pub const DEFAULT_BACKEND_PRIORITY: i64 = i32::MIN as i64;

/// What the Ingress translation hands to the TLS pass.
#[derive(Debug, Clone, Default)]
pub struct IngressTlsInputs {
    /// Certificates of `spec.tls` secrets, by `<ns>/<secret>`.
    pub certificates: BTreeMap<String, Certificate>,
    /// TLS routers (`router.tls` annotations): (router name, TLS option name).
    pub routers: Vec<(String, String)>,
}

/// Whether Ingress objects are translated: `--providers.kubernetesIngress` given, or no
/// provider named at all (manifests mode reads everything; see docs/ingress.md).
pub fn enabled(ingress: &IngressProviderConfig, crd_enabled: bool) -> bool {
    ingress.enabled || (!ingress.disabled && !crd_enabled)
}

/// Translates every handled Ingress of the store into `out`.
pub fn translate_all(store: &ObjectStore, options: &TranslateOptions, out: &mut Translation) {
    let config = &options.ingress;
    if !options.ingress_enabled {
        for ing in store.ingresses() {
            out.problems.push(Problem::object(
                Severity::Info,
                KIND,
                ing.metadata.namespace(),
                &ing.metadata.name,
                "the kubernetesIngress provider is not enabled (--providers.kubernetesIngress); ignored"
                    .into(),
            ));
        }
        return;
    }
    let classes = handled_classes(store, config);
    for ing in store.ingresses() {
        let namespace = ing.metadata.namespace();
        // Traefik does not watch these: silently out of scope.
        if !config.namespaces.is_empty() && !config.namespaces.iter().any(|n| n == namespace) {
            continue;
        }
        if !config.label_selector.matches(&ing.metadata.labels) {
            continue;
        }
        if !should_process(ing, &classes, &config.ingress_class) {
            out.problems.push(Problem::object(
                Severity::Info,
                KIND,
                namespace,
                &ing.metadata.name,
                format!("ingress class {} is not handled by this controller; ignored", class_of(ing)),
            ));
            continue;
        }
        translate_one(ing, store, options, out);
    }
}

/// Traefik's `GetIngressClasses` + `filterIngressClassByName`: the IngressClasses whose
/// controller is Traefik's, only the one named `ingressClass` when that is set; none when the
/// lookup is disabled. (`ingressclass.kubernetes.io/is-default-class` is not consulted.)
fn handled_classes(store: &ObjectStore, config: &IngressProviderConfig) -> Vec<String> {
    if config.disable_ingress_class_lookup || config.disable_cluster_scope_resources {
        return Vec::new();
    }
    store
        .ingress_classes()
        .filter(|ic| ic.spec.controller == CONTROLLER)
        .filter(|ic| config.ingress_class.is_empty() || ic.metadata.name == config.ingress_class)
        .map(|ic| ic.metadata.name.clone())
        .collect()
}

/// Traefik's `shouldProcessIngress`.
fn should_process(ing: &Ingress, classes: &[String], configured: &str) -> bool {
    if let Some(name) = &ing.spec.ingress_class_name {
        return classes.iter().any(|c| c == name);
    }
    let annotation = ing.metadata.annotations.get(CLASS_ANNOTATION).map(String::as_str).unwrap_or("");
    configured == annotation || (configured.is_empty() && annotation == DEFAULT_CLASS)
}

fn class_of(ing: &Ingress) -> String {
    match (&ing.spec.ingress_class_name, ing.metadata.annotations.get(CLASS_ANNOTATION)) {
        (Some(c), _) => format!("`{c}` (spec.ingressClassName)"),
        (None, Some(a)) => format!("`{a}` ({CLASS_ANNOTATION})"),
        (None, None) => "(none)".into(),
    }
}

/// One router before its rule is parsed.
struct Draft {
    /// Index of the path in the Ingress (for problems).
    index: usize,
    rule: String,
    service: String,
    /// Middlewares of the backend Service (`service.middlewares`).
    service_middlewares: Vec<String>,
}

fn translate_one(ing: &Ingress, store: &ObjectStore, options: &TranslateOptions, out: &mut Translation) {
    let namespace = ing.metadata.namespace();
    let name = ing.metadata.name.as_str();
    let object_problem =
        |severity, message: String| Problem::object(severity, KIND, namespace, name, message);
    let rt = match annotations::router(&ing.metadata.annotations) {
        Ok(rt) => rt.unwrap_or_default(),
        Err(e) => {
            out.problems.push(object_problem(
                Severity::Error,
                format!("failed to parse annotations, the Ingress is ignored: {e}"),
            ));
            return;
        }
    };
    // Traefik: TLS secrets load independently of the routers; an error is logged and the
    // routes are still served (they use whichever certificate SNI selects).
    for tls in &ing.spec.tls {
        let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) else { continue };
        let key = format!("{namespace}/{secret}");
        if out.ingress_tls.certificates.contains_key(&key) {
            continue;
        }
        match super::tls::certificate(store, namespace, secret) {
            Ok(cert) => {
                out.ingress_tls.certificates.insert(key, cert);
            }
            Err(e) => {
                out.problems.push(object_problem(Severity::Error, format!("error configuring TLS: {e}")));
                break;
            }
        }
    }

    if ing.spec.rules.is_empty() {
        if let Some(backend) = &ing.spec.default_backend {
            default_backend(ing, backend, &rt, store, options, out);
        }
    }

    let mut drafts: BTreeMap<String, Vec<Draft>> = BTreeMap::new();
    let mut index = 0;
    for rule in &ing.spec.rules {
        let Some(http) = &rule.http else { continue };
        for path in &http.paths {
            let this = index;
            index += 1;
            let path_problem = |message: String| {
                object_problem(
                    Severity::Error,
                    format!("path {:?}: {message}", path.path.as_deref().unwrap_or("")),
                )
            };
            if path.backend.resource.is_some() {
                out.problems.push(path_problem("resource backends are not supported".into()));
                continue;
            }
            let Some(backend) = &path.backend.service else {
                out.problems.push(path_problem("missing service definition".into()));
                continue;
            };
            let (service_name, service_middlewares) =
                match load_service(namespace, backend, store, options, out) {
                    Ok(s) => s,
                    Err(e) => {
                        out.problems.push(path_problem(format!(
                            "cannot create service {}:{}: {e}",
                            backend.name,
                            backend.port.as_string()
                        )));
                        continue;
                    }
                };
            let rule_text = match build_rule(rule, path, &rt, options) {
                Ok(r) => r,
                Err(e) => {
                    out.problems.push(path_problem(format!("skipping path: {e}")));
                    continue;
                }
            };
            let key = router_key(namespace, name, rule.host.as_deref().unwrap_or(""), path.path.as_deref());
            drafts.entry(key).or_default().push(Draft {
                index: this,
                rule: rule_text,
                service: service_name,
                service_middlewares,
            });
        }
    }
    for (key, group) in drafts {
        let conflicting = group.len() > 1;
        for draft in group {
            let router_name = if conflicting { hashed_key(&key, &draft.rule) } else { key.clone() };
            let qualified = format!("{router_name}@{PROVIDER}");
            let problem = |severity, message| Problem {
                severity,
                subject: Subject::Route {
                    kind: KIND.into(),
                    namespace: namespace.into(),
                    name: name.into(),
                    route: draft.index,
                    router: qualified.clone(),
                },
                message,
            };
            let mut warnings = Vec::new();
            let syntax = rule_syntax(rt.rule_syntax.as_deref(), options.default_rule_syntax);
            let priority = if rt.priority == 0 { default_priority(&draft.rule) } else { rt.priority };
            match finish_router(
                &qualified,
                draft.rule,
                syntax,
                priority,
                draft.service,
                &draft.service_middlewares,
                &rt,
                namespace,
                store,
                options,
                &mut warnings,
                out,
            ) {
                Ok(router) => {
                    register_tls(&rt, &router, namespace, name, out);
                    out.routers.insert(qualified.clone(), std::sync::Arc::new(router));
                }
                Err(e) => out.problems.push(problem(Severity::Error, e)),
            }
            out.problems.extend(warnings.into_iter().map(|w| problem(Severity::Warning, w)));
        }
    }
}

/// `spec.defaultBackend` of an Ingress without rules: `default-router` (`PathPrefix("/")`, v3
/// syntax, the lowest priority) → `default-backend`. Traefik keeps the first one only.
fn default_backend(
    ing: &Ingress,
    backend: &crate::objects::IngressBackend,
    rt: &RouterAnnotations,
    store: &ObjectStore,
    options: &TranslateOptions,
    out: &mut Translation,
) {
    let namespace = ing.metadata.namespace();
    let name = ing.metadata.name.as_str();
    let error = |message: String| Problem::object(Severity::Error, KIND, namespace, name, message);
    let router_name = format!("{DEFAULT_ROUTER}@{PROVIDER}");
    let service_name = format!("{DEFAULT_BACKEND}@{PROVIDER}");
    if out.services.contains_key(&service_name) {
        out.problems.push(error("the default backend already exists".into()));
        return;
    }
    if backend.resource.is_some() {
        out.problems.push(error("resource is not supported for default backend".into()));
        return;
    }
    let Some(svc) = &backend.service else {
        out.problems.push(error("default backend is missing service definition".into()));
        return;
    };
    let resolved = resolve_service(namespace, svc, &service_name, store, &options.ingress);
    let (service, service_middlewares) = match resolved {
        Ok(s) => s,
        Err(e) => {
            out.problems.push(error(format!(
                "cannot create service {}:{} for the default backend: {e}",
                svc.name,
                svc.port.as_string()
            )));
            return;
        }
    };
    let mut warnings = Vec::new();
    // Traefik: entrypoints, middlewares and TLS come from the annotations; priority and rule
    // syntax do not.
    let result = finish_router(
        &router_name,
        r#"PathPrefix("/")"#.into(),
        Syntax::V3,
        DEFAULT_BACKEND_PRIORITY,
        service_name.clone(),
        &service_middlewares,
        rt,
        namespace,
        store,
        options,
        &mut warnings,
        out,
    );
    for w in warnings {
        out.problems.push(Problem::object(Severity::Warning, KIND, namespace, name, w));
    }
    match result {
        Ok(router) => {
            out.services.insert(service_name, std::sync::Arc::new(service));
            register_tls(rt, &router, namespace, name, out);
            out.routers.insert(router_name, std::sync::Arc::new(router));
        }
        Err(e) => out.problems.push(error(format!("default backend: {e}"))),
    }
}

/// Hands a TLS router to the TLS pass with the option it names.
fn register_tls(rt: &RouterAnnotations, router: &Router, namespace: &str, name: &str, out: &mut Translation) {
    let Some(tls) = &rt.tls else { return };
    if !router.tls {
        return;
    }
    out.ingress_tls.routers.push((router.name.clone(), tls_option_name(tls.options.as_deref())));
    if let Some(resolver) = tls.cert_resolver.as_deref().filter(|r| !r.is_empty()) {
        out.problems.push(Problem::object(
            Severity::Warning,
            KIND,
            namespace,
            name,
            format!(
                "router {}: certResolver `{resolver}`: ACME is not supported; serving the matching or default \
                 certificate",
                router.name
            ),
        ));
    }
}

/// The TLS pass's option name for `router.tls.options`: `default`, a CRD TLSOption's
/// `<ns>-<name>` when written `<ns>-<name>@kubernetescrd`; anything else is this provider's
/// (`name@kubernetes`), which defines no TLS options, so the router fails as unknown.
pub fn tls_option_name(written: Option<&str>) -> String {
    match written.map(str::trim).filter(|o| !o.is_empty()) {
        None => DEFAULT_TLS_OPTION.into(),
        Some(o) if o == DEFAULT_TLS_OPTION => DEFAULT_TLS_OPTION.into(),
        Some(o) => match o.rsplit_once('@') {
            Some((id, service::PROVIDER)) => id.to_string(),
            Some(_) => o.to_string(),
            None => format!("{o}@{PROVIDER}"),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn finish_router(
    router_name: &str,
    rule_text: String,
    syntax: Syntax,
    priority: i64,
    service_name: String,
    service_middlewares: &[String],
    rt: &RouterAnnotations,
    namespace: &str,
    store: &ObjectStore,
    options: &TranslateOptions,
    warnings: &mut Vec<String>,
    out: &mut Translation,
) -> Result<Router, String> {
    if rule_text.is_empty() {
        return Err("empty rule: the path has neither host nor path".into());
    }
    let expr = rule::parse_with(&rule_text, syntax).map_err(|e| format!("invalid rule {rule_text}: {e}"))?;
    if priority > MAX_USER_PRIORITY {
        return Err(format!("priority {priority} is reserved for internal routers"));
    }
    let entrypoints = entrypoints(&rt.entrypoints, options, warnings)?;
    let middlewares = middlewares(&rt.middlewares, service_middlewares, namespace, store, options, out)?;
    Ok(Router {
        name: router_name.to_string(),
        entrypoints,
        rule: rule_text,
        expr,
        priority,
        service: service_name,
        tls: rt.tls.is_some(),
        middlewares,
    })
}

/// Resolves `router.middlewares` then `service.middlewares`: Traefik qualifies a name without
/// `@` with this provider, which defines no middlewares; `<ns>-<name>@kubernetescrd` names a
/// Middleware object.
fn middlewares(
    router: &[String],
    service: &[String],
    namespace: &str,
    store: &ObjectStore,
    options: &TranslateOptions,
    out: &mut Translation,
) -> Result<Vec<String>, String> {
    if router.is_empty() && service.is_empty() {
        return Ok(Vec::new());
    }
    let mut refs = Vec::with_capacity(router.len() + service.len());
    for m in router.iter().chain(service) {
        match m.rsplit_once('@') {
            Some((_, service::PROVIDER)) => refs.push(ObjectRef { name: m.clone(), namespace: None }),
            Some((_, provider)) => {
                return Err(format!(
                    "middleware {m}: provider `{provider}` is not available in weir (only @kubernetescrd)"
                ))
            }
            None => {
                return Err(format!(
                    "middleware {m}@{PROVIDER} does not exist (write <namespace>-<name>@kubernetescrd)"
                ))
            }
        }
    }
    // `x@kubernetescrd` references are always allowed from an Ingress (crossProviderNamespaces
    // unset); chains inside resolve with the CRD provider's own options.
    let svc_options = ServiceOptions { allow_cross_namespace: true, ..options.services };
    let mut generated = service::Generated::new();
    let names = super::middleware::resolve_route(
        &refs,
        &[],
        namespace,
        store,
        svc_options,
        &mut out.middlewares,
        &mut generated,
    )
    .map_err(|e| e.to_string())?;
    out.services.extend(generated.into_iter().map(|(k, v)| (k, std::sync::Arc::new(v))));
    Ok(names)
}

/// `router.entrypoints`: undefined ones dropped with a warning, none left is an error; none
/// written means the default entrypoints.
fn entrypoints(
    named: &[String],
    options: &TranslateOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    if named.is_empty() {
        return Ok(options.default_entrypoints.clone());
    }
    let mut valid = Vec::with_capacity(named.len());
    for n in named {
        if options.entrypoints.contains(n) {
            valid.push(n.clone());
        } else {
            warnings.push(format!("entrypoint `{n}` is not defined; the router is not attached to it"));
        }
    }
    if valid.is_empty() {
        return Err(format!("none of the entrypoints {} is defined", named.join(", ")));
    }
    valid.sort();
    valid.dedup();
    Ok(valid)
}

fn rule_syntax(named: Option<&str>, default: Syntax) -> Syntax {
    match named.filter(|n| !n.is_empty()) {
        None => default,
        // Traefik: a value without a parser parses as v3.
        Some(n) => Syntax::from_name(n).unwrap_or(Syntax::V3),
    }
}

/// Loads (once per Ingress translation) the service of a path; returns its name and its
/// `service.middlewares`.
fn load_service(
    namespace: &str,
    backend: &IngressServiceBackend,
    store: &ObjectStore,
    options: &TranslateOptions,
    out: &mut Translation,
) -> Result<(String, Vec<String>), String> {
    let name = service_name(namespace, &backend.name, &backend.port.as_string());
    let (service, middlewares) = resolve_service(namespace, backend, &name, store, &options.ingress)?;
    out.services.insert(name.clone(), std::sync::Arc::new(service));
    Ok((name, middlewares))
}

/// `<ns>-<service>-<port name or number>` normalized, with the provider suffix.
pub fn service_name(namespace: &str, service: &str, port: &str) -> String {
    format!("{}@{PROVIDER}", names::normalize(&format!("{namespace}-{service}-{port}")))
}

/// Traefik's router key: `<ns>-<ingress>-<host><path>` normalized, leading `-` trimmed.
pub fn router_key(namespace: &str, ingress: &str, host: &str, path: Option<&str>) -> String {
    let key = names::normalize(&format!("{namespace}-{ingress}-{host}{}", path.unwrap_or("")));
    key.trim_start_matches('-').to_string()
}

/// `<key>-<hex of the first 10 bytes of sha256(rule)>` for routers whose keys collide.
pub fn hashed_key(key: &str, rule: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(rule.as_bytes());
    format!("{key}-{}", hex::encode(&digest[..10]))
}

/// Resolves an Ingress backend to a load balancer named `qualified`, as Traefik's
/// `loadService` does, with the Service's `service.*` annotations.
fn resolve_service(
    namespace: &str,
    backend: &IngressServiceBackend,
    qualified: &str,
    store: &ObjectStore,
    config: &IngressProviderConfig,
) -> Result<(Service, Vec<String>), String> {
    let Some(svc) = store.service(namespace, &backend.name) else {
        return Err("service not found".into());
    };
    let annotations = annotations::service(&svc.metadata.annotations)?.unwrap_or_default();
    let port_name = backend.port.name.as_deref().unwrap_or("");
    let number = backend.port.number.unwrap_or(0);
    // Traefik: the backend port matches a Service port by number, or by (non-empty) name.
    if !svc
        .spec
        .ports
        .iter()
        .any(|p| p.port == number || (!port_name.is_empty() && p.name.as_deref() == Some(port_name)))
    {
        return Err("service port not found".into());
    }
    let port =
        if port_name.is_empty() { IntOrString::Int(number) } else { IntOrString::String(port_name.into()) };
    let sref = ServiceRef {
        name: backend.name.clone(),
        port: Some(port),
        scheme: annotations.servers_scheme.clone(),
        pass_host_header: annotations.pass_host_header,
        native_lb: annotations.native_lb,
        node_port_lb: Some(annotations.node_port_lb),
        ..ServiceRef::default()
    };
    let options = ServiceOptions {
        allow_cross_namespace: false,
        allow_empty_services: config.allow_empty_services,
        allow_external_name_services: config.allow_external_name_services,
        native_lb_by_default: config.native_lb_by_default,
        nodes_lookup_disabled: config.disable_cluster_scope_resources,
    };
    // Traefik's Ingress provider, like its TCP/UDP code, looks at nodePortLB before nativeLB.
    let mut resolved =
        service::resolve_node_port_first(store, namespace, &sref, options).map_err(|e| e.to_string())?;
    if let Some(cookie) = &annotations.sticky_cookie {
        resolved.load_balancer.sticky = Some(service::sticky_cookie(cookie, qualified));
    }
    resolved.load_balancer.servers_transport =
        servers_transport(annotations.servers_transport.as_deref(), store)?;
    let service =
        Service { name: qualified.to_string(), kind: ServiceKind::LoadBalancer(resolved.load_balancer) };
    Ok((service, annotations.middlewares))
}

/// `service.serverstransport`: `default@internal` (the default), or a CRD ServersTransport
/// `<ns>-<name>@kubernetescrd`; a name without provider is this provider's, which has none.
fn servers_transport(written: Option<&str>, store: &ObjectStore) -> Result<Option<String>, String> {
    let Some(written) = written else { return Ok(None) };
    if written == weir_proto::snapshot::DEFAULT_SERVERS_TRANSPORT {
        return Ok(None);
    }
    let err = |reason: &str| format!("serversTransport {written}: {reason}");
    match written.rsplit_once('@') {
        Some((key, service::PROVIDER)) => match super::serverstransport::by_key(store, key) {
            Some(Ok(_)) => Ok(Some(key.to_string())),
            Some(Err(reason)) => Err(err(&reason)),
            None => Err(err("not found")),
        },
        Some((_, provider)) => Err(err(&format!("provider `{provider}` is not available in weir"))),
        None => {
            Err(err(&format!("{written}@{PROVIDER} does not exist (write <namespace>-<name>@kubernetescrd)")))
        }
    }
}

/// The rule Traefik's `loadRouter` writes for one path.
fn build_rule(
    rule: &IngressRule,
    path: &HttpIngressPath,
    rt: &RouterAnnotations,
    options: &TranslateOptions,
) -> Result<String, String> {
    let mut parts = Vec::new();
    let host = rule.host.as_deref().unwrap_or("");
    if !host.is_empty() {
        let v2 = match rt.rule_syntax.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => s == "v2",
            None => options.default_rule_syntax == Syntax::V2,
        };
        if v2 {
            parts.push(host_rule_v2(host));
        } else {
            parts.push(format!("Host({})", go_quote(host)));
        }
    }
    let p = path.path.as_deref().unwrap_or("");
    if !p.is_empty() {
        let mut matcher = "PathPrefix";
        match path.path_type.as_deref().unwrap_or("") {
            "" | "ImplementationSpecific" => {
                if let Some(m) = rt.path_matcher.as_deref().filter(|m| !m.is_empty()) {
                    matcher = match m {
                        "Path" => "Path",
                        "PathPrefix" => "PathPrefix",
                        "PathRegexp" => "PathRegexp",
                        other => {
                            return Err(format!(
                                "invalid router path matcher {other:?}: must be one of Path, PathPrefix, PathRegexp"
                            ))
                        }
                    };
                }
            }
            "Exact" => matcher = "Path",
            // `Prefix`; Traefik treats any other value as a prefix too.
            _ => {}
        }
        parts.push(path_rule(options.ingress.strict_prefix_matching, matcher, p));
    }
    Ok(parts.join(" && "))
}

/// Traefik's `buildHostRuleV2`.
fn host_rule_v2(host: &str) -> String {
    match host.strip_prefix("*.") {
        Some(rest) => format!("HostRegexp({})", go_quote(&format!("{{subdomain:[a-zA-Z0-9-]+}}.{rest}"))),
        None => format!("Host({})", go_quote(host)),
    }
}

/// Traefik's `buildRule`: with `strictPrefixMatching`, `Prefix` paths match whole elements.
fn path_rule(strict: bool, matcher: &str, path: &str) -> String {
    if strict && matcher == "PathPrefix" {
        if path == "/" {
            return r#"PathPrefix("/")"#.into();
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        return format!("(Path({}) || PathPrefix({}))", go_quote(path), go_quote(&format!("{path}/")));
    }
    format!("{matcher}({})", go_quote(path))
}

/// Go's `%q` for the strings Ingress hosts and paths hold.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The value to write to `status.loadBalancer.ingress` of every handled Ingress, from
/// `ingressEndpoint.ip` / `.hostname` as (ip, hostname) pairs (`publishedService` needs the
/// Service's own status: [`published_service`] names it; [`status`] computes it). `None` when
/// nothing is configured or when `publishedService` is.
pub fn status_from_endpoint(config: &IngressProviderConfig) -> Option<Result<Vec<(String, String)>, String>> {
    let ep = config.ingress_endpoint.as_ref()?;
    if !ep.published_service.is_empty() {
        return None;
    }
    if ep.ip.is_empty() && ep.hostname.is_empty() {
        return Some(Err("publishedService or ip or hostname must be defined".into()));
    }
    Some(Ok(vec![(ep.ip.clone(), ep.hostname.clone())]))
}

/// `ingressEndpoint.publishedService` split into (namespace, name).
pub fn published_service(config: &IngressProviderConfig) -> Option<Result<(String, String), String>> {
    let ep = config.ingress_endpoint.as_ref()?;
    if ep.published_service.is_empty() {
        return None;
    }
    Some(match ep.published_service.split_once('/') {
        Some((ns, name)) if !name.contains('/') => Ok((ns.to_string(), name.to_string())),
        _ => Err(format!(
            "invalid publishedService format (expected 'namespace/service' format): {}",
            ep.published_service
        )),
    })
}

/// The Ingresses whose status the provider owns: handled ones (class, namespaces, labels).
pub fn handled<'a>(
    store: &'a ObjectStore,
    options: &'a TranslateOptions,
) -> impl Iterator<Item = &'a Ingress> + 'a {
    let classes = handled_classes(store, &options.ingress);
    store.ingresses().filter(move |ing| {
        let config = &options.ingress;
        options.ingress_enabled
            && (config.namespaces.is_empty()
                || config.namespaces.iter().any(|n| n == ing.metadata.namespace()))
            && config.label_selector.matches(&ing.metadata.labels)
            && should_process(ing, &classes, &config.ingress_class)
    })
}

#[cfg(test)]
mod tests;
