//! InFlightReq: Traefik's (oxy `connlimit`) count of requests in progress per source; when
//! `amount` are already in progress the request gets **429** with the body
//! `max connections reached: <amount>`. A request counts until its response body has been
//! sent (the guard rides in the body).
//!
//! Counts are per worker (no locks on the request path), keyed by middleware name and source,
//! each worker allowing the full `amount`: see the RateLimit note and docs/architecture.md.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use http::StatusCode;

use weir_proto::middleware as cfg;

use super::source::Source;
use super::{body, Exchange};
use crate::http::Body;

/// Requests in progress on this worker, by (middleware name, source).
pub type Counts = Rc<RefCell<HashMap<(String, String), i64>>>;

/// A compiled InFlightReq.
#[derive(Debug)]
pub struct InFlightReq {
    name: String,
    amount: i64,
    source: Source,
}

/// Holds one request's place; releases it when dropped.
#[derive(Debug)]
pub struct Guard {
    counts: Counts,
    key: (String, String),
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut counts = self.counts.borrow_mut();
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n <= 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl InFlightReq {
    /// Compiles the definition.
    pub fn new(name: &str, c: &cfg::InFlightReq) -> Result<InFlightReq, String> {
        Ok(InFlightReq { name: name.to_string(), amount: c.amount, source: Source::new(&c.source)? })
    }

    /// Takes a place for the request, or answers 429.
    pub fn acquire(&self, ex: &Exchange<'_>, counts: &Counts) -> Result<Guard, Box<http::Response<Body>>> {
        let key = (self.name.clone(), self.source.key(ex));
        let mut map = counts.borrow_mut();
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= self.amount {
            if *n == 0 {
                map.remove(&key);
            }
            let text = format!("max connections reached: {}", self.amount);
            return Err(Box::new(body(StatusCode::TOO_MANY_REQUESTS, Bytes::from(text))));
        }
        *n += 1;
        Ok(Guard { counts: Rc::clone(counts), key })
    }
}

/// A response body that keeps a guard until it is dropped (sent or abandoned).
pub struct Guarded {
    /// The body.
    pub inner: Body,
    /// The place it holds.
    pub guard: Guard,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = crate::http::body::BodyError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::UpstreamBody;

    #[test]
    fn counts_per_source_and_releases() {
        let m = InFlightReq::new(
            "ns-if",
            &cfg::InFlightReq { amount: 2, source: cfg::SourceCriterion::RequestHeader("x-user".into()) },
        )
        .expect("valid");
        let counts = Counts::default();
        let method = http::Method::GET;
        let mut body = UpstreamBody::Full(None);
        let mut held = Vec::new();
        // (case, user, admitted)
        let cases = [
            ("first a", "a", true),
            ("second a", "a", true),
            ("third a refused", "a", false),
            ("b is another source", "b", true),
        ];
        for (name, user, admitted) in cases {
            let mut headers = http::HeaderMap::new();
            headers.insert("x-user", user.parse().expect("value"));
            let ex = Exchange {
                method: &method,
                headers: &mut headers,
                body: &mut body,
                path: "/".into(),
                query: None,
                host: "h".into(),
                peer: "127.0.0.1:1".parse().expect("addr"),
                tls: false,
                client_certs: &[],
                suppress_xff: false,
            };
            match m.acquire(&ex, &counts) {
                Ok(g) => {
                    assert!(admitted, "case {name}");
                    held.push(g);
                }
                Err(resp) => {
                    assert!(!admitted, "case {name}");
                    assert_eq!(resp.status(), 429);
                }
            }
        }
        drop(held);
        assert!(counts.borrow().is_empty(), "every place released");
    }
}
