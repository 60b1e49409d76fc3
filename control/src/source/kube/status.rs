//! Writes `status.loadBalancer.ingress` of the Ingresses the Ingress provider handles, from
//! `--providers.kubernetesIngress.ingressEndpoint.{ip,hostname,publishedService}` (Traefik's
//! behaviour: without `ingressEndpoint` nothing is written). Each Ingress is patched when it is
//! first handled and whenever the value changes; the patch is a merge patch of the status
//! subresource.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service as CoreService;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use tokio::sync::mpsc;

use crate::store::ObjectStore;
use crate::translate::{ingress, TranslateOptions};

/// `(ip, hostname)` pairs, as `status.loadBalancer.ingress` lists them.
pub type LoadBalancer = Vec<(String, String)>;

/// Sends status patches from a background task.
#[derive(Debug)]
pub struct StatusWriter {
    options: TranslateOptions,
    tx: mpsc::UnboundedSender<BTreeSet<(String, String)>>,
}

impl StatusWriter {
    /// Starts the task.
    pub fn spawn(client: kube::Client, options: TranslateOptions) -> StatusWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<BTreeSet<(String, String)>>();
        let config = options.ingress.clone();
        tokio::spawn(async move {
            let mut written: BTreeMap<(String, String), LoadBalancer> = BTreeMap::new();
            let resource = ApiResource {
                group: "networking.k8s.io".into(),
                version: "v1".into(),
                api_version: "networking.k8s.io/v1".into(),
                kind: "Ingress".into(),
                plural: "ingresses".into(),
            };
            while let Some(mut handled) = rx.recv().await {
                while let Ok(newer) = rx.try_recv() {
                    handled = newer;
                }
                let value =
                    match (ingress::status_from_endpoint(&config), ingress::published_service(&config)) {
                        (Some(Ok(v)), _) => v,
                        (_, Some(Ok((ns, name)))) => match published(&client, &ns, &name).await {
                            Some(v) => v,
                            None => continue,
                        },
                        (Some(Err(e)), _) | (_, Some(Err(e))) => {
                            tracing::error!("cannot write Ingress status: {e}");
                            continue;
                        }
                        (None, None) => continue,
                    };
                written.retain(|k, _| handled.contains(k));
                for key in handled {
                    if written.get(&key) == Some(&value) {
                        continue;
                    }
                    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &key.0, &resource);
                    let patch = Patch::Merge(body(&value));
                    match api.patch_status(&key.1, &PatchParams::default(), &patch).await {
                        Ok(_) => {
                            written.insert(key, value.clone());
                        }
                        Err(e) => tracing::warn!(
                            kind = "Ingress",
                            namespace = key.0,
                            name = key.1,
                            "cannot update the status: {e}"
                        ),
                    }
                }
            }
        });
        StatusWriter { options, tx }
    }

    /// Writes the status of every Ingress `store` holds that the provider handles.
    pub fn update(&self, store: &ObjectStore) {
        let handled = ingress::handled(store, &self.options)
            .map(|i| (i.metadata.namespace().to_string(), i.metadata.name.clone()))
            .collect();
        let _ = self.tx.send(handled);
    }
}

/// The load balancer addresses of the published Service.
async fn published(client: &kube::Client, namespace: &str, name: &str) -> Option<LoadBalancer> {
    let api: Api<CoreService> = Api::namespaced(client.clone(), namespace);
    match api.get(name).await {
        Ok(svc) => Some(
            svc.status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress)
                .unwrap_or_default()
                .into_iter()
                .map(|i| (i.ip.unwrap_or_default(), i.hostname.unwrap_or_default()))
                .collect(),
        ),
        Err(e) => {
            tracing::error!(namespace, name, "cannot read the published service: {e}");
            None
        }
    }
}

/// The merge patch body for `value`.
pub fn body(value: &LoadBalancer) -> serde_json::Value {
    let ingress: Vec<serde_json::Value> = value
        .iter()
        .map(|(ip, hostname)| {
            let mut m = serde_json::Map::new();
            if !ip.is_empty() {
                m.insert("ip".into(), ip.clone().into());
            }
            if !hostname.is_empty() {
                m.insert("hostname".into(), hostname.clone().into());
            }
            serde_json::Value::Object(m)
        })
        .collect();
    serde_json::json!({ "status": { "loadBalancer": { "ingress": ingress } } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_bodies() {
        let cases = [
            (vec![("1.2.3.4".to_string(), String::new())], r#"[{"ip":"1.2.3.4"}]"#),
            (vec![(String::new(), "lb.example".to_string())], r#"[{"hostname":"lb.example"}]"#),
            (vec![("1.2.3.4".into(), "lb".into())], r#"[{"hostname":"lb","ip":"1.2.3.4"}]"#),
            (vec![], "[]"),
        ];
        for (value, want) in cases {
            let b = body(&value);
            assert_eq!(b["status"]["loadBalancer"]["ingress"].to_string(), want);
        }
    }
}
