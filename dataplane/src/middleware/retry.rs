//! Retry: calls the service again when the request never reached a backend (connection
//! refused, dial timeout, unresolved host, TLS failure), up to `attempts` in all, waiting an
//! exponential backoff from `initialInterval` that doubles over the attempts (Traefik's
//! multiplier 2^(1/(attempts-1)), without its ±50% jitter). A 503 `no available server` is not
//! retried, as in Traefik. With `status` (Traefik 3.6) responses in those ranges are retried
//! too, for idempotent methods unless `retryNonIdempotentMethod`; `timeout` bounds the whole
//! retrying. The body is kept in memory to be replayed, up to `maxRequestBodyBytes`; a larger
//! body is sent once. Inner middlewares' request rewrites are applied once, before the first
//! attempt (they are deterministic, so re-running them would give the same request).

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response};
use http_body_util::BodyExt;

use weir_proto::middleware as cfg;

use crate::http::Body;
use crate::service::forward::UpstreamFailure;
use crate::service::UpstreamBody;
use crate::table::ServiceId;
use crate::worker::{Generation, Worker};

/// A compiled Retry.
#[derive(Debug)]
pub struct Retry {
    attempts: u32,
    initial: Duration,
    timeout: Option<Duration>,
    status: Vec<(u16, u16)>,
    max_body: Option<u64>,
    on_network_error: bool,
    non_idempotent: bool,
}

/// What to do after one attempt.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Hand this response to the client.
    Answer,
    /// Try again after this wait.
    RetryAfter(Duration),
}

impl Retry {
    /// Compiles the definition.
    pub fn new(c: &cfg::Retry) -> Retry {
        Retry {
            attempts: c.attempts.max(1),
            initial: Duration::from_nanos(c.initial_interval_nanos),
            timeout: (c.timeout_nanos > 0).then(|| Duration::from_nanos(c.timeout_nanos)),
            status: c.status.clone(),
            max_body: u64::try_from(c.max_request_body_bytes).ok(),
            on_network_error: !c.disable_retry_on_network_error,
            non_idempotent: c.retry_non_idempotent_method,
        }
    }

    /// The backoff before retry number `n` (1 for the first retry).
    pub fn backoff(&self, n: u32) -> Duration {
        if self.attempts < 2 || self.initial.is_zero() {
            return Duration::ZERO;
        }
        let multiplier = 2f64.powf(1.0 / f64::from(self.attempts - 1));
        self.initial.mul_f64(multiplier.powi(n.saturating_sub(1) as i32))
    }

    /// Decides after attempt number `attempt` (1-based) answered `resp`, `elapsed` after the first.
    pub fn next(&self, attempt: u32, method: &Method, resp: &Response<Body>, elapsed: Duration) -> Next {
        if attempt >= self.attempts {
            return Next::Answer;
        }
        let network = resp.extensions().get::<UpstreamFailure>().is_some_and(|f| f.before_sending);
        let idempotent = self.non_idempotent || !matches!(method.as_str(), "POST" | "PATCH" | "LOCK");
        let code = resp.status().as_u16();
        let by_status = idempotent && self.status.iter().any(|(a, b)| (*a..=*b).contains(&code));
        if !(by_status || (network && self.on_network_error)) {
            return Next::Answer;
        }
        let wait = self.backoff(attempt);
        if self.timeout.is_some_and(|t| elapsed + wait > t) {
            return Next::Answer;
        }
        Next::RetryAfter(wait)
    }

    /// Forwards `req` to the service, retrying as configured.
    pub async fn call(
        &self,
        worker: Rc<Worker>,
        generation: Rc<Generation>,
        target: ServiceId,
        req: Request<UpstreamBody>,
    ) -> Response<Body> {
        if self.attempts < 2 {
            return crate::service::forward(worker, generation, target, req).await;
        }
        let (parts, body) = req.into_parts();
        let body = match replayable(body, self.max_body).await {
            Ok(bytes) => bytes,
            Err(once) => {
                let req = Request::from_parts(parts, once);
                return crate::service::forward(worker, generation, target, req).await;
            }
        };
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            let req = Request::from_parts(parts.clone(), UpstreamBody::full(body.clone()));
            let resp = crate::service::forward(Rc::clone(&worker), Rc::clone(&generation), target, req).await;
            match self.next(attempt, &parts.method, &resp, start.elapsed()) {
                Next::Answer if attempt > 1 => {
                    // For the access log's RetryAttempts and traefik_service_retries_total.
                    let mut resp = resp;
                    resp.extensions_mut().insert(crate::observe::Retried(attempt - 1));
                    return resp;
                }
                Next::Answer => return resp,
                Next::RetryAfter(wait) => {
                    tracing::debug!(attempt = attempt + 1, "retrying request");
                    drop(resp);
                    if !wait.is_zero() {
                        monoio::time::sleep(wait).await;
                    }
                    attempt += 1;
                }
            }
        }
    }
}

