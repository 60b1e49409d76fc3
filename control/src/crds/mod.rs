//! The CustomResourceDefinitions of Traefik's kinds (`traefik.io/v1alpha1`), as `weir crds`
//! prints them: generated from the CRD-only types below with kube's `CustomResource` derive and
//! schemars. The top levels of every spec (and the routes and service references of the
//! routes) are typed with Traefik's field names; the bodies of middlewares, health checks,
//! sticky cookies and the like keep `x-kubernetes-preserve-unknown-fields`, so the API server
//! stores them whole and weir's own reader reports what it cannot use.
//! (These types only shape the schemas; weir reads objects with the types in `objects/`.)

use kube::core::CustomResourceExt as _;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An object whose fields the API server keeps as written.
fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// A list of such objects.
fn open_objects(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// An integer or a string (`intstr.IntOrString`: ports, durations written as numbers).
fn int_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": true
    })
}

/// A reference to another object by name (and namespace).
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
pub struct NamedRef {
    /// Name.
    pub name: String,
    /// Namespace (defaults to the referring object's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A service reference of a route (Service or TraefikService).
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// Name of the Service or TraefikService.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `Service` (default) or `TraefikService`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Port number or name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub port: Option<Value>,
    /// `http`, `https` or `h2c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Load-balancing strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Forward the client's Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_host_header: Option<bool>,
    /// Response forwarding (`flushInterval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub response_forwarding: Option<Value>,
    /// ServersTransport name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers_transport: Option<String>,
    /// Sticky sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub sticky: Option<Value>,
    /// Weight in a weighted round robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    /// Balance to the ClusterIP rather than the endpoints.
    #[serde(default, rename = "nativeLB", skip_serializing_if = "Option::is_none")]
    pub native_lb: Option<bool>,
    /// Balance to the nodes' NodePort.
    #[serde(default, rename = "nodePortLB", skip_serializing_if = "Option::is_none")]
    pub node_port_lb: Option<bool>,
    /// Active health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub health_check: Option<Value>,
    /// TCP: PROXY protocol towards the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub proxy_protocol: Option<Value>,
    /// TCP: delay before closing the backend side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_delay: Option<i64>,
    /// TCP: TLS towards the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// Mirroring: the share of requests mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<i64>,
}

/// TLS of an IngressRoute / IngressRouteTCP.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTls {
    /// Secret with the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// TLSOption reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<NamedRef>,
    /// TLSStore reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<NamedRef>,
    /// Certificate resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_resolver: Option<String>,
    /// Domains for the resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_objects")]
    pub domains: Option<Value>,
    /// TCP: pass TLS through to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<bool>,
}

/// An HTTP route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The rule.
    #[serde(rename = "match")]
    pub match_: String,
    /// Always `Rule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Rule"]))]
    pub kind: Option<String>,
    /// Priority (0: by rule length).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Rule syntax (`v2`, `v3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceRef>>,
    /// Middlewares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middlewares: Option<Vec<NamedRef>>,
    /// Per-router observability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub observability: Option<Value>,
}

/// IngressRoute: HTTP routers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "IngressRoute", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteSpec {
    /// Entrypoints (default: the default ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_points: Option<Vec<String>>,
    /// Routes.
    pub routes: Vec<Route>,
    /// TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTls>,
    /// Gateway API parents (Traefik 3.6+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_objects")]
    pub parent_refs: Option<Value>,
}

/// A TCP route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTcp {
    /// The rule (`HostSNI(...)`).
    #[serde(rename = "match")]
    pub match_: String,
    /// Accepted for older manifests that copy HTTP routes (`Rule`); ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Rule syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceRef>>,
    /// MiddlewareTCPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middlewares: Option<Vec<NamedRef>>,
}

/// IngressRouteTCP: TCP routers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "IngressRouteTCP", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteTcpSpec {
    /// Entrypoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_points: Option<Vec<String>>,
    /// Routes.
    pub routes: Vec<RouteTcp>,
    /// TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouteTls>,
}

/// A UDP route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
pub struct RouteUdp {
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServiceRef>>,
}

/// IngressRouteUDP: UDP routers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "IngressRouteUDP", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct IngressRouteUdpSpec {
    /// Entrypoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_points: Option<Vec<String>>,
    /// Routes.
    pub routes: Vec<RouteUdp>,
}

