//! The UDP flow table, sans-IO: which backend socket serves each client address, when each flow
//! was last active, and which flows end (idle past the entrypoint's `udp.timeout`, or the
//! oldest idle ones when the table is full). Time is a parameter; nothing here does IO.
//!
//! Flows sit in a slab threaded by a doubly-linked list in order of last activity (head = the
//! longest idle), so a datagram's lookup-and-touch, an insertion, an eviction and each expiry
//! are O(1) and allocate nothing once the slab has grown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const NIL: usize = usize::MAX;

struct Node<V> {
    peer: SocketAddr,
    last_seen: Instant,
    prev: usize,
    next: usize,
    value: V,
}

/// What [`FlowTable::lookup`] found for a datagram from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, V> {
    /// A live flow: the datagram goes to its backend (the flow was touched).
    Live(&'a V),
    /// No live flow: a new one must be opened. An expired flow of the same client, if there
    /// was one, was removed and is handed back to be closed.
    New(Option<V>),
}

/// Flows of one entrypoint on one worker, keyed by client address.
pub struct FlowTable<V> {
    timeout: Duration,
    capacity: usize,
    index: HashMap<SocketAddr, usize>,
    slots: Vec<Option<Node<V>>>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
}

impl<V> FlowTable<V> {
    /// An empty table whose flows end after `timeout` without activity and which holds at
    /// most `capacity` flows (at least 1).
    pub fn new(timeout: Duration, capacity: usize) -> FlowTable<V> {
        FlowTable {
            timeout,
            capacity: capacity.max(1),
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// The idle timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Number of flows held (live or expired but not yet swept).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// A datagram from `peer` arrived at `now`: its live flow (touched), or `New`.
    pub fn lookup(&mut self, peer: SocketAddr, now: Instant) -> Lookup<'_, V> {
        self.lookup_with(peer, now, |_| None)
    }

    /// [`FlowTable::lookup`] for flows that may also be active where this table does not see
    /// it (the kernel's UDP fast path): a flow idle here for the timeout is asked
    /// `seen_elsewhere` before it ends, and stays live if that activity is recent enough.
    pub fn lookup_with(
        &mut self,
        peer: SocketAddr,
        now: Instant,
        seen_elsewhere: impl FnMut(&V) -> Option<Instant>,
    ) -> Lookup<'_, V> {
        let Some(&i) = self.index.get(&peer) else { return Lookup::New(None) };
        if self.expired(i, now) && !self.revive(i, now, seen_elsewhere) {
            return Lookup::New(Some(self.remove_slot(i)));
        }
        self.touch_slot(i, now);
        match &self.slots[i] {
            Some(node) => Lookup::Live(&node.value),
            None => unreachable!("indexed slot {i} is occupied"),
        }
    }

    /// Activity on `peer`'s flow other than a client datagram (a backend reply) at `now`.
    pub fn touch(&mut self, peer: SocketAddr, now: Instant) {
        if let Some(&i) = self.index.get(&peer) {
            self.touch_slot(i, now);
        }
    }

