//! Middleware and MiddlewareTCP CRDs → the snapshot's middleware definitions, and route
//! references → each router's flattened middleware list, as Traefik's CRD provider resolves
//! them: `name`+`namespace` → `<ns>-<name>`, `name@kubernetescrd` verbatim (only when cross
//! namespace references are allowed), chains expanded inline, cycles refused. Everything the
//! data plane will compile (regexes, CIDRs, header names) is validated here, so a snapshot never
//! carries a middleware the data plane would reject.

use std::collections::BTreeMap;

use base64::Engine;
use sha1::{Digest, Sha1};
use weir_proto::middleware::{self as mw, Middleware, MiddlewareKind};
use weir_proto::net::Cidr;

use super::names::normalize;
use super::service::{Generated, ServiceOptions};
use crate::objects::{self, IntOrString, ObjectRef};
use crate::status::{Problem, Severity};
use crate::store::ObjectStore;

const PROVIDER: &str = "kubernetescrd";
/// Traefik's default BasicAuth realm.
const DEFAULT_REALM: &str = "traefik";

/// Why a route's middleware list cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MiddlewareError {
    /// A reference Traefik refuses (cross-namespace, cross-provider).
    #[error("invalid reference to middleware {name}: {reason}")]
    Reference {
        /// The reference as written.
        name: String,
        /// Why.
        reason: String,
    },
    /// The referenced Middleware does not exist.
    #[error("middleware {namespace}/{name} not found")]
    NotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The Middleware exists but cannot be built.
    #[error("middleware {namespace}/{name}: {reason}")]
    Invalid {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Chains that include each other.
    #[error("middleware chains form a cycle: {}", .chain.join(" -> "))]
    Cycle {
        /// The loop, first element repeated at the end.
        chain: Vec<String>,
    },
    /// Service-level middlewares on a route with several services.
    #[error("service middlewares on a route with several services are not supported yet")]
    ServiceMiddlewares,
}

/// One Middleware object, translated.
enum Translated {
    Leaf(MiddlewareKind),
    /// A chain: its references, resolved relative to the chain's namespace.
    Chain(Vec<ObjectRef>),
}

/// Resolves a route's `middlewares` (then its single service's, which Traefik runs right after
/// the router's) into the flattened list of middleware names, adding each definition to `defs`.
/// Services the middlewares need (Errors pages) are added to `services`.
pub fn resolve_route(
    route_refs: &[ObjectRef],
    service_refs: &[&[ObjectRef]],
    namespace: &str,
    store: &ObjectStore,
    options: ServiceOptions,
    defs: &mut BTreeMap<String, std::sync::Arc<Middleware>>,
    services: &mut Generated,
) -> Result<Vec<String>, MiddlewareError> {
    let service_refs: &[ObjectRef] = match service_refs {
        [] => &[],
        [one] => one,
        many if many.iter().all(|r| r.is_empty()) => &[],
        _ => return Err(MiddlewareError::ServiceMiddlewares),
    };
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let mut cx = Resolver { store, allow_cross_namespace: options.allow_cross_namespace, options, services };
    for r in route_refs.iter().chain(service_refs) {
        cx.expand(r, namespace, &mut stack, &mut out, defs)?;
    }
    Ok(out)
}

/// Resolves an entrypoint's `http.middlewares` (`name@kubernetescrd`, Traefik's qualified
/// `<namespace>-<name>` form) into middleware names, adding each definition to `defs`. They come
/// from the static configuration, so no cross-namespace restriction applies.
pub fn resolve_entrypoint(
    names: &[String],
    store: &ObjectStore,
    options: ServiceOptions,
    defs: &mut BTreeMap<String, std::sync::Arc<Middleware>>,
    services: &mut Generated,
) -> Result<Vec<String>, MiddlewareError> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let mut cx = Resolver { store, allow_cross_namespace: true, options, services };
    for name in names {
        let qualified = if name.contains('@') { name.clone() } else { format!("{name}@{PROVIDER}") };
        let r = ObjectRef { name: qualified, namespace: None };
        cx.expand(&r, "", &mut stack, &mut out, defs)?;
    }
    Ok(out)
}

struct Resolver<'a> {
    store: &'a ObjectStore,
    allow_cross_namespace: bool,
    options: ServiceOptions,
    services: &'a mut Generated,
}

/// What translating a middleware that needs a service (Errors) resolves it with.
struct ServiceCx<'a> {
    options: ServiceOptions,
    generated: &'a mut Generated,
}

impl<'a> Resolver<'a> {
    /// The Middleware object a reference from `parent_ns` names.
    fn lookup<'s>(&self, r: &ObjectRef, parent_ns: &str) -> Result<&'s objects::Middleware, MiddlewareError>
    where
        'a: 's,
    {
        let reference =
            |reason: &str| MiddlewareError::Reference { name: r.name.clone(), reason: reason.into() };
        if let Some((id, provider)) = r.name.rsplit_once('@') {
            if provider != PROVIDER {
                return Err(reference(&format!(
                    "provider `{provider}` is not available in weir (only @{PROVIDER})"
                )));
            }
            if !self.allow_cross_namespace {
                return Err(reference(
                    "when allowCrossNamespace is disabled, @kubernetescrd references are disallowed",
                ));
            }
            return self
                .store
                .middlewares()
                .find(|m| normalize(&format!("{}-{}", m.metadata.namespace(), m.metadata.name)) == id)
                .ok_or_else(|| MiddlewareError::NotFound { namespace: "*".into(), name: r.name.clone() });
        }
        let ns = r.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(parent_ns);
        if ns != parent_ns && !self.allow_cross_namespace {
            return Err(reference("allowCrossNamespace is disabled, cross-namespace are disallowed"));
        }
        self.store
            .middleware(ns, &r.name)
            .ok_or_else(|| MiddlewareError::NotFound { namespace: ns.into(), name: r.name.clone() })
    }

