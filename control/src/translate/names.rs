//! Names of generated routers and services, built exactly as Traefik's CRD provider builds
//! them, because they are observable (API, metrics, access logs) and users grep for them.

use sha2::{Digest, Sha256};

use crate::objects::IntOrString;

/// Traefik's `provider.Normalize`: split on every char that is not a letter or a digit and
/// join the non-empty pieces with `-` (so `test.route` → `test-route`, and runs collapse).
pub fn normalize(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-")
}

/// Router name: `<ns>-<ingressRoute>-<hex of the first 10 bytes of sha256(match)>`, normalized.
pub fn router_name(namespace: &str, ingress_route: &str, rule: &str) -> String {
    let digest = Sha256::digest(rule.as_bytes());
    normalize(&format!("{namespace}-{ingress_route}-{}", hex::encode(&digest[..10])))
}

/// Service name: `<ns>-<service>-<port as written>`, normalized.
pub fn service_name(namespace: &str, service: &str, port: &IntOrString) -> String {
    normalize(&format!("{namespace}-{service}-{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_names() {
        let cases = [
            // The example from Traefik's own CRD provider tests.
            (
                "default",
                "test.route",
                "Host(`foo.com`) && PathPrefix(`/bar`)",
                "default-test-route-6b204d94623b3df4370c",
            ),
            ("default", "whoami", "Host(`foo.com`)", "default-whoami-6f97418635c7e18853da"),
            ("kube_system", "a--b", "Host(`foo.com`)", "kube-system-a-b-6f97418635c7e18853da"),
        ];
        for (ns, ir, rule, want) in cases {
            assert_eq!(router_name(ns, ir, rule), want, "{ns}/{ir} {rule}");
        }
    }

    #[test]
    fn service_names() {
        let cases = [
            ("default", "whoami", IntOrString::Int(80), "default-whoami-80"),
            ("default", "whoami", IntOrString::String("http".into()), "default-whoami-http"),
            ("apps", "my.svc", IntOrString::String("web_ui".into()), "apps-my-svc-web-ui"),
        ];
        for (ns, svc, port, want) in cases {
            assert_eq!(service_name(ns, svc, &port), want);
        }
    }
}
