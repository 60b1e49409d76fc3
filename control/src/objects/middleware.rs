//! `traefik.io/v1alpha1` Middleware and MiddlewareTCP: the CRD shapes, field for field as
//! Traefik's `v1alpha1` types name them. Kinds weir does not serve yet are kept as raw JSON so
//! that a route using them is refused with a clear reason instead of being served without them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ingressroute::ObjectRef;
use super::meta::ObjectMeta;

/// A Middleware object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Middleware {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec: exactly one kind should be set (boxed: it is large).
    #[serde(default)]
    pub spec: Box<MiddlewareSpec>,
}

/// `spec` of a Middleware.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareSpec {
    /// `addPrefix`.
    pub add_prefix: Option<AddPrefix>,
    /// `stripPrefix`.
    pub strip_prefix: Option<StripPrefix>,
    /// `stripPrefixRegex`.
    pub strip_prefix_regex: Option<StripPrefixRegex>,
    /// `replacePath`.
    pub replace_path: Option<ReplacePath>,
    /// `replacePathRegex`.
    pub replace_path_regex: Option<ReplacePathRegex>,
    /// `chain`.
    pub chain: Option<Chain>,
    /// `ipWhiteList` (deprecated).
    pub ip_white_list: Option<IpAllowList>,
    /// `ipAllowList`.
    pub ip_allow_list: Option<IpAllowList>,
    /// `headers`.
    pub headers: Option<Headers>,
    /// `redirectRegex`.
    pub redirect_regex: Option<RedirectRegex>,
    /// `redirectScheme`.
    pub redirect_scheme: Option<RedirectScheme>,
    /// `basicAuth`.
    pub basic_auth: Option<BasicAuth>,
    /// `encodedCharacters`.
    pub encoded_characters: Option<EncodedCharacters>,
    /// `errors`.
    pub errors: Option<ErrorPage>,
    /// `rateLimit`.
    pub rate_limit: Option<RateLimit>,
    /// `digestAuth` (same CRD shape as `basicAuth`).
    pub digest_auth: Option<BasicAuth>,
    /// `forwardAuth`.
    pub forward_auth: Option<ForwardAuth>,
    /// `inFlightReq`.
    pub in_flight_req: Option<InFlightReq>,
    /// `buffering`.
    pub buffering: Option<Buffering>,
    /// `circuitBreaker`.
    pub circuit_breaker: Option<CircuitBreaker>,
    /// `compress`.
    pub compress: Option<Compress>,
    /// `passTLSClientCert` (waits on TLS termination).
    #[serde(rename = "passTLSClientCert")]
    pub pass_tls_client_cert: Option<serde_json::Value>,
    /// `retry`.
    pub retry: Option<Retry>,
    /// `contentType`.
    pub content_type: Option<ContentType>,
    /// `grpcWeb` (not served yet).
    pub grpc_web: Option<serde_json::Value>,
    /// `plugin`: Yaegi/WASM plugins, which weir cannot run.
    pub plugin: Option<serde_json::Value>,
}

/// `addPrefix`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddPrefix {
    /// Prefix.
    #[serde(default)]
    pub prefix: String,
}

/// `stripPrefix`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripPrefix {
    /// Prefixes.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Deprecated.
    #[serde(default)]
    pub force_slash: Option<bool>,
}

/// `stripPrefixRegex`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripPrefixRegex {
    /// Regexes.
    #[serde(default)]
    pub regex: Vec<String>,
}

/// `replacePath`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplacePath {
    /// New path.
    #[serde(default)]
    pub path: String,
}

/// `replacePathRegex`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplacePathRegex {
    /// Regex.
    #[serde(default)]
    pub regex: String,
    /// Replacement.
    #[serde(default)]
    pub replacement: String,
}

/// `chain`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    /// Middleware references.
    #[serde(default)]
    pub middlewares: Vec<ObjectRef>,
}

