//! Traefik's HTTP middlewares: compiled once per snapshot (regexes, CIDRs, user tables) into
//! [`Compiled`] values the table shares read-only, and run per request by [`run`] in the
//! router's order (first = outermost) between routing and the service call. Each middleware
//! decides sans-IO: it may answer (redirect, 401, 403, CORS preflight), rewrite the request
//! (path, headers) and leave a [`Hook`] that rewrites the response on the way back. A few
//! need the IO shell: Buffering reads the body, RateLimit waits out a short delay; per-worker
//! mutable state (rate-limit buckets, in-flight counts) lives in [`WorkerState`].

pub mod basic_auth;
pub mod buffering;
pub mod circuit_breaker;
pub mod compress;
pub mod content_type;
pub mod digest_auth;
pub mod encoded_characters;
pub mod errors;
pub mod forward_auth;
pub mod grpc_web;
pub mod headers;
pub mod htpasswd;
pub mod in_flight;
pub mod ip_allow_list;
pub mod pass_tls_client_cert;
pub mod path_rewrite;
pub mod rate_limit;
pub mod rate_limit_redis;
pub mod redirect;
pub mod redis_client;
pub mod retry;
pub mod shared;
pub mod source;
pub mod url;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};

use weir_proto::middleware::{Middleware, MiddlewareKind};

use crate::http::Body;
use crate::service::UpstreamBody;

