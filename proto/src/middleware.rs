//! HTTP middleware definitions as the control plane resolved them (Traefik's `Middleware` CRD,
//! one typed config per kind). Plain data: secrets are already read, chains already expanded
//! into the routers' lists; the data plane compiles these once per snapshot.

use serde::{Deserialize, Serialize};

/// One named middleware (`<namespace>-<name>`, as Traefik names CRD middlewares).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Middleware {
    /// Traefik's name for it (`ns-name`).
    pub name: String,
    /// What it does.
    pub kind: MiddlewareKind,
}

/// The kinds of HTTP middleware weir serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MiddlewareKind {
    /// Prepends a path prefix.
    AddPrefix(AddPrefix),
    /// Removes the first matching literal prefix.
    StripPrefix(StripPrefix),
    /// Removes the first matching regex prefix.
    StripPrefixRegex(StripPrefixRegex),
    /// Replaces the whole path.
    ReplacePath(ReplacePath),
    /// Rewrites the path with a regex.
    ReplacePathRegex(ReplacePathRegex),
    /// Custom, CORS and security headers.
    Headers(Box<Headers>),
    /// Redirects to another scheme (and port).
    RedirectScheme(RedirectScheme),
    /// Redirects by rewriting the URL with a regex.
    RedirectRegex(RedirectRegex),
    /// HTTP basic authentication.
    BasicAuth(BasicAuth),
    /// Client IP allow-list (also the deprecated IPWhiteList, with status 403).
    IpAllowList(IpAllowList),
    /// Reads the whole request (and response) before passing it on, with size limits.
    Buffering(Buffering),
    /// Re-enables content-type sniffing of responses without `Content-Type`.
    ContentType,
    /// Refuses (400) paths holding encoded characters that are not allowed.
    EncodedCharacters(EncodedCharacters),
    /// Token-bucket rate limiting per source.
    RateLimit(RateLimit),
    /// Limits concurrent requests per source.
    InFlightReq(InFlightReq),
    /// Compresses responses (gzip, br, zstd).
    Compress(Compress),
    /// Retries requests that did not reach a backend (and, optionally, some statuses).
    Retry(Retry),
    /// Custom error pages from another service.
    Errors(Errors),
    /// Delegates authentication to an external server.
    ForwardAuth(Box<ForwardAuth>),
    /// HTTP digest authentication.
    DigestAuth(DigestAuth),
    /// Stops calling a failing service for a while.
    CircuitBreaker(CircuitBreaker),
    /// Passes the TLS client certificate (PEM and/or selected fields) to the backend.
    PassTlsClientCert(PassTlsClientCert),
    /// Translates gRPC-Web requests into gRPC for the backend.
    GrpcWeb(GrpcWeb),
}

impl MiddlewareKind {
    /// Traefik's type name, for logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            MiddlewareKind::AddPrefix(_) => "AddPrefix",
            MiddlewareKind::StripPrefix(_) => "StripPrefix",
            MiddlewareKind::StripPrefixRegex(_) => "StripPrefixRegex",
            MiddlewareKind::ReplacePath(_) => "ReplacePath",
            MiddlewareKind::ReplacePathRegex(_) => "ReplacePathRegex",
            MiddlewareKind::Headers(_) => "Headers",
            MiddlewareKind::RedirectScheme(_) => "RedirectScheme",
            MiddlewareKind::RedirectRegex(_) => "RedirectRegex",
            MiddlewareKind::BasicAuth(_) => "BasicAuth",
            MiddlewareKind::IpAllowList(_) => "IPAllowList",
            MiddlewareKind::Buffering(_) => "Buffering",
            MiddlewareKind::ContentType => "ContentType",
            MiddlewareKind::EncodedCharacters(_) => "EncodedCharacters",
            MiddlewareKind::RateLimit(_) => "RateLimit",
            MiddlewareKind::InFlightReq(_) => "InFlightReq",
            MiddlewareKind::Compress(_) => "Compress",
            MiddlewareKind::Retry(_) => "Retry",
            MiddlewareKind::Errors(_) => "Errors",
            MiddlewareKind::ForwardAuth(_) => "ForwardAuth",
            MiddlewareKind::DigestAuth(_) => "DigestAuth",
            MiddlewareKind::CircuitBreaker(_) => "CircuitBreaker",
            MiddlewareKind::PassTlsClientCert(_) => "PassTLSClientCert",
            MiddlewareKind::GrpcWeb(_) => "GrpcWeb",
        }
    }
}