/// The whole body in memory, or (over `max`, or unreadable) the body to send once.
async fn replayable(body: UpstreamBody, max: Option<u64>) -> Result<Bytes, UpstreamBody> {
    let mut incoming = match body {
        UpstreamBody::Full(b) => return Ok(b.unwrap_or_default()),
        UpstreamBody::Incoming(b) if hyper::body::Body::is_end_stream(&b) => return Ok(Bytes::new()),
        UpstreamBody::Incoming(b) => b,
        other => return Err(other),
    };
    let mut chunks = VecDeque::new();
    let mut total = 0u64;
    while let Some(frame) = incoming.frame().await {
        let Ok(frame) = frame else {
            return Err(UpstreamBody::Prefixed { prefix: chunks, rest: incoming });
        };
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            chunks.push_back(data);
            if max.is_some_and(|m| total > m) {
                return Err(UpstreamBody::Prefixed { prefix: chunks, rest: incoming });
            }
        }
    }
    let mut all = BytesMut::with_capacity(total as usize);
    for c in chunks {
        all.extend_from_slice(&c);
    }
    Ok(all.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(
        attempts: u32,
        initial_ms: u64,
        timeout_ms: u64,
        status: &[(u16, u16)],
        non_idempotent: bool,
    ) -> Retry {
        Retry::new(&cfg::Retry {
            attempts,
            initial_interval_nanos: initial_ms * 1_000_000,
            timeout_nanos: timeout_ms * 1_000_000,
            status: status.to_vec(),
            max_request_body_bytes: 1024,
            disable_retry_on_network_error: false,
            retry_non_idempotent_method: non_idempotent,
        })
    }

    fn resp(status: u16, network: Option<bool>) -> Response<Body> {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = http::StatusCode::from_u16(status).expect("status");
        if let Some(before_sending) = network {
            r.extensions_mut().insert(UpstreamFailure { before_sending });
        }
        r
    }

    #[test]
    fn decisions() {
        let ms = Duration::from_millis;
        let net = retry(3, 0, 0, &[], false);
        let statuses = retry(3, 100, 0, &[(500, 599)], false);
        let bounded = retry(3, 100, 150, &[(500, 599)], false);
        let post_too = retry(3, 0, 0, &[(503, 503)], true);
        // (case, middleware, attempt, method, response, elapsed ms, decision)
        let cases = [
            ("connect refused", &net, 1, Method::GET, resp(502, Some(true)), 0, Next::RetryAfter(ms(0))),
            (
                "non-idempotent connect refused",
                &net,
                1,
                Method::POST,
                resp(502, Some(true)),
                0,
                Next::RetryAfter(ms(0)),
            ),
            ("last attempt", &net, 3, Method::GET, resp(502, Some(true)), 0, Next::Answer),
            ("reached the backend", &net, 1, Method::GET, resp(502, Some(false)), 0, Next::Answer),
            ("backend answer", &net, 1, Method::GET, resp(500, None), 0, Next::Answer),
            ("no server", &net, 1, Method::GET, resp(503, None), 0, Next::Answer),
            ("status retried", &statuses, 1, Method::GET, resp(500, None), 0, Next::RetryAfter(ms(100))),
            ("backoff grows", &statuses, 2, Method::GET, resp(500, None), 0, Next::RetryAfter(ms(141))),
            ("status not listed", &statuses, 1, Method::GET, resp(404, None), 0, Next::Answer),
            ("POST status not retried", &statuses, 1, Method::POST, resp(500, None), 0, Next::Answer),
            (
                "POST status retried when asked",
                &post_too,
                1,
                Method::POST,
                resp(503, None),
                0,
                Next::RetryAfter(ms(0)),
            ),
            ("timeout", &bounded, 2, Method::GET, resp(500, None), 100, Next::Answer),
        ];
        for (name, m, attempt, method, r, elapsed, want) in cases {
            let got = match m.next(attempt, &method, &r, ms(elapsed)) {
                Next::RetryAfter(d) => Next::RetryAfter(ms(d.as_millis() as u64)),
                a => a,
            };
            assert_eq!(got, want, "case {name}");
        }
        assert_eq!(statuses.backoff(3), ms(200), "twice the initial interval at the last retry");
    }
}