/// `ipAllowList` / `ipWhiteList`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAllowList {
    /// Allowed ranges.
    #[serde(default)]
    pub source_range: Vec<String>,
    /// Client IP strategy.
    #[serde(default)]
    pub ip_strategy: Option<IpStrategy>,
    /// Status for rejected requests (allow-list only).
    #[serde(default)]
    pub reject_status_code: Option<i64>,
}

/// `ipStrategy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpStrategy {
    /// Depth in `X-Forwarded-For`.
    #[serde(default)]
    pub depth: i64,
    /// Excluded IPs.
    #[serde(default, rename = "excludedIPs")]
    pub excluded_ips: Vec<String>,
    /// IPv6 subnet length.
    #[serde(default)]
    pub ipv6_subnet: Option<i64>,
}

/// `headers`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Headers {
    /// Request headers to set.
    pub custom_request_headers: BTreeMap<String, String>,
    /// Response headers to set.
    pub custom_response_headers: BTreeMap<String, String>,
    /// CORS credentials.
    pub access_control_allow_credentials: bool,
    /// CORS allowed headers.
    pub access_control_allow_headers: Vec<String>,
    /// CORS allowed methods.
    pub access_control_allow_methods: Vec<String>,
    /// CORS allowed origins.
    pub access_control_allow_origin_list: Vec<String>,
    /// CORS allowed origin regexes.
    pub access_control_allow_origin_list_regex: Vec<String>,
    /// CORS exposed headers.
    pub access_control_expose_headers: Vec<String>,
    /// CORS max age.
    pub access_control_max_age: Option<i64>,
    /// Add `Vary: Origin`.
    pub add_vary_header: bool,
    /// Allowed hosts.
    pub allowed_hosts: Vec<String>,
    /// Host proxy headers.
    pub hosts_proxy_headers: Vec<String>,
    /// SSL proxy headers.
    pub ssl_proxy_headers: BTreeMap<String, String>,
    /// STS max-age.
    pub sts_seconds: Option<i64>,
    /// STS includeSubDomains.
    pub sts_include_subdomains: bool,
    /// STS preload.
    pub sts_preload: bool,
    /// STS on HTTP too.
    #[serde(rename = "forceSTSHeader")]
    pub force_sts_header: bool,
    /// `X-Frame-Options: DENY`.
    pub frame_deny: bool,
    /// Custom `X-Frame-Options`.
    pub custom_frame_options_value: String,
    /// `X-Content-Type-Options: nosniff`.
    pub content_type_nosniff: bool,
    /// `X-XSS-Protection`.
    pub browser_xss_filter: bool,
    /// Custom `X-XSS-Protection`.
    #[serde(rename = "customBrowserXSSValue")]
    pub custom_browser_xss_value: String,
    /// CSP.
    pub content_security_policy: String,
    /// CSP report-only.
    pub content_security_policy_report_only: String,
    /// HPKP.
    pub public_key: String,
    /// Referrer policy.
    pub referrer_policy: String,
    /// Permissions policy.
    pub permissions_policy: String,
    /// Development mode.
    pub is_development: bool,
    /// Deprecated, ignored by Traefik v3.
    pub feature_policy: Option<String>,
    /// Deprecated, ignored by Traefik v3.
    pub ssl_redirect: Option<bool>,
    /// Deprecated, ignored by Traefik v3.
    pub ssl_temporary_redirect: Option<bool>,
    /// Deprecated, ignored by Traefik v3.
    pub ssl_host: Option<String>,
    /// Deprecated, ignored by Traefik v3.
    pub ssl_force_host: Option<bool>,
}

/// `redirectRegex`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RedirectRegex {
    /// Regex.
    pub regex: String,
    /// Replacement.
    pub replacement: String,
    /// Permanent.
    pub permanent: bool,
}

/// `redirectScheme`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RedirectScheme {
    /// Scheme.
    pub scheme: String,
    /// Port, written as a string or a number.
    pub port: Option<super::meta::IntOrString>,
    /// Permanent.
    pub permanent: bool,
}

