//! ServersTransport → the snapshot's transports, named `<ns>-<name>` as Traefik names them.
//! A transport that cannot be built (missing CA secret, unsupported SPIFFE) is left out and
//! every load balancer naming it fails with the reason. CA bundles come from Secrets (keys
//! `tls.ca` or `ca.crt`), client certificates from TLS Secrets.

use weir_proto::snapshot::ServersTransport;

use super::{duration, names};
use crate::objects::{IntOrString, ServersTransport as ServersTransportObject};
use crate::status::{Problem, Severity};
use crate::store::ObjectStore;

const KIND: &str = "ServersTransport";

/// The transport whose generated name is `key`: `None` when there is none, else the built
/// transport or why it cannot be built.
pub fn by_key(store: &ObjectStore, key: &str) -> Option<Result<ServersTransport, String>> {
    store
        .servers_transports()
        .find(|st| names::normalize(&format!("{}-{}", st.metadata.namespace(), st.metadata.name)) == key)
        .map(|st| build(store, st))
}

/// Every valid transport, plus a problem for each invalid one.
pub fn translate_all(store: &ObjectStore, problems: &mut Vec<Problem>) -> Vec<ServersTransport> {
    let mut out = Vec::new();
    for st in store.servers_transports() {
        match build(store, st) {
            Ok(t) => out.push(t),
            Err(reason) => problems.push(Problem::object(
                Severity::Error,
                KIND,
                st.metadata.namespace(),
                &st.metadata.name,
                reason,
            )),
        }
    }
    out
}

fn build(store: &ObjectStore, st: &ServersTransportObject) -> Result<ServersTransport, String> {
    let namespace = st.metadata.namespace();
    let spec = &st.spec;
    if spec.spiffe.is_some() {
        return Err("spiffe is not supported by weir".into());
    }
    let mut root_cas = Vec::new();
    for ca in &spec.root_cas {
        match (&ca.secret, &ca.config_map) {
            (Some(secret), None) => root_cas.push(ca_bundle_secret(store, namespace, secret)?),
            (None, Some(cm)) => root_cas.push(ca_bundle_config_map(store, namespace, cm)?),
            _ => return Err("each rootCAs entry needs exactly one of secret and configMap".into()),
        }
    }
    for secret in &spec.root_cas_secrets {
        root_cas.push(ca_bundle_secret(store, namespace, secret)?);
    }
    let mut certificates = Vec::new();
    for secret in &spec.certificates_secrets {
        certificates.push(tls_pair(store, namespace, secret)?);
    }
    let timeouts = spec.forwarding_timeouts.clone().unwrap_or_default();
    let ms = |v: &Option<IntOrString>, field: &str, default: u64| -> Result<u64, String> {
        match v {
            None => Ok(default),
            Some(v) => duration::parse_millis(v)
                .map(|ms| ms.max(0) as u64)
                .ok_or_else(|| format!("forwardingTimeouts.{field}: invalid duration {v}")),
        }
    };
    let defaults = ServersTransport::default();
    Ok(ServersTransport {
        name: names::normalize(&format!("{namespace}-{}", st.metadata.name)),
        server_name: spec.server_name.clone().filter(|s| !s.is_empty()),
        insecure_skip_verify: spec.insecure_skip_verify,
        root_cas,
        certificates,
        max_idle_conns_per_host: spec.max_idle_conns_per_host.unwrap_or(defaults.max_idle_conns_per_host),
        dial_timeout_ms: ms(&timeouts.dial_timeout, "dialTimeout", defaults.dial_timeout_ms)?,
        response_header_timeout_ms: ms(&timeouts.response_header_timeout, "responseHeaderTimeout", 0)?,
        idle_conn_timeout_ms: ms(
            &timeouts.idle_conn_timeout,
            "idleConnTimeout",
            defaults.idle_conn_timeout_ms,
        )?,
        disable_http2: spec.disable_http2,
        read_idle_timeout_ms: ms(
            &timeouts.read_idle_timeout,
            "readIdleTimeout",
            defaults.read_idle_timeout_ms,
        )?,
        ping_timeout_ms: ms(&timeouts.ping_timeout, "pingTimeout", defaults.ping_timeout_ms)?,
        peer_cert_uri: spec.peer_cert_uri.clone().filter(|s| !s.is_empty()),
    })
}

fn secret_data(
    store: &ObjectStore,
    namespace: &str,
    name: &str,
    what: &str,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, String> {
    let secret =
        store.secret(namespace, name).ok_or_else(|| format!("{what} secret {namespace}/{name} not found"))?;
    secret.decoded().map_err(|e| format!("{what} secret {namespace}/{name}: {e}"))
}

fn pem(bytes: Vec<u8>, what: &str) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{what} is not PEM text"))
}

/// A CA bundle (PEM) from a Secret: key `tls.ca` or `ca.crt`, not both (Traefik).
pub fn ca_bundle_secret(store: &ObjectStore, namespace: &str, name: &str) -> Result<String, String> {
    let mut data = secret_data(store, namespace, name, "rootCAs")?;
    match (data.remove("tls.ca"), data.remove("ca.crt")) {
        (Some(ca), None) | (None, Some(ca)) => pem(ca, &format!("rootCAs secret {namespace}/{name}")),
        (Some(_), Some(_)) => {
            Err(format!("rootCAs secret {namespace}/{name}: both tls.ca and ca.crt are set"))
        }
        (None, None) => Err(format!("rootCAs secret {namespace}/{name}: neither tls.ca nor ca.crt is set")),
    }
}

/// A CA bundle (PEM) from a ConfigMap. ConfigMaps are not stored yet: the reference fails
/// with a clear reason.
pub fn ca_bundle_config_map(_store: &ObjectStore, namespace: &str, name: &str) -> Result<String, String> {
    Err(format!("rootCAs configMap {namespace}/{name}: ConfigMaps are not read by weir yet"))
}

/// A client certificate chain and key (PEM) from a TLS Secret (`tls.crt`, `tls.key`).
pub fn tls_pair(store: &ObjectStore, namespace: &str, name: &str) -> Result<(String, String), String> {
    let mut data = secret_data(store, namespace, name, "certificatesSecrets")?;
    let what = format!("certificatesSecrets secret {namespace}/{name}");
    match (data.remove("tls.crt"), data.remove("tls.key")) {
        (Some(crt), Some(key)) if !crt.is_empty() && !key.is_empty() => {
            Ok((pem(crt, &what)?, pem(key, &what)?))
        }
        _ => Err(format!("{what}: tls.crt and tls.key are required")),
    }
}
