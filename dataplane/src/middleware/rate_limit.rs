//! RateLimit: Traefik's token bucket per source (`golang.org/x/time/rate` semantics). A request
//! that would wait at most `maxDelay` (1/(2·rate), 500 ms under 1 req/s) is delayed then
//! served; a longer wait answers 429 with `Retry-After` (whole seconds, rounded up),
//! `X-Retry-In` (Go's duration text) and the body `Too Many Requests`.
//!
//! State is per worker (no locks on the request path): each worker keeps its own buckets,
//! keyed by middleware name and source, each with the **full** configured average and burst.
//! A client on one connection sees exactly Traefik's limits; traffic spread over N workers can
//! reach up to N × average. Dividing the rate instead would refuse requests Traefik serves
//! whenever a client's connections land unevenly on the workers. See docs/architecture.md.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use weir_proto::middleware as cfg;

use super::source::Source;
use super::{body, Exchange};
use crate::http::Body;

/// Traefik's cap on tracked sources per middleware.
const MAX_SOURCES: usize = 65_536;

/// A compiled RateLimit.
#[derive(Debug)]
pub struct RateLimit {
    name: String,
    /// Tokens per second (0 = unlimited).
    rate: f64,
    burst: f64,
    max_delay: Duration,
    /// Idle time after which a bucket is forgotten.
    ttl: Duration,
    source: Source,
}

/// One source's bucket.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    used: Instant,
}

/// Buckets of every RateLimit on this worker, by (middleware name, source).
pub type Buckets = HashMap<(String, String), Bucket>;

/// What the limiter decided for one request.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Serve after this delay (zero: now).
    After(Duration),
    /// Refuse: the wait would be this long.
    Refuse(Duration),
}

impl RateLimit {
    /// Compiles the definition.
    pub fn new(name: &str, c: &cfg::RateLimit) -> Result<RateLimit, String> {
        let rate = if c.average > 0 { c.average as f64 * 1e9 / c.period_nanos.max(1) as f64 } else { 0.0 };
        // Traefik: maxDelay = 1s / (2 · int(rate)), capped at 500 ms below 1 req/s.
        let max_delay = if rate <= 0.0 {
            Duration::ZERO
        } else if rate < 1.0 {
            Duration::from_millis(500)
        } else {
            Duration::from_nanos(1_000_000_000 / (rate as u64 * 2))
        };
        let ttl_secs = if rate >= 1.0 {
            2
        } else if rate > 0.0 {
            1 + (1.0 / rate) as u64
        } else {
            1
        };
        Ok(RateLimit {
            name: name.to_string(),
            rate,
            burst: c.burst.max(1) as f64,
            max_delay,
            ttl: Duration::from_secs(ttl_secs),
            source: Source::new(&c.source)?,
        })
    }

    /// Decides for the request at `now`, taking a token from its bucket when it is served.
    pub fn decide(&self, ex: &Exchange<'_>, buckets: &mut Buckets, now: Instant) -> Decision {
        if self.rate <= 0.0 {
            return Decision::After(Duration::ZERO);
        }
        let key = (self.name.clone(), self.source.key(ex));
        if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&key) {
            buckets.retain(|_, b| now.saturating_duration_since(b.used) < self.ttl);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, last: now, used: now });
        bucket.used = now;
        self.reserve(bucket, now)
    }

    /// `rate.Limiter.Reserve` then Traefik's maxDelay check (a refused reservation is cancelled).
    pub fn reserve(&self, b: &mut Bucket, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        let tokens = (b.tokens + elapsed * self.rate).min(self.burst) - 1.0;
        let wait = if tokens < 0.0 { Duration::from_secs_f64(-tokens / self.rate) } else { Duration::ZERO };
        if now > b.last {
            b.last = now;
        }
        if wait > self.max_delay {
            b.tokens = tokens + 1.0;
            return Decision::Refuse(wait);
        }
        b.tokens = tokens;
        Decision::After(wait)
    }
}

/// Traefik's 429: `Retry-After`, `X-Retry-In`, status text.
pub fn too_many_requests(wait: Duration) -> http::Response<Body> {
    let mut resp = body(StatusCode::TOO_MANY_REQUESTS, Bytes::from_static(b"Too Many Requests"));
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let h = resp.headers_mut();
    h.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    if let Ok(v) = HeaderValue::from_str(&go_duration(wait)) {
        h.insert("x-retry-in", v);
    }
    resp
}

