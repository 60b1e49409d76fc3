//! `--providers.kubernetesIngress.*`: the options of Traefik's Kubernetes Ingress provider
//! (provider name `kubernetes`), and the Kubernetes label selector it filters Ingresses with.

use std::collections::BTreeMap;

use super::value;

/// Options of the Kubernetes Ingress provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngressProviderConfig {
    /// `--providers.kubernetesIngress` (or any of its options) was given.
    pub enabled: bool,
    /// `--providers.kubernetesIngress=false` was given: Ingresses are never read.
    pub disabled: bool,
    /// `ingressClass`: the IngressClass name / `kubernetes.io/ingress.class` value handled.
    pub ingress_class: String,
    /// `allowEmptyServices`.
    pub allow_empty_services: bool,
    /// `allowExternalNameServices`.
    pub allow_external_name_services: bool,
    /// `nativeLBByDefault`.
    pub native_lb_by_default: bool,
    /// `disableIngressClassLookup` (deprecated) or `disableClusterScopeResources`: IngressClass
    /// objects are not read, so Ingresses naming a class are never handled.
    pub disable_ingress_class_lookup: bool,
    /// `disableClusterScopeResources` (also disables node lookups: `nodePortLB`).
    pub disable_cluster_scope_resources: bool,
    /// `strictPrefixMatching` (Traefik 3.4+): `Prefix` paths match whole path elements.
    pub strict_prefix_matching: bool,
    /// `labelSelector`: only Ingresses whose labels match.
    pub label_selector: LabelSelector,
    /// `namespaces`: only Ingresses of these namespaces (empty: all).
    pub namespaces: Vec<String>,
    /// `ingressEndpoint.*`: what is written to the status of handled Ingresses.
    pub ingress_endpoint: Option<IngressEndpoint>,
}

/// `ingressEndpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngressEndpoint {
    /// `ingressEndpoint.ip`.
    pub ip: String,
    /// `ingressEndpoint.hostname`.
    pub hostname: String,
    /// `ingressEndpoint.publishedService` (`namespace/name`).
    pub published_service: String,
}

/// Applies one `providers.kubernetesingress[.option]` key (lower case); `Ok(false)` when the key
/// is not one of this provider's.
pub fn set(config: &mut IngressProviderConfig, lower_key: &str, value: &str) -> Result<bool, String> {
    let Some(rest) = lower_key.strip_prefix("providers.kubernetesingress") else {
        return Ok(false);
    };
    let option = match rest {
        "" => {
            let on = value::parse_bool(value)?;
            config.enabled = on;
            config.disabled = !on;
            return Ok(true);
        }
        r => match r.strip_prefix('.') {
            Some(o) => o,
            None => return Ok(false),
        },
    };
    match option {
        "ingressclass" => config.ingress_class = value.to_string(),
        "allowemptyservices" => config.allow_empty_services = value::parse_bool(value)?,
        "allowexternalnameservices" => config.allow_external_name_services = value::parse_bool(value)?,
        "nativelbbydefault" => config.native_lb_by_default = value::parse_bool(value)?,
        "disableingressclasslookup" => config.disable_ingress_class_lookup = value::parse_bool(value)?,
        "disableclusterscoperesources" => config.disable_cluster_scope_resources = value::parse_bool(value)?,
        "strictprefixmatching" => config.strict_prefix_matching = value::parse_bool(value)?,
        "labelselector" => config.label_selector = LabelSelector::parse(value)?,
        "namespaces" => {
            config.namespaces =
                value.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect()
        }
        "ingressendpoint" => {
            // A bare `--providers.kubernetesIngress.ingressEndpoint` enables the section.
            value::parse_bool(value)?;
            endpoint(config);
        }
        "ingressendpoint.ip" => endpoint(config).ip = value.to_string(),
        "ingressendpoint.hostname" => endpoint(config).hostname = value.to_string(),
        "ingressendpoint.publishedservice" => {
            if !value.is_empty() && value.split('/').count() != 2 {
                return Err("expected namespace/name".into());
            }
            endpoint(config).published_service = value.to_string()
        }
        // Connection options are the Kubernetes watcher's; throttling has nothing to coalesce
        // in a manifests directory.
        "endpoint" | "token" | "certauthfilepath" | "throttleduration" => {}
        _ => return Ok(false),
    }
    if !config.disabled {
        config.enabled = true;
    }
    Ok(true)
}

fn endpoint(config: &mut IngressProviderConfig) -> &mut IngressEndpoint {
    config.ingress_endpoint.get_or_insert_with(IngressEndpoint::default)
}