    fn expand(
        &mut self,
        r: &ObjectRef,
        parent_ns: &str,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
        defs: &mut BTreeMap<String, std::sync::Arc<Middleware>>,
    ) -> Result<(), MiddlewareError> {
        let m = self.lookup(r, parent_ns)?;
        let ns = m.metadata.namespace();
        let id = normalize(&format!("{ns}-{}", m.metadata.name));
        if let Some(pos) = stack.iter().position(|s| *s == id) {
            let mut chain = stack[pos..].to_vec();
            chain.push(id);
            return Err(MiddlewareError::Cycle { chain });
        }
        let invalid =
            |reason| MiddlewareError::Invalid { namespace: ns.into(), name: m.metadata.name.clone(), reason };
        let cx = ServiceCx { options: self.options, generated: &mut *self.services };
        match translate(m, self.store, Some(cx)).map_err(invalid)? {
            Translated::Leaf(kind) => {
                defs.entry(id.clone())
                    .or_insert_with(|| std::sync::Arc::new(Middleware { name: id.clone(), kind }));
                out.push(id);
            }
            Translated::Chain(refs) => {
                stack.push(id);
                for child in &refs {
                    self.expand(child, ns, stack, out, defs)?;
                }
                stack.pop();
            }
        }
        Ok(())
    }
}

/// Problems of every Middleware and MiddlewareTCP in the store, reported once per object with
/// its kind, namespace and name, whether or not a route uses it.
pub fn report(store: &ObjectStore, problems: &mut Vec<Problem>) {
    for m in store.middlewares() {
        let (ns, name) = (m.metadata.namespace(), m.metadata.name.as_str());
        if let Err(reason) = translate(m, store, None) {
            problems.push(Problem::object(Severity::Error, "Middleware", ns, name, reason));
        }
        for w in warnings(&m.spec) {
            problems.push(Problem::object(Severity::Warning, "Middleware", ns, name, w));
        }
    }
    for m in store.middlewares_tcp() {
        let (ns, name) = (m.metadata.namespace(), m.metadata.name.as_str());
        if let Err(reason) = validate_tcp(&m.spec) {
            problems.push(Problem::object(Severity::Error, "MiddlewareTCP", ns, name, reason));
        }
    }
}

fn warnings(spec: &objects::MiddlewareSpec) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = &spec.headers {
        let deprecated = [
            ("featurePolicy", h.feature_policy.is_some()),
            ("sslRedirect", h.ssl_redirect.is_some()),
            ("sslTemporaryRedirect", h.ssl_temporary_redirect.is_some()),
            ("sslHost", h.ssl_host.is_some()),
            ("sslForceHost", h.ssl_force_host.is_some()),
        ];
        for (field, set) in deprecated {
            if set {
                out.push(format!(
                    "headers.{field} is deprecated and has no effect in Traefik v3 (use a RedirectScheme \
                     middleware for redirects)"
                ));
            }
        }
    }
    if spec.strip_prefix.as_ref().is_some_and(|s| s.force_slash.is_some()) {
        out.push("stripPrefix.forceSlash is deprecated; remove it".into());
    }
    if spec.ip_white_list.is_some() {
        out.push("ipWhiteList is deprecated; use ipAllowList".into());
    }
    out
}

