//! TLS translation, after the routers exist: TLSOption objects → validated options, the
//! default TLSStore and every TLS IngressRoute's `secretName` → the default store's
//! certificates, each TLS router's option resolved as Traefik's aggregator does (per
//! entrypoint, conflicting options on one host fall back to `default`), and the per-entrypoint
//! SNI → option map the data plane selects handshake configurations with.
//!
//! A TLS router whose secret is missing or bad, or whose option is unknown, broken or a
//! forbidden cross-namespace reference, is disabled with the reason; the others serve.

use std::collections::{BTreeMap, BTreeSet};

use weir_proto::rule::{Expr, Matcher};
use weir_proto::snapshot::Router;
use weir_proto::tls::{
    Certificate, CipherSuiteName, ClientAuthType, CurveName, EntryPointTls, RouterTlsOption, SniOption, Tls,
    TlsOption, TlsVersion, VersionName, DEFAULT_TLS_OPTION,
};

use super::{names, TranslateOptions, Translation};
use crate::objects::{IngressRoute, Secret, TlsOption as TlsOptionObject};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

/// Traefik's ALPN protocol for ACME TLS challenges: weir has no ACME, so it is never offered.
const ACME_TLS_ALPN: &str = "acme-tls/1";

/// Why a TLS router or certificate cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The Secret does not exist.
    #[error("secret {namespace}/{name} does not exist")]
    MissingSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The Secret lacks `tls.crt` / `tls.key`, or they are empty or not base64.
    #[error("secret {namespace}/{name} {reason}")]
    BadSecretData {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The certificate or key does not load.
    #[error("secret {namespace}/{name}: {reason}")]
    BadCertificate {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// `tls.options` names a TLSOption in another namespace while that is not allowed.
    #[error(
        "TLSOption {namespace}/{name}: reference from namespace {from} is not allowed \
         (--providers.kubernetesCRD.allowCrossNamespace is false)"
    )]
    CrossNamespaceOption {
        /// Option namespace.
        namespace: String,
        /// Option name.
        name: String,
        /// Namespace of the IngressRoute.
        from: String,
    },
    /// `tls.options` names a cross-provider option.
    #[error("TLSOption `{0}`: cross-provider references are not supported")]
    CrossProviderOption(String),
    /// The option does not exist.
    #[error("unknown TLS options: {0}")]
    UnknownOption(String),
    /// The option exists but cannot be built.
    #[error("TLS options {name} are invalid: {reason}")]
    BrokenOption {
        /// Option name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// What the pass needs from the static configuration besides the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsOptions {
    /// `--providers.kubernetesCRD.allowCrossNamespace`.
    pub allow_cross_namespace: bool,
}

/// A TLS router as the SNI mapping sees it.
struct TlsRouter {
    name: String,
    entrypoints: Vec<String>,
    /// Option as the route asked for it (`default` or `<ns>-<name>`).
    option: String,
    /// Lower-case hosts of its `Host` matchers.
    domains: Vec<String>,
}

