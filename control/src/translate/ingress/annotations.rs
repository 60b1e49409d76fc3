//! The `traefik.ingress.kubernetes.io/*` annotations, decoded as Traefik's label decoder does:
//! keys are case-insensitive, lists are comma-separated, `x.N.y` is element N of list `x`, a
//! `router.*` key the router has no field for (or a value that does not parse) is an error that
//! skips the whole Ingress (`router.*` on an Ingress) or fails the Service (`service.*` on a
//! Service). Other keys under the prefix are ignored.

use std::collections::BTreeMap;

use crate::objects::Cookie;

/// Prefix of every Traefik annotation.
pub const PREFIX: &str = "traefik.ingress.kubernetes.io/";

/// `router.*` annotations of an Ingress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterAnnotations {
    /// `router.pathmatcher` (checked where it is used).
    pub path_matcher: Option<String>,
    /// `router.entrypoints`.
    pub entrypoints: Vec<String>,
    /// `router.middlewares` (qualified names, `<ns>-<name>@kubernetescrd`).
    pub middlewares: Vec<String>,
    /// `router.priority` (0: the rule's length).
    pub priority: i64,
    /// `router.rulesyntax`.
    pub rule_syntax: Option<String>,
    /// `router.tls` or any `router.tls.*`.
    pub tls: Option<RouterTls>,
}

/// `router.tls.*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterTls {
    /// `router.tls.certresolver`.
    pub cert_resolver: Option<String>,
    /// `router.tls.domains.N.main` / `.sans`.
    pub domains: Vec<(String, Vec<String>)>,
    /// `router.tls.options` (qualified name).
    pub options: Option<String>,
}

/// `service.*` annotations of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceAnnotations {
    /// `service.serversscheme`.
    pub servers_scheme: Option<String>,
    /// `service.serverstransport`.
    pub servers_transport: Option<String>,
    /// `service.passhostheader` (default true).
    pub pass_host_header: Option<bool>,
    /// `service.middlewares`.
    pub middlewares: Vec<String>,
    /// `service.sticky.cookie` and its options.
    pub sticky_cookie: Option<Cookie>,
    /// `service.nativelb`.
    pub native_lb: Option<bool>,
    /// `service.nodeportlb`.
    pub node_port_lb: bool,
}

/// The annotations under [`PREFIX`] whose key starts with `section.`, by lower-case key
/// without the prefix.
fn section<'a>(annotations: &'a BTreeMap<String, String>, section: &str) -> Vec<(String, &'a str)> {
    annotations
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(PREFIX)?.to_ascii_lowercase();
            (key == section || key.starts_with(&format!("{section}."))).then_some((key, v.as_str()))
        })
        .collect()
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Result<bool, ()> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(()),
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn boolean(key: &str, v: &str) -> Result<bool, String> {
    parse_bool(v.trim()).map_err(|_| format!("annotation {PREFIX}{key}: invalid boolean {v:?}"))
}

fn unknown(key: &str) -> String {
    format!("annotation {PREFIX}{key}: field not found")
}

