//! Least response time (Traefik's `leasttime` strategy): each server scores
//! `average time to first byte (ms, last 100 samples) × (1 + requests in flight) / weight`;
//! the lowest wins, ties broken by weighted round robin (earliest deadline first, each pick
//! pushing the winner's deadline by `1 / weight`). Servers without samples score 0, so new
//! ones are tried first. Sans-IO: the caller reports starts and first bytes.

use std::time::Duration;

/// Samples kept per server (Traefik's `sampleSize`).
pub const SAMPLES: usize = 100;

#[derive(Debug, Clone)]
struct Stats {
    weight: f64,
    deadline: f64,
    inflight: u64,
    samples: Vec<f64>,
    next: usize,
    sum: f64,
}

/// Per-worker state of one load balancer.
#[derive(Debug, Clone)]
pub struct LeastTime {
    servers: Vec<Stats>,
}

impl LeastTime {
    /// State for servers with these weights.
    pub fn new(weights: impl IntoIterator<Item = u32>) -> LeastTime {
        let servers = weights
            .into_iter()
            .map(|w| Stats {
                weight: f64::from(w),
                deadline: 0.0,
                inflight: 0,
                samples: Vec::with_capacity(SAMPLES),
                next: 0,
                sum: 0.0,
            })
            .collect();
        LeastTime { servers }
    }

    /// Whether this state was built for exactly these weights.
    pub fn same_weights(&self, weights: impl IntoIterator<Item = u32>) -> bool {
        self.servers.iter().map(|s| s.weight).eq(weights.into_iter().map(f64::from))
    }

    fn average(&self, i: usize) -> f64 {
        let s = &self.servers[i];
        if s.samples.is_empty() {
            0.0
        } else {
            s.sum / s.samples.len() as f64
        }
    }

    /// The server to use among those `available` accepts (weight 0 never).
    pub fn pick(&mut self, available: impl Fn(usize) -> bool) -> Option<usize> {
        let mut min = f64::MAX;
        let mut candidates: Vec<usize> = Vec::new();
        for i in 0..self.servers.len() {
            let s = &self.servers[i];
            if s.weight <= 0.0 || !available(i) {
                continue;
            }
            let score = self.average(i) * (1.0 + s.inflight as f64) / s.weight;
            if score < min {
                min = score;
                candidates.clear();
                candidates.push(i);
            } else if score == min {
                candidates.push(i);
            }
        }
        match candidates.as_slice() {
            [] => None,
            [one] => Some(*one),
            many => {
                let mut best = many[0];
                let mut earliest = f64::MAX;
                for &i in many {
                    if self.servers[i].deadline < earliest {
                        earliest = self.servers[i].deadline;
                        best = i;
                    }
                }
                self.servers[best].deadline = earliest + 1.0 / self.servers[best].weight;
                Some(best)
            }
        }
    }

    /// A request to server `i` started.
    pub fn start(&mut self, i: usize) {
        if let Some(s) = self.servers.get_mut(i) {
            s.inflight += 1;
        }
    }

    /// A request to server `i` ended its wait: `ttfb` when the first response byte came.
    pub fn finish(&mut self, i: usize, ttfb: Option<Duration>) {
        let Some(s) = self.servers.get_mut(i) else { return };
        s.inflight = s.inflight.saturating_sub(1);
        let Some(t) = ttfb else { return };
        // Traefik: whole milliseconds.
        let ms = t.as_millis() as f64;
        if s.samples.len() < SAMPLES {
            s.samples.push(ms);
        } else {
            s.sum -= s.samples[s.next];
            s.samples[s.next] = ms;
        }
        s.sum += ms;
        s.next = (s.next + 1) % SAMPLES;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fastest_server_wins_and_ties_follow_weights() {
        let ms = Duration::from_millis;
        // No samples: a tie at 0, broken by weights 2:1.
        let mut lt = LeastTime::new([2, 1]);
        let mut counts = [0; 2];
        for _ in 0..300 {
            counts[lt.pick(|_| true).expect("server")] += 1;
        }
        assert_eq!(counts, [200, 100]);

        // (case, weights, ttfb samples per server, in flight, available, expected pick)
        type Case = (&'static str, Vec<u32>, Vec<Vec<u64>>, Vec<u64>, Vec<bool>, Option<usize>);
        let cases: Vec<Case> = vec![
            ("faster wins", vec![1, 1], vec![vec![50], vec![10]], vec![0, 0], vec![true, true], Some(1)),
            ("load counts", vec![1, 1], vec![vec![20], vec![10]], vec![0, 3], vec![true, true], Some(0)),
            ("weight divides", vec![4, 1], vec![vec![30], vec![10]], vec![0, 0], vec![true, true], Some(0)),
            ("unsampled is tried", vec![1, 1], vec![vec![5], vec![]], vec![0, 0], vec![true, true], Some(1)),
            (
                "unavailable skipped",
                vec![1, 1],
                vec![vec![50], vec![10]],
                vec![0, 0],
                vec![true, false],
                Some(0),
            ),
            ("nothing available", vec![1], vec![vec![1]], vec![0], vec![false], None),
            ("weight zero never", vec![0, 1], vec![vec![], vec![9]], vec![0, 0], vec![true, true], Some(1)),
        ];
        for (name, weights, samples, inflight, available, want) in cases {
            let mut lt = LeastTime::new(weights);
            for (i, ss) in samples.iter().enumerate() {
                for &s in ss {
                    lt.start(i);
                    lt.finish(i, Some(ms(s)));
                }
            }
            for (i, &n) in inflight.iter().enumerate() {
                for _ in 0..n {
                    lt.start(i);
                }
            }
            assert_eq!(lt.pick(|i| available[i]), want, "case {name}");
        }
    }

    #[test]
    fn the_average_is_over_the_last_samples() {
        let mut lt = LeastTime::new([1]);
        for _ in 0..SAMPLES {
            lt.start(0);
            lt.finish(0, Some(Duration::from_millis(100)));
        }
        for _ in 0..SAMPLES {
            lt.start(0);
            lt.finish(0, Some(Duration::from_millis(10)));
        }
        assert_eq!(lt.average(0), 10.0);
        lt.start(0);
        lt.finish(0, None);
        assert_eq!(lt.servers[0].inflight, 0, "a failed request leaves no load behind");
    }
}
