//! InFlightReq: Traefik's (oxy `connlimit`) count of requests in progress per source; when
//! `amount` are already in progress the request gets **429** with the body
//! `max connections reached: <amount>`. A request counts until its response body has been
//! sent (the guard rides in the body).
//!
//! Counts are held for the whole instance (`shared::SharedLimits`), keyed by middleware name and
//! source: one `AtomicI64` per key, taken with a CAS loop that never passes `amount`. An entry
//! whose count falls to zero is removed so idle sources cost no memory; to remove it safely while
//! another worker may have just looked it up, the releasing side first CASes 0 into [`RETIRED`],
//! and a taker that finds a retired counter drops it from the map and looks again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;

use weir_proto::middleware as cfg;

use super::shared;
use super::source::Source;
use super::{body, Exchange};
use crate::http::Body;

/// Requests in progress in the instance, by `name\0source`.
pub type Counts = papaya::HashMap<String, Arc<AtomicI64>>;

/// The value of a counter that has been taken out of the map.
const RETIRED: i64 = i64::MIN;

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
    limits: Arc<shared::SharedLimits>,
    key: String,
    count: Arc<AtomicI64>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1
            && self.count.compare_exchange(0, RETIRED, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            forget(&self.limits.in_flight, &self.key, &self.count);
        }
    }
}

/// Removes `count` from the map if it is still the entry of `key`.
fn forget(counts: &Counts, key: &str, count: &Arc<AtomicI64>) {
    let _ = counts.pin().remove_if(key, |_, v| Arc::ptr_eq(v, count));
}

impl InFlightReq {
    /// Compiles the definition.
    pub fn new(name: &str, c: &cfg::InFlightReq) -> Result<InFlightReq, String> {
        Ok(InFlightReq { name: name.to_string(), amount: c.amount, source: Source::new(&c.source)? })
    }

    /// Takes a place for the request, or answers 429.
    pub fn acquire(
        &self,
        ex: &Exchange<'_>,
        limits: &Arc<shared::SharedLimits>,
    ) -> Result<Guard, Box<http::Response<Body>>> {
        let key = shared::key(&self.name, &self.source.key(ex));
        loop {
            let count = {
                let map = limits.in_flight.pin();
                match map.get(&key) {
                    Some(c) => Arc::clone(c),
                    None => Arc::clone(map.get_or_insert_with(key.clone(), || Arc::new(AtomicI64::new(0)))),
                }
            };
            let amount = self.amount;
            let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != RETIRED && n < amount).then_some(n + 1)
            });
            match taken {
                Ok(_) => return Ok(Guard { limits: Arc::clone(limits), key, count }),
                // Retired by a release racing with this lookup: drop it and take a fresh one.
                Err(RETIRED) => forget(&limits.in_flight, &key, &count),
                Err(n) => {
                    // `amount` ≤ 0 refuses everyone: leave no zero entry behind.
                    if n == 0
                        && count.compare_exchange(0, RETIRED, Ordering::AcqRel, Ordering::Relaxed).is_ok()
                    {
                        forget(&limits.in_flight, &key, &count);
                    }
                    let text = format!("max connections reached: {}", self.amount);
                    return Err(Box::new(body(StatusCode::TOO_MANY_REQUESTS, Bytes::from(text))));
                }
            }
        }
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

    /// A GET for host `h` from 127.0.0.1 with `headers`.
    fn exchange<'a>(
        method: &'a http::Method,
        headers: &'a mut http::HeaderMap,
        body: &'a mut UpstreamBody,
    ) -> Exchange<'a> {
        Exchange {
            method,
            headers,
            body,
            path: "/".into(),
            query: None,
            host: "h".into(),
            peer: "127.0.0.1:1".parse().expect("addr"),
            tls: false,
            client_certs: &[],
            suppress_xff: false,
        }
    }

    #[test]
    fn counts_per_source_and_releases() {
        let m = InFlightReq::new(
            "ns-if",
            &cfg::InFlightReq { amount: 2, source: cfg::SourceCriterion::RequestHeader("x-user".into()) },
        )
        .expect("valid");
        let limits = Arc::new(shared::SharedLimits::default());
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
            let ex = exchange(&method, &mut headers, &mut body);
            match m.acquire(&ex, &limits) {
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
        assert!(limits.in_flight.pin().is_empty(), "every place released");
    }

    /// Threads taking and releasing places of one source never hold more than `amount` at once,
    /// and the entry is gone when all are released (the retire protocol under contention).
    #[test]
    fn amount_holds_across_threads() {
        use std::sync::atomic::AtomicUsize;
        let m = Arc::new(
            InFlightReq::new(
                "ns-if",
                &cfg::InFlightReq { amount: 2, source: cfg::SourceCriterion::RequestHost },
            )
            .expect("valid"),
        );
        let limits = Arc::new(shared::SharedLimits::default());
        let (held, max, admitted) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (m, limits, held, max, admitted) =
                    (m.clone(), limits.clone(), held.clone(), max.clone(), admitted.clone());
                std::thread::spawn(move || {
                    let method = http::Method::GET;
                    let mut headers = http::HeaderMap::new();
                    let mut body = UpstreamBody::Full(None);
                    for _ in 0..20_000 {
                        let ex = exchange(&method, &mut headers, &mut body);
                        if let Ok(g) = m.acquire(&ex, &limits) {
                            let n = held.fetch_add(1, Ordering::SeqCst) + 1;
                            max.fetch_max(n, Ordering::SeqCst);
                            admitted.fetch_add(1, Ordering::Relaxed);
                            held.fetch_sub(1, Ordering::SeqCst);
                            drop(g);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(max.load(Ordering::SeqCst) <= 2, "at most amount in flight");
        assert!(admitted.load(Ordering::Relaxed) > 0);
        assert!(limits.in_flight.pin().is_empty(), "released entries are forgotten");
    }
}
