//! Building the kube-rs client the way Traefik's Kubernetes providers pick their connection:
//! inside a cluster (`KUBERNETES_SERVICE_HOST`/`_PORT` set) the service account, with
//! `endpoint` overriding the address; otherwise an explicit `endpoint` (+ `token`,
//! `certAuthFilePath`); otherwise `$KUBECONFIG`.

use anyhow::Context as _;
use kube::config::{Config, KubeConfigOptions};

use crate::config::KubeConnection;

/// Where the client connects, as decided from the environment and the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// In-cluster service account (endpoint overrides the address when given).
    InCluster,
    /// The `endpoint` option.
    Endpoint,
    /// `$KUBECONFIG`.
    Kubeconfig,
}

/// Decides the mode; the error says what is missing.
pub fn mode(conn: &KubeConnection, in_cluster: bool, kubeconfig: bool) -> Result<Mode, String> {
    if in_cluster {
        Ok(Mode::InCluster)
    } else if !conn.endpoint.is_empty() {
        Ok(Mode::Endpoint)
    } else if kubeconfig {
        Ok(Mode::Kubeconfig)
    } else {
        Err("endpoint missing for external cluster client (set --providers.kubernetesCRD.endpoint, \
             KUBECONFIG, or run inside a cluster)"
            .into())
    }
}

/// A client for `conn`.
pub async fn client(conn: &KubeConnection) -> anyhow::Result<kube::Client> {
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    let in_cluster = set("KUBERNETES_SERVICE_HOST") && set("KUBERNETES_SERVICE_PORT");
    let mut config = match mode(conn, in_cluster, set("KUBECONFIG")).map_err(anyhow::Error::msg)? {
        Mode::InCluster => {
            let mut c = Config::incluster().context("in-cluster Kubernetes configuration")?;
            if !conn.endpoint.is_empty() {
                c.cluster_url =
                    conn.endpoint.parse().with_context(|| format!("endpoint {:?}", conn.endpoint))?;
            }
            c
        }
        Mode::Endpoint => {
            Config::new(conn.endpoint.parse().with_context(|| format!("endpoint {:?}", conn.endpoint))?)
        }
        Mode::Kubeconfig => {
            Config::from_kubeconfig(&KubeConfigOptions::default()).await.context("KUBECONFIG")?
        }
    };
    if !conn.token.is_empty() {
        config.auth_info.token = Some(conn.token.clone().into());
    }
    if !conn.cert_auth_file_path.is_empty() {
        config.root_cert = None;
        config.root_cert_file = Some(conn.cert_auth_file_path.clone().into());
    }
    kube::Client::try_from(config).context("Kubernetes client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let with_endpoint = KubeConnection { endpoint: "http://127.0.0.1:1".into(), ..Default::default() };
        let none = KubeConnection::default();
        let cases = [
            (&with_endpoint, true, true, Ok(Mode::InCluster)),
            (&with_endpoint, false, true, Ok(Mode::Endpoint)),
            (&none, false, true, Ok(Mode::Kubeconfig)),
            (&none, true, false, Ok(Mode::InCluster)),
        ];
        for (conn, in_cluster, kubeconfig, want) in cases {
            assert_eq!(mode(conn, in_cluster, kubeconfig), want);
        }
        assert!(mode(&none, false, false).is_err());
    }
}
