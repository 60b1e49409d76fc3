//! Traefik's mirroring percentage accounting, per worker: request number `total` is copied to
//! a mirror when `count * 100 < total * percent`, so a mirror at 10% receives exactly every
//! tenth request from the first on, with no randomness. Sans-IO.

/// Counters of one mirroring service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorCounter {
    total: u64,
    counts: Vec<u64>,
    percents: Vec<u32>,
}

impl MirrorCounter {
    /// Counters for mirrors with these percentages.
    pub fn new(percents: impl IntoIterator<Item = u32>) -> MirrorCounter {
        let percents: Vec<u32> = percents.into_iter().collect();
        MirrorCounter { total: 0, counts: vec![0; percents.len()], percents }
    }

    /// Whether this state was built for exactly these percentages.
    pub fn same_percents(&self, percents: impl IntoIterator<Item = u32>) -> bool {
        self.percents.iter().copied().eq(percents)
    }

    /// Counts one request; calls `active` with the index of every mirror that gets a copy.
    pub fn next(&mut self, mut active: impl FnMut(usize)) {
        self.total += 1;
        for (i, (count, percent)) in self.counts.iter_mut().zip(&self.percents).enumerate() {
            if *count * 100 < self.total * u64::from(*percent) {
                *count += 1;
                active(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_accounting() {
        type Case = (&'static str, Vec<u32>, u64, Vec<u64>);
        let cases: [Case; 5] = [
            ("ten percent of a hundred", vec![10], 100, vec![10]),
            ("half and all", vec![50, 100], 10, vec![5, 10]),
            ("zero never", vec![0], 50, vec![0]),
            ("one third rounds up", vec![33], 3, vec![1]),
            ("seventy five of eight", vec![75], 8, vec![6]),
        ];
        for (name, percents, requests, want) in cases {
            let mut m = MirrorCounter::new(percents);
            let mut got = vec![0u64; want.len()];
            for _ in 0..requests {
                m.next(|i| got[i] += 1);
            }
            assert_eq!(got, want, "case {name}");
        }
    }

    #[test]
    fn first_request_is_mirrored() {
        let mut m = MirrorCounter::new([10]);
        let mut first = false;
        m.next(|_| first = true);
        assert!(first, "Traefik copies request 1 (0*100 < 1*10)");
    }
}
