//! The health state of one server, sans-IO: Traefik considers a new server up, checks an up
//! server every `interval` and a down one every `unhealthyInterval`, and one result flips the
//! state (one failure takes it out, one success brings it back). Time is a parameter.

use std::time::{Duration, Instant};

/// One server's health and when it is next checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    healthy: bool,
    next: Instant,
    interval: Duration,
    unhealthy_interval: Duration,
}

impl HealthState {
    /// A server seen at `now`, up or (carried over from a previous configuration) down.
    pub fn new(now: Instant, healthy: bool, interval: Duration, unhealthy_interval: Duration) -> HealthState {
        let first = if healthy { interval } else { unhealthy_interval };
        HealthState { healthy, next: now + first, interval, unhealthy_interval }
    }

    /// Whether the server takes requests.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// When the next check is due.
    pub fn next_check(&self) -> Instant {
        self.next
    }

    /// Whether a check is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Records the result of a check that finished at `now`; returns the new state when it
    /// changed.
    pub fn record(&mut self, now: Instant, ok: bool) -> Option<bool> {
        let changed = ok != self.healthy;
        self.healthy = ok;
        self.next = now + if ok { self.interval } else { self.unhealthy_interval };
        changed.then_some(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_on_a_virtual_clock() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut h = HealthState::new(t0, true, s(30), s(5));
        assert!(h.healthy(), "new servers are up");
        // (seconds after t0, check result or None for "just look", due?, healthy after, change)
        type Step = (u64, Option<bool>, bool, bool, Option<bool>);
        let steps: [Step; 8] = [
            (29, None, false, true, None),
            (30, Some(true), true, true, None),
            (59, None, false, true, None),
            (60, Some(false), true, false, Some(false)),
            // Down: checked every unhealthy interval.
            (65, Some(false), true, false, None),
            (69, None, false, false, None),
            (70, Some(true), true, true, Some(true)),
            // Up again: back to the long interval.
            (99, None, false, true, None),
        ];
        for (at, result, due, healthy, change) in steps {
            let now = t0 + s(at);
            assert_eq!(h.due(now), due, "due at {at}s");
            if let Some(ok) = result {
                assert_eq!(h.record(now, ok), change, "change at {at}s");
            }
            assert_eq!(h.healthy(), healthy, "healthy at {at}s");
        }
        assert_eq!(h.next_check(), t0 + s(100));
    }

    #[test]
    fn a_server_carried_over_down_is_checked_at_the_unhealthy_interval() {
        let t0 = Instant::now();
        let h = HealthState::new(t0, false, Duration::from_secs(30), Duration::from_secs(2));
        assert!(!h.healthy());
        assert_eq!(h.next_check(), t0 + Duration::from_secs(2));
    }
}