/// Runs the TLS pass over `out` (routers already translated).
pub fn translate(store: &ObjectStore, options: &TranslateOptions, out: &mut Translation) {
    let allow_cross_namespace = options.services.allow_cross_namespace;
    let mut tls_options = tls_options(store, &mut out.problems);
    let mut certificates: BTreeMap<String, Certificate> = BTreeMap::new();
    let default_certificate = default_store(store, &mut certificates, &mut out.problems);

    let mut tls_routers = Vec::new();
    for ir in store.ingress_routes() {
        let Some(tls) = &ir.spec.tls else { continue };
        let namespace = ir.metadata.namespace();
        for (index, route) in ir.spec.routes.iter().enumerate() {
            let router_name = names::router_name(namespace, &ir.metadata.name, &route.match_);
            let Some(router) = out.routers.get(&router_name) else { continue };
            if !router.tls {
                continue; // Overwritten by an identical rule of a later IngressRoute.
            }
            let problem = |severity, message| Problem {
                severity,
                subject: Subject::Route {
                    kind: "IngressRoute".into(),
                    namespace: namespace.into(),
                    name: ir.metadata.name.clone(),
                    route: index,
                    router: router_name.clone(),
                },
                message,
            };
            if let Some(resolver) = tls.cert_resolver.as_deref().filter(|r| !r.is_empty()) {
                out.problems.push(problem(
                    Severity::Warning,
                    format!(
                        "certResolver `{resolver}`: ACME is not supported; serving the matching or \
                         default certificate"
                    ),
                ));
            }
            let resolved = route_tls(ir, store, allow_cross_namespace, &mut certificates);
            let option = match resolved {
                Ok(option) => option,
                Err(e) => {
                    out.routers.remove(&router_name);
                    out.problems.push(problem(Severity::Error, e.to_string()));
                    continue;
                }
            };
            tls_routers.push(TlsRouter {
                name: router_name.clone(),
                entrypoints: router.entrypoints.clone(),
                domains: domains(&router.expr),
                option,
            });
        }
    }

    // Ingresses: `spec.tls` certificates join the store; `router.tls` routers are TLS routers.
    for (key, cert) in std::mem::take(&mut out.ingress_tls.certificates) {
        certificates.entry(key).or_insert(cert);
    }
    for (name, option) in std::mem::take(&mut out.ingress_tls.routers) {
        if let Some(router) = out.routers.get(&name) {
            tls_routers.push(TlsRouter {
                entrypoints: router.entrypoints.clone(),
                domains: domains(&router.expr),
                name,
                option,
            });
        }
    }

    // `--entryPoints.<ep>.http.tls`: the entrypoint's cleartext routers become TLS routers.
    for (name, option) in super::entrypoints::tls_models(options, &mut out.routers, &mut out.problems) {
        if let Some(router) = out.routers.get(&name) {
            tls_routers.push(TlsRouter {
                name,
                entrypoints: router.entrypoints.clone(),
                domains: domains(&router.expr),
                option,
            });
        }
    }
    let resolved = resolve_conflicts(&mut tls_routers, &mut out.routers, &mut out.problems);
    // Unknown options still get an entry, broken: handshakes for their hosts are refused, as
    // Traefik does for a router whose TLS options do not build.
    for r in &tls_routers {
        if !tls_options.contains_key(&r.option) {
            let mut broken = TlsOption::traefik_default();
            broken.name = r.option.clone();
            broken.broken = Some(TlsError::UnknownOption(r.option.clone()).to_string());
            tls_options.insert(r.option.clone(), broken);
        }
    }
    // Traefik: a router whose (resolved) TLS options do not build is not served.
    for (router, option) in &resolved {
        let Some(opt) = tls_options.get(option) else { continue };
        if let Some(reason) = &opt.broken {
            if out.routers.remove(router).is_some() {
                out.problems.push(Problem::object(
                    Severity::Error,
                    "Router",
                    "",
                    router,
                    if reason.starts_with("unknown TLS options") {
                        reason.clone()
                    } else {
                        TlsError::BrokenOption { name: option.clone(), reason: reason.clone() }.to_string()
                    },
                ));
            }
        }
    }

    out.tls = Tls {
        certificates: dedupe_by_names(certificates.into_values()),
        default_certificate,
        options: tls_options.into_values().collect(),
        entrypoints: entrypoint_tls(&tls_routers, &resolved, &out.routers),
    };
}

/// The checks that disable a TLS route before its services are resolved: its secret loads and
/// its option reference is allowed. Whether the option exists is known after every TLSOption is
/// read (the TLS pass).
pub fn check_route(
    namespace: &str,
    tls: &crate::objects::IngressRouteTls,
    store: &ObjectStore,
    options: &TranslateOptions,
) -> Result<(), TlsError> {
    if let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
        certificate(store, namespace, secret)?;
    }
    option_name(namespace, tls, options.services.allow_cross_namespace).map(drop)
}