/// A middleware definition the data plane cannot build (the control plane validates first, so
/// this means the planes disagree).
#[derive(Debug, thiserror::Error)]
#[error("middleware {name}: {reason}")]
pub struct MiddlewareError {
    /// Middleware name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Each router's chain (positions in the compiled list, outermost first), by router name.
pub type Chains = foldhash::HashMap<String, Box<[usize]>>;

/// One compiled middleware.
#[derive(Debug)]
pub enum Compiled {
    /// AddPrefix, StripPrefix(Regex), ReplacePath(Regex).
    Path(path_rewrite::PathRewrite),
    /// Headers.
    Headers(Box<headers::Headers>),
    /// RedirectScheme and RedirectRegex.
    Redirect(redirect::Redirect),
    /// BasicAuth.
    BasicAuth(basic_auth::BasicAuth),
    /// IPAllowList / IPWhiteList.
    IpAllowList(ip_allow_list::IpAllowList),
    /// Buffering.
    Buffering(buffering::Buffering),
    /// ContentType.
    ContentType,
    /// EncodedCharacters.
    EncodedCharacters(encoded_characters::EncodedCharacters),
    /// RateLimit.
    RateLimit(rate_limit::RateLimit),
    /// InFlightReq.
    InFlightReq(in_flight::InFlightReq),
    /// Compress.
    Compress(compress::Compress),
    /// Retry (wraps the service call: see [`call_service`]).
    Retry(retry::Retry),
    /// Errors.
    Errors(errors::Errors),
    /// ForwardAuth.
    ForwardAuth(Box<forward_auth::ForwardAuth>),
    /// DigestAuth.
    DigestAuth(Box<digest_auth::DigestAuth>),
    /// CircuitBreaker.
    CircuitBreaker(circuit_breaker::CircuitBreaker),
    /// PassTLSClientCert.
    PassTlsClientCert(pass_tls_client_cert::PassTlsClientCert),
    /// GrpcWeb.
    GrpcWeb(grpc_web::GrpcWeb),
}

impl Compiled {
    /// Compiles one definition.
    /// Compiles one definition; `service_id` finds a snapshot service by name.
    pub fn new(
        def: &Middleware,
        service_id: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Compiled, MiddlewareError> {
        let err = |reason: String| MiddlewareError { name: def.name.clone(), reason };
        Ok(match &def.kind {
            MiddlewareKind::AddPrefix(c) => Compiled::Path(path_rewrite::PathRewrite::add_prefix(c)),
            MiddlewareKind::StripPrefix(c) => Compiled::Path(path_rewrite::PathRewrite::strip_prefix(c)),
            MiddlewareKind::StripPrefixRegex(c) => {
                Compiled::Path(path_rewrite::PathRewrite::strip_prefix_regex(c).map_err(err)?)
            }
            MiddlewareKind::ReplacePath(c) => Compiled::Path(path_rewrite::PathRewrite::replace_path(c)),
            MiddlewareKind::ReplacePathRegex(c) => {
                Compiled::Path(path_rewrite::PathRewrite::replace_path_regex(c).map_err(err)?)
            }
            MiddlewareKind::Headers(c) => Compiled::Headers(Box::new(headers::Headers::new(c).map_err(err)?)),
            MiddlewareKind::RedirectScheme(c) => {
                Compiled::Redirect(redirect::Redirect::scheme(c).map_err(err)?)
            }
            MiddlewareKind::RedirectRegex(c) => {
                Compiled::Redirect(redirect::Redirect::regex(c).map_err(err)?)
            }
            MiddlewareKind::BasicAuth(c) => Compiled::BasicAuth(basic_auth::BasicAuth::new(c).map_err(err)?),
            MiddlewareKind::IpAllowList(c) => {
                Compiled::IpAllowList(ip_allow_list::IpAllowList::new(c).map_err(err)?)
            }
            MiddlewareKind::Buffering(c) => Compiled::Buffering(buffering::Buffering::new(c)),
            MiddlewareKind::ContentType => Compiled::ContentType,
            MiddlewareKind::EncodedCharacters(c) => {
                Compiled::EncodedCharacters(encoded_characters::EncodedCharacters::new(c))
            }
            MiddlewareKind::RateLimit(c) => {
                Compiled::RateLimit(rate_limit::RateLimit::new(&def.name, c).map_err(err)?)
            }
            MiddlewareKind::Retry(c) => Compiled::Retry(retry::Retry::new(c)),
            MiddlewareKind::CircuitBreaker(c) => {
                Compiled::CircuitBreaker(circuit_breaker::CircuitBreaker::new(&def.name, c).map_err(err)?)
            }
            MiddlewareKind::DigestAuth(c) => {
                Compiled::DigestAuth(Box::new(digest_auth::DigestAuth::new(c).map_err(err)?))
            }
            MiddlewareKind::ForwardAuth(c) => {
                Compiled::ForwardAuth(Box::new(forward_auth::ForwardAuth::new(c).map_err(err)?))
            }
            MiddlewareKind::Errors(c) => {
                let id = service_id(&c.service)
                    .ok_or_else(|| err(format!("error page service {} is not defined", c.service)))?;
                Compiled::Errors(errors::Errors::new(c, id).map_err(err)?)
            }
            MiddlewareKind::Compress(c) => Compiled::Compress(compress::Compress::new(c).map_err(err)?),
            MiddlewareKind::InFlightReq(c) => {
                Compiled::InFlightReq(in_flight::InFlightReq::new(&def.name, c).map_err(err)?)
            }
            MiddlewareKind::PassTlsClientCert(c) => {
                Compiled::PassTlsClientCert(pass_tls_client_cert::PassTlsClientCert::new(c))
            }
            MiddlewareKind::GrpcWeb(c) => Compiled::GrpcWeb(grpc_web::GrpcWeb::new(c)),
        })
    }

    async fn request(&self, ex: &mut Exchange<'_>, cx: &Cx<'_>) -> Outcome {
        let state = &cx.worker.middleware_state;
        match self {
            Compiled::Path(m) => m.request(ex),
            Compiled::Headers(m) => m.request(ex),
            Compiled::Redirect(m) => m.request(ex),
            Compiled::BasicAuth(m) => m.request(ex),
            Compiled::IpAllowList(m) => m.request(ex),
            Compiled::EncodedCharacters(m) => m.request(ex),
            Compiled::PassTlsClientCert(m) => m.request(ex),
            Compiled::GrpcWeb(m) => m.request(ex).await,
            Compiled::Compress(m) => m.request(ex),
            // The service call is wrapped by `call_service`.
            Compiled::Retry(_) => Outcome::Next,
            Compiled::Errors(m) => m.request(ex),
            Compiled::ForwardAuth(m) => m.request(ex, cx).await,
            Compiled::DigestAuth(m) => m.request(ex, &state.digest_nonces),
            Compiled::CircuitBreaker(m) => {
                let now = Instant::now();
                if m.allow(&state.limits.breakers, now) {
                    Outcome::NextWith(Hook::Breaker(now))
                } else {
                    Outcome::Respond(status_text(m.code))
                }
            }
            Compiled::ContentType => {
                Outcome::NextWith(Hook::ContentType { head: *ex.method == Method::HEAD })
            }
            Compiled::Buffering(m) => match m.request(ex).await {
                Ok(()) => Outcome::NextWith(Hook::Buffering),
                Err(resp) => Outcome::Respond(resp),
            },
            Compiled::RateLimit(m) => {
                let decision = match m.redis() {
                    None => m.decide(ex, &state.limits, Instant::now()),
                    Some(redis) => match m.decide_redis(redis, ex, &state.redis).await {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::error!("rate limit: could not insert/update bucket: {e}");
                            return Outcome::Respond(go_error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "Could not insert/update bucket",
                            ));
                        }
                    },
                };
                match decision {
                    rate_limit::Decision::After(wait) => {
                        if !wait.is_zero() {
                            monoio::time::sleep(wait).await;
                        }
                        Outcome::Next
                    }
                    rate_limit::Decision::Refuse(wait) => {
                        Outcome::Respond(rate_limit::too_many_requests(wait))
                    }
                }
            }
            Compiled::InFlightReq(m) => match m.acquire(ex, &state.limits) {
                Ok(guard) => Outcome::NextWith(Hook::InFlight(guard)),
                Err(resp) => Outcome::Respond(*resp),
            },
        }
    }

