use super::*;
use crate::config::{parse, Command, Environment};

fn config(args: &[&str]) -> StaticConfig {
    let env = Environment { xdg_runtime_dir: None, euid: 0, exe_dir: None };
    match parse(args.iter().copied(), &env) {
        Ok(Command::Run { config, .. }) => *config,
        other => panic!("{other:?}"),
    }
}

fn dynamic(api_version: &str, kind: &str, ns: &str, name: &str, rest: serde_json::Value) -> DynamicObject {
    let mut v = serde_json::json!({
        "apiVersion": api_version, "kind": kind,
        "metadata": {"namespace": ns, "name": name, "resourceVersion": "7"},
    });
    if let (Some(m), Some(r)) = (v.as_object_mut(), rest.as_object()) {
        m.extend(r.clone());
    }
    serde_json::from_value(v).expect("dynamic object")
}

fn spec_for(specs: &[WatchSpec], kind: &str, api_version: &str) -> WatchSpec {
    specs
        .iter()
        .find(|s| s.resource.kind == kind && s.resource.api_version == api_version)
        .cloned()
        .unwrap_or_else(|| panic!("no watch of {kind} {api_version}"))
}

#[test]
fn watches_per_configuration() {
    // (args, number of watches, kinds that must be present, kinds that must be absent)
    type Case<'a> = (&'a [&'a str], usize, &'a [&'a str], &'a [&'a str]);
    let cases: [Case; 6] = [
        // Manifests only: no watch at all.
        (&["--manifests=/m", "--providers.kubernetesCRD"], 0, &[], &["Service"]),
        // CRD provider alone: core kinds + 10 Traefik kinds in each of 2 groups + Nodes.
        (
            &["--providers.kubernetesCRD"],
            3 + 20 + 1,
            &["Service", "Secret", "IngressRouteTCP", "Node"],
            &["Ingress"],
        ),
        // Namespaces multiply the watches (not the cluster-scoped Nodes).
        (&["--providers.kubernetesCRD.namespaces=a,b"], 2 * 23 + 1, &["EndpointSlice"], &["IngressClass"]),
        (&["--providers.kubernetesCRD.disableClusterScopeResources"], 3 + 20, &["Service"], &["Node"]),
        (
            &["--providers.kubernetesIngress"],
            3 + 2 + 1,
            &["Ingress", "IngressClass", "Node"],
            &["IngressRoute"],
        ),
        // An explicit endpoint reads the API server even with a manifests directory.
        (
            &[
                "--manifests=/m",
                "--providers.kubernetesIngress.endpoint=http://127.0.0.1:1",
                "--providers.kubernetesIngress.disableClusterScopeResources",
            ],
            3 + 1,
            &["Ingress"],
            &["IngressClass", "Node"],
        ),
    ];
    for (args, count, present, absent) in cases {
        let specs = watch_specs(&config(args));
        assert_eq!(specs.len(), count, "{args:?}");
        for k in present {
            assert!(specs.iter().any(|s| s.resource.kind == *k), "{args:?}: {k}");
        }
        for k in absent {
            assert!(!specs.iter().any(|s| s.resource.kind == *k), "{args:?}: {k}");
        }
    }
    let specs = watch_specs(&config(&["--providers.kubernetesCRD.labelSelector=app=web"]));
    let secrets = spec_for(&specs, "Secret", "v1");
    assert_eq!(secrets.field_selector.as_deref(), Some(SECRET_FIELD_SELECTOR));
    assert_eq!(secrets.label_selector, None, "labelSelector applies to the Traefik kinds only");
    let routes = spec_for(&specs, "IngressRoute", "traefik.containo.us/v1alpha1");
    assert_eq!(routes.label_selector.as_deref(), Some("app=web"));
    assert_eq!(routes.resource.plural, "ingressroutes");
}

#[test]
fn converts_objects() {
    let specs = watch_specs(&config(&["--providers.kubernetesCRD.ingressClass=internal"]));
    let routes = spec_for(&specs, "IngressRoute", "traefik.io/v1alpha1");
    let route = |annotations: serde_json::Value, spec: serde_json::Value| {
        let mut o =
            dynamic("traefik.io/v1alpha1", "IngressRoute", "apps", "web", serde_json::json!({"spec": spec}));
        o.metadata.annotations = serde_json::from_value(annotations).ok();
        o
    };
    let good = serde_json::json!({"routes": [{"match": "Host(`a`)", "kind": "Rule"}]});
    let class = serde_json::json!({"kubernetes.io/ingress.class": "internal"});
    let (key, read) = convert(&routes, route(class.clone(), good.clone())).expect("kept");
    assert_eq!(key, (Kind::IngressRoute, "apps".to_string(), "web".to_string()));
    assert!(matches!(read, Ok(Object::IngressRoute(_))), "{read:?}");
    assert!(convert(&routes, route(serde_json::json!({}), good)).is_none(), "other class is filtered");
    let (_, bad) = convert(&routes, route(class, serde_json::json!({"routes": "nope"}))).expect("kept");
    let problem = bad.expect_err("invalid");
    assert!(problem.message.contains("does not fit IngressRoute"), "{}", problem.message);
    // Every Traefik kind reads as its own kind; built-in list items come without apiVersion.
    let tcp = spec_for(&specs, "IngressRouteTCP", "traefik.io/v1alpha1");
    let mut o =
        dynamic("traefik.io/v1alpha1", "IngressRouteTCP", "apps", "t", serde_json::json!({"spec": {}}));
    o.metadata.annotations =
        Some([("kubernetes.io/ingress.class".to_string(), "internal".to_string())].into());
    let read = convert(&tcp, o).and_then(|(_, r)| r.ok()).map(|o| o.kind());
    assert_eq!(read, Kind::from_type("traefik.io/v1alpha1", "IngressRouteTCP"));
    let svc = spec_for(&specs, "Service", "v1");
    let mut o = dynamic("v1", "Service", "apps", "s", serde_json::json!({"spec": {"ports": [{"port": 80}]}}));
    o.types = None;
    assert!(matches!(convert(&svc, o), Some((_, Ok(Object::Service(_))))), "no class filter on Services");
}

#[test]
fn store_follows_lists_and_events() {
    let specs = watch_specs(&config(&["--providers.kubernetesCRD"]));
    let svc_spec = spec_for(&specs, "Service", "v1");
    let svc = |name: &str, port: u16| {
        convert(
            &svc_spec,
            dynamic(
                "v1",
                "Service",
                "default",
                name,
                serde_json::json!({"spec": {"ports": [{"port": port}]}}),
            ),
        )
        .expect("service")
    };
    let mut store = KubeStore::new(2, true);
    assert!(!store.ready());
    let steps: Vec<(&str, Update, bool, &[&str])> = vec![
        (
            "first list",
            Update::Replace { watcher: 0, objects: vec![svc("a", 80), svc("b", 80)] },
            true,
            &["a", "b"],
        ),
        (
            "same re-list changes nothing",
            Update::Replace { watcher: 0, objects: vec![svc("a", 80), svc("b", 80)] },
            false,
            &["a", "b"],
        ),
        (
            "re-list drops what vanished",
            Update::Replace { watcher: 0, objects: vec![svc("a", 81)] },
            true,
            &["a"],
        ),
        (
            "identical apply",
            {
                let (key, object) = svc("a", 81);
                Update::Apply { watcher: 0, key, object }
            },
            false,
            &["a"],
        ),
        (
            "add",
            {
                let (key, object) = svc("c", 80);
                Update::Apply { watcher: 0, key, object }
            },
            true,
            &["a", "c"],
        ),
        (
            "delete",
            Update::Delete { watcher: 0, key: (Kind::Service, "default".into(), "a".into()) },
            true,
            &["c"],
        ),
        (
            "other watcher's empty list keeps ours",
            Update::Replace { watcher: 1, objects: vec![] },
            false,
            &["c"],
        ),
    ];
    for (name, update, changed, names) in steps {
        assert_eq!(store.apply(update), changed, "{name}");
        for n in ["a", "b", "c"] {
            assert_eq!(store.store.service("default", n).is_some(), names.contains(&n), "{name}: {n}");
        }
    }
    assert!(store.ready());
    let mut merged = ObjectStore::new();
    store.merge_into(&mut merged);
    assert_eq!(merged.len(), 1);
    // An invalid object disables itself and is reported; fixing it clears the problem.
    let bad = (
        (Kind::Service, "default".to_string(), "c".to_string()),
        Err(Problem::object(Severity::Error, "Service", "default", "c", "broken".into())),
    );
    assert!(store.apply(Update::Apply { watcher: 0, key: bad.0, object: bad.1 }));
    assert!(store.store.service("default", "c").is_none());
    assert_eq!(store.problems().count(), 1);
    let (key, object) = svc("c", 80);
    assert!(store.apply(Update::Apply { watcher: 0, key, object }));
    assert_eq!(store.problems().count(), 0);
}

#[tokio::test(start_paused = true)]
async fn coalesces_bursts() {
    let specs = watch_specs(&config(&["--providers.kubernetesCRD"]));
    let svc_spec = spec_for(&specs, "Service", "v1");
    let update = |name: &str| {
        let (key, object) =
            convert(&svc_spec, dynamic("v1", "Service", "default", name, serde_json::json!({})))
                .expect("service");
        Update::Apply { watcher: 0, key, object }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..50 {
        tx.send(update(&format!("s{i}"))).expect("send");
    }
    let mut store = KubeStore::new(1, false);
    assert!(Coalesce::collect(&mut store, update("first"), &mut rx, Duration::ZERO).await);
    assert_eq!(store.store.len(), 51, "one rebuild for the whole burst");
    // With a throttle, updates within the window join the same rebuild.
    let later = tx.clone();
    let svc = svc_spec.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (key, object) =
            convert(&svc, dynamic("v1", "Service", "default", "late", serde_json::json!({}))).expect("s");
        let _ = later.send(Update::Apply { watcher: 0, key, object });
    });
    let started = tokio::time::Instant::now();
    assert!(Coalesce::collect(&mut store, update("t"), &mut rx, Duration::from_secs(1)).await);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(store.store.service("default", "late").is_some());
}

#[test]
fn cluster_scoped_objects_are_removed_again() {
    let specs = watch_specs(&config(&["--providers.kubernetesIngress"]));
    let classes = spec_for(&specs, "IngressClass", "networking.k8s.io/v1");
    let mut class =
        dynamic("networking.k8s.io/v1", "IngressClass", "", "traefik", serde_json::json!({"spec": {}}));
    class.metadata.namespace = None;
    let (key, object) = convert(&classes, class).expect("class");
    let mut store = KubeStore::new(1, false);
    assert!(store.apply(Update::Apply { watcher: 0, key: key.clone(), object }));
    assert_eq!(store.store.ingress_classes().count(), 1);
    assert!(store.apply(Update::Delete { watcher: 0, key }));
    assert_eq!(store.store.ingress_classes().count(), 0);
}
