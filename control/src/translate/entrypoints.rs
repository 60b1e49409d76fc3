//! Routers Traefik derives from entrypoint options. `http.redirections.entryPoint`: a router on
//! the entrypoint matching every host (``HostRegexp(`^.+$`)``) that redirects with a
//! RedirectScheme middleware to the target entrypoint's port, served by `noop@internal`.
//! `http.tls`: every router on the entrypoint becomes a TLS router with the entrypoint's TLS
//! option (Traefik's entrypoint "model"; a router on several entrypoints is split per
//! entrypoint as `<ep>-<name>`).

use std::collections::BTreeMap;
use std::sync::Arc;

use weir_proto::middleware::{Middleware, MiddlewareKind, RedirectScheme};
use weir_proto::snapshot::{Router, Service, ServiceKind};
use weir_proto::tls::DEFAULT_TLS_OPTION;

use super::traefikservice::NOOP;
use super::{names, TranslateOptions, Translation};
use crate::config::EntryPointHttp;
use crate::status::{Problem, Severity};

/// Traefik's rule for the redirection router: every request that names a host.
const REDIRECT_RULE: &str = "HostRegexp(`^.+$`)";

/// What translation knows of an entrypoint besides its name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPointInfo {
    /// Port of its address.
    pub port: u16,
    /// `http.*` options.
    pub http: EntryPointHttp,
}

/// Adds the redirection router and middleware of every entrypoint that has one.
pub fn redirections(options: &TranslateOptions, out: &mut Translation) {
    for (name, info) in &options.entrypoint_http {
        let Some(redirect) = &info.http.redirection else { continue };
        // Traefik: `to` is an entrypoint name, or `:port`.
        let port = match redirect
            .to
            .strip_prefix(':')
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(p) => p.to_string(),
            None => match options.entrypoint_http.get(&redirect.to) {
                Some(target) => target.port.to_string(),
                None => {
                    out.problems.push(Problem::object(
                        Severity::Error,
                        "EntryPoint",
                        "",
                        name,
                        format!(
                            "unable to create redirection: 'to' entry point field references a \
                             non-existing entry point: {}",
                            redirect.to
                        ),
                    ));
                    continue;
                }
            },
        };
        let base = names::normalize(&format!("{name}-to-{}", redirect.to));
        let router_name = format!("{base}@internal");
        let middleware_name = format!("redirect-{base}@internal");
        let expr = match weir_proto::rule::parse(REDIRECT_RULE) {
            Ok(e) => e,
            Err(e) => {
                // The rule is a constant; this would be a parser regression.
                out.problems.push(Problem::object(Severity::Error, "EntryPoint", "", name, e.to_string()));
                continue;
            }
        };
        out.middlewares.insert(
            middleware_name.clone(),
            Arc::new(Middleware {
                name: middleware_name.clone(),
                kind: MiddlewareKind::RedirectScheme(RedirectScheme {
                    scheme: redirect.scheme.clone(),
                    port,
                    permanent: redirect.permanent,
                }),
            }),
        );
        out.services
            .entry(NOOP.to_string())
            .or_insert_with(|| Arc::new(Service { name: NOOP.into(), kind: ServiceKind::Noop }));
        out.routers.insert(
            router_name.clone(),
            Arc::new(Router {
                name: router_name,
                entrypoints: vec![name.clone()],
                rule: REDIRECT_RULE.into(),
                expr,
                priority: redirect.priority,
                service: NOOP.into(),
                tls: false,
                middlewares: vec![middleware_name],
            }),
        );
    }
}

