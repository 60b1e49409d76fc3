//! Per-worker balancing state over a table's services, and the walk from a router's service
//! to one server: weighted round robin (skipping unhealthy and fenced servers), sticky
//! cookies (Traefik: a cookie naming a healthy server wins, fenced or not), mirroring counters
//! and Traefik's terminal answers (`noop@internal` 418, no server 503). No IO, no clock.

use foldhash::HashMap;
use std::cell::RefCell;

use http::{HeaderMap, HeaderValue};

use super::compiled::Service;
use super::mirror::MirrorCounter;
use super::sticky;
use crate::lb::leasttime::LeastTime;
use crate::lb::rng::Rng;
use crate::lb::wrr::Wrr;
use crate::lb::{hrw, p2c};
use crate::table::{ServiceId, Table};
use weir_proto::snapshot::Strategy;

/// Why a walk ended without a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A load balancer or weighted service had nothing to pick: 503 `no available server`.
    NoServer,
    /// `noop@internal`: 418.
    Noop,
    /// One of Traefik's other internal services (`api@internal`, ...): `crate::admin` answers.
    Internal(weir_proto::api::InternalService),
}

/// What a walk decided besides the server.
#[derive(Debug, Default)]
pub struct Walk {
    /// `Set-Cookie` values to add to the response.
    pub set_cookies: Vec<HeaderValue>,
    /// Mirror services that get a copy of this request.
    pub mirrors: Vec<ServiceId>,
    /// `mirrorBody` and `maxBodySize` of the first mirroring service met.
    pub mirror_body: Option<(bool, i64)>,
    /// Index in `set_cookies` of the cookie the final load balancer wrote, if any.
    lb_cookie: Option<usize>,
    /// The client's IP, the key of the `hrw` strategy.
    pub client_ip: Option<std::net::IpAddr>,
}

struct Node {
    wrr: Wrr,
    mirror: Option<MirrorCounter>,
    /// `p2c`: requests in flight per server (until their response head), on this worker.
    inflight: Vec<u64>,
    /// `leasttime`: its per-server statistics.
    least: Option<LeastTime>,
}

/// One worker's state for one table.
pub struct Balancers {
    nodes: RefCell<Vec<Node>>,
    /// Random draws of `p2c`.
    rng: RefCell<Rng>,
}

impl Balancers {
    /// State for `table`, carrying positions over by service name from `previous` when the
    /// weights (or mirror percentages) did not change.
    pub fn new(table: &Table, previous: Option<(&Table, &Balancers)>) -> Balancers {
        let prev_nodes = previous.map(|(_, b)| b.nodes.borrow());
        let prev_names: &[String] = previous.map_or(&[], |(t, _)| &t.service_names);
        // By name, built only when a service is not at its previous position (a change to one
        // route among 10,000 usually moves none).
        let mut by_name: Option<HashMap<&str, &Node>> = None;
        let nodes = table
            .services
            .iter()
            .zip(&table.service_names)
            .enumerate()
            .map(|(i, (svc, name))| {
                let weights = svc.weights();
                let prev = match &prev_nodes {
                    Some(nodes) if prev_names.get(i) == Some(name) => nodes.get(i),
                    Some(nodes) => by_name
                        .get_or_insert_with(|| {
                            prev_names.iter().map(String::as_str).zip(nodes.iter()).collect()
                        })
                        .get(name.as_str())
                        .copied(),
                    None => None,
                };
                let wrr = match prev {
                    Some(n)
                        if !matches!(svc, Service::Mirroring { .. })
                            && n.wrr.same_weights(weights.iter().copied()) =>
                    {
                        n.wrr.clone()
                    }
                    _ => Wrr::new(weights.iter().copied()),
                };
                let mirror = match svc {
                    Service::Mirroring { mirrors, .. } => {
                        let percents = mirrors.iter().map(|m| m.1);
                        Some(match prev.and_then(|n| n.mirror.as_ref()) {
                            Some(m) if m.same_percents(percents.clone()) => m.clone(),
                            _ => MirrorCounter::new(percents),
                        })
                    }
                    _ => None,
                };
                let least = match svc {
                    Service::LoadBalancer(lb) if lb.strategy == Strategy::LeastTime => {
                        Some(match prev.and_then(|n| n.least.as_ref()) {
                            Some(l) if l.same_weights(weights.iter().copied()) => l.clone(),
                            _ => LeastTime::new(weights.iter().copied()),
                        })
                    }
                    _ => None,
                };
                Node { wrr, mirror, inflight: vec![0; weights.len()], least }
            })
            .collect();
        Balancers { nodes: RefCell::new(nodes), rng: RefCell::new(Rng::from_entropy()) }
    }

