//! Endpoint deltas: the small message that carries EndpointSlice churn (servers of load
//! balancers added, removed, fenced) on top of a full snapshot the data plane already serves.
//! The control plane computes the full snapshot as always and diffs it against the last one
//! it published ([`EndpointsDelta::between`]); the data plane applies the delta to the snapshot
//! it serves ([`EndpointsDelta::apply_to`]). Pure data and functions; no IO.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::snapshot::{LoadBalancer, Server, ServiceKind, Snapshot, SnapshotError};

/// New servers for some load balancers, on top of snapshot `base_generation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointsDelta {
    /// The generation this delta applies to; any other is refused.
    pub base_generation: u64,
    /// The generation the result has.
    pub generation: u64,
    /// Load-balancer services by name, with their complete new server lists.
    pub services: Vec<(String, Vec<Server>)>,
}

/// A delta that does not fit the snapshot it is applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// The snapshot served is not the one the delta was computed against.
    #[error("delta is based on generation {base}, but generation {served} is served")]
    WrongBase {
        /// The delta's base generation.
        base: u64,
        /// The generation served.
        served: u64,
    },
    /// The delta names a service the snapshot does not have, or one that is not a load
    /// balancer.
    #[error("delta names service {0}, which is not a load balancer of the served snapshot")]
    NotALoadBalancer(String),
}

impl EndpointsDelta {
    /// The delta that turns `old` into `new`, when the two differ only in the servers of
    /// load balancers (same services in the same order, every other field equal); `None`
    /// when anything else changed and a full snapshot must be sent. Generations are taken
    /// from the two snapshots and are not compared.
    pub fn between(old: &Snapshot, new: &Snapshot) -> Option<EndpointsDelta> {
        if old.entrypoints != new.entrypoints
            || old.services.len() != new.services.len()
            || old.servers_transports != new.servers_transports
            || old.middlewares != new.middlewares
            || old.routers != new.routers
            || old.tls != new.tls
            || old.udp != new.udp
            || old.tcp != new.tcp
            // A delta keeps the served snapshot's metrics, access-log and API settings.
            || old.observability != new.observability
            || old.api != new.api
        {
            return None;
        }
        let mut services = Vec::new();
        for (a, b) in old.services.iter().zip(&new.services) {
            if a.name != b.name {
                return None;
            }
            match (&a.kind, &b.kind) {
                (ServiceKind::LoadBalancer(x), ServiceKind::LoadBalancer(y)) => {
                    if !same_except_servers(x, y) {
                        return None;
                    }
                    if x.servers != y.servers {
                        services.push((b.name.clone(), y.servers.clone()));
                    }
                }
                (x, y) if x == y => {}
                _ => return None,
            }
        }
        Some(EndpointsDelta { base_generation: old.generation, generation: new.generation, services })
    }

    /// Applies the delta to `snapshot` (which must be generation `base_generation`): replaces
    /// the named load balancers' servers and sets the new generation. Checks everything
    /// before changing anything, so on error `snapshot` is untouched.
    pub fn apply_to(&self, snapshot: &mut Snapshot) -> Result<(), DeltaError> {
        if snapshot.generation != self.base_generation {
            return Err(DeltaError::WrongBase { base: self.base_generation, served: snapshot.generation });
        }
        let index: HashMap<&str, usize> =
            snapshot.services.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
        let mut targets = Vec::with_capacity(self.services.len());
        for (name, _) in &self.services {
            match index.get(name.as_str()) {
                Some(&i) if matches!(snapshot.services[i].kind, ServiceKind::LoadBalancer(_)) => {
                    targets.push(i)
                }
                _ => return Err(DeltaError::NotALoadBalancer(name.clone())),
            }
        }
        for (i, (_, servers)) in targets.into_iter().zip(&self.services) {
            if let ServiceKind::LoadBalancer(lb) =
                &mut std::sync::Arc::make_mut(&mut snapshot.services[i]).kind
            {
                lb.servers = servers.clone();
            }
        }
        snapshot.generation = self.generation;
        Ok(())
    }

    /// Names of the services the delta changes.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|(n, _)| n.as_str())
    }

    /// Encodes the delta (postcard).
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        postcard::to_stdvec(self).map_err(|e| SnapshotError::Encode(e.to_string()))
    }

    /// Decodes a delta produced by [`EndpointsDelta::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        postcard::from_bytes(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))
    }
}

