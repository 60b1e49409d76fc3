//! Compiles the store and the static configuration into a `Snapshot` (without generation; the
//! publisher numbers it), in a deterministic order so that identical configuration compares
//! equal and is not published again (Traefik: "skipping same configuration").

use std::sync::Arc;

use weir_proto::snapshot::EntryPoint;
use weir_proto::Snapshot;

use crate::config::StaticConfig;
use crate::status::{Problem, ProblemLog};
use crate::store::ObjectStore;
use crate::translate::cache::TranslationCache;
use crate::translate::entrypoints::EntryPointInfo;
use crate::translate::{self, ServiceOptions, TranslateOptions};

/// What compiling needs from the static configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileOptions {
    /// Entrypoints, sorted by name.
    pub entrypoints: Vec<EntryPoint>,
    /// UDP entrypoints, sorted by name.
    pub udp_entrypoints: Vec<weir_proto::udp::UdpEntryPoint>,
    /// Translation options.
    pub translate: TranslateOptions,
    /// Metrics and access-log settings, passed through to the data plane.
    pub observability: weir_proto::observability::Observability,
    /// Entrypoints' PROXY protocol reception (`entryPoints.<ep>.proxyProtocol`), by entrypoint.
    pub proxy_protocol: Vec<weir_proto::tcp::EntryPointProxyProtocol>,
    /// API, dashboard, ping and the internal provider (`crate::api`).
    pub api: crate::api::ApiSettings,
}

impl CompileOptions {
    /// Derives the options from the static configuration.
    pub fn from_config(config: &StaticConfig) -> CompileOptions {
        let mut entrypoints: Vec<EntryPoint> = config.entrypoints.iter().map(|e| e.to_snapshot()).collect();
        entrypoints.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<String> = entrypoints.iter().map(|e| e.name.clone()).collect();
        // Traefik: routers without entrypoints attach to the `asDefault` ones, else to all.
        let mut defaults: Vec<String> =
            config.entrypoints.iter().filter(|e| e.as_default).map(|e| e.name.clone()).collect();
        if defaults.is_empty() {
            defaults = names.clone();
        }
        // Traefik: the `traefik` entrypoint is never a default one.
        defaults.retain(|n| n != weir_proto::api::INTERNAL_ENTRYPOINT);
        defaults.sort();
        let mut udp_entrypoints: Vec<_> = config.udp_entrypoints.iter().map(|e| e.to_snapshot()).collect();
        udp_entrypoints.sort_by(|a, b| a.name.cmp(&b.name));
        CompileOptions {
            api: crate::api::ApiSettings::from_config(config),
            observability: config.observability.to_snapshot(),
            proxy_protocol: config.entrypoints.iter().filter_map(|e| e.proxy_protocol_snapshot()).collect(),
            entrypoints,
            translate: TranslateOptions {
                udp_entrypoints: udp_entrypoints.iter().map(|e| e.name.clone()).collect(),
                entrypoints: names,
                default_entrypoints: defaults,
                services: ServiceOptions {
                    allow_cross_namespace: config.crd.allow_cross_namespace,
                    allow_empty_services: config.crd.allow_empty_services,
                    allow_external_name_services: config.crd.allow_external_name_services,
                    native_lb_by_default: config.crd.native_lb_by_default,
                    nodes_lookup_disabled: config.kube.crd_disable_cluster_scope_resources,
                },
                default_rule_syntax: config.default_rule_syntax,
                ingress_enabled: translate::ingress::enabled(&config.ingress, config.crd.enabled),
                ingress: config.ingress.clone(),
                entrypoint_http: config
                    .entrypoints
                    .iter()
                    .map(|e| {
                        let info = EntryPointInfo { port: e.address.port(), http: e.http.clone() };
                        (e.name.clone(), info)
                    })
                    .collect(),
            },
            udp_entrypoints,
        }
    }
}