/// Translates one Middleware object; the error text is Traefik's where Traefik has one.
/// `services` is `None` when only validating (the Errors service is then not resolved).
fn translate(
    m: &objects::Middleware,
    store: &ObjectStore,
    services: Option<ServiceCx<'_>>,
) -> Result<Translated, String> {
    let s = &m.spec;
    let set: Vec<&str> = [
        ("addPrefix", s.add_prefix.is_some()),
        ("stripPrefix", s.strip_prefix.is_some()),
        ("stripPrefixRegex", s.strip_prefix_regex.is_some()),
        ("replacePath", s.replace_path.is_some()),
        ("replacePathRegex", s.replace_path_regex.is_some()),
        ("chain", s.chain.is_some()),
        ("ipWhiteList", s.ip_white_list.is_some()),
        ("ipAllowList", s.ip_allow_list.is_some()),
        ("headers", s.headers.is_some()),
        ("redirectRegex", s.redirect_regex.is_some()),
        ("redirectScheme", s.redirect_scheme.is_some()),
        ("basicAuth", s.basic_auth.is_some()),
        ("encodedCharacters", s.encoded_characters.is_some()),
        ("errors", s.errors.is_some()),
        ("rateLimit", s.rate_limit.is_some()),
        ("digestAuth", s.digest_auth.is_some()),
        ("forwardAuth", s.forward_auth.is_some()),
        ("inFlightReq", s.in_flight_req.is_some()),
        ("buffering", s.buffering.is_some()),
        ("circuitBreaker", s.circuit_breaker.is_some()),
        ("compress", s.compress.is_some()),
        ("passTLSClientCert", s.pass_tls_client_cert.is_some()),
        ("retry", s.retry.is_some()),
        ("contentType", s.content_type.is_some()),
        ("grpcWeb", s.grpc_web.is_some()),
        ("plugin", s.plugin.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect();
    match set.as_slice() {
        [] => return Err("invalid middleware type or middleware does not exist".into()),
        [_] => {}
        _ => {
            return Err(format!(
                "multi-types middleware not supported ({}), consider declaring two different pieces of \
                 middleware instead",
                set.join(", ")
            ))
        }
    }
    let leaf = |k| Ok(Translated::Leaf(k));
    if let Some(c) = &s.chain {
        return Ok(Translated::Chain(c.middlewares.clone()));
    }
    if let Some(a) = &s.add_prefix {
        if a.prefix.is_empty() {
            return Err("prefix cannot be empty".into());
        }
        return leaf(MiddlewareKind::AddPrefix(mw::AddPrefix { prefix: a.prefix.clone() }));
    }
    if let Some(sp) = &s.strip_prefix {
        return leaf(MiddlewareKind::StripPrefix(mw::StripPrefix {
            prefixes: sp.prefixes.iter().map(|p| p.trim().to_string()).collect(),
            force_slash: sp.force_slash.unwrap_or(false),
        }));
    }
    if let Some(sr) = &s.strip_prefix_regex {
        let regex: Vec<String> = sr.regex.iter().map(|r| r.trim().to_string()).collect();
        for r in &regex {
            check_regex(r)?;
        }
        return leaf(MiddlewareKind::StripPrefixRegex(mw::StripPrefixRegex { regex }));
    }
    if let Some(rp) = &s.replace_path {
        return leaf(MiddlewareKind::ReplacePath(mw::ReplacePath { path: rp.path.clone() }));
    }
    if let Some(rr) = &s.replace_path_regex {
        let regex = rr.regex.trim().to_string();
        check_regex(&regex).map_err(|e| format!("error compiling regular expression {}: {e}", rr.regex))?;
        return leaf(MiddlewareKind::ReplacePathRegex(mw::ReplacePathRegex {
            regex,
            replacement: rr.replacement.trim().to_string(),
        }));
    }
    if let Some(h) = &s.headers {
        return leaf(MiddlewareKind::Headers(Box::new(headers(h)?)));
    }
    if let Some(r) = &s.redirect_scheme {
        if r.scheme.is_empty() {
            return Err("you must provide a target scheme".into());
        }
        let port = match &r.port {
            None => String::new(),
            Some(IntOrString::Int(p)) => p.to_string(),
            Some(IntOrString::String(p)) => p.clone(),
        };
        return leaf(MiddlewareKind::RedirectScheme(mw::RedirectScheme {
            scheme: r.scheme.clone(),
            port,
            permanent: r.permanent,
        }));
    }
    if let Some(r) = &s.redirect_regex {
        check_regex(&r.regex)?;
        return leaf(MiddlewareKind::RedirectRegex(mw::RedirectRegex {
            regex: r.regex.clone(),
            replacement: r.replacement.clone(),
            permanent: r.permanent,
        }));
    }
    if let Some(b) = &s.basic_auth {
        return leaf(MiddlewareKind::BasicAuth(basic_auth(b, m.metadata.namespace(), store)?));
    }
    if let Some(a) = &s.ip_allow_list {
        return leaf(MiddlewareKind::IpAllowList(ip_allow_list(a, true)?));
    }
    if let Some(a) = &s.ip_white_list {
        return leaf(MiddlewareKind::IpAllowList(ip_allow_list(a, false)?));
    }
    if let Some(b) = &s.buffering {
        return leaf(MiddlewareKind::Buffering(buffering(b)?));
    }
    if let Some(c) = &s.circuit_breaker {
        return leaf(MiddlewareKind::CircuitBreaker(circuit_breaker(c)?));
    }
    if let Some(d) = &s.digest_auth {
        return leaf(MiddlewareKind::DigestAuth(digest_auth(d, m.metadata.namespace(), store)?));
    }
    if let Some(f) = &s.forward_auth {
        return leaf(MiddlewareKind::ForwardAuth(Box::new(forward_auth(f, m.metadata.namespace(), store)?)));
    }
    if let Some(e) = &s.errors {
        return leaf(MiddlewareKind::Errors(errors(e, m, store, services)?));
    }
    if let Some(r) = &s.retry {
        return leaf(MiddlewareKind::Retry(retry(r)?));
    }
    if let Some(c) = &s.compress {
        return leaf(MiddlewareKind::Compress(compress(c)?));
    }
    if s.content_type.is_some() {
        return leaf(MiddlewareKind::ContentType);
    }
    if let Some(e) = &s.encoded_characters {
        return leaf(MiddlewareKind::EncodedCharacters(mw::EncodedCharacters {
            allow_encoded_slash: e.allow_encoded_slash,
            allow_encoded_back_slash: e.allow_encoded_back_slash,
            allow_encoded_null_character: e.allow_encoded_null_character,
            allow_encoded_semicolon: e.allow_encoded_semicolon,
            allow_encoded_percent: e.allow_encoded_percent,
            allow_encoded_question_mark: e.allow_encoded_question_mark,
            allow_encoded_hash: e.allow_encoded_hash,
        }));
    }
    if let Some(r) = &s.rate_limit {
        return leaf(MiddlewareKind::RateLimit(rate_limit(r, m.metadata.namespace(), store)?));
    }
    if let Some(i) = &s.in_flight_req {
        if i.amount < 0 {
            return Err(format!("inFlightReq.amount must be >= 0, got {}", i.amount));
        }
        let source = source_criterion(i.source_criterion.as_ref(), mw::SourceCriterion::RequestHost)
            .map_err(|e| format!("error creating requests limiter: {e}"))?;
        return leaf(MiddlewareKind::InFlightReq(mw::InFlightReq { amount: i.amount, source }));
    }
    if s.plugin.is_some() {
        return Err(
            "plugin middlewares are not supported: weir cannot run Traefik (Yaegi/WASM) plugins".into()
        );
    }
    if let Some(v) = &s.pass_tls_client_cert {
        return leaf(MiddlewareKind::PassTlsClientCert(pass_tls_client_cert(v)?));
    }
    if let Some(v) = &s.grpc_web {
        let g: GrpcWebSpec =
            serde_json::from_value(v.clone()).map_err(|e| format!("invalid grpcWeb: {e}"))?;
        return leaf(MiddlewareKind::GrpcWeb(mw::GrpcWeb { allow_origins: g.allow_origins }));
    }
    Err(format!("{} middlewares are not supported yet", set[0]))
}

/// `grpcWeb` as the CRD spells it.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct GrpcWebSpec {
    allow_origins: Vec<String>,
}

/// `passTLSClientCert` as the CRD spells it.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct PassTlsClientCertSpec {
    pem: bool,
    info: Option<ClientCertInfoSpec>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ClientCertInfoSpec {
    not_after: bool,
    not_before: bool,
    sans: bool,
    serial_number: bool,
    subject: Option<DnSpec>,
    issuer: Option<DnSpec>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct DnSpec {
    country: bool,
    province: bool,
    locality: bool,
    organization: bool,
    organizational_unit: bool,
    common_name: bool,
    serial_number: bool,
    domain_component: bool,
}

fn pass_tls_client_cert(v: &serde_json::Value) -> Result<mw::PassTlsClientCert, String> {
    let spec: PassTlsClientCertSpec =
        serde_json::from_value(v.clone()).map_err(|e| format!("invalid passTLSClientCert: {e}"))?;
    let dn = |d: DnSpec, subject: bool| mw::DistinguishedNameParts {
        country: d.country,
        province: d.province,
        locality: d.locality,
        organization: d.organization,
        // Traefik's issuer options have no organizational unit.
        organizational_unit: subject && d.organizational_unit,
        common_name: d.common_name,
        serial_number: d.serial_number,
        domain_component: d.domain_component,
    };
    Ok(mw::PassTlsClientCert {
        pem: spec.pem,
        info: spec.info.map(|i| mw::ClientCertInfo {
            not_after: i.not_after,
            not_before: i.not_before,
            sans: i.sans,
            serial_number: i.serial_number,
            subject: i.subject.map(|d| dn(d, true)),
            issuer: i.issuer.map(|d| dn(d, false)),
        }),
    })
}

fn check_regex(r: &str) -> Result<(), String> {
    regex::Regex::new(r).map(drop).map_err(|e| e.to_string())
}

fn headers(h: &objects::middleware::Headers) -> Result<mw::Headers, String> {
    let custom = !h.custom_request_headers.is_empty() || !h.custom_response_headers.is_empty();
    let cors = h.access_control_allow_credentials
        || !h.access_control_allow_headers.is_empty()
        || !h.access_control_allow_methods.is_empty()
        || !h.access_control_allow_origin_list.is_empty()
        || !h.access_control_allow_origin_list_regex.is_empty()
        || !h.access_control_expose_headers.is_empty()
        || h.access_control_max_age.is_some()
        || h.add_vary_header;
    let secure = !h.allowed_hosts.is_empty()
        || !h.hosts_proxy_headers.is_empty()
        || !h.ssl_proxy_headers.is_empty()
        || h.sts_seconds.is_some_and(|s| s != 0)
        || h.sts_include_subdomains
        || h.sts_preload
        || h.force_sts_header
        || h.frame_deny
        || !h.custom_frame_options_value.is_empty()
        || h.content_type_nosniff
        || h.browser_xss_filter
        || !h.custom_browser_xss_value.is_empty()
        || !h.content_security_policy.is_empty()
        || !h.content_security_policy_report_only.is_empty()
        || !h.public_key.is_empty()
        || !h.referrer_policy.is_empty()
        || !h.permissions_policy.is_empty()
        || h.is_development;
    if !custom && !cors && !secure {
        return Err("headers configuration not valid".into());
    }
    for r in &h.access_control_allow_origin_list_regex {
        check_regex(r).map_err(|e| format!("error occurred during origin parsing: {e}"))?;
    }
    let pairs = |m: &BTreeMap<String, String>| -> Result<Vec<(String, String)>, String> {
        m.iter()
            .map(|(k, v)| {
                check_header(k, v)?;
                Ok((k.clone(), v.clone()))
            })
            .collect()
    };
    let names = |l: &[String]| -> Result<Vec<String>, String> {
        l.iter().map(|n| check_header(n, "").map(|_| n.clone())).collect()
    };
    let values = [
        &h.custom_frame_options_value,
        &h.custom_browser_xss_value,
        &h.content_security_policy,
        &h.content_security_policy_report_only,
        &h.public_key,
        &h.referrer_policy,
        &h.permissions_policy,
    ];
    for v in values {
        check_header("x", v)?;
    }
    for v in h
        .access_control_allow_headers
        .iter()
        .chain(&h.access_control_allow_methods)
        .chain(&h.access_control_expose_headers)
    {
        check_header("x", v)?;
    }
    Ok(mw::Headers {
        custom_request_headers: pairs(&h.custom_request_headers)?,
        custom_response_headers: pairs(&h.custom_response_headers)?,
        access_control_allow_credentials: h.access_control_allow_credentials,
        access_control_allow_headers: h.access_control_allow_headers.clone(),
        access_control_allow_methods: h.access_control_allow_methods.clone(),
        access_control_allow_origin_list: h.access_control_allow_origin_list.clone(),
        access_control_allow_origin_list_regex: h.access_control_allow_origin_list_regex.clone(),
        access_control_expose_headers: h.access_control_expose_headers.clone(),
        access_control_max_age: h.access_control_max_age,
        add_vary_header: h.add_vary_header,
        allowed_hosts: h.allowed_hosts.clone(),
        hosts_proxy_headers: names(&h.hosts_proxy_headers)?,
        ssl_proxy_headers: pairs(&h.ssl_proxy_headers)?,
        sts_seconds: h.sts_seconds.unwrap_or(0),
        sts_include_subdomains: h.sts_include_subdomains,
        sts_preload: h.sts_preload,
        force_sts_header: h.force_sts_header,
        frame_deny: h.frame_deny,
        custom_frame_options_value: h.custom_frame_options_value.clone(),
        content_type_nosniff: h.content_type_nosniff,
        browser_xss_filter: h.browser_xss_filter,
        custom_browser_xss_value: h.custom_browser_xss_value.clone(),
        content_security_policy: h.content_security_policy.clone(),
        content_security_policy_report_only: h.content_security_policy_report_only.clone(),
        public_key: h.public_key.clone(),
        referrer_policy: h.referrer_policy.clone(),
        permissions_policy: h.permissions_policy.clone(),
        is_development: h.is_development,
    })
}

/// A header name must be a valid token and a value must not hold control characters: the data
/// plane builds them without checking again.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("invalid header name {name:?}"));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("invalid value for header {name}"));
    }
    Ok(())
}