/// Traefik's `addPrefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPrefix {
    /// The prefix (non-empty).
    pub prefix: String,
}

/// Traefik's `stripPrefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripPrefix {
    /// Prefixes, tried in order (trimmed).
    pub prefixes: Vec<String>,
    /// Deprecated `forceSlash`.
    pub force_slash: bool,
}

/// Traefik's `stripPrefixRegex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripPrefixRegex {
    /// Regexes, tried in order (trimmed).
    pub regex: Vec<String>,
}

/// Traefik's `replacePath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacePath {
    /// The new (escaped) path.
    pub path: String,
}

/// Traefik's `replacePathRegex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplacePathRegex {
    /// Regex on the escaped path (trimmed).
    pub regex: String,
    /// Replacement with `$1`, `${name}` expansion (trimmed).
    pub replacement: String,
}

/// Traefik's `headers`. Header maps are sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Headers {
    /// Request headers to set; an empty value deletes.
    pub custom_request_headers: Vec<(String, String)>,
    /// Response headers to set; an empty value deletes.
    pub custom_response_headers: Vec<(String, String)>,
    /// `Access-Control-Allow-Credentials: true`.
    pub access_control_allow_credentials: bool,
    /// `Access-Control-Allow-Headers`.
    pub access_control_allow_headers: Vec<String>,
    /// `Access-Control-Allow-Methods`.
    pub access_control_allow_methods: Vec<String>,
    /// Allowed origins (`*` allowed).
    pub access_control_allow_origin_list: Vec<String>,
    /// Allowed origins as regexes.
    pub access_control_allow_origin_list_regex: Vec<String>,
    /// `Access-Control-Expose-Headers`.
    pub access_control_expose_headers: Vec<String>,
    /// `Access-Control-Max-Age`.
    pub access_control_max_age: Option<i64>,
    /// Append `Origin` to `Vary`.
    pub add_vary_header: bool,
    /// Hosts allowed (else 500 "Bad Host").
    pub allowed_hosts: Vec<String>,
    /// Headers consulted for the host before `Host`.
    pub hosts_proxy_headers: Vec<String>,
    /// Header/value pairs that mark a request as HTTPS.
    pub ssl_proxy_headers: Vec<(String, String)>,
    /// `Strict-Transport-Security` max-age; 0 is off.
    pub sts_seconds: i64,
    /// `; includeSubDomains`.
    pub sts_include_subdomains: bool,
    /// `; preload`.
    pub sts_preload: bool,
    /// STS on plain HTTP too.
    pub force_sts_header: bool,
    /// `X-Frame-Options: DENY`.
    pub frame_deny: bool,
    /// `X-Frame-Options` value.
    pub custom_frame_options_value: String,
    /// `X-Content-Type-Options: nosniff`.
    pub content_type_nosniff: bool,
    /// `X-XSS-Protection: 1; mode=block`.
    pub browser_xss_filter: bool,
    /// `X-XSS-Protection` value.
    pub custom_browser_xss_value: String,
    /// `Content-Security-Policy`.
    pub content_security_policy: String,
    /// `Content-Security-Policy-Report-Only`.
    pub content_security_policy_report_only: String,
    /// `Public-Key-Pins` (HTTPS only).
    pub public_key: String,
    /// `Referrer-Policy`.
    pub referrer_policy: String,
    /// `Permissions-Policy`.
    pub permissions_policy: String,
    /// Skips the allowed-hosts check, STS and HPKP.
    pub is_development: bool,
}

