//! The cache's contract: after any sequence of changes, the incremental translation equals a
//! from-scratch one. Random change sequences (seeded, so a failure replays) over a small
//! universe of objects that reference each other every way translation follows references:
//! Services and their EndpointSlices (relabelled between Services), Middlewares (chains,
//! cycles, Errors pages, invalid ones), TraefikServices, ServersTransports, TLS Secrets and
//! TLSOptions, across two namespaces, with cross-namespace references allowed.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::compile::{compile, compile_cached, CompileOptions};
use crate::source::manifests::parse_file;

/// xorshift64*: enough randomness for test inputs, and no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NAMESPACES: [&str; 2] = ["a", "b"];

/// One random variant of object `slot` (`kind:index`) in `ns`, as a manifest.
fn variant(rng: &mut Rng, ns: &str, slot: &str, tls: &(String, String)) -> String {
    let (kind, i) = slot.split_once(':').expect("slot is kind:index");
    let other_ns = rng.pick(&NAMESPACES);
    match kind {
        "svc" => {
            let spec = rng.pick(&[
                "{ports: [{name: http, port: 80}]}",
                "{ports: [{name: http, port: 80}, {name: alt, port: 81}]}",
                "{ports: [{name: web, port: 81}]}",
                "{type: ExternalName, externalName: ext.example, ports: [{port: 80}]}",
            ]);
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: svc{i}, namespace: {ns}}}\nspec: {spec}\n"
            )
        }
        "slice" => {
            let svc = rng.below(3);
            let ready = rng.pick(&["true", "false"]);
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: slice{i}, namespace: {ns}, \
                 labels: {{kubernetes.io/service-name: svc{svc}}}}}\naddressType: IPv4\n\
                 ports: [{{name: http, port: {}}}]\nendpoints: [{{addresses: [10.0.0.{}], conditions: {{ready: {ready}}}}}]\n",
                8080 + rng.below(2),
                1 + rng.below(3)
            )
        }
        "mw" => {
            let spec = match rng.below(7) {
                0 => format!("{{addPrefix: {{prefix: /p{}}}}}", rng.below(3)),
                1 => "{stripPrefix: {prefixes: [/x]}}".to_string(),
                2 => format!("{{chain: {{middlewares: [{{name: mw{}}}]}}}}", rng.below(3)),
                3 => format!(
                    "{{chain: {{middlewares: [{{name: mw{}, namespace: {other_ns}}}]}}}}",
                    rng.below(3)
                ),
                4 => format!(
                    "{{errors: {{status: ['500'], query: /e, service: {{name: svc{}, port: 80}}}}}}",
                    rng.below(3)
                ),
                5 => "{headers: {sslRedirect: true}}".to_string(),
                _ => "{plugin: {x: {}}}".to_string(),
            };
            format!(
                "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: mw{i}, namespace: {ns}}}\nspec: {spec}\n"
            )
        }
        "ts" => {
            let spec = match rng.below(3) {
                0 => format!(
                    "{{weighted: {{services: [{{name: svc{}, port: 80, weight: 2}}, {{name: svc{}, port: 80}}]}}}}",
                    rng.below(3),
                    rng.below(3)
                ),
                1 => format!(
                    "{{mirroring: {{name: svc{}, port: 80, mirrors: [{{name: svc{}, port: 80, percent: 10}}]}}}}",
                    rng.below(3),
                    rng.below(3)
                ),
                _ => "{weighted: {services: [{name: ts0, kind: TraefikService}]}}".to_string(),
            };
            format!(
                "apiVersion: traefik.io/v1alpha1\nkind: TraefikService\nmetadata: {{name: ts{i}, namespace: {ns}}}\nspec: {spec}\n"
            )
        }
        "st" => {
            let spec =
                rng.pick(&["{insecureSkipVerify: true}", "{maxIdleConnsPerHost: 7}", "{serverName: x.test}"]);
            format!(
                "apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {{name: st{i}, namespace: {ns}}}\nspec: {spec}\n"
            )
        }
        "secret" => {
            if rng.below(3) == 0 {
                format!(
                    "apiVersion: v1\nkind: Secret\nmetadata: {{name: sec{i}, namespace: {ns}}}\ntype: kubernetes.io/tls\n\
                     stringData: {{tls.crt: nope, tls.key: nope}}\n"
                )
            } else {
                let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
                format!(
                    "apiVersion: v1\nkind: Secret\nmetadata: {{name: sec{i}, namespace: {ns}}}\n\
                     type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
                    indent(&tls.0),
                    indent(&tls.1)
                )
            }
        }
        "opt" => {
            let spec = rng.pick(&[
                "{minVersion: VersionTLS12}",
                "{minVersion: VersionTLS13}",
                "{minVersion: VersionTLS99}",
            ]);
            format!(
                "apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {{name: opt{i}, namespace: {ns}}}\nspec: {spec}\n"
            )
        }
        "ir" => {
            let mut routes = String::new();
            for _ in 0..1 + rng.below(2) {
                let rule = match rng.below(3) {
                    0 => format!("Host(`h{}.test`)", rng.below(4)),
                    1 => format!("Host(`h{}.test`) && PathPrefix(`/p`)", rng.below(4)),
                    _ => "Host(`h0.test`)".to_string(),
                };
                let services = match rng.below(5) {
                    0 => format!("[{{name: svc{}, port: 80}}]", rng.below(3)),
                    1 => format!("[{{name: svc{}, port: http, serversTransport: st0}}]", rng.below(3)),
                    2 => format!(
                        "[{{name: svc{}, port: 80}}, {{name: svc{}, port: 81}}]",
                        rng.below(3),
                        rng.below(3)
                    ),
                    3 => format!("[{{name: ts{}, kind: TraefikService}}]", rng.below(2)),
                    _ => format!("[{{name: svc{}, namespace: {other_ns}, port: 80}}]", rng.below(3)),
                };
                let middlewares = match rng.below(3) {
                    0 => String::new(),
                    1 => format!("\n    middlewares: [{{name: mw{}}}]", rng.below(3)),
                    _ => format!("\n    middlewares: [{{name: mw{}, namespace: {other_ns}}}]", rng.below(3)),
                };
                routes.push_str(&format!("  - match: \"{rule}\"\n    services: {services}{middlewares}\n"));
            }
            let tls = match rng.below(4) {
                0 => "\n  tls: {secretName: sec0}".to_string(),
                1 => format!("\n  tls: {{secretName: sec{}, options: {{name: opt0}}}}", rng.below(2)),
                _ => String::new(),
            };
            let eps = rng.pick(&["[web]", "[]", "[web, websecure]", "[nope]"]);
            format!(
                "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: ir{i}, namespace: {ns}}}\n\
                 spec:\n  entryPoints: {eps}{tls}\n  routes:\n{routes}"
            )
        }
        other => unreachable!("no such slot kind {other}"),
    }
}