/// A Kubernetes label selector (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`), as
/// `k8s.io/apimachinery/pkg/labels.Parse` reads it. Empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// The selector as written.
    pub source: String,
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl LabelSelector {
    /// Parses a selector; the error says what is wrong.
    pub fn parse(source: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for term in split_terms(source)? {
            let term = term.trim();
            if term.is_empty() {
                if source.trim().is_empty() {
                    continue;
                }
                return Err(format!("invalid label selector {source:?}: empty requirement"));
            }
            requirements.push(
                parse_requirement(term).map_err(|e| format!("invalid label selector {source:?}: {e}"))?,
            );
        }
        Ok(LabelSelector { source: source.to_string(), requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// Splits on the commas that are not inside `( … )`.
fn split_terms(source: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in source.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or_else(|| format!("unbalanced ')' in {source:?}"))?,
            ',' if depth == 0 => {
                out.push(&source[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '(' in {source:?}"));
    }
    out.push(&source[start..]);
    Ok(out)
}

fn parse_requirement(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(label_key(key.trim())?));
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = term.split_once(op) {
            let (k, v) = (label_key(k.trim())?, label_value(v.trim())?);
            return Ok(if neg { Requirement::NotEquals(k, v) } else { Requirement::Equals(k, v) });
        }
    }
    if let Some(open) = term.find('(') {
        let head = term[..open].trim();
        let list = term[open + 1..].strip_suffix(')').ok_or("a set must end with ')'")?;
        let values = list.split(',').map(|v| label_value(v.trim())).collect::<Result<Vec<_>, _>>()?;
        let mut words = head.split_whitespace();
        let (key, op) = (words.next().ok_or("missing key")?, words.next().ok_or("missing operator")?);
        if words.next().is_some() {
            return Err(format!("unexpected words in {term:?}"));
        }
        let key = label_key(key)?;
        return match op {
            "in" => Ok(Requirement::In(key, values)),
            "notin" => Ok(Requirement::NotIn(key, values)),
            other => Err(format!("unknown set operator {other:?} (expected in or notin)")),
        };
    }
    Ok(Requirement::Exists(label_key(term)?))
}

fn label_key(key: &str) -> Result<String, String> {
    let name = key.rsplit_once('/').map_or(key, |(_, n)| n);
    if name.is_empty()
        || name.len() > 63
        || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(key.to_string())
}

fn label_value(v: &str) -> Result<String, String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()));
    if !ok {
        return Err(format!("invalid label value {v:?}"));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selectors() {
        type Case = (&'static str, &'static [(&'static str, &'static str)], bool);
        let cases: [Case; 12] = [
            ("", &[], true),
            ("app=web", &[("app", "web")], true),
            ("app=web", &[("app", "api")], false),
            ("app==web", &[("app", "web")], true),
            ("app!=web", &[], true),
            ("app!=web", &[("app", "web")], false),
            ("app", &[("app", "")], true),
            ("!app", &[("app", "x")], false),
            ("env in (prod, staging)", &[("env", "staging")], true),
            ("env notin (prod)", &[("env", "prod")], false),
            ("app=web,tier", &[("app", "web")], false),
            ("example.com/team=a, env in (x,y)", &[("example.com/team", "a"), ("env", "y")], true),
        ];
        for (selector, l, want) in cases {
            let s = LabelSelector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
            assert_eq!(s.matches(&labels(l)), want, "{selector} on {l:?}");
        }
    }

    #[test]
    fn bad_selectors() {
        for bad in ["app=(", "a b", "env in (x", "=x", "app=web,", "-x=y", "k=v v"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        let mut c = IngressProviderConfig::default();
        let cases = [
            ("providers.kubernetesingress", "true"),
            ("providers.kubernetesingress.ingressclass", "traefik-internal"),
            ("providers.kubernetesingress.allowemptyservices", "true"),
            ("providers.kubernetesingress.allowexternalnameservices", "true"),
            ("providers.kubernetesingress.nativelbbydefault", "true"),
            ("providers.kubernetesingress.strictprefixmatching", "true"),
            ("providers.kubernetesingress.disableingressclasslookup", "true"),
            ("providers.kubernetesingress.labelselector", "app=web"),
            ("providers.kubernetesingress.namespaces", "a, b"),
            ("providers.kubernetesingress.ingressendpoint.ip", "1.2.3.4"),
            ("providers.kubernetesingress.ingressendpoint.publishedservice", "kube-system/traefik"),
        ];
        for (k, v) in cases {
            assert_eq!(set(&mut c, k, v), Ok(true), "{k}");
        }
        assert!(c.enabled && c.allow_empty_services && c.allow_external_name_services);
        assert!(c.native_lb_by_default && c.strict_prefix_matching && c.disable_ingress_class_lookup);
        assert_eq!(c.ingress_class, "traefik-internal");
        assert_eq!(c.namespaces, ["a", "b"]);
        assert_eq!(c.label_selector.source, "app=web");
        let ep = c.ingress_endpoint.clone().expect("endpoint");
        assert_eq!((ep.ip.as_str(), ep.published_service.as_str()), ("1.2.3.4", "kube-system/traefik"));
        assert_eq!(set(&mut c, "providers.kubernetescrd.ingressclass", "x"), Ok(false));
        assert_eq!(set(&mut c, "providers.kubernetesingressx", "x"), Ok(false));
        assert_eq!(set(&mut c, "providers.kubernetesingress.bogus", "x"), Ok(false));
        assert!(set(&mut c, "providers.kubernetesingress.allowemptyservices", "yes").is_err());
        assert!(set(&mut c, "providers.kubernetesingress.ingressendpoint.publishedservice", "x").is_err());
        assert!(set(&mut c, "providers.kubernetesingress.labelselector", "a b").is_err());
        // `=false` turns the provider off even when options follow.
        let mut off = IngressProviderConfig::default();
        set(&mut off, "providers.kubernetesingress", "false").unwrap();
        set(&mut off, "providers.kubernetesingress.ingressclass", "x").unwrap();
        assert!(!off.enabled && off.disabled);
    }
}