/// The Secret holding a BasicAuth/DigestAuth middleware's users, and its decoded data.
fn auth_secret<'a>(
    field: &str,
    b: &objects::middleware::BasicAuth,
    ns: &str,
    store: &'a ObjectStore,
) -> Result<(&'a crate::objects::Secret, std::collections::BTreeMap<String, Vec<u8>>), String> {
    if b.secret.is_empty() {
        return Err(format!("{field}.secret is required"));
    }
    let secret = store
        .secret(ns, &b.secret)
        .ok_or_else(|| format!("failed to load auth credentials: secret '{ns}/{}' not found", b.secret))?;
    let data = secret.decoded().map_err(|e| format!("secret '{ns}/{}': {e}", b.secret))?;
    Ok((secret, data))
}

fn basic_auth(
    b: &objects::middleware::BasicAuth,
    ns: &str,
    store: &ObjectStore,
) -> Result<mw::BasicAuth, String> {
    let (secret, data) = auth_secret("basicAuth", b, ns, store)?;
    let lines: Vec<String> = if secret.type_.as_deref() == Some("kubernetes.io/basic-auth") {
        // Traefik: one user, the password hashed as `{SHA}`.
        let (Some(user), Some(password)) = (data.get("username"), data.get("password")) else {
            return Err(format!(
                "failed to load auth credentials: secret '{ns}/{}' must contain both username and password keys",
                b.secret
            ));
        };
        let sum = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(password));
        vec![format!("{}:{{SHA}}{sum}", String::from_utf8_lossy(user))]
    } else {
        if data.len() != 1 {
            return Err(format!(
                "failed to load auth credentials: found {} elements for secret '{ns}/{}', must be single element exactly",
                data.len(),
                b.secret
            ));
        }
        let text = data.values().next().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if lines.is_empty() {
            return Err(format!(
                "failed to load auth credentials: secret '{ns}/{}' does not contain any credentials",
                b.secret
            ));
        }
        lines
    };
    let mut users = Vec::with_capacity(lines.len());
    for line in lines {
        let parts: Vec<&str> = line.split(':').collect();
        let [user, hash] = parts.as_slice() else {
            return Err(format!("error parsing BasicUser: {line}"));
        };
        users.push((user.to_string(), hash.to_string()));
    }
    if !b.header_field.is_empty() {
        check_header(&b.header_field, "")?;
    }
    let realm = if b.realm.is_empty() { DEFAULT_REALM.to_string() } else { b.realm.clone() };
    if realm.contains('"') || realm.bytes().any(|c| c < 0x20) {
        return Err(format!("invalid realm {realm:?}"));
    }
    Ok(mw::BasicAuth { users, realm, remove_header: b.remove_header, header_field: b.header_field.clone() })
}

