//! The value Traefik's kubernetesIngress provider writes to `status.loadBalancer.ingress` of
//! every Ingress it handles (`updateIngressStatus`), computed from `ingressEndpoint` and, for
//! `publishedService`, from the published Service. Pure: the Kubernetes watcher reads the
//! Service and writes the status.

use crate::config::IngressProviderConfig;

/// One `status.loadBalancer.ingress` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadBalancerIngress {
    /// `ip`.
    pub ip: String,
    /// `hostname`.
    pub hostname: String,
    /// `ports`: (port, protocol).
    pub ports: Vec<(i32, String)>,
}

/// What `publishedService` needs from the published Service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishedService {
    /// `spec.type` (`ClusterIP` when empty).
    pub type_: String,
    /// `status.loadBalancer.ingress`; `None` when the Service has no load-balancer status yet.
    pub load_balancer: Option<Vec<LoadBalancerIngress>>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<String>,
    /// `spec.ports`: (port, nodePort, protocol).
    pub ports: Vec<(i32, i32, String)>,
    /// `spec.externalName`.
    pub external_name: String,
}

/// Where the status comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSource {
    /// Nothing configured: the provider leaves statuses alone.
    None,
    /// `ingressEndpoint.ip` / `.hostname`.
    Fixed(Vec<LoadBalancerIngress>),
    /// `ingressEndpoint.publishedService`: (namespace, name) of the Service to copy.
    Published(String, String),
}

/// The status source of the provider's configuration; an error for Traefik's invalid cases.
pub fn source(config: &IngressProviderConfig) -> Result<StatusSource, String> {
    let Some(ep) = &config.ingress_endpoint else { return Ok(StatusSource::None) };
    if ep.published_service.is_empty() {
        if ep.ip.is_empty() && ep.hostname.is_empty() {
            return Err("publishedService or ip or hostname must be defined".into());
        }
        return Ok(StatusSource::Fixed(vec![LoadBalancerIngress {
            ip: ep.ip.clone(),
            hostname: ep.hostname.clone(),
            ports: Vec::new(),
        }]));
    }
    match ep.published_service.split('/').collect::<Vec<_>>()[..] {
        [ns, name] => Ok(StatusSource::Published(ns.into(), name.into())),
        _ => Err(format!(
            "invalid publishedService format (expected 'namespace/service' format): {}",
            ep.published_service
        )),
    }
}

/// The status copied from the published Service; `Ok(None)` when there is nothing to write yet
/// (a LoadBalancer Service without status). `node_external_ips` are the Nodes' ExternalIPs
/// (NodePort Services), `None` when Nodes are not read.
pub fn from_published(
    svc: &PublishedService,
    node_external_ips: Option<&[String]>,
) -> Result<Option<Vec<LoadBalancerIngress>>, String> {
    let ports = |node: bool| -> Vec<(i32, String)> {
        svc.ports
            .iter()
            .map(|(port, node_port, proto)| (if node { *node_port } else { *port }, proto.clone()))
            .collect()
    };
    match svc.type_.as_str() {
        "LoadBalancer" => Ok(svc.load_balancer.clone()),
        "ClusterIP" | "" => Ok(Some(
            svc.external_ips
                .iter()
                .map(|ip| LoadBalancerIngress {
                    ip: ip.clone(),
                    hostname: String::new(),
                    ports: ports(false),
                })
                .collect(),
        )),
        "NodePort" => {
            let Some(ips) = node_external_ips else {
                return Err(
                    "node port service type is not supported when cluster scope resources lookup is disabled"
                        .into(),
                );
            };
            Ok(Some(
                ips.iter()
                    .map(|ip| LoadBalancerIngress {
                        ip: ip.clone(),
                        hostname: String::new(),
                        ports: ports(true),
                    })
                    .collect(),
            ))
        }
        "ExternalName" => Ok(Some(vec![LoadBalancerIngress {
            hostname: svc.external_name.clone(),
            ..LoadBalancerIngress::default()
        }])),
        other => Err(format!("unsupported service type: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IngressEndpoint;

    fn lb(ip: &str, ports: &[(i32, &str)]) -> LoadBalancerIngress {
        LoadBalancerIngress {
            ip: ip.into(),
            hostname: String::new(),
            ports: ports.iter().map(|(p, proto)| (*p, proto.to_string())).collect(),
        }
    }

    #[test]
    fn sources() {
        let with = |ip: &str, hostname: &str, published: &str| IngressProviderConfig {
            ingress_endpoint: Some(IngressEndpoint {
                ip: ip.into(),
                hostname: hostname.into(),
                published_service: published.into(),
            }),
            ..Default::default()
        };
        assert_eq!(source(&IngressProviderConfig::default()), Ok(StatusSource::None));
        assert_eq!(source(&with("1.2.3.4", "", "")), Ok(StatusSource::Fixed(vec![lb("1.2.3.4", &[])])));
        assert_eq!(
            source(&with("", "lb.example", "")),
            Ok(StatusSource::Fixed(vec![LoadBalancerIngress {
                hostname: "lb.example".into(),
                ..Default::default()
            }]))
        );
        // publishedService wins over ip/hostname.
        assert_eq!(
            source(&with("1.2.3.4", "", "kube-system/traefik")),
            Ok(StatusSource::Published("kube-system".into(), "traefik".into()))
        );
        assert!(source(&with("", "", "")).is_err());
        assert!(source(&with("", "", "a/b/c")).is_err());
    }

    #[test]
    fn published_services() {
        // Traefik's TestIngressEndpointPublishedService cases.
        let ports = vec![(9090, 30090, "TCP".to_string()), (9091, 30091, "TCP".to_string())];
        let want = Some(vec![
            lb("1.2.3.4", &[(9090, "TCP"), (9091, "TCP")]),
            lb("5.6.7.8", &[(9090, "TCP"), (9091, "TCP")]),
        ]);
        let cluster_ip = PublishedService {
            type_: "ClusterIP".into(),
            external_ips: vec!["1.2.3.4".into(), "5.6.7.8".into()],
            ports: ports.clone(),
            ..Default::default()
        };
        assert_eq!(from_published(&cluster_ip, None), Ok(want.clone()));
        let load_balancer = PublishedService {
            type_: "LoadBalancer".into(),
            load_balancer: want.clone(),
            ..Default::default()
        };
        assert_eq!(from_published(&load_balancer, None), Ok(want));
        let pending = PublishedService { type_: "LoadBalancer".into(), ..Default::default() };
        assert_eq!(from_published(&pending, None), Ok(None));
        let node_port = PublishedService { type_: "NodePort".into(), ports, ..Default::default() };
        let nodes = ["1.2.3.4".to_string()];
        assert_eq!(
            from_published(&node_port, Some(&nodes)),
            Ok(Some(vec![lb("1.2.3.4", &[(30090, "TCP"), (30091, "TCP")])]))
        );
        assert!(from_published(&node_port, None).is_err());
        let external = PublishedService {
            type_: "ExternalName".into(),
            external_name: "example.com".into(),
            ..Default::default()
        };
        assert_eq!(
            from_published(&external, None),
            Ok(Some(vec![LoadBalancerIngress { hostname: "example.com".into(), ..Default::default() }]))
        );
    }
}