/// Traefik's `redirectScheme`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectScheme {
    /// Target scheme.
    pub scheme: String,
    /// Target port; empty keeps the request's.
    pub port: String,
    /// 301/308 instead of 302/307.
    pub permanent: bool,
}

/// Traefik's `redirectRegex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectRegex {
    /// Regex on `scheme://host/requestURI`.
    pub regex: String,
    /// Replacement with `$1`, `${name}` expansion.
    pub replacement: String,
    /// 301/308 instead of 302/307.
    pub permanent: bool,
}

/// Traefik's `basicAuth`, users read from the Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasicAuth {
    /// `(user, htpasswd hash)`; a later line for the same user wins.
    pub users: Vec<(String, String)>,
    /// Realm (default `traefik`).
    pub realm: String,
    /// Remove `Authorization` before forwarding.
    pub remove_header: bool,
    /// Request header that receives the user name; empty for none.
    pub header_field: String,
}

/// Traefik's `ipAllowList` (and `ipWhiteList`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpAllowList {
    /// Allowed IPs and CIDRs (non-empty).
    pub source_range: Vec<String>,
    /// How the client IP is found.
    pub ip_strategy: IpStrategy,
    /// Status for rejected requests (403 by default).
    pub reject_status_code: u16,
}

/// Traefik's `ipStrategy`: peer address unless `depth` or `excluded_ips` say otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpStrategy {
    /// Take the depth-th `X-Forwarded-For` entry from the right (0 = off).
    pub depth: u32,
    /// Take the right-most `X-Forwarded-For` entry not in these ranges.
    pub excluded_ips: Vec<String>,
    /// Reduce IPv6 addresses to this prefix length.
    pub ipv6_subnet: Option<u8>,
}

/// Traefik's `buffering`. Sizes in bytes; 0 means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buffering {
    /// Largest request body accepted (else 413).
    pub max_request_body_bytes: i64,
    /// Request bytes kept in memory before Traefik spills to disk (weir keeps all in memory).
    pub mem_request_body_bytes: i64,
    /// Largest response body accepted (else 500).
    pub max_response_body_bytes: i64,
    /// Response bytes kept in memory before Traefik spills to disk (weir keeps all in memory).
    pub mem_response_body_bytes: i64,
    /// oxy's retry predicate over the buffered attempt (see `retry_expression`); "" for none.
    #[serde(default)]
    pub retry_expression: String,
}

/// Traefik's `encodedCharacters` (3.6): what a raw path may contain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EncodedCharacters {
    /// `%2F` / `%2f` allowed.
    pub allow_encoded_slash: bool,
    /// `%5C` / `%5c` allowed.
    pub allow_encoded_back_slash: bool,
    /// `%00` allowed.
    pub allow_encoded_null_character: bool,
    /// `%3B` / `%3b` allowed.
    pub allow_encoded_semicolon: bool,
    /// `%25` allowed.
    pub allow_encoded_percent: bool,
    /// `%3F` / `%3f` allowed.
    pub allow_encoded_question_mark: bool,
    /// `%23` allowed.
    pub allow_encoded_hash: bool,
}

/// Traefik's `sourceCriterion`: what identifies a request's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceCriterion {
    /// The client IP by an IP strategy.
    Ip(IpStrategy),
    /// The value of a request header ("" when absent).
    RequestHeader(String),
    /// The request's host (Go's `req.Host`).
    RequestHost,
}

/// Traefik's `rateLimit`: buckets in the instance's memory, or in Redis when `redis` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Requests per period; 0 is unlimited.
    pub average: i64,
    /// The period in nanoseconds (default 1s).
    pub period_nanos: u64,
    /// Bucket size (at least 1).
    pub burst: i64,
    /// What a bucket is kept per.
    pub source: SourceCriterion,
    /// Keep the buckets in Redis, shared by every instance that uses the same Redis.
    #[serde(default)]
    pub redis: Option<Box<RateLimitRedis>>,
}