fn circuit_breaker(c: &objects::middleware::CircuitBreaker) -> Result<mw::CircuitBreaker, String> {
    weir_proto::breaker::Expr::parse(&c.expression)
        .map_err(|e| format!("circuitBreaker.expression {:?}: {e}", c.expression))?;
    let duration = |field: &str, v: &Option<IntOrString>, default: u64| -> Result<u64, String> {
        match v {
            None => Ok(default),
            Some(v) => match super::duration::parse_nanos(v) {
                Some(n) if n > 0 => Ok(u64::try_from(n).unwrap_or(u64::MAX)),
                Some(0) => Ok(default),
                _ => Err(format!("invalid circuitBreaker.{field} {v:?}")),
            },
        }
    };
    let response_code = match c.response_code {
        None | Some(0) => 503,
        Some(code) => match u16::try_from(code) {
            Ok(c) if (100..=599).contains(&c) => c,
            _ => return Err(format!("invalid circuitBreaker.responseCode {code}")),
        },
    };
    Ok(mw::CircuitBreaker {
        expression: c.expression.clone(),
        check_period_nanos: duration("checkPeriod", &c.check_period, 100_000_000)?,
        fallback_duration_nanos: duration("fallbackDuration", &c.fallback_duration, 10_000_000_000)?,
        recovery_duration_nanos: duration("recoveryDuration", &c.recovery_duration, 10_000_000_000)?,
        response_code,
    })
}

/// Traefik: the Secret holds one key whose value is `user:realm:hash` lines.
fn digest_auth(
    b: &objects::middleware::BasicAuth,
    ns: &str,
    store: &ObjectStore,
) -> Result<mw::DigestAuth, String> {
    let (_, data) = auth_secret("digestAuth", b, ns, store)?;
    if data.len() != 1 {
        return Err(format!(
            "failed to load auth credentials: found {} elements for secret '{ns}/{}', must be single element exactly",
            data.len(),
            b.secret
        ));
    }
    let text = data.values().next().map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
    let mut users = Vec::new();
    for line in text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split(':').collect();
        let [user, realm, hash] = parts.as_slice() else {
            return Err(format!("error parsing DigestUser: {line}"));
        };
        users.push((user.to_string(), realm.to_string(), hash.to_string()));
    }
    if users.is_empty() {
        return Err(format!(
            "failed to load auth credentials: secret '{ns}/{}' does not contain any credentials",
            b.secret
        ));
    }
    if !b.header_field.is_empty() {
        check_header(&b.header_field, "")?;
    }
    let realm = if b.realm.is_empty() { DEFAULT_REALM.to_string() } else { b.realm.clone() };
    if realm.contains('"') || realm.bytes().any(|c| c < 0x20) {
        return Err(format!("invalid realm {realm:?}"));
    }
    Ok(mw::DigestAuth { users, realm, remove_header: b.remove_header, header_field: b.header_field.clone() })
}

fn ip_allow_list(a: &objects::middleware::IpAllowList, allow_list: bool) -> Result<mw::IpAllowList, String> {
    let what = if allow_list { "IPAllowLister" } else { "IPWhiteLister" };
    if a.source_range.is_empty() {
        return Err(format!("sourceRange is empty, {what} not created"));
    }
    for r in &a.source_range {
        Cidr::parse(r).map_err(|e| format!("cannot parse CIDRs {:?}: {e}", a.source_range))?;
    }
    let reject_status_code = match a.reject_status_code {
        _ if !allow_list => 403,
        None | Some(0) => 403,
        Some(code) => match u16::try_from(code) {
            Ok(c) if known_status(c) => c,
            _ => return Err(format!("invalid HTTP status code {code}")),
        },
    };
    let ip_strategy = match &a.ip_strategy {
        None => mw::IpStrategy::default(),
        Some(s) => ip_strategy(s)?,
    };
    Ok(mw::IpAllowList { source_range: a.source_range.clone(), ip_strategy, reject_status_code })
}