/// Traefik's entrypoint `http.middlewares`: prepended to every router of the entrypoint. A
/// router on an entrypoint whose middlewares do not resolve is disabled (Traefik: the router
/// errors and its requests get 404), with a problem naming the entrypoint.
fn entrypoint_middlewares(store: &ObjectStore, options: &CompileOptions, t: &mut translate::Translation) {
    use std::collections::BTreeMap;
    let mut per_ep: BTreeMap<&str, Result<Vec<String>, String>> = BTreeMap::new();
    for (name, info) in &options.translate.entrypoint_http {
        let names = &info.http.transport.middlewares;
        if names.is_empty() {
            continue;
        }
        let mut generated = translate::service::Generated::new();
        let resolved = translate::middleware::resolve_entrypoint(
            names,
            store,
            options.translate.services,
            &mut t.middlewares,
            &mut generated,
        );
        let resolved = match resolved {
            Ok(list) => {
                for (k, v) in generated {
                    t.services.entry(k).or_insert_with(|| Arc::new(v));
                }
                Ok(list)
            }
            Err(e) => {
                let message = format!("entrypoint middlewares ({}): {e}", names.join(", "));
                t.problems.push(Problem::object(
                    crate::status::Severity::Error,
                    "EntryPoint",
                    "",
                    name,
                    message.clone(),
                ));
                Err(message)
            }
        };
        per_ep.insert(name, resolved);
    }
    if per_ep.is_empty() {
        return;
    }
    t.routers.retain(|_, router| {
        let mut prefix = Vec::new();
        for ep in &router.entrypoints {
            match per_ep.get(ep.as_str()) {
                Some(Ok(list)) => prefix.extend(list.iter().cloned()),
                Some(Err(_)) => return false,
                None => {}
            }
        }
        if !prefix.is_empty() {
            let router = Arc::make_mut(router);
            prefix.append(&mut router.middlewares);
            router.middlewares = prefix;
        }
        true
    });
}

/// A compiled snapshot and the problems met on the way.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The snapshot, generation 0.
    pub snapshot: Snapshot,
    /// Problems, in the order met.
    pub problems: Vec<Problem>,
}

/// Compiles everything in `store`, translating every object.
pub fn compile(store: &ObjectStore, options: &CompileOptions) -> Compiled {
    assemble(translate::translate(store, &options.translate), store, options)
}

/// Compiles everything in `store`, re-translating only the objects that changed since `cache`
/// last saw the store; the same result as [`compile`].
pub fn compile_cached(
    cache: &mut TranslationCache,
    store: &ObjectStore,
    options: &CompileOptions,
) -> Compiled {
    assemble(cache.translate(store, &options.translate), store, options)
}

/// The passes after translation: entrypoint middlewares, the snapshot, the internal provider
/// and the API model.
fn assemble(
    mut translation: translate::Translation,
    store: &ObjectStore,
    options: &CompileOptions,
) -> Compiled {
    entrypoint_middlewares(store, options, &mut translation);
    let mut snapshot = Snapshot {
        generation: 0,
        entrypoints: options.entrypoints.clone(),
        // BTreeMaps: sorted by name.
        routers: translation.routers.into_values().collect(),
        services: translation.services.into_values().collect(),
        middlewares: translation.middlewares.into_values().collect(),
        servers_transports: translation.servers_transports,
        tls: translation.tls,
        udp: weir_proto::udp::Udp { entrypoints: options.udp_entrypoints.clone(), ..translation.udp },
        observability: options.observability.clone(),
        tcp: weir_proto::tcp::Tcp { proxy_protocol: options.proxy_protocol.clone(), ..translation.tcp },
        api: weir_proto::api::Api::default(),
    };
    let mut problems = translation.problems;
    // Traefik's internal provider, then the API's runtime model (which lists everything).
    crate::api::add_internal(&options.api, &mut snapshot, &mut problems);
    snapshot.api = crate::api::snapshot_api(&options.api, &snapshot, &problems, store);
    Compiled { snapshot, problems }
}

/// Compiles on every change, logs new problems once, and drops unchanged snapshots.
#[derive(Debug)]
pub struct Compiler {
    options: CompileOptions,
    /// The last snapshot returned, shared with whoever publishes it (never copied).
    last: Option<Arc<Snapshot>>,
    problems: ProblemLog,
    cache: TranslationCache,
}

impl Compiler {
    /// A compiler that has published nothing yet.
    pub fn new(options: CompileOptions) -> Compiler {
        Compiler { options, last: None, problems: ProblemLog::default(), cache: TranslationCache::new() }
    }