    /// Adds a flow for `peer` (which has none: call after `lookup` returned `New`). When the
    /// table is full the longest-idle flow makes room and is returned, to be closed.
    pub fn insert(&mut self, peer: SocketAddr, value: V, now: Instant) -> Option<(SocketAddr, V)> {
        let evicted = if self.index.len() >= self.capacity && self.head != NIL {
            let i = self.head;
            let peer = self.peer_of(i);
            Some((peer, self.remove_slot(i)))
        } else {
            None
        };
        if let Some(&i) = self.index.get(&peer) {
            // Misuse (a live flow exists): replace its value, keep one flow per client.
            self.remove_slot(i);
        }
        let node = Node { peer, last_seen: now, prev: NIL, next: NIL, value };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(node);
                i
            }
            None => {
                self.slots.push(Some(node));
                self.slots.len() - 1
            }
        };
        self.push_tail(i);
        self.index.insert(peer, i);
        evicted
    }

    /// Removes `peer`'s flow, if any.
    pub fn remove(&mut self, peer: SocketAddr) -> Option<V> {
        let i = *self.index.get(&peer)?;
        Some(self.remove_slot(i))
    }

    /// Removes every flow idle for `timeout` or more at `now`, longest idle first.
    pub fn expire(&mut self, now: Instant) -> Vec<(SocketAddr, V)> {
        self.expire_with(now, |_| None)
    }

    /// [`FlowTable::expire`], asking `seen_elsewhere` about each flow idle here before ending
    /// it (see [`FlowTable::lookup_with`]); a flow active elsewhere within the timeout is
    /// touched at that time and kept.
    pub fn expire_with(
        &mut self,
        now: Instant,
        mut seen_elsewhere: impl FnMut(&V) -> Option<Instant>,
    ) -> Vec<(SocketAddr, V)> {
        let mut out = Vec::new();
        while self.head != NIL && self.expired(self.head, now) {
            let i = self.head;
            // A revived flow moves to the tail, no longer expired: the loop ends.
            if self.revive(i, now, &mut seen_elsewhere) {
                continue;
            }
            let peer = self.peer_of(i);
            out.push((peer, self.remove_slot(i)));
        }
        out
    }

    /// When the longest-idle flow expires, if there is one.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.slots.get(self.head).and_then(Option::as_ref).map(|n| n.last_seen + self.timeout)
    }

    /// Keeps slot `i` (expired here) when `seen_elsewhere` says it was active within the
    /// timeout: touched at that time. The slot then sits at the tail although others there may
    /// have been touched later; it ends at the latest when those before it have.
    fn revive(
        &mut self,
        i: usize,
        now: Instant,
        mut seen_elsewhere: impl FnMut(&V) -> Option<Instant>,
    ) -> bool {
        let Some(node) = &self.slots[i] else { return false };
        match seen_elsewhere(&node.value) {
            Some(at) if now.saturating_duration_since(at) < self.timeout => {
                self.touch_slot(i, at);
                true
            }
            _ => false,
        }
    }

    fn expired(&self, i: usize, now: Instant) -> bool {
        match &self.slots[i] {
            Some(node) => now.saturating_duration_since(node.last_seen) >= self.timeout,
            None => true,
        }
    }

    fn peer_of(&self, i: usize) -> SocketAddr {
        match &self.slots[i] {
            Some(node) => node.peer,
            None => unreachable!("linked slot {i} is occupied"),
        }
    }

    fn node(&mut self, i: usize) -> &mut Node<V> {
        match &mut self.slots[i] {
            Some(node) => node,
            None => unreachable!("linked slot {i} is occupied"),
        }
    }

    fn touch_slot(&mut self, i: usize, now: Instant) {
        let node = self.node(i);
        // A clock that went backwards (it does not: `Instant` is monotonic) must not reorder.
        if now > node.last_seen {
            node.last_seen = now;
        }
        if self.tail != i {
            self.unlink(i);
            self.push_tail(i);
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = {
            let n = self.node(i);
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node(next).prev = prev;
        }
    }

    fn push_tail(&mut self, i: usize) {
        let tail = self.tail;
        {
            let n = self.node(i);
            n.prev = tail;
            n.next = NIL;
        }
        if tail == NIL {
            self.head = i;
        } else {
            self.node(tail).next = i;
        }
        self.tail = i;
    }

    fn remove_slot(&mut self, i: usize) -> V {
        self.unlink(i);
        let node = self.slots[i].take().expect("linked slot is occupied");
        self.index.remove(&node.peer);
        self.free.push(i);
        node.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], n))
    }

    /// One step of a scenario on a virtual clock (milliseconds since the start).
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// A client datagram: expect a live flow with this value, or a new flow (then one is
        /// inserted with `value`), optionally with the expired value handed back.
        Datagram { at: u64, from: u16, live: Option<u32>, expired: Option<u32>, value: u32 },
        /// A backend reply touches the flow.
        Reply { at: u64, from: u16 },
        /// A sweep: expect these (client, value) flows to end.
        Sweep { at: u64, ended: &'static [(u16, u32)] },
    }

    fn dgram(at: u64, from: u16, live: Option<u32>, value: u32) -> Step {
        Step::Datagram { at, from, live, expired: None, value }
    }

    fn run(name: &str, timeout_ms: u64, capacity: usize, steps: &[Step]) -> Vec<(SocketAddr, u32)> {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut table = FlowTable::new(Duration::from_millis(timeout_ms), capacity);
        let mut evicted = Vec::new();
        for (k, step) in steps.iter().enumerate() {
            match *step {
                Step::Datagram { at: t, from, live, expired, value } => match table.lookup(peer(from), at(t))
                {
                    Lookup::Live(v) => assert_eq!(Some(*v), live, "{name} step {k}: live flow"),
                    Lookup::New(old) => {
                        assert_eq!(live, None, "{name} step {k}: expected a live flow");
                        assert_eq!(old, expired, "{name} step {k}: expired value");
                        evicted.extend(table.insert(peer(from), value, at(t)));
                    }
                },
                Step::Reply { at: t, from } => table.touch(peer(from), at(t)),
                Step::Sweep { at: t, ended } => {
                    let got = table.expire(at(t));
                    let want: Vec<_> = ended.iter().map(|(p, v)| (peer(*p), *v)).collect();
                    assert_eq!(got, want, "{name} step {k}: swept");
                }
            }
            assert!(table.len() <= capacity, "{name} step {k}: over capacity");
        }
        evicted
    }

    #[test]
    fn scenarios() {
        type Case = (&'static str, u64, usize, Vec<Step>, Vec<(u16, u32)>);
        let cases: Vec<Case> = vec![
            (
                "same client within the timeout stays on its flow",
                3000,
                8,
                vec![dgram(0, 1, None, 7), dgram(2999, 1, Some(7), 0), dgram(5998, 1, Some(7), 0)],
                vec![],
            ),
            (
                "idle for the timeout: a new flow, the old one handed back",
                3000,
                8,
                vec![
                    dgram(0, 1, None, 7),
                    Step::Datagram { at: 3000, from: 1, live: None, expired: Some(7), value: 8 },
                    dgram(3001, 1, Some(8), 0),
                ],
                vec![],
            ),
            (
                "a backend reply keeps the flow alive",
                1000,
                8,
                vec![dgram(0, 1, None, 7), Step::Reply { at: 900, from: 1 }, dgram(1800, 1, Some(7), 0)],
                vec![],
            ),
            (
                "sweep ends idle flows, longest idle first, keeps active ones",
                1000,
                8,
                vec![
                    dgram(0, 1, None, 1),
                    dgram(100, 2, None, 2),
                    dgram(200, 3, None, 3),
                    dgram(600, 1, Some(1), 0),
                    Step::Sweep { at: 999, ended: &[] },
                    Step::Sweep { at: 1200, ended: &[(2, 2), (3, 3)] },
                    Step::Sweep { at: 1600, ended: &[(1, 1)] },
                ],
                vec![],
            ),
            (
                "full table evicts the longest idle flow",
                60_000,
                2,
                vec![
                    dgram(0, 1, None, 1),
                    dgram(10, 2, None, 2),
                    dgram(20, 1, Some(1), 0),
                    dgram(30, 3, None, 3),
                    dgram(40, 1, Some(1), 0),
                    dgram(50, 3, Some(3), 0),
                    dgram(60, 4, None, 4),
                ],
                vec![(2, 2), (1, 1)],
            ),
            (
                "a flood of new sources stays within capacity",
                60_000,
                3,
                (0..50).map(|n| dgram(n, 100 + n as u16, None, n as u32)).collect(),
                (0..47).map(|n| (100 + n as u16, n as u32)).collect(),
            ),
        ];
        for (name, timeout, capacity, steps, want_evicted) in cases {
            let evicted = run(name, timeout, capacity, &steps);
            let want: Vec<_> = want_evicted.iter().map(|(p, v)| (peer(*p), *v)).collect();
            assert_eq!(evicted, want, "{name}: evicted");
        }
    }

    #[test]
    fn activity_seen_elsewhere_keeps_a_flow() {
        let start = Instant::now();
        let ms = |n: u64| start + Duration::from_millis(n);
        let mut table = FlowTable::new(Duration::from_millis(1000), 8);
        table.insert(peer(1), 1u32, ms(0));
        table.insert(peer(2), 2u32, ms(0));
        // Flow 1 forwarded by the kernel at 900 ms; flow 2 never.
        let kernel = |v: &u32| (*v == 1).then(|| ms(900));
        let ended: Vec<u32> = table.expire_with(ms(1500), kernel).into_iter().map(|(_, v)| v).collect();
        assert_eq!(ended, vec![2], "idle everywhere ends, active in the kernel stays");
        assert_eq!(table.next_expiry(), Some(ms(1900)), "kept at the kernel's time, not the sweep's");
        // Still active in the kernel when a datagram comes through userspace: the same flow.
        assert_eq!(table.lookup_with(peer(1), ms(1800), kernel), Lookup::Live(&1));
        // Idle in the kernel too for the timeout: the flow ends.
        assert_eq!(table.lookup_with(peer(1), ms(2900), kernel), Lookup::New(Some(1)));
        table.insert(peer(3), 3u32, ms(3000));
        let stale = |_: &u32| Some(ms(100));
        assert_eq!(
            table.expire_with(ms(4000), stale).len(),
            1,
            "activity older than the timeout does not keep it"
        );
    }

    #[test]
    fn next_expiry_follows_the_longest_idle_flow() {
        let start = Instant::now();
        let mut table = FlowTable::new(Duration::from_secs(3), 4);
        assert_eq!(table.next_expiry(), None);
        table.insert(peer(1), (), start);
        table.insert(peer(2), (), start + Duration::from_secs(1));
        assert_eq!(table.next_expiry(), Some(start + Duration::from_secs(3)));
        table.touch(peer(1), start + Duration::from_secs(2));
        assert_eq!(table.next_expiry(), Some(start + Duration::from_secs(4)));
        assert_eq!(table.remove(peer(2)), Some(()));
        assert_eq!(table.next_expiry(), Some(start + Duration::from_secs(5)));
        assert!(table.remove(peer(2)).is_none());
        assert_eq!(table.len(), 1);
    }
}