/// Resolves a TLS IngressRoute's secret (adding its certificate to the store) and option name.
fn route_tls(
    ir: &IngressRoute,
    store: &ObjectStore,
    allow_cross_namespace: bool,
    certificates: &mut BTreeMap<String, Certificate>,
) -> Result<String, TlsError> {
    let namespace = ir.metadata.namespace();
    let tls = ir.spec.tls.as_ref().expect("route_tls is called for TLS IngressRoutes only");
    if let Some(secret) = tls.secret_name.as_deref().filter(|s| !s.is_empty()) {
        let key = format!("{namespace}/{secret}");
        if let std::collections::btree_map::Entry::Vacant(slot) = certificates.entry(key) {
            slot.insert(certificate(store, namespace, secret)?);
        }
    }
    option_name(namespace, tls, allow_cross_namespace)
}

/// The option a TLS IngressRoute names: `default`, or `<ns>-<name>` normalized.
fn option_name(
    namespace: &str,
    tls: &crate::objects::IngressRouteTls,
    allow_cross_namespace: bool,
) -> Result<String, TlsError> {
    let Some(reference) = tls.options.as_ref().filter(|o| !o.name.is_empty()) else {
        return Ok(DEFAULT_TLS_OPTION.into());
    };
    if reference.name.contains('@') {
        return Err(TlsError::CrossProviderOption(reference.name.clone()));
    }
    if reference.name == DEFAULT_TLS_OPTION {
        return Ok(DEFAULT_TLS_OPTION.into());
    }
    let option_namespace = reference.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or(namespace);
    if option_namespace != namespace && !allow_cross_namespace {
        return Err(TlsError::CrossNamespaceOption {
            namespace: option_namespace.into(),
            name: reference.name.clone(),
            from: namespace.into(),
        });
    }
    Ok(names::normalize(&format!("{option_namespace}-{}", reference.name)))
}