/// Decodes the `router.*` annotations; `None` when there is none.
pub fn router(annotations: &BTreeMap<String, String>) -> Result<Option<RouterAnnotations>, String> {
    let entries = section(annotations, "router");
    if entries.is_empty() {
        return Ok(None);
    }
    let mut r = RouterAnnotations::default();
    let mut domains: BTreeMap<usize, (String, Vec<String>)> = BTreeMap::new();
    for (key, v) in entries {
        let field = key.strip_prefix("router.").unwrap_or("");
        match field {
            "pathmatcher" => r.path_matcher = Some(v.trim().to_string()),
            "entrypoints" => r.entrypoints = list(v),
            "middlewares" => r.middlewares = list(v),
            "priority" => {
                r.priority = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("annotation {PREFIX}{key}: invalid integer {v:?}"))?
            }
            "rulesyntax" => r.rule_syntax = Some(v.trim().to_string()),
            "tls" => {
                if boolean(&key, v)? {
                    r.tls.get_or_insert_with(RouterTls::default);
                }
            }
            "tls.certresolver" => {
                r.tls.get_or_insert_with(RouterTls::default).cert_resolver = Some(v.to_string())
            }
            "tls.options" => {
                r.tls.get_or_insert_with(RouterTls::default).options = Some(v.trim().to_string())
            }
            "observability"
            | "observability.accesslogs"
            | "observability.metrics"
            | "observability.tracing" => {
                if field != "observability" {
                    boolean(&key, v)?;
                }
            }
            "observability.traceverbosity" => match v.trim() {
                "minimal" | "detailed" => {}
                other => return Err(format!("annotation {PREFIX}{key}: invalid verbosity {other:?}")),
            },
            f => {
                let Some(rest) = f.strip_prefix("tls.domains.") else { return Err(unknown(&key)) };
                let (index, part) = rest.split_once('.').ok_or_else(|| unknown(&key))?;
                let index: usize = index.parse().map_err(|_| unknown(&key))?;
                if index > 1000 {
                    return Err(format!("annotation {PREFIX}{key}: index too large"));
                }
                let slot = domains.entry(index).or_default();
                match part {
                    "main" => slot.0 = v.trim().to_string(),
                    "sans" => slot.1 = list(v),
                    _ => return Err(unknown(&key)),
                }
                r.tls.get_or_insert_with(RouterTls::default);
            }
        }
    }
    if let Some(tls) = &mut r.tls {
        tls.domains = domains.into_values().collect();
    }
    Ok(Some(r))
}

/// Decodes the `service.*` annotations; `None` when there is none.
pub fn service(annotations: &BTreeMap<String, String>) -> Result<Option<ServiceAnnotations>, String> {
    let entries = section(annotations, "service");
    if entries.is_empty() {
        return Ok(None);
    }
    let mut s = ServiceAnnotations::default();
    let mut sticky_enabled = None;
    let mut cookie = Cookie::default();
    let mut cookie_fields = false;
    for (key, v) in entries {
        let field = key.strip_prefix("service.").unwrap_or("");
        match field {
            "serversscheme" => s.servers_scheme = Some(v.trim().to_string()).filter(|v| !v.is_empty()),
            "serverstransport" => s.servers_transport = Some(v.trim().to_string()).filter(|v| !v.is_empty()),
            "passhostheader" => s.pass_host_header = Some(boolean(&key, v)?),
            "middlewares" => s.middlewares = list(v),
            "nativelb" => s.native_lb = Some(boolean(&key, v)?),
            "nodeportlb" => s.node_port_lb = boolean(&key, v)?,
            "sticky" | "sticky.cookie" => sticky_enabled = Some(boolean(&key, v)?),
            f => {
                let Some(option) = f.strip_prefix("sticky.cookie.") else { return Err(unknown(&key)) };
                cookie_fields = true;
                match option {
                    "name" => cookie.name = Some(v.trim().to_string()),
                    "secure" => cookie.secure = boolean(&key, v)?,
                    "httponly" => cookie.http_only = boolean(&key, v)?,
                    "samesite" => cookie.same_site = Some(v.trim().to_string()),
                    "maxage" => {
                        cookie.max_age = Some(
                            v.trim()
                                .parse()
                                .map_err(|_| format!("annotation {PREFIX}{key}: invalid integer {v:?}"))?,
                        )
                    }
                    "path" => cookie.path = Some(v.to_string()),
                    "domain" => cookie.domain = Some(v.trim().to_string()),
                    _ => return Err(unknown(&key)),
                }
            }
        }
    }
    // Traefik: `sticky.cookie: "true"` or any `sticky.cookie.*` option creates the cookie;
    // `sticky.cookie: "false"` alone leaves none.
    if sticky_enabled == Some(true) || (cookie_fields && sticky_enabled != Some(false)) {
        s.sticky_cookie = Some(cookie);
    }
    Ok(Some(s))
}