/// Traefik's `ipStrategy`: depth wins over excludedIPs.
fn ip_strategy(s: &objects::middleware::IpStrategy) -> Result<mw::IpStrategy, String> {
    let subnet = match s.ipv6_subnet {
        None => None,
        Some(n @ 1..=128) => Some(n as u8),
        Some(n) => {
            return Err(format!(
                "invalid IPv6 subnet {n} value, should be greater to 0 and lower or equal to 128"
            ))
        }
    };
    let depth = u32::try_from(s.depth.max(0)).unwrap_or(u32::MAX);
    if depth == 0 {
        for ip in &s.excluded_ips {
            Cidr::parse(ip).map_err(|e| format!("parsing CIDR trusted IPs: {e}"))?;
        }
    }
    Ok(mw::IpStrategy {
        depth,
        excluded_ips: if depth == 0 { s.excluded_ips.clone() } else { Vec::new() },
        ipv6_subnet: subnet,
    })
}

fn buffering(b: &objects::middleware::Buffering) -> Result<mw::Buffering, String> {
    let sizes = [
        ("maxRequestBodyBytes", b.max_request_body_bytes),
        ("memRequestBodyBytes", b.mem_request_body_bytes),
        ("maxResponseBodyBytes", b.max_response_body_bytes),
        ("memResponseBodyBytes", b.mem_response_body_bytes),
    ];
    for (field, v) in sizes {
        if v < 0 {
            return Err(format!("buffering.{field} must be >= 0, got {v}"));
        }
    }
    let retry_expression = b.retry_expression.trim().to_string();
    if !retry_expression.is_empty() {
        weir_proto::retry_expression::RetryExpr::parse(&retry_expression)
            .map_err(|e| format!("buffering.retryExpression {:?}: {e}", b.retry_expression))?;
    }
    Ok(mw::Buffering {
        max_request_body_bytes: b.max_request_body_bytes,
        mem_request_body_bytes: b.mem_request_body_bytes,
        max_response_body_bytes: b.max_response_body_bytes,
        mem_response_body_bytes: b.mem_response_body_bytes,
        retry_expression,
    })
}

fn forward_auth(
    f: &objects::middleware::ForwardAuth,
    namespace: &str,
    store: &ObjectStore,
) -> Result<mw::ForwardAuth, String> {
    let rest = f.address.strip_prefix("http://").or_else(|| f.address.strip_prefix("https://"));
    let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    if authority.is_none_or(|a| a.is_empty() || a.contains(char::is_whitespace)) {
        return Err(format!("forwardAuth.address {:?} must be an http or https URL", f.address));
    }
    let mut insecure_skip_verify = false;
    let mut root_cas = Vec::new();
    let mut certificate = None;
    if let Some(t) = &f.tls {
        // Traefik's CRD provider: both Secrets live in the middleware's namespace.
        if let Some(name) = t.ca_secret.as_deref().filter(|n| !n.is_empty()) {
            let ca = super::serverstransport::ca_bundle_secret(store, namespace, name)
                .map_err(|e| format!("failed to load auth ca secret: {e}"))?;
            root_cas.push(ca);
        }
        if let Some(name) = t.cert_secret.as_deref().filter(|n| !n.is_empty()) {
            let pair = super::serverstransport::tls_pair(store, namespace, name)
                .map_err(|e| format!("failed to load auth secret: {e}"))?;
            certificate = Some(pair);
        }
        insecure_skip_verify = t.insecure_skip_verify;
    }
    if !f.auth_response_headers_regex.is_empty() {
        check_regex(&f.auth_response_headers_regex).map_err(|e| {
            format!("error compiling regular expression {}: {e}", f.auth_response_headers_regex)
        })?;
    }
    for h in f.auth_response_headers.iter().chain(&f.auth_request_headers) {
        check_header(h, "")?;
    }
    Ok(mw::ForwardAuth {
        address: f.address.clone(),
        insecure_skip_verify,
        trust_forward_header: f.trust_forward_header,
        auth_response_headers: f.auth_response_headers.clone(),
        auth_response_headers_regex: f.auth_response_headers_regex.clone(),
        auth_request_headers: f.auth_request_headers.clone(),
        add_auth_cookies_to_response: f.add_auth_cookies_to_response.clone(),
        forward_body: f.forward_body,
        max_body_size: f.max_body_size.unwrap_or(-1),
        preserve_location_header: f.preserve_location_header,
        preserve_request_method: f.preserve_request_method,
        root_cas,
        certificate,
        max_response_body_size: f.max_response_body_size.unwrap_or(-1),
        auth_signin_url: f.auth_signin_url.clone().unwrap_or_default(),
    })
}