    /// Compiles `store`; returns the snapshot when it differs from the previous one.
    pub fn update(&mut self, store: &ObjectStore) -> Option<Arc<Snapshot>> {
        let started = std::time::Instant::now();
        let compiled = compile_cached(&mut self.cache, store, &self.options);
        let compiled_at = started.elapsed();
        self.problems.report(compiled.problems);
        let same = self.last.as_deref() == Some(&compiled.snapshot);
        let stats = self.cache.stats();
        // The per-change cost, by phase (bench/RESULTS.md reads these).
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        if same {
            tracing::info!(
                reused = stats.reused,
                translated = stats.translated,
                compile_ms = ms(compiled_at),
                total_ms = ms(started.elapsed()),
                "skipping same configuration"
            );
            return None;
        }
        tracing::info!(
            entrypoints = compiled.snapshot.entrypoints.len(),
            routers = compiled.snapshot.routers.len(),
            services = compiled.snapshot.services.len(),
            reused = stats.reused,
            translated = stats.translated,
            compile_ms = ms(compiled_at),
            total_ms = ms(started.elapsed()),
            "configuration compiled"
        );
        let snapshot = Arc::new(compiled.snapshot);
        self.last = Some(Arc::clone(&snapshot));
        Some(snapshot)
    }

    /// Problems of the latest compile (for a future API).
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Command, Environment};
    use crate::source::manifests::parse_file;

    fn options(args: &[&str]) -> CompileOptions {
        let env = Environment { xdg_runtime_dir: None, euid: 0, exe_dir: None };
        let args = args.iter().copied().chain(["--manifests=/m"]);
        match parse(args, &env) {
            Ok(Command::Run { config, .. }) => CompileOptions::from_config(&config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn default_entrypoints() {
        let cases: [(&[&str], &[&str], &[&str]); 3] = [
            (&[], &["http"], &["http"]),
            (
                &["--entryPoints.web.address=:80", "--entryPoints.admin.address=:90"],
                &["admin", "web"],
                &["admin", "web"],
            ),
            (
                &[
                    "--entryPoints.web.address=:80",
                    "--entryPoints.admin.address=:90",
                    "--entryPoints.web.asDefault",
                ],
                &["admin", "web"],
                &["web"],
            ),
        ];
        for (args, all, defaults) in cases {
            let o = options(args);
            assert_eq!(o.translate.entrypoints, all, "{args:?}");
            assert_eq!(o.translate.default_entrypoints, defaults, "{args:?}");
            assert_eq!(o.entrypoints.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), all);
        }
    }

    #[test]
    fn same_configuration_is_skipped() {
        let yaml = "\
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web}
spec:
  routes:
  - {match: 'Host(`a`)', services: [{name: a, port: 80}]}
  - {match: 'Host(`b`)', services: [{name: a, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.2]}, {addresses: [10.0.0.1]}]
";
        let store = |text: &str| {
            let mut problems = Vec::new();
            let mut s = ObjectStore::new();
            for o in parse_file(std::path::Path::new("t.yaml"), text, &mut problems) {
                s.insert(o);
            }
            assert!(problems.is_empty(), "{problems:?}");
            s
        };
        let mut compiler = Compiler::new(options(&[]));
        let first = compiler.update(&store(yaml)).expect("first snapshot");
        assert_eq!(first.routers.len(), 2);
        assert_eq!(first.services.len(), 1);
        // Same objects, endpoints listed in another order: the same snapshot.
        let reordered = yaml.replace(
            "[{addresses: [10.0.0.2]}, {addresses: [10.0.0.1]}]",
            "[{addresses: [10.0.0.1]}, {addresses: [10.0.0.2]}]",
        );
        assert!(compiler.update(&store(&reordered)).is_none());
        let changed = yaml.replace("10.0.0.2", "10.0.0.3");
        assert!(compiler.update(&store(&changed)).is_some());
    }

    /// One IngressRoute with its own Service and EndpointSlice, as the scale benches write them.
    fn scale_manifest(i: usize, host_prefix: &str) -> String {
        format!(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: route-{i}, namespace: apps}}\n\
             spec:\n  entryPoints: [web]\n  routes:\n  - match: Host(`{host_prefix}{i}.scale.test`)\n    kind: Rule\n\
             \x20   services: [{{name: svc-{i}, port: 80}}]\n---\napiVersion: v1\nkind: Service\n\
             metadata: {{name: svc-{i}, namespace: apps}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: svc-{i}-0, namespace: apps, \
             labels: {{kubernetes.io/service-name: svc-{i}}}}}\naddressType: IPv4\n\
             ports: [{{name: http, port: 8080, protocol: TCP}}]\nendpoints: [{{addresses: [10.0.{}.{}]}}]\n",
            (i / 250) % 250,
            i % 250 + 1
        )
    }

    /// Phase timings of one compile at scale (`cargo test --release -p weir-control --lib
    /// profile_compile -- --ignored --nocapture`; `WEIR_PROFILE_ROUTES`, default 10,000).
    #[test]
    #[ignore]
    fn profile_compile() {
        use std::time::Instant;
        let routes: usize =
            std::env::var("WEIR_PROFILE_ROUTES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let mut store = ObjectStore::new();
        let mut problems = Vec::new();
        for i in 0..routes {
            let yaml = scale_manifest(i, "r");
            for o in parse_file(std::path::Path::new("t.yaml"), &yaml, &mut problems) {
                store.insert(o);
            }
        }
        let options = options(&["--entryPoints.web.address=:80"]);
        let t = Instant::now();
        let mut translation = translate::translate(&store, &options.translate);
        let t_translate = t.elapsed();
        let t = Instant::now();
        entrypoint_middlewares(&store, &options, &mut translation);
        let t_epmw = t.elapsed();
        let t = Instant::now();
        let compiled = compile(&store, &options);
        let t_compile = t.elapsed();
        let t = Instant::now();
        let copy = compiled.snapshot.clone();
        let t_clone = t.elapsed();
        let t = Instant::now();
        assert!(copy == compiled.snapshot);
        let t_eq = t.elapsed();
        let t = Instant::now();
        let bytes = copy.encode().expect("encode");
        let t_encode = t.elapsed();
        let t = Instant::now();
        let decoded = weir_proto::Snapshot::decode(&bytes).expect("decode");
        let t_decode = t.elapsed();
        let t = Instant::now();
        let delta = weir_proto::EndpointsDelta::between(&copy, &decoded);
        let t_delta = t.elapsed();
        assert!(delta.is_some());
        // Incremental: a warm cache, then one IngressRoute's host changed.
        let mut cache = TranslationCache::new();
        let t = Instant::now();
        let cold = compile_cached(&mut cache, &store, &options);
        let t_cold = t.elapsed();
        assert!(cold.snapshot == compiled.snapshot);
        for o in
            parse_file(std::path::Path::new("t.yaml"), &scale_manifest(routes / 2, "changed"), &mut problems)
        {
            store.insert(o);
        }
        let t = Instant::now();
        let warm = compile_cached(&mut cache, &store, &options);
        let t_warm = t.elapsed();
        // The fastest of a few runs: the machine is shared.
        let mut t_cached_translate = std::time::Duration::MAX;
        let runs: usize = std::env::var("WEIR_PROFILE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
        for _ in 0..runs {
            let t = Instant::now();
            let translation = cache.translate(&store, &options.translate);
            t_cached_translate = t_cached_translate.min(t.elapsed());
            drop(translation);
        }
        let mut translation = cache.translate(&store, &options.translate);
        entrypoint_middlewares(&store, &options, &mut translation);
        assert_eq!(cache.stats().translated, 0);
        assert!(warm.snapshot != compiled.snapshot);
        eprintln!(
            "incremental at {routes} routes: first compile {t_cold:?}, one route changed {t_warm:?}, \
             nothing changed (translate only) {t_cached_translate:?}"
        );
        // `WEIR_PROFILE_LOOP=N`: N more one-route changes through the whole `Compiler`, for perf.
        let loops: usize = std::env::var("WEIR_PROFILE_LOOP").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        if loops > 0 {
            let mut compiler = Compiler::new(options.clone());
            assert!(compiler.update(&store).is_some());
            let mut times = Vec::new();
            for n in 0..loops {
                for o in parse_file(
                    std::path::Path::new("t.yaml"),
                    &scale_manifest(routes / 3, &format!("loop{n}-")),
                    &mut problems,
                ) {
                    store.insert(o);
                }
                let t = Instant::now();
                assert!(compiler.update(&store).is_some());
                times.push(t.elapsed());
            }
            times.sort();
            eprintln!("Compiler::update, one route changed: median {:?} of {loops}", times[loops / 2]);
        }
        eprintln!(
            "profile at {routes} routes: translate {t_translate:?}, entrypoint middlewares {t_epmw:?}, \
             whole compile {t_compile:?}, snapshot clone {t_clone:?}, snapshot eq {t_eq:?}, encode \
             {t_encode:?} ({} bytes), decode {t_decode:?}, delta between {t_delta:?}",
            bytes.len()
        );
    }
}