    async fn response(&self, hook: Hook, mut resp: Response<Body>, cx: &Cx<'_>) -> Response<Body> {
        match (self, hook) {
            (Compiled::Errors(m), Hook::Errors(original)) => return m.response(*original, resp, cx).await,
            (Compiled::ForwardAuth(m), Hook::AuthCookies(cookies)) => {
                m.response(&cookies, resp.headers_mut())
            }
            (Compiled::CircuitBreaker(m), Hook::Breaker(start)) => {
                let now = Instant::now();
                let breakers = &cx.worker.middleware_state.limits.breakers;
                m.record(breakers, resp.status().as_u16(), now.saturating_duration_since(start), now);
            }
            (Compiled::Headers(m), Hook::Headers(state)) => m.response(&state, resp.headers_mut()),
            (Compiled::Buffering(m), Hook::Buffering) => return m.response(resp).await,
            (Compiled::Compress(m), Hook::Compress(encoding)) => return m.response(encoding, resp).await,
            (Compiled::GrpcWeb(m), Hook::GrpcWeb(state)) => return m.response(state, resp),
            (_, Hook::ContentType { head }) => return content_type::sniff(resp, head).await,
            (_, Hook::Authenticated(user)) => {
                resp.extensions_mut().insert(crate::observe::ClientUsername(user));
            }
            (_, Hook::InFlight(guard)) => {
                return resp.map(|inner| Body::local(in_flight::Guarded { inner, guard }));
            }
            _ => {}
        }
        resp
    }
}

/// A worker's mutable middleware state, kept across snapshots (keyed by middleware name). The
/// counters Traefik keeps per process (RateLimit, InFlightReq, CircuitBreaker) are in `limits`,
/// shared by every worker; the rest is the worker's own.
#[derive(Debug, Default)]
pub struct WorkerState {
    /// RateLimit buckets, InFlightReq counts and CircuitBreaker states of the instance.
    pub limits: std::sync::Arc<shared::SharedLimits>,
    /// Connections to the Redis of RateLimits with `redis`.
    pub redis: redis_client::Pools,
    /// DigestAuth nonce counts.
    pub digest_nonces: digest_auth::NonceCounts,
}

