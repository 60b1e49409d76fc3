//! CircuitBreaker (oxy `cbreaker`): while standing by, every response is recorded in a 10 s
//! rolling window (status, latency; 502 and 504 count as network errors) and, at most every
//! `checkPeriod`, the expression is evaluated; when it holds the breaker trips: for
//! `fallbackDuration` every request is answered `responseCode` with its status text, without
//! calling the service; then for `recoveryDuration` a growing share of requests is let through
//! (the share grows linearly with time), and the breaker trips again if the expression holds.
//!
//! One breaker per middleware name for the whole instance (`shared::SharedLimits`), as oxy keeps
//! one per middleware: every worker records into the same window and reads the same phase. The
//! request path touches atomics only: a few `fetch_add`s into the current one-second bucket, a
//! load of the phase word. A bucket is cleared by the one recorder that wins a CAS on its second
//! when the window rolls (a sample racing with that clearing may be dropped: at most a few per
//! second); the expression is evaluated by the one recorder that wins the CAS on the next check
//! time, over a copy of the live buckets.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;

use weir_proto::breaker::{Expr, Metrics};
use weir_proto::middleware as cfg;

/// Window length in one-second buckets.
const BUCKETS: u64 = 10;
/// Latencies kept per bucket for quantiles.
const LATENCIES_PER_BUCKET: usize = 1024;
/// Status codes counted one by one (HTTP has three digits).
const CODES: usize = 1000;
/// A bucket's `second` while one recorder clears it.
const CLEARING: u64 = u64::MAX;

/// A compiled CircuitBreaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    expr: Expr,
    check_period: Duration,
    fallback: Duration,
    recovery: Duration,
    /// The status of tripped answers.
    pub code: StatusCode,
}

/// The phase, packed in one word: the top two bits say which, the rest is a time in ns since
/// the state's base (until when for tripped, since when for recovering).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Standby,
    Tripped { until: u64 },
    Recovering { since: u64 },
}

const TIME_MASK: u64 = (1 << 62) - 1;

impl Phase {
    fn pack(self) -> u64 {
        match self {
            Phase::Standby => 0,
            Phase::Tripped { until } => (1 << 62) | (until & TIME_MASK),
            Phase::Recovering { since } => (2 << 62) | (since & TIME_MASK),
        }
    }

    fn unpack(word: u64) -> Phase {
        match word >> 62 {
            1 => Phase::Tripped { until: word & TIME_MASK },
            2 => Phase::Recovering { since: word & TIME_MASK },
            _ => Phase::Standby,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    second: AtomicU64,
    total: AtomicU64,
    network_errors: AtomicU64,
    codes: Box<[AtomicU32]>,
    latencies_len: AtomicU32,
    latencies_ms: Box<[AtomicU64]>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            second: AtomicU64::new(0),
            total: AtomicU64::new(0),
            network_errors: AtomicU64::new(0),
            codes: (0..CODES).map(|_| AtomicU32::new(0)).collect(),
            latencies_len: AtomicU32::new(0),
            latencies_ms: (0..LATENCIES_PER_BUCKET).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn clear(&self) {
        self.total.store(0, Ordering::Relaxed);
        self.network_errors.store(0, Ordering::Relaxed);
        for c in self.codes.iter() {
            c.store(0, Ordering::Relaxed);
        }
        self.latencies_len.store(0, Ordering::Relaxed);
    }
}

/// One breaker's state, shared by the workers.
#[derive(Debug)]
pub struct State {
    base: Instant,
    phase: AtomicU64,
    allowed: AtomicU64,
    denied: AtomicU64,
    next_check: AtomicU64,
    buckets: Box<[Bucket]>,
}

/// Breakers of the instance, by middleware name.
pub type Breakers = papaya::HashMap<String, State>;

impl State {
    /// The first evaluation comes one check period after the breaker first sees traffic.
    fn new(now: Instant, check_period: Duration) -> State {
        State {
            base: now,
            phase: AtomicU64::new(Phase::Standby.pack()),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            next_check: AtomicU64::new(nanos(check_period)),
            buckets: (0..BUCKETS).map(|_| Bucket::new()).collect(),
        }
    }

    fn nanos(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.base))
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_secs() + BUCKETS
    }