/// `basicAuth` (CRD shape: users come from a Secret).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BasicAuth {
    /// Secret name, same namespace.
    pub secret: String,
    /// Realm.
    pub realm: String,
    /// Remove `Authorization`.
    pub remove_header: bool,
    /// Header that receives the user name.
    pub header_field: String,
}

/// `buffering`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Buffering {
    /// Largest request body (0 = no limit).
    pub max_request_body_bytes: i64,
    /// Request bytes kept in memory.
    pub mem_request_body_bytes: i64,
    /// Largest response body (0 = no limit).
    pub max_response_body_bytes: i64,
    /// Response bytes kept in memory.
    pub mem_response_body_bytes: i64,
    /// Retry condition (`IsNetworkError() && Attempts() < 2`).
    pub retry_expression: String,
}

/// `compress`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Compress {
    /// Excluded response types.
    pub excluded_content_types: Vec<String>,
    /// Included response types.
    pub included_content_types: Vec<String>,
    /// Smallest body compressed.
    pub min_response_body_bytes: Option<i64>,
    /// Allowed encodings (default gzip, br, zstd).
    pub encodings: Option<Vec<String>>,
    /// Encoding without `Accept-Encoding`.
    pub default_encoding: String,
}

/// `forwardAuth`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForwardAuth {
    /// Auth server URL.
    pub address: String,
    /// TLS to the auth server.
    pub tls: Option<ForwardAuthTls>,
    /// Trust `X-Forwarded-*`.
    pub trust_forward_header: bool,
    /// Headers copied from the auth response.
    pub auth_response_headers: Vec<String>,
    /// Regex of headers copied from the auth response.
    pub auth_response_headers_regex: String,
    /// Headers sent to the auth server.
    pub auth_request_headers: Vec<String>,
    /// Auth cookies added to the response.
    pub add_auth_cookies_to_response: Vec<String>,
    /// Access-log user name header.
    pub header_field: String,
    /// Forward the body.
    pub forward_body: bool,
    /// Largest forwarded body.
    pub max_body_size: Option<i64>,
    /// Keep `Location` as sent.
    pub preserve_location_header: bool,
    /// Keep the request method.
    pub preserve_request_method: bool,
    /// Largest auth response body (3.6).
    pub max_response_body_size: Option<i64>,
    /// Sign-in redirect for 401 (3.7).
    #[serde(rename = "authSigninURL")]
    pub auth_signin_url: Option<String>,
}

/// `forwardAuth.tls`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForwardAuthTls {
    /// CA secret.
    pub ca_secret: Option<String>,
    /// Client certificate secret.
    pub cert_secret: Option<String>,
    /// Skip verification.
    pub insecure_skip_verify: bool,
    /// Deprecated.
    pub ca_optional: Option<bool>,
}

/// `circuitBreaker`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CircuitBreaker {
    /// Trip condition.
    pub expression: String,
    /// Evaluation period.
    pub check_period: Option<super::meta::IntOrString>,
    /// Tripped duration.
    pub fallback_duration: Option<super::meta::IntOrString>,
    /// Recovery duration.
    pub recovery_duration: Option<super::meta::IntOrString>,
    /// Status while tripped.
    pub response_code: Option<i64>,
}

/// `errors`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorPage {
    /// Status ranges (`500`, `500-599`).
    pub status: Vec<String>,
    /// Status rewrites (3.6): `"418"` or `"500-599"` → status.
    pub status_rewrites: BTreeMap<String, i64>,
    /// The service serving the pages.
    pub service: Option<super::ingressroute::ServiceRef>,
    /// Page path template.
    pub query: String,
    /// Request headers copied to the page request (all when absent).
    pub error_request_headers: Option<Vec<String>>,
}

/// `retry`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: i64,
    /// First backoff interval.
    pub initial_interval: Option<super::meta::IntOrString>,
    /// Overall retry deadline (3.6).
    pub timeout: Option<super::meta::IntOrString>,
    /// Retried status ranges (3.6).
    pub status: Vec<String>,
    /// Largest body kept for replay (3.6).
    pub max_request_body_bytes: Option<i64>,
    /// No retries on network errors (3.6).
    pub disable_retry_on_network_error: bool,
    /// Retry statuses of non-idempotent methods (3.6).
    pub retry_non_idempotent_method: bool,
}