/// The lower-case hosts of every `Host` matcher in the rule (Traefik's `ParseDomains`).
fn domains(expr: &Expr) -> Vec<String> {
    fn walk(e: &Expr, out: &mut BTreeSet<String>) {
        match e {
            Expr::Matcher(Matcher::Host(h)) => {
                out.insert(h.to_ascii_lowercase());
            }
            Expr::Matcher(_) => {}
            Expr::Not(inner) => walk(inner, out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                walk(a, out);
                walk(b, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(expr, &mut out);
    out.into_iter().collect()
}

/// Traefik's `resolveHTTPTLSOptions`: per entrypoint, a host served by TLS routers with
/// different options, or a router with a non-default option and no host, makes those routers
/// use `default` there; a router conflicting on some of its entrypoints only is split, the copy
/// named `<ep>-conflicted-<name>`. Returns every (router, resolved option) pair.
fn resolve_conflicts(
    tls_routers: &mut Vec<TlsRouter>,
    routers: &mut BTreeMap<String, std::sync::Arc<Router>>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let mut by_ep: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in tls_routers.iter().enumerate() {
        for ep in &r.entrypoints {
            by_ep.entry(ep.as_str()).or_default().push(i);
        }
    }
    let mut conflicting: BTreeSet<(String, usize)> = BTreeSet::new();
    for (ep, members) in &by_ep {
        let mut by_host: BTreeMap<&str, BTreeMap<&str, Vec<usize>>> = BTreeMap::new();
        for &i in members {
            let r = &tls_routers[i];
            if r.domains.is_empty() && r.option != DEFAULT_TLS_OPTION {
                problems.push(Problem::object(
                    Severity::Warning,
                    "Router",
                    "",
                    &r.name,
                    format!(
                        "no domain found in rule, the TLS option {} cannot be applied; default TLS \
                         options are used",
                        r.option
                    ),
                ));
                conflicting.insert((ep.to_string(), i));
            }
            for d in &r.domains {
                by_host.entry(d).or_default().entry(r.option.as_str()).or_default().push(i);
            }
        }
        for (host, by_option) in by_host {
            if by_option.len() < 2 {
                continue;
            }
            let names: Vec<&str> =
                by_option.values().flatten().map(|&i| tls_routers[i].name.as_str()).collect();
            problems.push(Problem::object(
                Severity::Warning,
                "EntryPoint",
                "",
                ep,
                format!(
                    "host {host} is served by multiple routers with different TLS options, default TLS \
                     options will be applied for the following routers: {}",
                    names.join(", ")
                ),
            ));
            for &i in by_option.values().flatten() {
                conflicting.insert((ep.to_string(), i));
            }
        }
    }
    let mut resolved = Vec::new();
    let mut copies = Vec::new();
    for (i, r) in tls_routers.iter_mut().enumerate() {
        let conflicted: Vec<String> =
            r.entrypoints.iter().filter(|ep| conflicting.contains(&(ep.to_string(), i))).cloned().collect();
        if conflicted.is_empty() {
            resolved.push((r.name.clone(), r.option.clone()));
            continue;
        }
        let Some(original) = routers.get(&r.name).cloned() else { continue };
        for ep in &conflicted {
            let name = format!("{ep}-conflicted-{}", r.name);
            let mut copy = Router::clone(&original);
            copy.name = name.clone();
            copy.entrypoints = vec![ep.clone()];
            routers.insert(name.clone(), std::sync::Arc::new(copy));
            resolved.push((name.clone(), DEFAULT_TLS_OPTION.into()));
            copies.push(TlsRouter {
                name,
                entrypoints: vec![ep.clone()],
                option: DEFAULT_TLS_OPTION.into(),
                domains: r.domains.clone(),
            });
        }
        r.entrypoints.retain(|ep| !conflicted.contains(ep));
        if r.entrypoints.is_empty() {
            routers.remove(&r.name);
        } else {
            if let Some(kept) = routers.get_mut(&r.name) {
                std::sync::Arc::make_mut(kept).entrypoints = r.entrypoints.clone();
            }
            resolved.push((r.name.clone(), r.option.clone()));
        }
    }
    tls_routers.retain(|r| !r.entrypoints.is_empty());
    tls_routers.extend(copies);
    resolved
}

/// Per entrypoint: host → option, and the routers expecting a non-default option.
fn entrypoint_tls(
    tls_routers: &[TlsRouter],
    resolved: &[(String, String)],
    routers: &BTreeMap<String, std::sync::Arc<Router>>,
) -> Vec<EntryPointTls> {
    let resolved: BTreeMap<&str, &str> = resolved.iter().map(|(r, o)| (r.as_str(), o.as_str())).collect();
    // Per entrypoint: (host → option, router → option).
    type Maps<'a> = (BTreeMap<&'a str, &'a str>, BTreeMap<&'a str, &'a str>);
    let mut eps: BTreeMap<&str, Maps<'_>> = BTreeMap::new();
    for r in tls_routers {
        let option = resolved.get(r.name.as_str()).copied().unwrap_or(DEFAULT_TLS_OPTION);
        for ep in &r.entrypoints {
            let (hosts, expecting) = eps.entry(ep.as_str()).or_default();
            for d in &r.domains {
                // After conflict resolution every router on a host agrees on its option.
                hosts.insert(d.as_str(), option);
            }
            if option != DEFAULT_TLS_OPTION && routers.contains_key(&r.name) {
                expecting.insert(r.name.as_str(), option);
            }
        }
    }
    eps.into_iter()
        .map(|(ep, (hosts, expecting))| EntryPointTls {
            entrypoint: ep.to_string(),
            // Default-option hosts are listed too: they must beat a `Host(`*`)` catch-all.
            hosts: hosts
                .into_iter()
                .map(|(h, o)| SniOption { host: h.to_string(), option: o.to_string() })
                .collect(),
            routers: expecting
                .into_iter()
                .map(|(r, o)| RouterTlsOption { router: r.to_string(), option: o.to_string() })
                .collect(),
        })
        .filter(|e| !e.hosts.is_empty() || !e.routers.is_empty())
        .collect()
}

/// Traefik: certificates are added in `<ns>/<secret>` order and a certificate whose set of
/// names is already in the store is skipped.
fn dedupe_by_names(certificates: impl Iterator<Item = Certificate>) -> Vec<Certificate> {
    let mut seen = BTreeSet::new();
    certificates
        .filter(|c| {
            let mut names = c.names.clone();
            names.sort();
            seen.insert(names.join(","))
        })
        .collect()
}

/// The default TLSStore: its default certificate, and its certificates added to `certificates`.
fn default_store(
    store: &ObjectStore,
    certificates: &mut BTreeMap<String, Certificate>,
    problems: &mut Vec<Problem>,
) -> Option<Certificate> {
    let defaults: Vec<_> = store.tls_stores().filter(|s| s.metadata.name == DEFAULT_TLS_OPTION).collect();
    for other in store.tls_stores().filter(|s| s.metadata.name != DEFAULT_TLS_OPTION) {
        problems.push(Problem::object(
            Severity::Warning,
            "TLSStore",
            other.metadata.namespace(),
            &other.metadata.name,
            "only the TLSStore named `default` is used; this one is ignored".into(),
        ));
    }
    if defaults.len() > 1 {
        let namespaces: Vec<&str> = defaults.iter().map(|s| s.metadata.namespace()).collect();
        for s in &defaults {
            problems.push(Problem::object(
                Severity::Error,
                "TLSStore",
                s.metadata.namespace(),
                &s.metadata.name,
                format!(
                    "default TLS store defined in multiple namespaces: {}; all are ignored",
                    namespaces.join(", ")
                ),
            ));
        }
        return None;
    }
    let tls_store = defaults.first()?;
    let namespace = tls_store.metadata.namespace();
    let report = |problems: &mut Vec<Problem>, severity, message: String| {
        problems.push(Problem::object(severity, "TLSStore", namespace, &tls_store.metadata.name, message))
    };
    if tls_store.spec.default_generated_cert.is_some() {
        report(
            problems,
            Severity::Warning,
            "defaultGeneratedCert needs ACME, which is not supported; the default certificate is used".into(),
        );
    }
    for c in &tls_store.spec.certificates {
        let key = format!("{namespace}/{}", c.secret_name);
        if certificates.contains_key(&key) {
            continue;
        }
        match certificate(store, namespace, &c.secret_name) {
            Ok(cert) => {
                certificates.insert(key, cert);
            }
            Err(e) => report(problems, Severity::Error, format!("certificate skipped: {e}")),
        }
    }
    let secret = &tls_store.spec.default_certificate.as_ref()?.secret_name;
    match certificate(store, namespace, secret) {
        Ok(cert) => Some(cert),
        Err(e) => {
            report(problems, Severity::Error, format!("default certificate not used: {e}"));
            None
        }
    }
}

/// Reads a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`) and checks that it loads.
pub fn certificate(store: &ObjectStore, namespace: &str, name: &str) -> Result<Certificate, TlsError> {
    let secret = store
        .secret(namespace, name)
        .ok_or_else(|| TlsError::MissingSecret { namespace: namespace.into(), name: name.into() })?;
    let (chain_pem, key_pem) = certificate_blocks(secret)?;
    let names = super::tls_cert::check(&chain_pem, &key_pem).map_err(|reason| TlsError::BadCertificate {
        namespace: namespace.into(),
        name: name.into(),
        reason,
    })?;
    Ok(Certificate { source: format!("{namespace}/{name}"), chain_pem, key_pem, names })
}

/// Traefik's `getCertificateBlocks`: both keys present and non-empty.
fn certificate_blocks(secret: &Secret) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    let bad = |reason: String| TlsError::BadSecretData {
        namespace: secret.metadata.namespace().into(),
        name: secret.metadata.name.clone(),
        reason,
    };
    let mut data = secret.decoded().map_err(|e| bad(format!("is not readable: {e}")))?;
    let missing: Vec<&str> = ["tls.crt", "tls.key"].into_iter().filter(|k| !data.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(bad(format!("is missing the following TLS data entries: {}", missing.join(", "))));
    }
    let empty: Vec<&str> =
        ["tls.crt", "tls.key"].into_iter().filter(|k| data.get(*k).is_some_and(Vec::is_empty)).collect();
    if !empty.is_empty() {
        return Err(bad(format!("contains the following empty TLS data entries: {}", empty.join(", "))));
    }
    let cert = data.remove("tls.crt").unwrap_or_default();
    let key = data.remove("tls.key").unwrap_or_default();
    Ok((cert, key))
}

/// Every TLSOption, validated, plus the built-in `default` unless one replaces it.
fn tls_options(store: &ObjectStore, problems: &mut Vec<Problem>) -> BTreeMap<String, TlsOption> {
    let mut out = BTreeMap::new();
    let defaults: Vec<&str> = store
        .tls_options()
        .filter(|o| o.metadata.name == DEFAULT_TLS_OPTION)
        .map(|o| o.metadata.namespace())
        .collect();
    for object in store.tls_options() {
        let namespace = object.metadata.namespace();
        let name = &object.metadata.name;
        if name == DEFAULT_TLS_OPTION && defaults.len() > 1 {
            problems.push(Problem::object(
                Severity::Error,
                "TLSOption",
                namespace,
                name,
                format!(
                    "default TLS options defined in multiple namespaces: {}; the built-in default is used",
                    defaults.join(", ")
                ),
            ));
            continue;
        }
        let mut notes = Vec::new();
        let option = tls_option(object, store, &mut notes);
        if let Some(reason) = &option.broken {
            notes.push((
                Severity::Error,
                format!("invalid, TLS handshakes that use it are refused: {reason}"),
            ));
        }
        for (severity, message) in notes {
            problems.push(Problem::object(severity, "TLSOption", namespace, name, message));
        }
        out.insert(option.name.clone(), option);
    }
    out.entry(DEFAULT_TLS_OPTION.to_string()).or_insert_with(TlsOption::traefik_default);
    out
}

/// Builds one option, as Traefik's `buildTLSOptions` + `buildTLSConfig` do, noting what is
/// ignored. A reason to refuse the option lands in `broken`.
fn tls_option(
    object: &TlsOptionObject,
    store: &ObjectStore,
    notes: &mut Vec<(Severity, String)>,
) -> TlsOption {
    let namespace = object.metadata.namespace();
    let spec = &object.spec;
    let mut option = TlsOption::traefik_default();
    option.name = if object.metadata.name == DEFAULT_TLS_OPTION {
        DEFAULT_TLS_OPTION.into()
    } else {
        names::normalize(&format!("{namespace}-{}", object.metadata.name))
    };
    option.broken = build_option(spec, namespace, store, &mut option, notes).err();
    option
}

fn build_option(
    spec: &crate::objects::TlsOptionSpec,
    namespace: &str,
    store: &ObjectStore,
    option: &mut TlsOption,
    notes: &mut Vec<(Severity, String)>,
) -> Result<(), String> {
    if spec.prefer_server_cipher_suites.is_some() {
        notes.push((Severity::Warning, "preferServerCipherSuites is deprecated and has no effect".into()));
    }
    // Traefik looks versions up in a table and silently keeps the default for unknown names.
    if let Some(name) = spec.min_version.as_deref().filter(|v| !v.is_empty()) {
        match VersionName::parse(name) {
            Ok(VersionName::Supported(v)) => option.min_version = v,
            Ok(VersionName::Legacy(n)) => notes.push((
                Severity::Warning,
                format!("minVersion {n}: TLS 1.0 and 1.1 are not supported by weir (rustls); TLS 1.2 is the minimum"),
            )),
            Err(e) => notes.push((Severity::Warning, format!("{e}; ignored, as Traefik does"))),
        }
    }
    if let Some(name) = spec.max_version.as_deref().filter(|v| !v.is_empty()) {
        match VersionName::parse(name) {
            Ok(VersionName::Supported(v)) => option.max_version = v,
            Ok(VersionName::Legacy(n)) => {
                return Err(format!("maxVersion {n}: TLS 1.0 and 1.1 are not supported by weir (rustls)"))
            }
            Err(e) => notes.push((Severity::Warning, format!("{e}; ignored, as Traefik does"))),
        }
    }
    if option.min_version > option.max_version {
        return Err("minVersion is above maxVersion".into());
    }
    if let Some(names) = &spec.cipher_suites {
        let mut suites = Vec::new();
        for name in names {
            match CipherSuiteName::parse(name).map_err(|e| e.to_string())? {
                CipherSuiteName::Tls12(s) => {
                    if !suites.contains(&s) {
                        suites.push(s)
                    }
                }
                CipherSuiteName::Tls13 => {}
                CipherSuiteName::Unsupported => notes.push((
                    Severity::Warning,
                    format!("cipher suite {name} is not supported by weir (rustls has no CBC, RC4, 3DES or RSA key exchange suites); ignored"),
                )),
            }
        }
        if suites.is_empty() && option.min_version == TlsVersion::Tls12 {
            if option.max_version == TlsVersion::Tls12 {
                return Err("no usable TLS 1.2 cipher suite in cipherSuites".into());
            }
            notes.push((Severity::Warning, "no usable TLS 1.2 cipher suite: only TLS 1.3 is served".into()));
        }
        option.cipher_suites = Some(suites);
    }
    if let Some(names) = &spec.curve_preferences {
        let mut curves = Vec::new();
        for name in names {
            match CurveName::parse(name).map_err(|e| e.to_string())? {
                CurveName::Supported(c) => {
                    if !curves.contains(&c) {
                        curves.push(c)
                    }
                }
                CurveName::Unsupported => notes.push((
                    Severity::Warning,
                    format!("curve {name} is not supported by weir's crypto provider; ignored"),
                )),
            }
        }
        if curves.is_empty() && !names.is_empty() {
            return Err("no supported curve in curvePreferences".into());
        }
        option.curves = (!names.is_empty()).then_some(curves);
    }
    for secret_name in &spec.client_auth.secret_names {
        let Some(secret) = store.secret(namespace, secret_name) else {
            notes.push((
                Severity::Warning,
                format!("secret {namespace}/{secret_name} does not exist; skipped"),
            ));
            continue;
        };
        let data = match secret.decoded() {
            Ok(d) => d,
            Err(e) => {
                notes.push((Severity::Error, format!("secret {namespace}/{secret_name}: {e}; skipped")));
                continue;
            }
        };
        match data.get("tls.ca").or_else(|| data.get("ca.crt")) {
            Some(ca) => {
                super::tls_cert::check_ca_bundle(ca)?;
                option.client_cas_pem.push(ca.clone());
            }
            None => notes.push((
                Severity::Error,
                format!("secret {namespace}/{secret_name} contains neither tls.ca nor ca.crt; skipped"),
            )),
        }
    }
    // Traefik: CAs without a type mean RequireAndVerifyClientCert.
    if !option.client_cas_pem.is_empty() {
        option.client_auth = ClientAuthType::RequireAndVerifyClientCert;
    }
    if let Some(name) = spec.client_auth.client_auth_type.as_deref().filter(|t| !t.is_empty()) {
        let kind = ClientAuthType::parse(name).map_err(|_| format!("unknown client auth type {name:?}"))?;
        if kind.verifies() && option.client_cas_pem.is_empty() {
            return Err(format!("invalid clientAuthType: {name}, CAFiles is required"));
        }
        option.client_auth = kind;
    }
    option.sni_strict = spec.sni_strict;
    if let Some(alpn) = &spec.alpn_protocols {
        option.alpn_protocols = alpn.iter().filter(|p| *p != ACME_TLS_ALPN).cloned().collect();
    }
    option.disable_session_tickets = spec.disable_session_tickets;
    Ok(())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