/// Declares a spec whose every field is an open object (middlewares: one field per type).
macro_rules! open_spec {
    ($(#[$doc:meta])* $spec:ident, $kind:literal, [$($field:ident = $name:literal),* $(,)?]) => {
        $(#[$doc])*
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
        #[kube(group = "traefik.io", version = "v1alpha1", kind = $kind, namespaced)]
        pub struct $spec {
            $(
                #[allow(missing_docs)]
                #[serde(default, rename = $name, skip_serializing_if = "Option::is_none")]
                #[schemars(schema_with = "open_object")]
                pub $field: Option<Value>,
            )*
        }
    };
}

open_spec!(
    /// Middleware: one HTTP middleware (exactly one field is set).
    MiddlewareSpec,
    "Middleware",
    [
        add_prefix = "addPrefix",
        basic_auth = "basicAuth",
        buffering = "buffering",
        chain = "chain",
        circuit_breaker = "circuitBreaker",
        compress = "compress",
        content_type = "contentType",
        digest_auth = "digestAuth",
        errors = "errors",
        forward_auth = "forwardAuth",
        grpc_web = "grpcWeb",
        headers = "headers",
        in_flight_req = "inFlightReq",
        ip_allow_list = "ipAllowList",
        ip_white_list = "ipWhiteList",
        pass_tls_client_cert = "passTLSClientCert",
        plugin = "plugin",
        rate_limit = "rateLimit",
        redirect_regex = "redirectRegex",
        redirect_scheme = "redirectScheme",
        replace_path = "replacePath",
        replace_path_regex = "replacePathRegex",
        retry = "retry",
        strip_prefix = "stripPrefix",
        strip_prefix_regex = "stripPrefixRegex",
    ]
);

open_spec!(
    /// MiddlewareTCP: one TCP middleware.
    MiddlewareTcpSpec,
    "MiddlewareTCP",
    [in_flight_conn = "inFlightConn", ip_allow_list = "ipAllowList", ip_white_list = "ipWhiteList"]
);

open_spec!(
    /// TraefikService: a weighted round robin, a mirroring or a highest-random-weight service.
    TraefikServiceSpec,
    "TraefikService",
    [weighted = "weighted", mirroring = "mirroring", highest_random_weight = "highestRandomWeight"]
);

/// TLSOption: TLS versions, ciphers and client authentication.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "TLSOption", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct TlsOptionSpec {
    /// Lowest TLS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Highest TLS version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// Cipher suites (TLS 1.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<String>>,
    /// Curves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_preferences: Option<Vec<String>>,
    /// Client certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub client_auth: Option<Value>,
    /// Reject unknown SNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni_strict: Option<bool>,
    /// Deprecated, ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_server_cipher_suites: Option<bool>,
    /// ALPN protocols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_protocols: Option<Vec<String>>,
    /// No session tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_session_tickets: Option<bool>,
}

/// TLSStore: certificates and the default certificate.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "TLSStore", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct TlsStoreSpec {
    /// Certificates (`secretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_objects")]
    pub certificates: Option<Value>,
    /// Default certificate (`secretName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub default_certificate: Option<Value>,
    /// Default certificate from a resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub default_generated_cert: Option<Value>,
}

/// ServersTransport: how HTTP backends are reached.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "ServersTransport", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransportSpec {
    /// SNI and verified name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Skip certificate verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// CAs (`secret` / `configMap`).
    #[serde(default, rename = "rootCAs", skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_objects")]
    pub root_cas: Option<Value>,
    /// CA Secrets (deprecated form).
    #[serde(default, rename = "rootCAsSecrets", skip_serializing_if = "Option::is_none")]
    pub root_cas_secrets: Option<Vec<String>>,
    /// Client certificate Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates_secrets: Option<Vec<String>>,
    /// Idle connections kept per host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_idle_conns_per_host: Option<i64>,
    /// Timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub forwarding_timeouts: Option<Value>,
    /// HTTP/1.1 only.
    #[serde(default, rename = "disableHTTP2", skip_serializing_if = "Option::is_none")]
    pub disable_http2: Option<bool>,
    /// Required URI SAN of the backend certificate.
    #[serde(default, rename = "peerCertURI", skip_serializing_if = "Option::is_none")]
    pub peer_cert_uri: Option<String>,
    /// SPIFFE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub spiffe: Option<Value>,
}

/// ServersTransportTCP: how TCP backends are reached.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[kube(group = "traefik.io", version = "v1alpha1", kind = "ServersTransportTCP", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct ServersTransportTcpSpec {
    /// Dial timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub dial_timeout: Option<Value>,
    /// TCP keep-alive period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub dial_keep_alive: Option<Value>,
    /// Delay before closing the backend side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string")]
    pub termination_delay: Option<Value>,
    /// PROXY protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub proxy_protocol: Option<Value>,
    /// TLS towards the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "open_object")]
    pub tls: Option<Value>,
}

/// Every CRD, as JSON values, in a fixed order.
pub fn all() -> Vec<Value> {
    let crds = [
        IngressRoute::crd(),
        IngressRouteTCP::crd(),
        IngressRouteUDP::crd(),
        Middleware::crd(),
        MiddlewareTCP::crd(),
        ServersTransport::crd(),
        ServersTransportTCP::crd(),
        TLSOption::crd(),
        TLSStore::crd(),
        TraefikService::crd(),
    ];
    crds.iter()
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            int_or_string_alternatives(&mut v);
            v
        })
        .collect()
}

/// kube's structural rewrite leaves `anyOf: [{}, {}]` beside `x-kubernetes-int-or-string`;
/// writes the two alternatives back the way Kubernetes' own schemas spell them.
fn int_or_string_alternatives(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
                map.insert("anyOf".into(), serde_json::json!([{"type": "integer"}, {"type": "string"}]));
            }
            map.values_mut().for_each(int_or_string_alternatives);
        }
        Value::Array(items) => items.iter_mut().for_each(int_or_string_alternatives),
        _ => {}
    }
}

/// The multi-document YAML `weir crds` prints.
pub fn yaml() -> String {
    let mut out = String::from("# Traefik CRDs (traefik.io/v1alpha1) for weir; generated by `weir crds`.\n");
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests;