/// Go's `time.Duration.String()`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let frac = |v: u128, unit: u128, suffix: &str| {
        let (int, rem) = (v / unit, v % unit);
        if rem == 0 {
            return format!("{int}{suffix}");
        }
        let width = unit.ilog10() as usize;
        let digits = format!("{rem:0width$}");
        format!("{int}.{}{suffix}", digits.trim_end_matches('0'))
    };
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => frac(ns, 1_000, "µs"),
        1_000_000..=999_999_999 => frac(ns, 1_000_000, "ms"),
        _ => {
            let hours = ns / 3_600_000_000_000;
            let minutes = (ns / 60_000_000_000) % 60;
            let secs = frac(ns % 60_000_000_000, 1_000_000_000, "s");
            match (hours, minutes) {
                (0, 0) => secs,
                (0, m) => format!("{m}m{secs}"),
                (h, m) => format!("{h}h{m}m{secs}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(average: i64, period_ms: u64, burst: i64) -> RateLimit {
        RateLimit::new(
            "ns-rl",
            &cfg::RateLimit {
                average,
                period_nanos: period_ms * 1_000_000,
                burst,
                source: cfg::SourceCriterion::RequestHost,
            },
        )
        .expect("valid")
    }

    #[test]
    fn token_bucket_decisions() {
        let ms = Duration::from_millis;
        // (case, average, period ms, burst, request offsets in ms, expected decisions)
        type Case = (&'static str, i64, u64, i64, Vec<u64>, Vec<Decision>);
        let cases: Vec<Case> = vec![
            (
                "burst then refuse",
                1,
                1000,
                2,
                vec![0, 0, 0],
                vec![Decision::After(ms(0)), Decision::After(ms(0)), Decision::Refuse(ms(1000))],
            ),
            (
                "refill after a period",
                1,
                1000,
                1,
                vec![0, 1000],
                vec![Decision::After(ms(0)), Decision::After(ms(0))],
            ),
            (
                "short wait is a delay",
                10,
                1000,
                1,
                vec![0, 60],
                vec![Decision::After(ms(0)), Decision::After(ms(40))],
            ),
            (
                "refused reservation is cancelled",
                1,
                1000,
                1,
                vec![0, 0, 1000],
                vec![Decision::After(ms(0)), Decision::Refuse(ms(1000)), Decision::After(ms(0))],
            ),
            (
                "slow rate waits up to 500ms",
                1,
                2000,
                1,
                vec![0, 1600],
                vec![Decision::After(ms(0)), Decision::After(ms(400))],
            ),
        ];
        for (name, average, period, burst, at, want) in cases {
            let l = limiter(average, period, burst);
            let start = Instant::now();
            let mut b = Bucket { tokens: l.burst, last: start, used: start };
            let got: Vec<Decision> = at.iter().map(|t| l.reserve(&mut b, start + ms(*t))).collect();
            let rounded: Vec<Decision> = got
                .into_iter()
                .map(|d| match d {
                    Decision::After(w) => Decision::After(ms(w.as_secs_f64().mul_add(1000.0, 0.5) as u64)),
                    Decision::Refuse(w) => Decision::Refuse(ms(w.as_secs_f64().mul_add(1000.0, 0.5) as u64)),
                })
                .collect();
            assert_eq!(rounded, want, "case {name}");
        }
    }

    #[test]
    fn unlimited_and_max_delay() {
        assert_eq!(limiter(0, 1000, 1).rate, 0.0);
        assert_eq!(limiter(10, 1000, 1).max_delay, Duration::from_millis(50));
        assert_eq!(limiter(1, 10_000, 1).max_delay, Duration::from_millis(500));
    }

    #[test]
    fn go_duration_text() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(15), "15ns"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(3661), "1h1m1s"),
            (Duration::from_nanos(999_999_999), "999.999999ms"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn refusal_headers() {
        let r = too_many_requests(Duration::from_millis(1500));
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2");
        assert_eq!(r.headers()["x-retry-in"], "1.5s");
    }
}