/// Traefik's `rateLimit.redis`, with the control plane's defaults applied and secrets read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitRedis {
    /// `host:port` addresses: one server, or the seed list of a Redis Cluster.
    pub endpoints: Vec<String>,
    /// ACL user name ("" for none: `AUTH <password>` alone).
    pub username: String,
    /// Password ("" for no `AUTH`).
    pub password: String,
    /// Database selected after connecting.
    pub db: i64,
    /// Connect with TLS.
    pub tls: Option<RateLimitRedisTls>,
    /// Idle connections kept per worker (0: weir's default, 10).
    pub pool_size: u32,
    /// Idle connections opened ahead of need per worker.
    pub min_idle_conns: u32,
    /// Most connections open at once per worker (0: no limit).
    pub max_active_conns: u32,
    /// Time allowed for a reply, in nanoseconds (0: no limit).
    pub read_timeout_nanos: u64,
    /// Time allowed for sending a command, in nanoseconds (0: no limit).
    pub write_timeout_nanos: u64,
    /// Time allowed for connecting, in nanoseconds.
    pub dial_timeout_nanos: u64,
}

/// TLS towards Redis (`rateLimit.redis.tls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitRedisTls {
    /// PEM bundle of CAs to trust (empty: the system's).
    pub root_cas: Vec<String>,
    /// Client certificate chain and key (PEM).
    pub certificate: Option<(String, String)>,
    /// Do not verify the server's certificate.
    pub insecure_skip_verify: bool,
}

/// Traefik's `inFlightReq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightReq {
    /// Concurrent requests allowed per source.
    pub amount: i64,
    /// What the count is kept per (default: the request host).
    pub source: SourceCriterion,
}

/// Traefik's `compress`. Content types are as written (validated by the control plane).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compress {
    /// Response types never compressed (`application/grpc` is always added).
    pub excluded_content_types: Vec<String>,
    /// Only these response types are compressed (exclusive with the excluded list).
    pub included_content_types: Vec<String>,
    /// Smallest body compressed (1024 by default).
    pub min_response_body_bytes: u64,
    /// Allowed encodings in priority order (`gzip`, `br`, `zstd`).
    pub encodings: Vec<String>,
    /// Encoding used without `Accept-Encoding` (and for `*`); "" for none.
    pub default_encoding: String,
}

/// Traefik's `retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// First backoff interval in nanoseconds (0: retry at once).
    pub initial_interval_nanos: u64,
    /// Overall deadline for retrying in nanoseconds (0: none).
    pub timeout_nanos: u64,
    /// Status ranges (inclusive) that are retried too.
    pub status: Vec<(u16, u16)>,
    /// Largest body kept to replay (bodies above are sent once, not retried).
    pub max_request_body_bytes: i64,
    /// Do not retry requests that did not reach a backend.
    pub disable_retry_on_network_error: bool,
    /// Retry statuses of POST, PATCH and LOCK too.
    pub retry_non_idempotent_method: bool,
}

/// Traefik's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// Status ranges (inclusive) that get the error page.
    pub status: Vec<(u16, u16)>,
    /// `statusRewrites`: the status the client gets instead, by range (first match wins).
    pub status_rewrites: Vec<((u16, u16), u16)>,
    /// The snapshot service that serves the pages.
    pub service: String,
    /// Page path template (`{status}`, `{originalStatus}`, `{url}`); "" for `/`.
    pub query: String,
    /// Request headers copied to the page request; `None` copies all.
    pub error_request_headers: Option<Vec<String>>,
}

