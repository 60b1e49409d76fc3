//! Smooth weighted round robin (the nginx algorithm): every pick adds each candidate's weight
//! to its running score, takes the highest and subtracts the total. Weights 3:1 give
//! `a a b a` rather than `a a a b`, so a short burst is already spread. Weight 0 is never picked.

/// Per-worker state for one weighted set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrr {
    weights: Vec<i64>,
    current: Vec<i64>,
}

impl Wrr {
    /// State for candidates with these weights.
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Wrr {
        let weights: Vec<i64> = weights.into_iter().map(i64::from).collect();
        Wrr { current: vec![0; weights.len()], weights }
    }

    /// Whether this state was built for exactly these weights (to carry it across snapshots).
    pub fn same_weights(&self, weights: impl IntoIterator<Item = u32>) -> bool {
        self.weights.iter().copied().eq(weights.into_iter().map(i64::from))
    }

    /// Index of the next candidate, or `None` when every weight is 0 (or there are none).
    pub fn pick(&mut self) -> Option<usize> {
        self.pick_where(|_| true)
    }

    /// Like [`Wrr::pick`] over the candidates `available` accepts (healthy, not fenced, not
    /// just failed); the others neither gain score nor count in the total, so the rotation
    /// among the rest stays smooth. `None` when no available candidate has a weight.
    pub fn pick_where(&mut self, available: impl Fn(usize) -> bool) -> Option<usize> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.weights.len() {
            if self.weights[i] <= 0 || !available(i) {
                continue;
            }
            self.current[i] += self.weights[i];
            total += self.weights[i];
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        self.current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences() {
        type Case = (&'static str, Vec<u32>, Vec<Option<usize>>);
        let cases: [Case; 5] = [
            ("equal weights alternate", vec![1, 1], vec![Some(0), Some(1), Some(0), Some(1)]),
            (
                "three to one is smooth",
                vec![3, 1],
                vec![Some(0), Some(0), Some(1), Some(0), Some(0), Some(0), Some(1), Some(0)],
            ),
            ("zero weight never picked", vec![0, 2], vec![Some(1), Some(1), Some(1)]),
            ("all zero", vec![0, 0], vec![None, None]),
            ("empty", vec![], vec![None]),
        ];
        for (name, weights, want) in cases {
            let mut w = Wrr::new(weights);
            let got: Vec<_> = (0..want.len()).map(|_| w.pick()).collect();
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn unavailable_candidates_are_skipped() {
        let mut w = Wrr::new([1, 1, 1]);
        let got: Vec<_> = (0..4).map(|_| w.pick_where(|i| i != 1)).collect();
        assert_eq!(got, [Some(0), Some(2), Some(0), Some(2)]);
        assert_eq!(w.pick_where(|_| false), None);
    }

    #[test]
    fn proportions_hold_over_a_cycle() {
        let mut w = Wrr::new([5, 3, 2]);
        let mut counts = [0; 3];
        for _ in 0..100 {
            counts[w.pick().expect("non-zero weights")] += 1;
        }
        assert_eq!(counts, [50, 30, 20]);
    }
}