/// `contentType`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContentType {
    /// Deprecated: the middleware's presence enables sniffing.
    pub auto_detect: Option<bool>,
}

/// `encodedCharacters` (3.6).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EncodedCharacters {
    /// Allow `%2F`.
    pub allow_encoded_slash: bool,
    /// Allow `%5C`.
    pub allow_encoded_back_slash: bool,
    /// Allow `%00`.
    pub allow_encoded_null_character: bool,
    /// Allow `%3B`.
    pub allow_encoded_semicolon: bool,
    /// Allow `%25`.
    pub allow_encoded_percent: bool,
    /// Allow `%3F`.
    pub allow_encoded_question_mark: bool,
    /// Allow `%23`.
    pub allow_encoded_hash: bool,
}

/// `sourceCriterion`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceCriterion {
    /// Client IP strategy.
    pub ip_strategy: Option<IpStrategy>,
    /// Request header whose value is the source.
    pub request_header_name: String,
    /// The request host is the source.
    pub request_host: bool,
}

/// `rateLimit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimit {
    /// Requests per period.
    pub average: Option<i64>,
    /// Period: seconds or a Go duration.
    pub period: Option<super::meta::IntOrString>,
    /// Bucket size.
    pub burst: Option<i64>,
    /// Source.
    pub source_criterion: Option<SourceCriterion>,
    /// Buckets kept in Redis.
    pub redis: Option<RateLimitRedis>,
}

/// `rateLimit.redis` (CRD shape: credentials and TLS material come from Secrets).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RateLimitRedis {
    /// `host:port` addresses (default `localhost:6379`).
    pub endpoints: Vec<String>,
    /// TLS towards Redis.
    pub tls: Option<ClientTls>,
    /// Secret with `username` and `password` keys.
    pub secret: String,
    /// Database number.
    pub db: i64,
    /// Idle connections kept.
    pub pool_size: i64,
    /// Idle connections opened ahead of need.
    pub min_idle_conns: i64,
    /// Most connections open at once.
    pub max_active_conns: i64,
    /// Read timeout: seconds or a Go duration.
    pub read_timeout: Option<super::meta::IntOrString>,
    /// Write timeout: seconds or a Go duration.
    pub write_timeout: Option<super::meta::IntOrString>,
    /// Dial timeout: seconds or a Go duration.
    pub dial_timeout: Option<super::meta::IntOrString>,
}

/// Traefik's CRD `ClientTLS` (used by `rateLimit.redis.tls`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientTls {
    /// Secret holding the CA (`tls.ca` or `ca.crt`).
    pub ca_secret: String,
    /// Secret holding the client certificate (`tls.crt`, `tls.key`).
    pub cert_secret: String,
    /// Skip verification of the server's certificate.
    pub insecure_skip_verify: bool,
}

/// `inFlightReq`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InFlightReq {
    /// Concurrent requests per source.
    pub amount: i64,
    /// Source.
    pub source_criterion: Option<SourceCriterion>,
}

/// A MiddlewareTCP object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MiddlewareTcp {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: MiddlewareTcpSpec,
}

/// `spec` of a MiddlewareTCP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MiddlewareTcpSpec {
    /// `inFlightConn`.
    pub in_flight_conn: Option<InFlightConn>,
    /// `ipAllowList`.
    pub ip_allow_list: Option<TcpIpAllowList>,
    /// `ipWhiteList` (deprecated).
    pub ip_white_list: Option<TcpIpAllowList>,
}

/// `inFlightConn`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InFlightConn {
    /// Maximum simultaneous connections per client IP.
    pub amount: i64,
}

/// TCP `ipAllowList` / `ipWhiteList`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TcpIpAllowList {
    /// Allowed ranges.
    pub source_range: Vec<String>,
}