/// Applies `http.tls` of the entrypoints to their cleartext routers; returns the routers made
/// TLS with the option each uses.
pub fn tls_models(
    options: &TranslateOptions,
    routers: &mut BTreeMap<String, Arc<Router>>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let models: BTreeMap<&str, &crate::config::EntryPointTls> = options
        .entrypoint_http
        .iter()
        .filter_map(|(n, i)| i.http.tls.as_ref().map(|t| (n.as_str(), t)))
        .collect();
    if models.is_empty() {
        return Vec::new();
    }
    for (ep, tls) in &models {
        if let Some(resolver) = &tls.cert_resolver {
            problems.push(Problem::object(
                Severity::Warning,
                "EntryPoint",
                "",
                ep,
                format!(
                    "http.tls.certResolver `{resolver}`: ACME is not supported; serving the matching or \
                     default certificate"
                ),
            ));
        }
    }
    let option_of = |ep: &str| -> String {
        match models.get(ep).and_then(|t| t.options.as_deref()) {
            None => DEFAULT_TLS_OPTION.into(),
            // A CRD TLSOption `<ns>-<name>` written with its provider suffix.
            Some(o) => o.strip_suffix("@kubernetescrd").unwrap_or(o).to_string(),
        }
    };
    let mut made = Vec::new();
    let names: Vec<String> = routers.keys().cloned().collect();
    for name in names {
        let Some(router) = routers.get(&name) else { continue };
        if router.tls || !router.entrypoints.iter().any(|e| models.contains_key(e.as_str())) {
            continue;
        }
        if router.entrypoints.len() == 1 {
            let ep = router.entrypoints[0].clone();
            if let Some(r) = routers.get_mut(&name) {
                Arc::make_mut(r).tls = true;
            }
            made.push((name, option_of(&ep)));
            continue;
        }
        // Traefik: one copy per entrypoint with a model, named `<ep>-<name>`; the original
        // keeps the other entrypoints.
        let original = Router::clone(router);
        let (with, without): (Vec<String>, Vec<String>) =
            original.entrypoints.iter().cloned().partition(|e| models.contains_key(e.as_str()));
        for ep in with {
            let mut copy = original.clone();
            copy.name = format!("{ep}-{name}");
            copy.entrypoints = vec![ep.clone()];
            copy.tls = true;
            made.push((copy.name.clone(), option_of(&ep)));
            routers.insert(copy.name.clone(), Arc::new(copy));
        }
        if without.is_empty() {
            routers.remove(&name);
        } else if let Some(r) = routers.get_mut(&name) {
            Arc::make_mut(r).entrypoints = without;
        }
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EntryPointTls, Redirection};

    fn options(web: EntryPointHttp, websecure: EntryPointHttp) -> TranslateOptions {
        let mut entrypoint_http = BTreeMap::new();
        entrypoint_http.insert("web".to_string(), EntryPointInfo { port: 8000, http: web });
        entrypoint_http.insert("websecure".to_string(), EntryPointInfo { port: 8443, http: websecure });
        TranslateOptions { entrypoint_http, ..Default::default() }
    }

    fn redirect(to: &str, permanent: bool) -> EntryPointHttp {
        EntryPointHttp {
            redirection: Some(Redirection { to: to.into(), scheme: "https".into(), permanent, priority: 7 }),
            ..Default::default()
        }
    }

    #[test]
    fn redirection_router_and_middleware() {
        let cases = [
            ("to an entrypoint", "websecure", Some(("web-to-websecure@internal", "8443"))),
            ("to a port", ":443", Some(("web-to-443@internal", "443"))),
            ("to nothing known", "nope", None),
        ];
        for (name, to, want) in cases {
            let mut out = Translation::default();
            redirections(&options(redirect(to, false), EntryPointHttp::default()), &mut out);
            match want {
                Some((router, port)) => {
                    let r =
                        out.routers.get(router).unwrap_or_else(|| panic!("case {name}: {:?}", out.routers));
                    assert_eq!(
                        (r.entrypoints.as_slice(), r.priority, r.service.as_str()),
                        (&["web".to_string()][..], 7, NOOP)
                    );
                    assert_eq!(r.rule, REDIRECT_RULE);
                    let m = &out.middlewares[&r.middlewares[0]];
                    assert_eq!(
                        m.kind,
                        MiddlewareKind::RedirectScheme(RedirectScheme {
                            scheme: "https".into(),
                            port: port.into(),
                            permanent: false
                        }),
                        "case {name}"
                    );
                    assert!(out.services.contains_key(NOOP), "case {name}");
                }
                None => {
                    assert!(out.routers.is_empty(), "case {name}");
                    assert!(
                        out.problems[0].message.contains("non-existing entry point: nope"),
                        "case {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn entrypoint_tls_makes_its_routers_tls() {
        let tls = EntryPointHttp {
            tls: Some(EntryPointTls {
                options: Some("apps-strict@kubernetescrd".into()),
                cert_resolver: None,
            }),
            ..Default::default()
        };
        let options = options(EntryPointHttp::default(), tls);
        let rule = "Host(`a.test`)";
        let router = |name: &str, eps: &[&str]| Router {
            name: name.into(),
            entrypoints: eps.iter().map(|e| e.to_string()).collect(),
            rule: rule.into(),
            expr: weir_proto::rule::parse(rule).expect("rule"),
            priority: 1,
            service: "s".into(),
            tls: false,
            middlewares: vec![],
        };
        let mut routers = BTreeMap::new();
        routers.insert("only".to_string(), Arc::new(router("only", &["websecure"])));
        routers.insert("both".to_string(), Arc::new(router("both", &["web", "websecure"])));
        routers.insert("plain".to_string(), Arc::new(router("plain", &["web"])));
        let made = tls_models(&options, &mut routers, &mut Vec::new());
        assert_eq!(
            made,
            [
                ("websecure-both".to_string(), "apps-strict".to_string()),
                ("only".into(), "apps-strict".into())
            ]
        );
        let tls: Vec<(&str, bool, Vec<String>)> =
            routers.values().map(|r| (r.name.as_str(), r.tls, r.entrypoints.clone())).collect();
        assert_eq!(
            tls,
            [
                ("both", false, vec!["web".to_string()]),
                ("only", true, vec!["websecure".to_string()]),
                ("plain", false, vec!["web".to_string()]),
                ("websecure-both", true, vec!["websecure".to_string()]),
            ]
        );
    }
}
