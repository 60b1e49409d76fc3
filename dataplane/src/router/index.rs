//! The router table of one entrypoint, indexed by host with Traefik's semantics. Routers are
//! sorted once (priority descending, then name ascending — Traefik leaves ties unspecified;
//! weir makes them deterministic). A router whose rule pins the host down (`Host(a) && …`,
//! `Host(a) || Host(b)`, `Host(*.x)`) is listed under those hosts only; every other router is
//! "generic". A lookup walks the host's own list and the generic list merged by position, so
//! the first match is exactly what a linear scan in priority order finds, at a cost that does
//! not grow with unrelated routes, and without allocating.

use foldhash::{HashMap, HashMapExt};

use super::expr::{CompiledExpr, HostCond};
use super::RequestInfo;

/// One router as the index holds it.
#[derive(Debug)]
pub struct IndexedRouter<T> {
    /// Router name (tie-break and logs).
    pub name: String,
    /// Priority (higher first).
    pub priority: i64,
    /// Compiled rule.
    pub expr: CompiledExpr,
    /// What the router leads to.
    pub target: T,
}

/// Routers of one entrypoint, indexed by required host.
#[derive(Debug)]
pub struct RouterIndex<T> {
    routers: Vec<IndexedRouter<T>>,
    /// Exact host → positions of routers that require it, plus the `*.` routers of its parent.
    exact: HashMap<Box<str>, Box<[u32]>>,
    /// Parent domain of a `*.parent` wildcard → positions of those routers.
    wildcard: HashMap<Box<str>, Box<[u32]>>,
    /// Routers that can match any host.
    generic: Box<[u32]>,
}

impl<T> Default for RouterIndex<T> {
    fn default() -> Self {
        RouterIndex::new(Vec::new())
    }
}

impl<T> RouterIndex<T> {
    /// Sorts and indexes `routers`.
    pub fn new(mut routers: Vec<IndexedRouter<T>>) -> RouterIndex<T> {
        routers.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.name.cmp(&b.name)));
        // Keys borrowed from the routers while building (no copy per router); owned at the end.
        let mut exact: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut wildcard: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut generic = Vec::new();
        for (i, r) in routers.iter().enumerate() {
            let i = i as u32;
            match r.expr.required_hosts() {
                None => generic.push(i),
                Some(keys) => {
                    for k in keys {
                        match k {
                            HostCond::Exact(h) => exact.entry(&**h).or_default().push(i),
                            HostCond::Wildcard(s) => wildcard.entry(&**s).or_default().push(i),
                            HostCond::Any => unreachable!("required_hosts never returns Any"),
                        }
                    }
                }
            }
        }
        // An exact host also meets the wildcard routers of its parent domain.
        let exact: HashMap<Box<str>, Box<[u32]>> = exact
            .into_iter()
            .map(|(host, mut list)| {
                if let Some(w) = host.split_once('.').and_then(|(_, parent)| wildcard.get(parent)) {
                    list.extend_from_slice(w);
                }
                list.sort_unstable();
                list.dedup();
                (Box::from(host), list.into_boxed_slice())
            })
            .collect();
        let wildcard: HashMap<Box<str>, Box<[u32]>> = wildcard
            .into_iter()
            .map(|(s, mut list)| {
                list.sort_unstable();
                list.dedup();
                (Box::from(s), list.into_boxed_slice())
            })
            .collect();
        RouterIndex { routers, exact, wildcard, generic: generic.into_boxed_slice() }
    }

    /// Number of routers.
    pub fn len(&self) -> usize {
        self.routers.len()
    }

    /// Whether there is no router.
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    fn host_list(&self, host: &str) -> &[u32] {
        if let Some(l) = self.exact.get(host) {
            return l;
        }
        match host.split_once('.') {
            Some((label, parent)) if !label.is_empty() => self.wildcard.get(parent).map_or(&[], |l| l),
            _ => &[],
        }
    }

    /// The router that handles the request: the first match in priority order.
    pub fn route(&self, req: &RequestInfo<'_>) -> Option<&IndexedRouter<T>> {
        let (mut a, mut b) = (self.host_list(req.host), &*self.generic);
        // Merge two ascending position lists; positions are priority order.
        loop {
            let next = match (a.first(), b.first()) {
                (Some(&x), Some(&y)) if x < y => {
                    a = &a[1..];
                    x
                }
                (_, Some(&y)) => {
                    b = &b[1..];
                    y
                }
                (Some(&x), None) => {
                    a = &a[1..];
                    x
                }
                (None, None) => return None,
            };
            let r = &self.routers[next as usize];
            if r.expr.matches(req) {
                return Some(r);
            }
        }
    }

    /// The same decision by a linear scan over every router (the reference the index must
    /// agree with; used by tests and benchmarks).
    pub fn route_linear(&self, req: &RequestInfo<'_>) -> Option<&IndexedRouter<T>> {
        self.routers.iter().find(|r| r.expr.matches(req))
    }
}
