//! CircuitBreaker (oxy `cbreaker`): while standing by, every response is recorded in a 10 s
//! rolling window (status, latency; 502 and 504 count as network errors) and, at most every
//! `checkPeriod`, the expression is evaluated; when it holds the breaker trips: for
//! `fallbackDuration` every request is answered `responseCode` with its status text, without
//! calling the service; then for `recoveryDuration` a growing share of requests is let through
//! (the share grows linearly with time), and the breaker trips again if the expression holds.
//!
//! State is per worker (no locks), keyed by middleware name: each worker trips on what it saw.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::StatusCode;

use weir_proto::breaker::{Expr, Metrics};
use weir_proto::middleware as cfg;

/// Window length in one-second buckets.
const BUCKETS: u64 = 10;
/// Latencies kept per bucket for quantiles.
const LATENCIES_PER_BUCKET: usize = 1024;

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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Standby,
    Tripped { until: Instant },
    Recovering { since: Instant, allowed: u64, denied: u64 },
}

#[derive(Debug, Default, Clone)]
struct Bucket {
    second: u64,
    total: u64,
    network_errors: u64,
    codes: HashMap<u16, u64>,
    latencies_ms: Vec<f64>,
}

/// One breaker's state on one worker.
#[derive(Debug)]
pub struct State {
    phase: Phase,
    base: Instant,
    buckets: Vec<Bucket>,
    next_check: Instant,
}

/// Breakers of this worker, by middleware name.
pub type Breakers = HashMap<String, State>;

impl State {
    /// The first evaluation comes one check period after the breaker first sees traffic.
    fn new(now: Instant, check_period: Duration) -> State {
        State {
            phase: Phase::Standby,
            base: now,
            buckets: vec![Bucket::default(); BUCKETS as usize],
            next_check: now + check_period,
        }
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_secs() + BUCKETS
    }

    fn record(&mut self, code: u16, latency: Duration, now: Instant) {
        let sec = self.second(now);
        let b = &mut self.buckets[(sec % BUCKETS) as usize];
        if b.second != sec {
            *b = Bucket { second: sec, ..Bucket::default() };
        }
        b.total += 1;
        if matches!(code, 502 | 504) {
            b.network_errors += 1;
        }
        *b.codes.entry(code).or_insert(0) += 1;
        if b.latencies_ms.len() < LATENCIES_PER_BUCKET {
            b.latencies_ms.push(latency.as_secs_f64() * 1000.0);
        }
    }

    fn view(&self, now: Instant) -> Window<'_> {
        let sec = self.second(now);
        Window {
            buckets: self.buckets.iter().filter(|b| b.second + BUCKETS > sec && b.second <= sec).collect(),
        }
    }

    fn reset(&mut self) {
        self.buckets = vec![Bucket::default(); BUCKETS as usize];
    }
}

/// The live buckets of a window.
struct Window<'a> {
    buckets: Vec<&'a Bucket>,
}

impl Metrics for Window<'_> {
    fn network_error_ratio(&self) -> f64 {
        let total: u64 = self.buckets.iter().map(|b| b.total).sum();
        let errors: u64 = self.buckets.iter().map(|b| b.network_errors).sum();
        if total == 0 {
            0.0
        } else {
            errors as f64 / total as f64
        }
    }

    fn response_code_ratio(&self, from: u16, to: u16, dividend_from: u16, dividend_to: u16) -> f64 {
        let count = |a: u16, b: u16| -> u64 {
            self.buckets
                .iter()
                .flat_map(|bk| bk.codes.iter())
                .filter(|(c, _)| (a..b).contains(*c))
                .map(|(_, n)| n)
                .sum()
        };
        let dividend = count(dividend_from, dividend_to);
        if dividend == 0 {
            0.0
        } else {
            count(from, to) as f64 / dividend as f64
        }
    }

    fn latency_at_quantile_ms(&self, q: f64) -> f64 {
        let mut all: Vec<f64> = self.buckets.iter().flat_map(|b| b.latencies_ms.iter().copied()).collect();
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

    /// Whether the request may call the service at `now`.
    pub fn allow(&self, breakers: &mut Breakers, now: Instant) -> bool {
        let st = breakers.entry(self.name.clone()).or_insert_with(|| State::new(now, self.check_period));
        if let Phase::Tripped { until } = st.phase {
            if now < until {
                return false;
            }
            st.phase = Phase::Recovering { since: now, allowed: 0, denied: 0 };
        }
        match &mut st.phase {
            Phase::Recovering { since, allowed, denied } => {
                let elapsed = now.saturating_duration_since(*since);
                if elapsed >= self.recovery {
                    st.phase = Phase::Standby;
                    return true;
                }
                let expected = elapsed.as_secs_f64() / self.recovery.as_secs_f64();
                let seen = *allowed + *denied;
                let actual = if seen == 0 { 0.0 } else { *allowed as f64 / seen as f64 };
                if actual < expected {
                    *allowed += 1;
                    true
                } else {
                    *denied += 1;
                    false
                }
            }
            _ => true,
        }
    }

    /// Records a response of the service and trips when the expression holds.
    pub fn record(&self, breakers: &mut Breakers, code: u16, latency: Duration, now: Instant) {
        let st = breakers.entry(self.name.clone()).or_insert_with(|| State::new(now, self.check_period));
        st.record(code, latency, now);
        if now < st.next_check || matches!(st.phase, Phase::Tripped { .. }) {
            return;
        }
        st.next_check = now + self.check_period;
        if self.expr.eval(&st.view(now)) {
            st.phase = Phase::Tripped { until: now + self.fallback };
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
            let mut all = Breakers::new();
            // Recorded inside the first check period; evaluated with one more response at its end.
            for (code, latency) in responses.iter() {
                b.record(&mut all, *code, ms(*latency), t0);
            }
            b.record(&mut all, 200, ms(1), t0 + ms(150));
            let st = &all["ns-cb"];
            let tripped = matches!(st.phase, Phase::Tripped { .. });
            assert_eq!(tripped, trips, "case {name}");
        }
        // The tripped breaker refuses, then ramps back up, then stands by.
        let b = breaker("NetworkErrorRatio() > 0.5");
        let mut all = Breakers::new();
        b.record(&mut all, 502, ms(1), t0);
        assert!(b.allow(&mut all, t0 + ms(50)), "not evaluated before the first check period");
        b.record(&mut all, 502, ms(1), t0 + ms(150));
        assert!(!b.allow(&mut all, t0 + ms(5_000)), "tripped");
        let during: Vec<bool> = (0..10).map(|i| b.allow(&mut all, t0 + ms(10_000 + 5_000 + i))).collect();
        assert!(
            during.iter().any(|a| *a) && during.iter().any(|a| !*a),
            "recovering lets some through: {during:?}"
        );
        assert!(b.allow(&mut all, t0 + ms(40_000)), "standing by again");
        assert!(b.allow(&mut all, t0 + ms(40_001)));
    }
}