/// The request as middlewares see and change it.
pub struct Exchange<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request headers (already through the entrypoint's forwarded-header handling).
    pub headers: &'a mut HeaderMap,
    /// Request body (Buffering replaces it with the buffered copy).
    pub body: &'a mut UpstreamBody,
    /// The escaped path the backend will receive (Go's `EscapedPath`).
    pub path: String,
    /// The raw query, without `?`.
    pub query: Option<String>,
    /// Go's `req.Host`: the authority of an absolute-form target, else the `Host` header.
    pub host: String,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The request arrived over TLS.
    pub tls: bool,
    /// The client's certificate chain from the TLS handshake (empty without mutual TLS).
    pub client_certs: &'a [rustls::pki_types::CertificateDer<'static>],
    /// `X-Forwarded-For` set to "" by a Headers middleware: the proxy must not append.
    pub suppress_xff: bool,
}

impl Exchange<'_> {
    /// Go's `req.RequestURI` after rewrites: escaped path and query.
    pub fn request_uri(&self) -> String {
        let path = if self.path.is_empty() { "/" } else { &self.path };
        match &self.query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }
}

/// What one middleware decided.
pub enum Outcome {
    /// Pass the request on.
    Next,
    /// Pass it on, and rewrite the response on the way back.
    NextWith(Hook),
    /// Answer now; inner middlewares and the service are not called.
    Respond(Response<Body>),
}

/// Per-request state a middleware needs to rewrite the response.
#[derive(Debug)]
pub enum Hook {
    /// Headers middleware.
    Headers(headers::ResponseState),
    /// Buffering: read the whole response.
    Buffering,
    /// ContentType: sniff an untyped response (not for HEAD).
    ContentType {
        /// The request was a HEAD.
        head: bool,
    },
    /// InFlightReq: the place held until the response body is sent.
    InFlight(in_flight::Guard),
    /// Compress: the encoding the request chose.
    Compress(compress::Encoding),
    /// Errors: what the page request needs.
    Errors(Box<errors::Original>),
    /// ForwardAuth: the auth server's `Set-Cookie` values.
    AuthCookies(Vec<HeaderValue>),
    /// CircuitBreaker: when the request went in.
    Breaker(Instant),
    /// GrpcWeb: how to turn the gRPC response back into gRPC-Web.
    GrpcWeb(grpc_web::ResponseState),
    /// BasicAuth / DigestAuth: the accepted user, for the access log's ClientUsername.
    Authenticated(String),
}

/// What middlewares reach beyond the request: the worker (its state, its pool) and the
/// generation the request is served with (to call a service).
pub struct Cx<'a> {
    /// The worker serving the request.
    pub worker: &'a std::rc::Rc<crate::worker::Worker>,
    /// The table generation of the request.
    pub generation: &'a std::rc::Rc<crate::worker::Generation>,
}

/// Response rewrites owed by the middlewares a request went through, innermost last.
#[derive(Debug, Default)]
pub struct After {
    hooks: Vec<(usize, Hook)>,
    /// The outermost Retry the request went through.
    retry: Option<usize>,
    /// The innermost Buffering with a `retryExpression` the request went through.
    buffer_retry: Option<usize>,
}

impl After {
    /// Applies the hooks, innermost first (as Go's nested response writers do).
    pub async fn finish(
        self,
        middlewares: &[Compiled],
        cx: &Cx<'_>,
        mut resp: Response<Body>,
    ) -> Response<Body> {
        for (id, hook) in self.hooks.into_iter().rev() {
            resp = middlewares[id].response(hook, resp, cx).await;
        }
        resp
    }
}

/// Runs the request side of `chain` (middleware ids, outermost first). `Err` is a response
/// a middleware answered with, already rewritten by the middlewares outside it.
pub async fn run(
    chain: &[usize],
    middlewares: &[Compiled],
    cx: &Cx<'_>,
    ex: &mut Exchange<'_>,
) -> Result<After, Box<Response<Body>>> {
    let mut after = After::default();
    for &id in chain {
        if let Compiled::Retry(_) = middlewares[id] {
            after.retry.get_or_insert(id);
        }
        if let Compiled::Buffering(buffering::Buffering { retry: Some(_), .. }) = middlewares[id] {
            after.buffer_retry = Some(id);
        }
        match middlewares[id].request(ex, cx).await {
            Outcome::Next => {}
            Outcome::NextWith(hook) => after.hooks.push((id, hook)),
            Outcome::Respond(resp) => return Err(Box::new(after.finish(middlewares, cx, resp).await)),
        }
    }
    Ok(after)
}