/// Traefik's `forwardAuth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardAuth {
    /// The authentication server's URL (`http` or `https`).
    pub address: String,
    /// Do not verify the authentication server's certificate.
    pub insecure_skip_verify: bool,
    /// Trust the request's `X-Forwarded-*` headers.
    pub trust_forward_header: bool,
    /// Auth response headers copied onto the request.
    pub auth_response_headers: Vec<String>,
    /// Auth response headers matching this regex are copied onto the request ("" for none).
    pub auth_response_headers_regex: String,
    /// Request headers sent to the auth server (empty: all).
    pub auth_request_headers: Vec<String>,
    /// Cookies of the auth response added to the final response.
    pub add_auth_cookies_to_response: Vec<String>,
    /// Send the request body to the auth server.
    pub forward_body: bool,
    /// Largest body forwarded (-1: no limit); above it the answer is 401.
    pub max_body_size: i64,
    /// Keep the auth server's `Location` as it is instead of making it absolute.
    pub preserve_location_header: bool,
    /// Use the request's method for the auth request instead of GET.
    pub preserve_request_method: bool,
    /// `tls.caSecret`: PEM bundle of CAs to trust for the auth server (empty: the system's).
    pub root_cas: Vec<String>,
    /// `tls.certSecret`: client certificate chain and key (PEM) presented to the auth server.
    pub certificate: Option<(String, String)>,
    /// Largest auth response body read (-1: no limit); above it the answer is a bare 401.
    pub max_response_body_size: i64,
    /// Where a 401 from the auth server redirects to (302); empty for no redirect.
    pub auth_signin_url: String,
}

/// Traefik's `digestAuth`, users read from the Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestAuth {
    /// `(user, realm, md5(user:realm:password) in hex)`.
    pub users: Vec<(String, String, String)>,
    /// Realm (default `traefik`).
    pub realm: String,
    /// Remove `Authorization` before forwarding.
    pub remove_header: bool,
    /// Request header that receives the user name; empty for none.
    pub header_field: String,
}

/// Traefik's `circuitBreaker`. Durations in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitBreaker {
    /// The trip condition (`NetworkErrorRatio() > 0.5`, …), validated by the control plane.
    pub expression: String,
    /// How often the condition is evaluated (100ms).
    pub check_period_nanos: u64,
    /// How long the breaker answers `response_code` once tripped (10s).
    pub fallback_duration_nanos: u64,
    /// How long traffic ramps back up afterwards (10s).
    pub recovery_duration_nanos: u64,
    /// Status of the answers while tripped (503).
    pub response_code: u16,
}

/// Traefik's `passTLSClientCert`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PassTlsClientCert {
    /// Set `X-Forwarded-Tls-Client-Cert` to the chain's PEM bodies.
    pub pem: bool,
    /// Set `X-Forwarded-Tls-Client-Cert-Info` with these fields; `None` for no such header.
    pub info: Option<ClientCertInfo>,
}

/// The certificate fields `passTLSClientCert.info` selects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ClientCertInfo {
    /// `NA="<unix seconds>"`.
    pub not_after: bool,
    /// `NB="<unix seconds>"`.
    pub not_before: bool,
    /// `SAN="dns,email,ip,uri"`.
    pub sans: bool,
    /// `SerialNumber="<decimal>"`.
    pub serial_number: bool,
    /// Subject parts; `None` for no `Subject=`.
    pub subject: Option<DistinguishedNameParts>,
    /// Issuer parts (`organizational_unit` is never used, as in Traefik); `None` for no `Issuer=`.
    pub issuer: Option<DistinguishedNameParts>,
}

/// Which parts of a distinguished name are passed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DistinguishedNameParts {
    /// `C`.
    pub country: bool,
    /// `ST`.
    pub province: bool,
    /// `L`.
    pub locality: bool,
    /// `O`.
    pub organization: bool,
    /// `OU` (subject only).
    pub organizational_unit: bool,
    /// `CN`.
    pub common_name: bool,
    /// `SN` (the name's serialNumber attribute).
    pub serial_number: bool,
    /// `DC`.
    pub domain_component: bool,
}

/// Traefik's `grpcWeb`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GrpcWeb {
    /// Origins allowed by CORS (`*` for any).
    pub allow_origins: Vec<String>,
}