const SLOTS: [&str; 20] = [
    "svc:0", "svc:1", "svc:2", "slice:0", "slice:1", "slice:2", "mw:0", "mw:1", "mw:2", "ts:0", "ts:1",
    "st:0", "secret:0", "secret:1", "opt:0", "ir:0", "ir:1", "ir:2", "ir:3", "ir:4",
];

fn objects(text: &str) -> Vec<crate::objects::Object> {
    let mut problems = Vec::new();
    let objects = parse_file(Path::new("t.yaml"), text, &mut problems);
    assert!(problems.is_empty(), "fixture does not parse: {problems:?}\n{text}");
    objects
}

fn options() -> CompileOptions {
    let env = crate::config::Environment { xdg_runtime_dir: None, euid: 0, exe_dir: None };
    let args = [
        "--entryPoints.web.address=:80",
        "--entryPoints.websecure.address=:443",
        "--providers.kubernetesCRD.allowCrossNamespace=true",
        "--manifests=/m",
    ];
    match crate::config::parse(args, &env) {
        Ok(crate::config::Command::Run { config, .. }) => CompileOptions::from_config(&config),
        other => panic!("{other:?}"),
    }
}

#[test]
fn incremental_equals_from_scratch_over_random_changes() {
    let tls = {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["h0.test".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("self-signed");
        (cert.pem(), key.serialize_pem())
    };
    let options = options();
    let mut totals = CacheStats::default();
    for seed in [1u64, 7, 42, 1234] {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // What the "source" holds now, by (namespace, slot).
        let mut current: BTreeMap<(String, String), String> = BTreeMap::new();
        // Updated in place, as the Kubernetes watchers do.
        let mut live = ObjectStore::new();
        let mut live_cache = TranslationCache::new();
        // Rebuilt whole and synced, as the manifests directory does.
        let mut synced = ObjectStore::new();
        let mut synced_cache = TranslationCache::new();
        for step in 0..250 {
            // A few changes per step, sometimes several at once.
            for _ in 0..1 + rng.below(3) {
                let ns = rng.pick(&NAMESPACES).to_string();
                let slot = rng.pick(&SLOTS).to_string();
                let key = (ns.clone(), slot.clone());
                if rng.below(4) == 0 {
                    if let Some(text) = current.remove(&key) {
                        for o in objects(&text) {
                            let meta = o.metadata();
                            live.remove(o.kind(), meta.namespace(), &meta.name.clone());
                        }
                    }
                } else {
                    let text = variant(&mut rng, &ns, &slot, &tls);
                    for o in objects(&text) {
                        live.insert(o);
                    }
                    current.insert(key, text);
                }
            }
            let mut fresh = ObjectStore::new();
            for text in current.values() {
                for o in objects(text) {
                    fresh.insert(o);
                }
            }
            synced.sync_from(fresh.clone());
            let want = compile(&fresh, &options);
            for (name, store, cache) in
                [("live", &live, &mut live_cache), ("synced", &synced, &mut synced_cache)]
            {
                let got = compile_cached(cache, store, &options);
                assert!(
                    got.snapshot == want.snapshot,
                    "seed {seed} step {step} ({name}): snapshots differ\nincremental: {:#?}\nfrom scratch: {:#?}\nobjects: {:#?}",
                    got.snapshot,
                    want.snapshot,
                    current
                );
                assert_eq!(got.problems, want.problems, "seed {seed} step {step} ({name}): problems differ");
                totals.reused += cache.stats().reused;
                totals.translated += cache.stats().translated;
            }
        }
    }
    // The test means something only if the cache was both used and invalidated.
    assert!(totals.reused > 1000 && totals.translated > 500, "{totals:?}");
}

#[test]
fn one_change_retranslates_only_what_read_it() {
    let text = |svc_port: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: a}}\nspec: {{ports: [{{port: {svc_port}}}]}}\n---\n\
             apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: uses-s, namespace: a}}\n\
             spec:\n  routes:\n  - match: Host(`s.test`)\n    services: [{{name: s, port: 80}}]\n---\n\
             apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: other, namespace: a}}\n\
             spec:\n  routes:\n  - match: Host(`o.test`)\n    services: [{{name: t, port: 80}}]\n"
        )
    };
    let options = options();
    let mut store = ObjectStore::new();
    for o in objects(&text(80)) {
        store.insert(o);
    }
    let mut cache = TranslationCache::new();
    compile_cached(&mut cache, &store, &options);
    assert_eq!(cache.stats(), CacheStats { reused: 0, translated: 2 });
    // Nothing changed.
    compile_cached(&mut cache, &store, &options);
    assert_eq!(cache.stats(), CacheStats { reused: 2, translated: 0 });
    // An equal object again: still nothing changed.
    for o in objects(&text(80)) {
        store.insert(o);
    }
    compile_cached(&mut cache, &store, &options);
    assert_eq!(cache.stats(), CacheStats { reused: 2, translated: 0 });
    // The Service one route reads changes: that route only.
    for o in objects(&text(81)) {
        store.insert(o);
    }
    let compiled = compile_cached(&mut cache, &store, &options);
    assert_eq!(cache.stats(), CacheStats { reused: 1, translated: 1 });
    assert_eq!(compiled.snapshot, compile(&store, &options).snapshot);
    // A Service the other route was missing appears: that route only.
    let t = "apiVersion: v1\nkind: Service\nmetadata: {name: t, namespace: a}\nspec: {ports: [{port: 80}]}\n";
    for o in objects(t) {
        store.insert(o);
    }
    compile_cached(&mut cache, &store, &options);
    assert_eq!(cache.stats(), CacheStats { reused: 1, translated: 1 });
}