/// Calls the router's service, through the Retry the request went through, if any.
pub async fn call_service(
    after: Option<&After>,
    middlewares: &[Compiled],
    worker: std::rc::Rc<crate::worker::Worker>,
    generation: std::rc::Rc<crate::worker::Generation>,
    target: crate::table::ServiceId,
    req: http::Request<UpstreamBody>,
) -> Response<Body> {
    let expr = match after.and_then(|a| a.buffer_retry).map(|id| &middlewares[id]) {
        Some(Compiled::Buffering(buffering::Buffering { retry: Some(expr), .. })) => expr,
        _ => return call_once(after, middlewares, worker, generation, target, req).await,
    };
    // Buffering's retryExpression (oxy): the buffered request is sent again while the
    // expression holds for the attempt's status.
    let (parts, body) = req.into_parts();
    let bytes = match body {
        UpstreamBody::Full(b) => b.unwrap_or_default(),
        other => {
            let req = http::Request::from_parts(parts, other);
            return call_once(after, middlewares, worker, generation, target, req).await;
        }
    };
    let mut attempt = 1;
    loop {
        let mut req = http::Request::new(UpstreamBody::full(bytes.clone()));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = parts.uri.clone();
        *req.version_mut() = parts.version;
        *req.headers_mut() = parts.headers.clone();
        *req.extensions_mut() = parts.extensions.clone();
        let (w, g) = (std::rc::Rc::clone(&worker), std::rc::Rc::clone(&generation));
        let resp = call_once(after, middlewares, w, g, target, req).await;
        let seen = weir_proto::retry_expression::Attempt {
            attempt,
            status: resp.status().as_u16(),
            method: parts.method.as_str(),
        };
        if attempt > buffering::MAX_RETRY_ATTEMPTS || !expr.eval(&seen) {
            return resp;
        }
        tracing::debug!(attempt, status = seen.status, "buffering: retrying the buffered request");
        attempt += 1;
    }
}

/// One call of the service, through the Retry the request went through, if any.
async fn call_once(
    after: Option<&After>,
    middlewares: &[Compiled],
    worker: std::rc::Rc<crate::worker::Worker>,
    generation: std::rc::Rc<crate::worker::Generation>,
    target: crate::table::ServiceId,
    req: http::Request<UpstreamBody>,
) -> Response<Body> {
    if let Some(Compiled::Retry(r)) = after.and_then(|a| a.retry).map(|id| &middlewares[id]) {
        return r.call(worker, generation, target, req).await;
    }
    crate::service::forward(worker, generation, target, req).await
}

/// Compiles every definition of a snapshot; ids are positions.
pub fn compile(
    defs: &[std::sync::Arc<Middleware>],
    service_id: &dyn Fn(&str) -> Option<usize>,
) -> Result<Vec<Compiled>, MiddlewareError> {
    defs.iter().map(|d| Compiled::new(d, service_id)).collect()
}

fn body(status: StatusCode, text: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::full(text));
    *resp.status_mut() = status;
    resp
}

/// Go's `http.Error(rw, msg, status)`: text/plain, nosniff, message and a newline.
pub fn go_error(status: StatusCode, msg: &str) -> Response<Body> {
    let mut resp = body(status, Bytes::from(format!("{msg}\n")));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// `rw.WriteHeader(status); rw.Write(StatusText(status))` under Traefik's disabled content
/// sniffing: the bare status text and no `Content-Type`.
pub fn status_text(status: StatusCode) -> Response<Body> {
    body(status, Bytes::from_static(go_status_text(status).as_bytes()))
}

/// Go's `http.StatusText`, where it differs from the `http` crate's reason phrases.
pub fn go_status_text(status: StatusCode) -> &'static str {
    match status.as_u16() {
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        416 => "Requested Range Not Satisfiable",
        _ => status.canonical_reason().unwrap_or(""),
    }
}
