//! TraefikService → snapshot services, resolved from the references that use it, as Traefik's
//! CRD provider builds them: `weighted` (children of any kind, nested to any depth, optional
//! sticky cookie) and `mirroring` (a main service and mirrors with a percentage), named
//! `<ns>-<name>`; `noop@internal` is Traefik's built-in 418 service. A TraefikService that
//! cannot be built — a missing child, a loop — fails every route that references it.

use weir_proto::snapshot::{MirrorService, Mirroring, Service, ServiceKind, WeightedService};

use super::error::TranslateError;
use super::names;
use super::service::{resolve_ref_in, sticky_cookie, Generated, ServiceOptions, PROVIDER};
use crate::objects::{ServiceRef, TraefikService};
use crate::store::ObjectStore;

/// Traefik's internal service that answers 418 to everything.
pub const NOOP: &str = "noop@internal";

/// Resolves a `kind: TraefikService` reference; returns the service's name.
pub(super) fn resolve(
    store: &ObjectStore,
    parent_namespace: &str,
    sref: &ServiceRef,
    options: ServiceOptions,
    visiting: &mut Vec<String>,
    out: &mut Generated,
) -> Result<String, TranslateError> {
    let (name, namespace) = match sref.name.split_once('@') {
        None => (sref.name.as_str(), sref.namespace.as_deref().filter(|n| !n.is_empty())),
        Some(_) if sref.name == NOOP => {
            out.insert(NOOP.into(), Service { name: NOOP.into(), kind: ServiceKind::Noop });
            return Ok(NOOP.into());
        }
        // Traefik's other internal services (`api@internal`, `ping@internal`, ...); whether the
        // feature is on is checked once the snapshot is built (`crate::api::add_internal`).
        Some(_) if weir_proto::api::InternalService::from_name(&sref.name).is_some() => {
            if let Some(kind) = weir_proto::api::InternalService::from_name(&sref.name) {
                out.insert(
                    sref.name.clone(),
                    Service { name: sref.name.clone(), kind: ServiceKind::Internal(kind) },
                );
            }
            return Ok(sref.name.clone());
        }
        // Traefik: `name@kubernetescrd` is this provider's `<ns>-<name>`.
        Some((name, PROVIDER)) => (name, sref.namespace.as_deref().filter(|n| !n.is_empty())),
        Some(_) => return Err(TranslateError::CrossProvider { name: sref.name.clone() }),
    };
    let namespace = namespace.unwrap_or(parent_namespace);
    if namespace != parent_namespace && !options.allow_cross_namespace {
        return Err(TranslateError::CrossNamespace {
            namespace: namespace.into(),
            name: name.into(),
            from: parent_namespace.into(),
        });
    }
    let key = names::normalize(&format!("{namespace}-{name}"));
    if let Some(start) = visiting.iter().position(|v| *v == key) {
        let mut chain = visiting[start..].to_vec();
        chain.push(key);
        return Err(TranslateError::TraefikServiceCycle { chain });
    }
    let Some(ts) = store.traefik_service(namespace, name) else {
        return Err(TranslateError::MissingTraefikService { namespace: namespace.into(), name: name.into() });
    };
    visiting.push(key.clone());
    let built = build(store, ts, &key, options, visiting, out);
    visiting.pop();
    let kind = built.map_err(|e| match e {
        cycle @ TranslateError::TraefikServiceCycle { .. } => cycle,
        other => TranslateError::InvalidTraefikService {
            namespace: namespace.into(),
            name: name.into(),
            reason: other.to_string(),
        },
    })?;
    out.insert(key.clone(), Service { name: key.clone(), kind });
    Ok(key)
}

fn build(
    store: &ObjectStore,
    ts: &TraefikService,
    key: &str,
    options: ServiceOptions,
    visiting: &mut Vec<String>,
    out: &mut Generated,
) -> Result<ServiceKind, TranslateError> {
    let namespace = ts.metadata.namespace();
    let spec = &ts.spec;
    let kinds = [
        spec.weighted.is_some(),
        spec.mirroring.is_some(),
        spec.highest_random_weight.is_some(),
        spec.failover.is_some(),
    ];
    let reason =
        |r: &str| TranslateError::InvalidServiceSpec { name: ts.metadata.name.clone(), reason: r.into() };
    match kinds.iter().filter(|k| **k).count() {
        0 => return Err(reason("unspecified service type")),
        1 => {}
        _ => return Err(reason("multi-types service not supported")),
    }
    if let Some(weighted) = &spec.weighted {
        let mut children = Vec::with_capacity(weighted.services.len());
        for child in &weighted.services {
            let weight = child.weight.unwrap_or(1);
            let weight = u32::try_from(weight)
                .map_err(|_| TranslateError::InvalidWeight { name: child.name.clone(), weight })?;
            let service = resolve_ref_in(store, namespace, child, options, visiting, out)?;
            children.push(WeightedService { service, weight });
        }
        let cookie = weighted.sticky.as_ref().and_then(|s| s.cookie.as_ref());
        return Ok(match cookie {
            // Traefik derives the default cookie name from the qualified service name.
            Some(c) => ServiceKind::StickyWeighted {
                services: children,
                cookie: sticky_cookie(c, &format!("{key}@{PROVIDER}")),
            },
            None => ServiceKind::Weighted(children),
        });
    }
    if let Some(m) = &spec.mirroring {
        let main = resolve_ref_in(store, namespace, &m.service, options, visiting, out)?;
        let mut mirrors = Vec::with_capacity(m.mirrors.len());
        for mirror in &m.mirrors {
            let percent = mirror.percent.unwrap_or(0);
            let percent = u32::try_from(percent)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| reason("percent must be between 0 and 100"))?;
            let service = resolve_ref_in(store, namespace, mirror, options, visiting, out)?;
            mirrors.push(MirrorService { service, percent });
        }
        return Ok(ServiceKind::Mirroring(Mirroring {
            service: main,
            mirrors,
            mirror_body: m.mirror_body.unwrap_or(true),
            max_body_size: m.max_body_size.unwrap_or(-1),
        }));
    }
    if spec.highest_random_weight.is_some() {
        return Err(reason("highestRandomWeight services are not supported by weir yet"));
    }
    Err(reason("failover services are not supported by weir yet"))
}
