//! RateLimit: Traefik's token bucket per source (`golang.org/x/time/rate` semantics). A request
//! that would wait at most `maxDelay` (1/(2·rate), 500 ms under 1 req/s) is delayed then
//! served; a longer wait answers 429 with `Retry-After` (whole seconds, rounded up),
//! `X-Retry-In` (Go's duration text) and the body `Too Many Requests`.
//!
//! With `redis` set the buckets live in Redis instead, shared by every worker and instance:
//! see `rate_limit_redis.rs` (the script) and `redis_client.rs` (the connections).
//!
//! In-memory buckets are shared by every worker (`shared::SharedLimits`), so the limit holds for
//! the whole instance however the kernel spreads connections. A bucket is one `AtomicU64` holding
//! its theoretical arrival time (GCRA): a reservation is one CAS that moves it by one emission
//! interval, which takes the same decisions as the token count of `x/time/rate` (tokens at `now`
//! = burst − (TAT − now)/interval, capped at burst when TAT ≤ now). A refused reservation is
//! simply not stored, which is Traefik's cancellation. See docs/architecture.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use weir_proto::middleware as cfg;

use super::shared::{self, SharedLimits};
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
    /// Buckets kept in Redis rather than in the worker.
    redis: Option<std::sync::Arc<super::redis_client::Settings>>,
}

/// One bucket on its own (tests and the Redis script's cross-check): the instance's buckets are
/// the atomics of `SharedLimits::buckets`.
#[derive(Debug)]
pub struct Bucket {
    base: Instant,
    tat: AtomicU64,
}

/// How often at most a full table is swept for full (forgettable) buckets.
const SWEEP_EVERY_NANOS: u64 = 100_000_000;

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
            redis: match &c.redis {
                None => None,
                Some(r) => Some(std::sync::Arc::new(super::redis_client::Settings::new(r)?)),
            },
        })
    }

    /// The Redis settings when the buckets are kept in Redis.
    pub fn redis(&self) -> Option<&std::sync::Arc<super::redis_client::Settings>> {
        self.redis.as_ref()
    }

    /// Decides for the request with the bucket kept in Redis (`pools`: the worker's). A Redis
    /// failure is `Err`, answered like Traefik: 500 "Could not insert/update bucket".
    pub async fn decide_redis(
        &self,
        settings: &std::sync::Arc<super::redis_client::Settings>,
        ex: &Exchange<'_>,
        pools: &super::redis_client::Pools,
    ) -> Result<Decision, super::redis_client::RedisError> {
        if self.rate <= 0.0 {
            return Ok(Decision::After(Duration::ZERO));
        }
        let key = super::rate_limit_redis::key(&self.name, &self.source.key(ex));
        let wait = pools.get(&self.name, settings).allow(&key, &self.redis_params()).await?;
        Ok(self.judge(wait))
    }

    /// The parameters the Redis script takes.
    pub fn redis_params(&self) -> super::rate_limit_redis::Params {
        super::rate_limit_redis::Params {
            rate: self.rate,
            burst: self.burst as i64,
            ttl: self.ttl,
            max_delay: self.max_delay,
        }
    }

    /// Traefik: a wait above maxDelay is refused, a shorter one is served after it.
    pub fn judge(&self, wait: Duration) -> Decision {
        if wait > self.max_delay {
            Decision::Refuse(wait)
        } else {
            Decision::After(wait)
        }
    }

    /// A full bucket, as a new source gets.
    pub fn new_bucket(&self, now: Instant) -> Bucket {
        Bucket { base: now, tat: AtomicU64::new(0) }
    }

    /// Decides for the request at `now`, taking a token from its instance-wide bucket when it is
    /// served.
    pub fn decide(&self, ex: &Exchange<'_>, limits: &SharedLimits, now: Instant) -> Decision {
        if self.rate <= 0.0 {
            return Decision::After(Duration::ZERO);
        }
        let key = shared::key(&self.name, &self.source.key(ex));
        let now_ns = limits.nanos(now);
        // The clock is read again after each load of the TAT: a worker preempted between taking
        // `now` and its CAS would otherwise be judged at a stale time, later than the TAT other
        // workers moved meanwhile, and refused a request Traefik serves.
        let clock = || limits.nanos(Instant::now()).max(now_ns);
        let buckets = limits.buckets.pin();
        if let Some(tat) = buckets.get(&key) {
            return self.reserve_at(tat, clock);
        }
        if buckets.len() >= MAX_SOURCES {
            // A bucket whose TAT has passed is full: forgetting it changes no decision. One
            // worker sweeps at a time, at most every SWEEP_EVERY_NANOS, so a flood of new
            // sources does not make every request walk the table.
            let next = limits.next_sweep.load(Ordering::Relaxed);
            if now_ns >= next
                && limits
                    .next_sweep
                    .compare_exchange(next, now_ns + SWEEP_EVERY_NANOS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                buckets.retain(|_, tat| tat.load(Ordering::Relaxed) > now_ns);
            }
        }
        let tat = buckets.get_or_insert_with(key, || AtomicU64::new(0));
        self.reserve_at(tat, clock)
    }

    /// `rate.Limiter.Reserve` then Traefik's maxDelay check, on a lone bucket (`&mut`: a lone
    /// bucket has one owner, as the Redis script's cross-check uses it).
    pub fn reserve(&self, b: &mut Bucket, now: Instant) -> Decision {
        let now_ns = u64::try_from(now.saturating_duration_since(b.base).as_nanos()).unwrap_or(u64::MAX);
        self.reserve_at(&b.tat, || now_ns)
    }

    /// The reservation on a TAT (ns): a CAS loop, lost only to a concurrent request of the same
    /// source. `clock` (ns) is read after each load of the TAT. A refused reservation leaves the
    /// TAT untouched (Traefik cancels it).
    fn reserve_at(&self, tat: &AtomicU64, clock: impl Fn() -> u64) -> Decision {
        let interval = 1e9 / self.rate;
        let burst_span = self.burst * interval;
        let mut current = tat.load(Ordering::Acquire);
        loop {
            let now_ns = clock();
            let next = current.max(now_ns) as f64 + interval;
            let wait_ns = next - now_ns as f64 - burst_span;
            let wait = if wait_ns > 0.0 { Duration::from_nanos(wait_ns as u64) } else { Duration::ZERO };
            if wait > self.max_delay {
                return Decision::Refuse(wait);
            }
            match tat.compare_exchange_weak(current, next as u64, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Decision::After(wait),
                Err(seen) => current = seen,
            }
        }
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
                redis: None,
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
            let mut b = l.new_bucket(start);
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

    /// Workers racing on one bucket: the CAS loop lets exactly the burst through at one instant,
    /// then exactly one more per emission interval.
    #[test]
    fn shared_bucket_holds_across_threads() {
        let l = std::sync::Arc::new(limiter(100, 1000, 5));
        let limits = std::sync::Arc::new(SharedLimits::default());
        let now = limits.base + Duration::from_secs(1);
        let served = |at: Instant| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (l, limits) = (l.clone(), limits.clone());
                    std::thread::spawn(move || {
                        let bucket = limits.buckets.pin();
                        let tat = bucket.get_or_insert_with(shared::key("ns-rl", "h"), || AtomicU64::new(0));
                        (0..1000)
                            .filter(|_| {
                                l.reserve_at(tat, || limits.nanos(at)) == Decision::After(Duration::ZERO)
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).sum::<usize>()
        };
        assert_eq!(served(now), 5, "the burst, once for all threads");
        assert_eq!(served(now + Duration::from_millis(30)), 3, "100/s refills 3 in 30 ms");
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
