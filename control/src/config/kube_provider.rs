//! How weir reaches the Kubernetes API server: the connection and watch options of
//! `--providers.kubernetesCRD.*` and `--providers.kubernetesIngress.*` that the translation does
//! not need (`endpoint`, `token`, `certAuthFilePath`, `namespaces`, `labelSelector`,
//! `ingressClass`, `throttleDuration`, `disableClusterScopeResources`).

use std::time::Duration;

use super::{value, CrdProviderConfig};

/// Connection options of one Kubernetes provider, as Traefik names them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeConnection {
    /// `endpoint`: the API server URL (overrides the in-cluster address).
    pub endpoint: String,
    /// `token`: a bearer token.
    pub token: String,
    /// `certAuthFilePath`: the CA bundle that signs the API server's certificate.
    pub cert_auth_file_path: String,
    /// `throttleDuration`: rebuilds from this provider's events happen at most this often.
    pub throttle: Duration,
}

impl KubeConnection {
    /// Whether any connection option was given explicitly.
    pub fn explicit(&self) -> bool {
        !self.endpoint.is_empty() || !self.token.is_empty() || !self.cert_auth_file_path.is_empty()
    }
}

/// Options of the Kubernetes API watchers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeProvidersConfig {
    /// `--providers.kubernetesCRD.{endpoint,token,certAuthFilePath,throttleDuration}`.
    pub crd: KubeConnection,
    /// `--providers.kubernetesCRD.namespaces` (empty: all).
    pub crd_namespaces: Vec<String>,
    /// `--providers.kubernetesCRD.labelSelector`, applied to the Traefik kinds.
    pub crd_label_selector: String,
    /// `--providers.kubernetesCRD.ingressClass`: only Traefik objects whose
    /// `kubernetes.io/ingress.class` annotation equals it (empty: all).
    pub crd_ingress_class: String,
    /// `--providers.kubernetesCRD.disableClusterScopeResources`: Nodes are not watched and
    /// `nodePortLB` is refused (`nodes lookup is disabled`).
    pub crd_disable_cluster_scope_resources: bool,
    /// `--providers.kubernetesIngress.{endpoint,token,certAuthFilePath,throttleDuration}`.
    pub ingress: KubeConnection,
}

/// Applies one lower-case key. CRD keys are consumed (`Ok(true)`); the Ingress provider's
/// connection keys are recorded but `Ok(false)` is returned so that the Ingress provider's own
/// parser still sees them (it enables the provider). `Ok(false)` for every other key.
pub fn set(
    config: &mut KubeProvidersConfig,
    crd: &mut CrdProviderConfig,
    lower_key: &str,
    value: &str,
) -> Result<bool, String> {
    if let Some(option) = lower_key.strip_prefix("providers.kubernetesingress.") {
        connection(&mut config.ingress, option, value)?;
        return Ok(false);
    }
    let Some(option) = lower_key.strip_prefix("providers.kubernetescrd.") else {
        return Ok(false);
    };
    if connection(&mut config.crd, option, value)? {
        crd.enabled = true;
        return Ok(true);
    }
    match option {
        "namespaces" => {
            config.crd_namespaces =
                value.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect()
        }
        "labelselector" => {
            super::LabelSelector::parse(value)?;
            config.crd_label_selector = value.trim().to_string();
        }
        "ingressclass" => config.crd_ingress_class = value.to_string(),
        "disableclusterscoperesources" => {
            config.crd_disable_cluster_scope_resources = value::parse_bool(value)?
        }
        _ => return Ok(false),
    }
    crd.enabled = true;
    Ok(true)
}

/// Applies a connection option; `Ok(false)` when `option` is not one.
fn connection(conn: &mut KubeConnection, option: &str, value: &str) -> Result<bool, String> {
    match option {
        "endpoint" => conn.endpoint = value.trim().to_string(),
        "token" => conn.token = value.trim().to_string(),
        "certauthfilepath" => conn.cert_auth_file_path = value.trim().to_string(),
        "throttleduration" => conn.throttle = parse_duration(value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// A duration that may be zero (integer seconds or Go syntax).
fn parse_duration(s: &str) -> Result<Duration, String> {
    match crate::translate::duration::parse_str_nanos(s.trim()) {
        Some(ns) if ns >= 0 => Ok(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))),
        Some(_) => Err("must not be negative".into()),
        None => Err(format!("`{s}` is not a duration (seconds, or Go syntax such as 500ms)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let mut c = KubeProvidersConfig::default();
        let mut crd = CrdProviderConfig::default();
        let cases: [(&str, &str, Result<bool, ()>); 13] = [
            ("providers.kubernetescrd.endpoint", "http://127.0.0.1:1", Ok(true)),
            ("providers.kubernetescrd.token", "abc", Ok(true)),
            ("providers.kubernetescrd.certauthfilepath", "/ca.crt", Ok(true)),
            ("providers.kubernetescrd.throttleduration", "250ms", Ok(true)),
            ("providers.kubernetescrd.namespaces", "a, b,", Ok(true)),
            ("providers.kubernetescrd.labelselector", "app=web", Ok(true)),
            ("providers.kubernetescrd.ingressclass", "internal", Ok(true)),
            ("providers.kubernetescrd.disableclusterscoperesources", "true", Ok(true)),
            ("providers.kubernetescrd.allowcrossnamespace", "true", Ok(false)),
            ("providers.kubernetesingress.endpoint", "https://k:6443", Ok(false)),
            ("providers.kubernetesingress.throttleduration", "2", Ok(false)),
            ("providers.kubernetescrd.throttleduration", "soon", Err(())),
            ("providers.kubernetescrd.labelselector", "a b", Err(())),
        ];
        for (k, v, want) in cases {
            assert_eq!(set(&mut c, &mut crd, k, v).map_err(|_| ()), want, "{k}={v}");
        }
        assert!(crd.enabled);
        assert_eq!(c.crd.endpoint, "http://127.0.0.1:1");
        assert_eq!((c.crd.token.as_str(), c.crd.cert_auth_file_path.as_str()), ("abc", "/ca.crt"));
        assert_eq!(c.crd.throttle, Duration::from_millis(250));
        assert_eq!(c.crd_namespaces, ["a", "b"]);
        assert_eq!((c.crd_label_selector.as_str(), c.crd_ingress_class.as_str()), ("app=web", "internal"));
        assert!(c.crd_disable_cluster_scope_resources && c.crd.explicit());
        assert_eq!(c.ingress.endpoint, "https://k:6443");
        assert_eq!(c.ingress.throttle, Duration::from_secs(2));
        assert!(!KubeConnection::default().explicit());
    }
}