    /// A request to server `index` of load balancer `lb_id` is being sent (p2c, leasttime).
    pub fn started(&self, lb_id: ServiceId, index: usize) {
        let mut nodes = self.nodes.borrow_mut();
        let Some(node) = nodes.get_mut(lb_id) else { return };
        if let Some(n) = node.inflight.get_mut(index) {
            *n += 1;
        }
        if let Some(l) = node.least.as_mut() {
            l.start(index);
        }
    }

    /// That request got its response head after `ttfb` (`None`: it failed).
    pub fn finished(&self, lb_id: ServiceId, index: usize, ttfb: Option<std::time::Duration>) {
        let mut nodes = self.nodes.borrow_mut();
        let Some(node) = nodes.get_mut(lb_id) else { return };
        if let Some(n) = node.inflight.get_mut(index) {
            *n = n.saturating_sub(1);
        }
        if let Some(l) = node.least.as_mut() {
            l.finish(index, ttfb);
        }
    }

    /// Walks from `id` to a server: `(load balancer id, server index)`.
    pub fn pick(
        &self,
        services: &[Service],
        mut id: ServiceId,
        headers: &HeaderMap,
        walk: &mut Walk,
    ) -> Result<(ServiceId, usize), Stop> {
        let mut nodes = self.nodes.borrow_mut();
        // The tree is acyclic (checked when the table was built), so this terminates.
        loop {
            match &services[id] {
                Service::Noop => return Err(Stop::Noop),
                Service::Internal(kind) => return Err(Stop::Internal(*kind)),
                Service::Mirroring { main, mirrors, mirror_body, max_body_size } => {
                    if let Some(counter) = nodes[id].mirror.as_mut() {
                        counter.next(|i| walk.mirrors.push(mirrors[i].0));
                    }
                    walk.mirror_body.get_or_insert((*mirror_body, *max_body_size));
                    id = *main;
                }
                Service::Weighted { children, sticky: st, values } => {
                    if let Some(st) = st {
                        if let Some(v) = sticky::find(headers, &st.cookie.name) {
                            if let Some(i) = values.iter().position(|x| x == v) {
                                id = children[i].0;
                                continue;
                            }
                        }
                    }
                    let i = nodes[id].wrr.pick().ok_or(Stop::NoServer)?;
                    if let Some(st) = st {
                        walk.set_cookies.push(sticky::set_cookie(&st.cookie, &values[i]));
                    }
                    id = children[i].0;
                }
                Service::LoadBalancer(lb) => {
                    // Traefik's hrw balancer has no sticky sessions.
                    if let Some(st) = lb.sticky.as_ref().filter(|_| lb.strategy != Strategy::Hrw) {
                        if let Some(v) = sticky::find(headers, &st.cookie.name) {
                            // Traefik also accepts the plain URL (older cookies) and rewrites it.
                            let hit = lb
                                .servers
                                .iter()
                                .position(|s| s.sticky_value == v)
                                .map(|i| (i, false))
                                .or_else(|| lb.servers.iter().position(|s| s.url == v).map(|i| (i, true)));
                            if let Some((i, rewrite)) = hit {
                                if lb.servers[i].healthy() && lb.servers[i].resolved.is_some() {
                                    if rewrite {
                                        walk.lb_cookie = Some(walk.set_cookies.len());
                                        walk.set_cookies.push(sticky::set_cookie(
                                            &st.cookie,
                                            &lb.servers[i].sticky_value,
                                        ));
                                    }
                                    return Ok((id, i));
                                }
                            }
                        }
                    }
                    return self.pick_server(&mut nodes, services, id, None, walk);
                }
            }
        }
    }