/// Traefik's CRD provider: the page service is resolved like a route's, and a `Service`
/// reference becomes `<ns>-<middleware>-errorpage-service`.
fn errors(
    e: &objects::middleware::ErrorPage,
    m: &objects::Middleware,
    store: &ObjectStore,
    services: Option<ServiceCx<'_>>,
) -> Result<mw::Errors, String> {
    let mut status = Vec::new();
    for s in &e.status {
        for block in s.split(',') {
            status.push(status_range(block.trim())?);
        }
    }
    let mut status_rewrites = Vec::new();
    for (from, to) in &e.status_rewrites {
        let to = u16::try_from(*to).ok().filter(|c| (100..=599).contains(c));
        let to =
            to.ok_or_else(|| format!("invalid status code {:?} in statusRewrites", e.status_rewrites[from]))?;
        status_rewrites.push((status_range(from.trim())?, to));
    }
    let Some(sref) = e.service.as_ref().filter(|s| !s.name.is_empty()) else {
        return Err("errors.service is required".into());
    };
    let ns = m.metadata.namespace();
    let service = match services {
        None => String::new(),
        Some(cx) => {
            let name = super::service::resolve_ref(store, ns, sref, cx.options, cx.generated)
                .map_err(|err| format!("error page service: {err}"))?;
            let is_traefik_service = sref.kind.as_deref() == Some("TraefikService");
            match cx.generated.get(&name).map(|s| s.kind.clone()) {
                Some(kind) if !is_traefik_service => {
                    let alias = normalize(&format!("{ns}-{}-errorpage-service", m.metadata.name));
                    cx.generated
                        .insert(alias.clone(), weir_proto::snapshot::Service { name: alias.clone(), kind });
                    alias
                }
                _ => name,
            }
        }
    };
    let headers = match &e.error_request_headers {
        None => None,
        Some(list) => {
            for h in list {
                check_header(h, "")?;
            }
            Some(list.clone())
        }
    };
    Ok(mw::Errors {
        status,
        status_rewrites,
        service,
        query: e.query.clone(),
        error_request_headers: headers,
    })
}

fn retry(r: &objects::middleware::Retry) -> Result<mw::Retry, String> {
    if r.attempts <= 0 {
        return Err(format!("incorrect (or empty) value for attempt ({})", r.attempts));
    }
    let duration = |field: &str, v: &Option<IntOrString>| -> Result<u64, String> {
        match v {
            None => Ok(0),
            Some(v) => match super::duration::parse_nanos(v) {
                Some(n) if n >= 0 => Ok(u64::try_from(n).unwrap_or(u64::MAX)),
                _ => Err(format!("invalid retry.{field} {v:?}")),
            },
        }
    };
    let mut status = Vec::new();
    for s in &r.status {
        for block in s.split(',') {
            status.push(status_range(block.trim())?);
        }
    }
    Ok(mw::Retry {
        attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
        initial_interval_nanos: duration("initialInterval", &r.initial_interval)?,
        timeout_nanos: duration("timeout", &r.timeout)?,
        status,
        max_request_body_bytes: r.max_request_body_bytes.unwrap_or(2 * 1024 * 1024),
        disable_retry_on_network_error: r.disable_retry_on_network_error,
        retry_non_idempotent_method: r.retry_non_idempotent_method,
    })
}

/// Traefik's `types.NewHTTPCodeRanges` element: `500` or `500-599`.
fn status_range(s: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid status code range {s:?}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Traefik's compress defaults and checks (`compress.New`).
fn compress(c: &objects::middleware::Compress) -> Result<mw::Compress, String> {
    if !c.excluded_content_types.is_empty() && !c.included_content_types.is_empty() {
        return Err("excludedContentTypes and includedContentTypes options are mutually exclusive".into());
    }
    for t in &c.excluded_content_types {
        weir_proto::mime::parse_media_type(t).map_err(|e| format!("parsing excluded media type: {e}"))?;
    }
    for t in &c.included_content_types {
        weir_proto::mime::parse_media_type(t).map_err(|e| format!("parsing included media type: {e}"))?;
    }
    let encodings = match &c.encodings {
        None => vec!["gzip".to_string(), "br".to_string(), "zstd".to_string()],
        Some(e) if e.is_empty() => return Err("at least one encoding must be specified".into()),
        Some(e) => e.clone(),
    };
    if let Some(bad) = encodings.iter().find(|e| !matches!(e.as_str(), "gzip" | "br" | "zstd")) {
        return Err(format!("unsupported encoding: {bad}"));
    }
    if !c.default_encoding.is_empty() && !encodings.contains(&c.default_encoding) {
        return Err(format!("unsupported default encoding: {}", c.default_encoding));
    }
    let min = c.min_response_body_bytes.filter(|n| *n > 0).unwrap_or(1024);
    Ok(mw::Compress {
        excluded_content_types: c.excluded_content_types.clone(),
        included_content_types: c.included_content_types.clone(),
        min_response_body_bytes: min as u64,
        encodings,
        default_encoding: c.default_encoding.clone(),
    })
}

fn rate_limit(
    r: &objects::middleware::RateLimit,
    namespace: &str,
    store: &ObjectStore,
) -> Result<mw::RateLimit, String> {
    let redis = match &r.redis {
        None => None,
        Some(c) => Some(Box::new(rate_limit_redis(c, namespace, store)?)),
    };
    let average = r.average.unwrap_or(0);
    if average < 0 {
        return Err(format!("rateLimit.average must be >= 0, got {average}"));
    }
    let period = match &r.period {
        None => 0,
        Some(p) => {
            super::duration::parse_nanos(p).ok_or_else(|| format!("invalid rateLimit.period {p:?}"))?
        }
    };
    if period < 0 {
        return Err(format!("negative value not valid for period: {p}ns", p = period));
    }
    // Traefik: a zero period is one second; a burst below 1 is 1.
    let period_nanos = if period == 0 { 1_000_000_000 } else { u64::try_from(period).unwrap_or(u64::MAX) };
    let source =
        source_criterion(r.source_criterion.as_ref(), mw::SourceCriterion::Ip(mw::IpStrategy::default()))?;
    Ok(mw::RateLimit { average, period_nanos, burst: r.burst.unwrap_or(1).max(1), source, redis })
}

/// Traefik's `rateLimit.redis` as its CRD provider fills it: endpoints default to
/// `localhost:6379`; read/write timeouts default to 3s, and a zero or negative one means none;
/// the dial timeout defaults to 5s (zero or negative keeps the default); `secret` must hold
/// both `username` and `password`; TLS material comes from Secrets in the middleware's namespace.
fn rate_limit_redis(
    c: &objects::middleware::RateLimitRedis,
    namespace: &str,
    store: &ObjectStore,
) -> Result<mw::RateLimitRedis, String> {
    const SECOND: u64 = 1_000_000_000;
    let endpoints =
        if c.endpoints.is_empty() { vec!["localhost:6379".to_string()] } else { c.endpoints.clone() };
    for e in &endpoints {
        let port = e.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
        if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
            return Err(format!("rateLimit.redis.endpoints: {e:?} is not host:port"));
        }
    }
    let timeout = |field: &str, v: &Option<IntOrString>, default: u64| -> Result<Option<u64>, String> {
        match v {
            None => Ok(Some(default)),
            Some(v) => {
                let n = super::duration::parse_nanos(v)
                    .ok_or_else(|| format!("invalid rateLimit.redis.{field} {v:?}"))?;
                Ok(u64::try_from(n).ok().filter(|n| *n > 0))
            }
        }
    };
    let read_timeout_nanos = timeout("readTimeout", &c.read_timeout, 3 * SECOND)?.unwrap_or(0);
    let write_timeout_nanos = timeout("writeTimeout", &c.write_timeout, 3 * SECOND)?.unwrap_or(0);
    let dial_timeout_nanos = timeout("dialTimeout", &c.dial_timeout, 5 * SECOND)?.unwrap_or(5 * SECOND);
    let count = |field: &str, v: i64| {
        u32::try_from(v)
            .map_err(|_| format!("rateLimit.redis.{field} must be between 0 and {}, got {v}", u32::MAX))
    };
    if c.db < 0 {
        return Err(format!("rateLimit.redis.db must be >= 0, got {}", c.db));
    }
    let (mut username, mut password) = (String::new(), String::new());
    if !c.secret.is_empty() {
        let secret = store
            .secret(namespace, &c.secret)
            .ok_or_else(|| format!("secret '{namespace}/{}' not found", c.secret))?;
        let data = secret.decoded().map_err(|e| format!("secret '{namespace}/{}': {e}", c.secret))?;
        let (Some(user), Some(pass)) = (data.get("username"), data.get("password")) else {
            return Err(format!(
                "secret '{namespace}/{}' must contain both username and password keys",
                c.secret
            ));
        };
        username = String::from_utf8_lossy(user).into_owned();
        password = String::from_utf8_lossy(pass).into_owned();
    }
    let tls = match &c.tls {
        None => None,
        Some(t) => {
            let mut root_cas = Vec::new();
            if !t.ca_secret.is_empty() {
                let ca = super::serverstransport::ca_bundle_secret(store, namespace, &t.ca_secret)
                    .map_err(|e| format!("failed to load auth ca secret: {e}"))?;
                root_cas.push(ca);
            }
            let certificate = if t.cert_secret.is_empty() {
                None
            } else {
                Some(
                    super::serverstransport::tls_pair(store, namespace, &t.cert_secret)
                        .map_err(|e| format!("failed to load auth secret: {e}"))?,
                )
            };
            Some(mw::RateLimitRedisTls {
                root_cas,
                certificate,
                insecure_skip_verify: t.insecure_skip_verify,
            })
        }
    };
    Ok(mw::RateLimitRedis {
        endpoints,
        username,
        password,
        db: c.db,
        tls,
        pool_size: count("poolSize", c.pool_size)?,
        min_idle_conns: count("minIdleConns", c.min_idle_conns)?,
        max_active_conns: count("maxActiveConns", c.max_active_conns)?,
        read_timeout_nanos,
        write_timeout_nanos,
        dial_timeout_nanos,
    })
}