    fn record(&self, code: u16, latency: Duration, now: Instant) {
        let sec = self.second(now);
        let b = &self.buckets[(sec % BUCKETS) as usize];
        let seen = b.second.load(Ordering::Acquire);
        if seen != sec {
            // The window rolled onto this bucket: one recorder clears it, the others (and a
            // late sample of an older second) drop their sample rather than wait.
            if seen == CLEARING || seen > sec {
                return;
            }
            if b.second.compare_exchange(seen, CLEARING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                return;
            }
            b.clear();
            b.second.store(sec, Ordering::Release);
        }
        b.total.fetch_add(1, Ordering::Relaxed);
        if matches!(code, 502 | 504) {
            b.network_errors.fetch_add(1, Ordering::Relaxed);
        }
        b.codes[usize::from(code).min(CODES - 1)].fetch_add(1, Ordering::Relaxed);
        let i = b.latencies_len.fetch_add(1, Ordering::Relaxed) as usize;
        if i < LATENCIES_PER_BUCKET {
            b.latencies_ms[i].store((latency.as_secs_f64() * 1000.0).to_bits(), Ordering::Relaxed);
        }
    }

    /// A copy of the live buckets' sums.
    fn view(&self, now: Instant) -> Window {
        let sec = self.second(now);
        let mut w = Window { total: 0, network_errors: 0, codes: vec![0; CODES], latencies_ms: Vec::new() };
        for b in self.buckets.iter() {
            let s = b.second.load(Ordering::Acquire);
            if s == CLEARING || s + BUCKETS <= sec || s > sec {
                continue;
            }
            w.total += b.total.load(Ordering::Relaxed);
            w.network_errors += b.network_errors.load(Ordering::Relaxed);
            for (sum, c) in w.codes.iter_mut().zip(b.codes.iter()) {
                *sum += u64::from(c.load(Ordering::Relaxed));
            }
            let n = (b.latencies_len.load(Ordering::Relaxed) as usize).min(LATENCIES_PER_BUCKET);
            w.latencies_ms
                .extend(b.latencies_ms[..n].iter().map(|l| f64::from_bits(l.load(Ordering::Relaxed))));
        }
        w
    }