    /// Picks another server of load balancer `lb_id` than `failed` (a retry after a connect
    /// failure), replacing the sticky cookie the first pick wrote.
    pub fn repick(
        &self,
        services: &[Service],
        lb_id: ServiceId,
        failed: usize,
        walk: &mut Walk,
    ) -> Result<(ServiceId, usize), Stop> {
        if let Some(i) = walk.lb_cookie.take() {
            walk.set_cookies.remove(i);
        }
        let mut nodes = self.nodes.borrow_mut();
        self.pick_server(&mut nodes, services, lb_id, Some(failed), walk)
    }

    fn pick_server(
        &self,
        nodes: &mut [Node],
        services: &[Service],
        id: ServiceId,
        exclude: Option<usize>,
        walk: &mut Walk,
    ) -> Result<(ServiceId, usize), Stop> {
        let Service::LoadBalancer(lb) = &services[id] else { return Err(Stop::NoServer) };
        let available = |i: usize| {
            let s = &lb.servers[i];
            s.healthy() && !s.fenced && Some(i) != exclude
        };
        let node = &mut nodes[id];
        let picked = match lb.strategy {
            Strategy::Wrr => node.wrr.pick_where(available),
            Strategy::P2c => {
                // Traefik leaves servers of weight 0 out of the balancer.
                let candidates: Vec<usize> =
                    (0..lb.servers.len()).filter(|&i| lb.servers[i].weight > 0 && available(i)).collect();
                let inflight = &node.inflight;
                p2c::pick(&candidates, |i| inflight.get(i).copied().unwrap_or(0), &mut self.rng.borrow_mut())
            }
            Strategy::Hrw => {
                let key = walk.client_ip.map(|ip| ip.to_string()).unwrap_or_default();
                let candidates = (0..lb.servers.len())
                    .filter(|&i| available(i))
                    .map(|i| (i, lb.servers[i].url.as_str(), lb.servers[i].weight));
                hrw::pick(&key, candidates)
            }
            Strategy::LeastTime => match node.least.as_mut() {
                Some(l) => l.pick(available),
                None => node.wrr.pick_where(available),
            },
        };
        let i = picked.ok_or(Stop::NoServer)?;
        if let Some(st) = lb.sticky.as_ref().filter(|_| lb.strategy != Strategy::Hrw) {
            walk.lb_cookie = Some(walk.set_cookies.len());
            walk.set_cookies.push(sticky::set_cookie(&st.cookie, &lb.servers[i].sticky_value));
        }
        Ok((id, i))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use http::header::COOKIE;
    use weir_proto::snapshot::{self as s, Scheme, ServiceKind, Snapshot, StickyCookie, WeightedService};

    use super::*;

    fn server(port: u16, fenced: bool) -> s::Server {
        let address = std::net::SocketAddr::from(([10, 0, 0, 1], port));
        s::Server {
            url: format!("http://{address}"),
            address,
            weight: 1,
            scheme: Scheme::Http,
            hostname: None,
            fenced,
        }
    }

    fn lb(name: &str, servers: Vec<s::Server>, sticky: bool) -> s::Service {
        let cookie = StickyCookie {
            name: "stick".into(),
            secure: false,
            http_only: false,
            same_site: None,
            max_age: 0,
            path: Some("/".into()),
            domain: None,
        };
        s::Service {
            name: name.into(),
            kind: ServiceKind::LoadBalancer(s::LoadBalancer {
                servers,
                pass_host_header: true,
                sticky: sticky.then_some(cookie),
                // Health-checked servers get a flag each (the others share one that stays up).
                health_check: sticky.then(|| s::HealthCheck {
                    grpc: false,
                    scheme: None,
                    path: "/".into(),
                    method: "GET".into(),
                    status: 0,
                    port: 0,
                    hostname: None,
                    headers: Vec::new(),
                    follow_redirects: true,
                    interval_ms: 30_000,
                    unhealthy_interval_ms: 30_000,
                    timeout_ms: 5_000,
                }),
                servers_transport: None,
                flush_interval_ms: 100,
                strategy: Default::default(),
            }),
        }
    }

    fn weighted(name: &str, children: &[(&str, u32)]) -> s::Service {
        s::Service {
            name: name.into(),
            kind: ServiceKind::Weighted(
                children.iter().map(|(c, w)| WeightedService { service: (*c).into(), weight: *w }).collect(),
            ),
        }
    }

    fn table(services: Vec<s::Service>) -> Table {
        Table::build(&Snapshot {
            services: services.into_iter().map(std::sync::Arc::new).collect(),
            ..Snapshot::default()
        })
        .expect("valid table")
    }

    /// Which server port each of `n` picks from service `root` lands on (0 for "no server").
    fn picks(t: &Table, b: &Balancers, root: &str, headers: &HeaderMap, n: usize) -> Vec<u16> {
        let id = t.service_names.iter().position(|x| x == root).expect("root");
        (0..n)
            .map(|_| match b.pick(&t.services, id, headers, &mut Walk::default()) {
                Ok((lb, i)) => match &t.services[lb] {
                    Service::LoadBalancer(lb) => lb.servers[i].address.port(),
                    _ => unreachable!(),
                },
                Err(_) => 0,
            })
            .collect()
    }

    #[test]
    fn weighted_nesting_is_counted() {
        let t = table(vec![
            weighted("outer", &[("a", 3), ("inner", 1)]),
            weighted("inner", &[("b", 1), ("c", 1), ("never", 0)]),
            lb("a", vec![server(1, false)], false),
            lb("b", vec![server(2, false)], false),
            lb("c", vec![server(3, false)], false),
            lb("never", vec![server(4, false)], false),
        ]);
        let b = Balancers::new(&t, None);
        let got = picks(&t, &b, "outer", &HeaderMap::new(), 80);
        let count = |p| got.iter().filter(|x| **x == p).count();
        assert_eq!((count(1), count(2), count(3), count(4)), (60, 10, 10, 0));
    }

    #[test]
    fn health_fencing_and_stickiness() {
        let t = table(vec![lb("pool", vec![server(1, false), server(2, false), server(3, true)], true)]);
        let b = Balancers::new(&t, None);
        let Service::LoadBalancer(pool) = &t.services[0] else { unreachable!() };
        let none = HeaderMap::new();
        let cookie_for = |i: usize| {
            let mut h = HeaderMap::new();
            h.insert(
                COOKIE,
                format!("other=1; stick={}", pool.servers[i].sticky_value).parse().expect("valid"),
            );
            h
        };
        let cases: [(&str, [bool; 3], HeaderMap, Vec<u16>); 5] = [
            ("fenced server gets no new traffic", [true, true, true], none.clone(), vec![1, 2, 1, 2]),
            ("an existing cookie reaches the fenced server", [true, true, true], cookie_for(2), vec![3, 3]),
            ("unhealthy server skipped", [false, true, true], none.clone(), vec![2, 2, 2]),
            ("cookie for an unhealthy server falls back", [false, true, true], cookie_for(0), vec![2, 2]),
            ("nothing healthy and unfenced: 503", [false, false, true], none.clone(), vec![0, 0]),
        ];
        for (name, health, headers, want) in cases {
            for (s, up) in pool.servers.iter().zip(health) {
                s.health.store(up, Ordering::Relaxed);
            }
            let b = Balancers::new(&t, Some((&t, &b)));
            assert_eq!(picks(&t, &b, "pool", &headers, want.len()), want, "case {name}");
        }
        // A fresh pick writes the cookie of the server it chose.
        for s in &pool.servers {
            s.health.store(true, Ordering::Relaxed);
        }
        let mut walk = Walk::default();
        let (_, i) = b.pick(&t.services, 0, &none, &mut walk).expect("server");
        assert_eq!(walk.set_cookies.len(), 1);
        let line = walk.set_cookies[0].to_str().expect("ascii").to_string();
        assert_eq!(line, format!("stick={}; Path=/", pool.servers[i].sticky_value));
    }
}