/// Traefik's `GetSourceExtractor`: one criterion at most; none set means `default`.
fn source_criterion(
    c: Option<&objects::middleware::SourceCriterion>,
    default: mw::SourceCriterion,
) -> Result<mw::SourceCriterion, String> {
    let Some(c) = c else { return Ok(default) };
    let header = !c.request_header_name.is_empty();
    match (&c.ip_strategy, header, c.request_host) {
        (None, false, false) => Ok(default),
        (Some(_), true, _) => Err("iPStrategy and RequestHeaderName are mutually exclusive".into()),
        (Some(_), _, true) => Err("iPStrategy and RequestHost are mutually exclusive".into()),
        (None, true, true) => Err("requestHost and RequestHeaderName are mutually exclusive".into()),
        (None, true, false) => {
            check_header(&c.request_header_name, "")?;
            Ok(mw::SourceCriterion::RequestHeader(c.request_header_name.clone()))
        }
        (None, false, true) => Ok(mw::SourceCriterion::RequestHost),
        (Some(s), false, false) => Ok(mw::SourceCriterion::Ip(ip_strategy(s)?)),
    }
}

/// Whether Go's `http.StatusText` knows the code (Traefik refuses unknown reject codes).
fn known_status(c: u16) -> bool {
    matches!(c, 100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451 | 500..=508 | 510 | 511)
}

/// `inFlightConn.amount`, checked the same way wherever a MiddlewareTCP is read. Traefik takes
/// any number and refuses a connection once the client has `amount` open, so 0 refuses every
/// connection (kept); a negative amount would do the same, and weir calls it a config error.
pub(super) fn in_flight_conn_amount(amount: i64) -> Result<u64, String> {
    u64::try_from(amount).map_err(|_| format!("inFlightConn.amount must be >= 0, got {amount}"))
}

/// Validates a MiddlewareTCP (wiring into TCP routers is W6's).
fn validate_tcp(spec: &objects::MiddlewareTcpSpec) -> Result<(), String> {
    let set = [spec.in_flight_conn.is_some(), spec.ip_allow_list.is_some(), spec.ip_white_list.is_some()];
    match set.iter().filter(|s| **s).count() {
        0 => return Err("invalid middleware type or middleware does not exist".into()),
        1 => {}
        _ => return Err("multi-types middleware not supported".into()),
    }
    if let Some(c) = &spec.in_flight_conn {
        in_flight_conn_amount(c.amount)?;
    }
    for list in [&spec.ip_allow_list, &spec.ip_white_list].into_iter().flatten() {
        if list.source_range.is_empty() {
            return Err("sourceRange is empty, IPAllowLister not created".into());
        }
        for r in &list.source_range {
            Cidr::parse(r).map_err(|e| format!("cannot parse CIDRs {:?}: {e}", list.source_range))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