pub(crate) fn same_except_servers(a: &LoadBalancer, b: &LoadBalancer) -> bool {
    a.pass_host_header == b.pass_host_header
        && a.sticky == b.sticky
        && a.health_check == b.health_check
        && a.servers_transport == b.servers_transport
        && a.flush_interval_ms == b.flush_interval_ms
        && a.strategy == b.strategy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Scheme, Service, WeightedService};

    fn server(last: u8) -> Server {
        let address = std::net::SocketAddr::from(([10, 0, 0, last], 80));
        Server {
            url: format!("http://{address}"),
            address,
            weight: 1,
            scheme: Scheme::Http,
            hostname: None,
            fenced: false,
        }
    }

    fn lb(name: &str, servers: Vec<Server>) -> std::sync::Arc<Service> {
        std::sync::Arc::new(Service {
            name: name.into(),
            kind: ServiceKind::LoadBalancer(LoadBalancer {
                servers,
                pass_host_header: true,
                sticky: None,
                health_check: None,
                servers_transport: None,
                flush_interval_ms: 100,
                strategy: Default::default(),
            }),
        })
    }

    fn snapshot(generation: u64) -> Snapshot {
        Snapshot {
            generation,
            services: vec![
                lb("a", vec![server(1), server(2)]),
                lb("b", vec![server(3)]),
                std::sync::Arc::new(Service {
                    name: "w".into(),
                    kind: ServiceKind::Weighted(vec![WeightedService { service: "a".into(), weight: 1 }]),
                }),
            ],
            ..Default::default()
        }
    }

    fn servers_of(s: &mut Snapshot, i: usize) -> &mut Vec<Server> {
        match &mut std::sync::Arc::make_mut(&mut s.services[i]).kind {
            ServiceKind::LoadBalancer(lb) => &mut lb.servers,
            other => panic!("test snapshot: service {i} is {other:?}"),
        }
    }

    #[test]
    fn diff_sends_only_changed_load_balancers() {
        type Edit = fn(&mut Snapshot);
        let cases: [(&str, Edit, Option<&[&str]>); 9] = [
            ("nothing changed", |_| {}, Some(&[])),
            ("endpoint removed", |s| drop(servers_of(s, 0).pop()), Some(&["a"])),
            ("endpoint added", |s| servers_of(s, 1).push(server(4)), Some(&["b"])),
            ("endpoint fenced", |s| servers_of(s, 1)[0].fenced = true, Some(&["b"])),
            (
                "two services",
                |s| {
                    servers_of(s, 0).clear();
                    servers_of(s, 1).clear();
                },
                Some(&["a", "b"]),
            ),
            (
                "load balancer option",
                |s| {
                    if let ServiceKind::LoadBalancer(lb) =
                        &mut std::sync::Arc::make_mut(&mut s.services[0]).kind
                    {
                        lb.pass_host_header = false;
                    }
                },
                None,
            ),
            ("service added", |s| s.services.push(lb("c", vec![])), None),
            ("service renamed", |s| std::sync::Arc::make_mut(&mut s.services[1]).name = "c".into(), None),
            (
                "weighted child changed",
                |s| std::sync::Arc::make_mut(&mut s.services[2]).kind = ServiceKind::Weighted(vec![]),
                None,
            ),
        ];
        for (name, edit, want) in cases {
            let old = snapshot(4);
            let mut new = snapshot(5);
            edit(&mut new);
            let got = EndpointsDelta::between(&old, &new);
            let names = got.as_ref().map(|d| d.service_names().collect::<Vec<_>>());
            assert_eq!(names.as_deref(), want, "case {name}");
            if let Some(d) = got {
                assert_eq!((d.base_generation, d.generation), (4, 5), "case {name}");
                // Applying the delta to the old snapshot gives exactly the new one.
                let mut applied = old.clone();
                d.apply_to(&mut applied).expect("applies");
                assert_eq!(applied, new, "case {name}");
                assert_eq!(EndpointsDelta::decode(&d.encode().expect("encodes")).expect("decodes"), d);
            }
        }
    }

    #[test]
    fn other_changes_are_not_deltas() {
        let old = snapshot(1);
        let mut routers = snapshot(2);
        routers.routers.push(std::sync::Arc::new(crate::snapshot::Router {
            name: "r".into(),
            entrypoints: vec![],
            rule: "PathPrefix(`/`)".into(),
            expr: crate::rule::parse("PathPrefix(`/`)").expect("valid rule"),
            priority: 1,
            service: "a".into(),
            tls: false,
            middlewares: vec![],
        }));
        assert_eq!(EndpointsDelta::between(&old, &routers), None);
        // UDP routers and services travel in full snapshots only.
        let mut udp = snapshot(2);
        udp.udp.services.push(crate::udp::UdpService {
            name: "u".into(),
            kind: crate::udp::UdpServiceKind::LoadBalancer(vec![server(9).address]),
        });
        assert_eq!(EndpointsDelta::between(&old, &udp), None);
        // The API model and observability settings are not carried by a delta either.
        let mut api = snapshot(2);
        api.api.runtime_json = "{}".into();
        assert_eq!(EndpointsDelta::between(&old, &api), None);
    }

    #[test]
    fn apply_refuses_a_delta_that_does_not_fit() {
        let delta = |base, name: &str| EndpointsDelta {
            base_generation: base,
            generation: base + 1,
            services: vec![(name.into(), vec![server(9)])],
        };
        let cases = [
            ("wrong base", delta(3, "a"), DeltaError::WrongBase { base: 3, served: 4 }),
            ("unknown service", delta(4, "zz"), DeltaError::NotALoadBalancer("zz".into())),
            ("not a load balancer", delta(4, "w"), DeltaError::NotALoadBalancer("w".into())),
        ];
        for (name, d, want) in cases {
            let mut s = snapshot(4);
            assert_eq!(d.apply_to(&mut s), Err(want), "case {name}");
            assert_eq!(s, snapshot(4), "case {name}: snapshot untouched");
        }
        let mut s = snapshot(4);
        delta(4, "b").apply_to(&mut s).expect("fits");
        assert_eq!(s.generation, 5);
        assert_eq!(servers_of(&mut s, 1), &vec![server(9)]);
    }
}
