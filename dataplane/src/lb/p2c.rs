//! Power of two random choices (Traefik's `p2c` strategy): draw two distinct available servers
//! at random and take the one with fewer requests in flight (the first drawn on a tie). Weights
//! are not used, as in Traefik.

use super::rng::Rng;

/// Picks among `candidates` (server indexes) by their `inflight` counts.
pub fn pick(candidates: &[usize], inflight: impl Fn(usize) -> u64, rng: &mut Rng) -> Option<usize> {
    match candidates {
        [] => None,
        [only] => Some(*only),
        _ => {
            let n = candidates.len();
            let n1 = rng.below(n);
            let mut n2 = rng.below(n);
            if n2 == n1 {
                n2 = (n2 + 1) % n;
            }
            let (h1, h2) = (candidates[n1], candidates[n2]);
            Some(if inflight(h2) < inflight(h1) { h2 } else { h1 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_less_loaded_of_two() {
        let mut rng = Rng::new(42);
        // (case, candidates, in flight per server, expected share of picks per server, ±)
        type Case = (&'static str, Vec<usize>, Vec<u64>, Vec<f64>);
        let cases: [Case; 4] = [
            ("idle servers share evenly", vec![0, 1, 2], vec![0, 0, 0], vec![1.0 / 3.0; 3]),
            // The busiest of three loses every pair it is in: never picked.
            ("busiest never picked of three", vec![0, 1, 2], vec![0, 1, 5], vec![2.0 / 3.0, 1.0 / 3.0, 0.0]),
            ("two servers: the idle one always", vec![0, 1], vec![3, 0], vec![0.0, 1.0]),
            ("unavailable ones are not drawn", vec![1, 2], vec![0, 0, 0], vec![0.0, 0.5, 0.5]),
        ];
        for (name, candidates, inflight, want) in cases {
            let mut counts = vec![0u32; inflight.len()];
            let rounds = 30_000;
            for _ in 0..rounds {
                let i = pick(&candidates, |i| inflight[i], &mut rng).expect("a candidate");
                counts[i] += 1;
            }
            for (i, w) in want.iter().enumerate() {
                let got = f64::from(counts[i]) / f64::from(rounds);
                assert!((got - w).abs() < 0.02, "case {name}: server {i} got {got}, want {w}");
            }
        }
        assert_eq!(pick(&[], |_| 0, &mut rng), None);
        assert_eq!(pick(&[4], |_| 9, &mut rng), Some(4));
    }
}