    /// Forgets the window (after a trip): a bucket of second 0 is never live.
    fn reset(&self) {
        for b in self.buckets.iter() {
            let s = b.second.load(Ordering::Acquire);
            if s != CLEARING {
                let _ = b.second.compare_exchange(s, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(TIME_MASK).min(TIME_MASK)
}

/// The sums of the live buckets of a window.
struct Window {
    total: u64,
    network_errors: u64,
    codes: Vec<u64>,
    latencies_ms: Vec<f64>,
}

impl Metrics for Window {
    fn network_error_ratio(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.network_errors as f64 / self.total as f64
        }
    }

    fn response_code_ratio(&self, from: u16, to: u16, dividend_from: u16, dividend_to: u16) -> f64 {
        let count = |a: u16, b: u16| -> u64 {
            let (a, b) = (usize::from(a).min(CODES), usize::from(b).min(CODES));
            if a >= b {
                0
            } else {
                self.codes[a..b].iter().sum()
            }
        };
        let dividend = count(dividend_from, dividend_to);
        if dividend == 0 {
            0.0
        } else {
            count(from, to) as f64 / dividend as f64
        }
    }

    fn latency_at_quantile_ms(&self, q: f64) -> f64 {
        let mut all = self.latencies_ms.clone();
        if all.is_empty() {
            return 0.0;
        }
        all.sort_by(f64::total_cmp);
        let rank = ((q / 100.0) * all.len() as f64).ceil() as usize;
        all[rank.clamp(1, all.len()) - 1]
    }
}

impl CircuitBreaker {
    /// Compiles the definition.
    pub fn new(name: &str, c: &cfg::CircuitBreaker) -> Result<CircuitBreaker, String> {
        Ok(CircuitBreaker {
            name: name.to_string(),
            expr: Expr::parse(&c.expression)?,
            check_period: Duration::from_nanos(c.check_period_nanos),
            fallback: Duration::from_nanos(c.fallback_duration_nanos),
            recovery: Duration::from_nanos(c.recovery_duration_nanos),
            code: StatusCode::from_u16(c.response_code).map_err(|e| e.to_string())?,
        })
    }

    /// This middleware's breaker, created on first use.
    fn state<'g>(
        &self,
        breakers: &'g Breakers,
        guard: &'g papaya::LocalGuard<'g>,
        now: Instant,
    ) -> &'g State {
        match breakers.get(self.name.as_str(), guard) {
            Some(st) => st,
            None => {
                breakers.get_or_insert_with(self.name.clone(), || State::new(now, self.check_period), guard)
            }
        }
    }

    /// Whether the request may call the service at `now`.
    pub fn allow(&self, breakers: &Breakers, now: Instant) -> bool {
        let guard = breakers.guard();
        let st = self.state(breakers, &guard, now);
        let now_ns = st.nanos(now);
        let mut word = st.phase.load(Ordering::Acquire);
        if let Phase::Tripped { until } = Phase::unpack(word) {
            if now_ns < until {
                return false;
            }
            let recovering = Phase::Recovering { since: now_ns }.pack();
            match st.phase.compare_exchange(word, recovering, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    st.allowed.store(0, Ordering::Relaxed);
                    st.denied.store(0, Ordering::Relaxed);
                    word = recovering;
                }
                Err(now_word) => word = now_word,
            }
        }
        match Phase::unpack(word) {
            Phase::Recovering { since } => {
                let elapsed = Duration::from_nanos(now_ns.saturating_sub(since));
                if elapsed >= self.recovery {
                    let _ = st.phase.compare_exchange(
                        word,
                        Phase::Standby.pack(),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    return true;
                }
                let expected = elapsed.as_secs_f64() / self.recovery.as_secs_f64();
                let allowed = st.allowed.load(Ordering::Relaxed);
                let seen = allowed + st.denied.load(Ordering::Relaxed);
                let actual = if seen == 0 { 0.0 } else { allowed as f64 / seen as f64 };
                if actual < expected {
                    st.allowed.fetch_add(1, Ordering::Relaxed);
                    true
                } else {
                    st.denied.fetch_add(1, Ordering::Relaxed);
                    false
                }
            }
            Phase::Tripped { .. } => false,
            Phase::Standby => true,
        }
    }

    /// Records a response of the service and trips when the expression holds.
    pub fn record(&self, breakers: &Breakers, code: u16, latency: Duration, now: Instant) {
        let guard = breakers.guard();
        let st = self.state(breakers, &guard, now);
        st.record(code, latency, now);
        let now_ns = st.nanos(now);
        if matches!(Phase::unpack(st.phase.load(Ordering::Acquire)), Phase::Tripped { .. }) {
            return;
        }
        let next = st.next_check.load(Ordering::Acquire);
        if now_ns < next {
            return;
        }
        let after = now_ns.saturating_add(nanos(self.check_period));
        if st.next_check.compare_exchange(next, after, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return; // another worker evaluates this period
        }
        if self.expr.eval(&st.view(now)) {
            let until = now_ns.saturating_add(nanos(self.fallback)).min(TIME_MASK);
            st.phase.store(Phase::Tripped { until }.pack(), Ordering::Release);
            st.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(expr: &str) -> CircuitBreaker {
        CircuitBreaker::new(
            "ns-cb",
            &cfg::CircuitBreaker {
                expression: expr.into(),
                check_period_nanos: 100_000_000,
                fallback_duration_nanos: 10_000_000_000,
                recovery_duration_nanos: 10_000_000_000,
                response_code: 503,
            },
        )
        .expect("valid")
    }

    #[test]
    fn trips_falls_back_and_recovers() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        // (case, expression, responses recorded (status, latency ms), trips)
        type Case = (&'static str, &'static str, &'static [(u16, u64)], bool);
        let cases: [Case; 6] = [
            ("network errors", "NetworkErrorRatio() > 0.5", &[(502, 1), (502, 1), (502, 1), (200, 1)], true),
            ("few network errors", "NetworkErrorRatio() > 0.5", &[(502, 1), (200, 1), (200, 1)], false),
            ("codes", "ResponseCodeRatio(500, 600, 0, 600) > 0.25", &[(500, 1), (500, 1), (200, 1)], true),
            ("codes below", "ResponseCodeRatio(500, 600, 0, 600) > 0.5", &[(500, 1), (200, 1)], false),
            ("latency", "LatencyAtQuantileMS(50.0) > 100", &[(200, 300), (200, 300), (200, 300)], true),
            ("latency fine", "LatencyAtQuantileMS(50.0) > 100", &[(200, 10), (200, 300)], false),
        ];
        for (name, expr, responses, trips) in cases {
            let b = breaker(expr);
            let all = Breakers::new();
            // Recorded inside the first check period; evaluated with one more response at its end.
            for (code, latency) in responses.iter() {
                b.record(&all, *code, ms(*latency), t0);
            }
            b.record(&all, 200, ms(1), t0 + ms(150));
            let map = all.pin();
            let st = map.get("ns-cb").expect("state");
            let tripped = matches!(Phase::unpack(st.phase.load(Ordering::Relaxed)), Phase::Tripped { .. });
            assert_eq!(tripped, trips, "case {name}");
        }
        // The tripped breaker refuses, then ramps back up, then stands by.
        let b = breaker("NetworkErrorRatio() > 0.5");
        let all = Breakers::new();
        b.record(&all, 502, ms(1), t0);
        assert!(b.allow(&all, t0 + ms(50)), "not evaluated before the first check period");
        b.record(&all, 502, ms(1), t0 + ms(150));
        assert!(!b.allow(&all, t0 + ms(5_000)), "tripped");
        let during: Vec<bool> = (0..10).map(|i| b.allow(&all, t0 + ms(10_000 + 5_000 + i))).collect();
        assert!(
            during.iter().any(|a| *a) && during.iter().any(|a| !*a),
            "recovering lets some through: {during:?}"
        );
        assert!(b.allow(&all, t0 + ms(40_000)), "standing by again");
        assert!(b.allow(&all, t0 + ms(40_001)));
    }

    /// Responses recorded by several threads land in the one window of the instance: neither
    /// half alone trips the breaker, both together do.
    #[test]
    fn one_window_for_all_threads() {
        let b = std::sync::Arc::new(breaker("ResponseCodeRatio(500, 600, 0, 600) > 0.6"));
        let all = std::sync::Arc::new(Breakers::new());
        let t0 = Instant::now();
        // Thread 0 sees only errors, thread 1 only successes: 70 % errors overall.
        let threads: Vec<_> = [(500u16, 700), (200u16, 300)]
            .into_iter()
            .map(|(code, n)| {
                let (b, all) = (b.clone(), all.clone());
                std::thread::spawn(move || {
                    for _ in 0..n {
                        b.record(&all, code, Duration::from_millis(1), t0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(b.allow(&all, t0 + Duration::from_millis(120)), "not evaluated yet");
        b.record(&all, 200, Duration::from_millis(1), t0 + Duration::from_millis(150));
        assert!(!b.allow(&all, t0 + Duration::from_millis(160)), "tripped on the shared ratio");
    }
}
