//! `weir check PATH [STATIC OPTIONS]`: the offline migration report. Reads a manifests
//! directory, a manifest file, or a `kubectl get -o yaml` dump (a `kind: List`), runs the same
//! parser, store, translation and compilation as `weir` itself, and prints per object what weir
//! would build (routers with their rule, entrypoints, middlewares and service), every problem,
//! and every field weir does not read. Exit status: 0 without errors, 1 with errors, 2 on usage.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_yaml_ng::Value;

use crate::compile::{self, CompileOptions};
use crate::config::{self, Command, EntryPointConfig, Environment, Sources, StaticConfig};
use crate::objects::Object;
use crate::source::manifests;
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;
use crate::translate::names::normalize;

/// Usage of the subcommand.
pub const USAGE: &str = "\
USAGE:
    weir check PATH [STATIC OPTIONS]

PATH is a manifests directory (read recursively, *.yaml/*.yml), one manifest file, or a
`kubectl get -o yaml` dump (kind: List). STATIC OPTIONS are the Traefik static options weir
would run with (flags, or --configFile; TRAEFIK_* variables and traefik.{toml,yaml,yml} in the
search path are read as `weir` reads them). With no entrypoint configured, the report assumes
Traefik's Helm chart entrypoints `web` (:8000) and `websecure` (:8443, TLS).

Prints, per object, the routers, services and middlewares weir would build, every error and
warning, and every field weir ignores. Exit status 1 when there is an error, 0 otherwise.
";

/// Runs the subcommand with the arguments after `check`.
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let args: Vec<String> = args.collect();
    let Some(path) = args.first().filter(|a| !a.starts_with('-')).map(PathBuf::from) else {
        if args.iter().any(|a| a == "--help" || a == "-h") {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        eprint!("weir check: a path to read is needed\n{USAGE}");
        return ExitCode::from(2);
    };
    let mut flags: Vec<String> = args[1..].to_vec();
    flags.push(format!("--manifests={}", path.display()));
    let (config, static_warnings) =
        match config::parse_with(flags, &Environment::current(), &Sources::current()) {
            Ok(Command::Run { config, warnings }) => (*config, warnings),
            Ok(Command::Help(_)) => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Ok(Command::Version) => {
                println!("weir {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("weir check: {e}");
                return ExitCode::from(2);
            }
        };
    if !path.exists() {
        eprintln!("weir check: {} does not exist", path.display());
        return ExitCode::from(2);
    }
    let report = run_with(&path, config, &static_warnings);
    print!("{}", report.text);
    if report.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The report and its error count.
#[derive(Debug)]
pub struct Report {
    /// What is printed.
    pub text: String,
    /// Problems of severity error.
    pub errors: usize,
    /// Problems of severity warning, plus ignored fields.
    pub warnings: usize,
}

/// One object read, with its origin and the fields weir does not read.
struct Entry {
    kind: String,
    namespace: String,
    name: String,
    file: PathBuf,
    ignored: Vec<String>,
}

/// Builds the report for `path` under `config`.
pub fn run(path: &Path, config: StaticConfig) -> Report {
    run_with(path, config, &[])
}

/// Builds the report, listing first what the static configuration warned about (Traefik
/// options weir ignores or treats differently).
pub fn run_with(path: &Path, mut config: StaticConfig, static_warnings: &[String]) -> Report {
    let assumed = assume_helm_entrypoints(&mut config);
    let mut files = Vec::new();
    if path.is_dir() {
        let _ = collect_files(path, &mut files);
    } else {
        files.push(path.to_path_buf());
    }
    let mut store = ObjectStore::new();
    let mut problems = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    severity: Severity::Error,
                    subject: Subject::File { path: file.clone(), line: None, column: None },
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let objects = manifests::parse_file(file, &text, &mut problems);
        let mut raws = raw_documents(&text);
        for object in objects {
            let kind = object.kind().name().to_string();
            let meta = object.metadata();
            let (namespace, name) = (meta.namespace().to_string(), meta.name.clone());
            let raw = take_raw(&mut raws, &kind, &namespace, &name);
            let ignored = match (raw, typed_value(&object)) {
                (Some(raw), Some(typed)) => ignored_fields(&raw, &typed)
                    .into_iter()
                    .filter(|f| !traefik_ignores_too(&kind, f))
                    .collect(),
                _ => Vec::new(),
            };
            entries.push(Entry { kind, namespace, name, file: file.clone(), ignored });
            store.insert(object);
        }
    }
    let compiled = compile::compile(&store, &CompileOptions::from_config(&config));
    problems.extend(compiled.problems);
    format(&config, assumed, static_warnings, &files, &entries, &compiled.snapshot, &problems)
}

/// Fields of Kubernetes' own kinds that Traefik's providers do not read either (list indices
/// written `[]`): a `kubectl get -o yaml` dump is full of them, and weir ignoring them changes
/// nothing for a migration.
const TRAEFIK_IGNORES: &[(&str, &str)] = &[
    ("Service", "spec.selector"),
    ("Service", "spec.clusterIPs"),
    ("Service", "spec.sessionAffinity"),
    ("Service", "spec.sessionAffinityConfig"),
    ("Service", "spec.internalTrafficPolicy"),
    ("Service", "spec.externalTrafficPolicy"),
    ("Service", "spec.ipFamilies"),
    ("Service", "spec.ipFamilyPolicy"),
    ("Service", "spec.healthCheckNodePort"),
    ("Service", "spec.allocateLoadBalancerNodePorts"),
    ("Service", "spec.loadBalancerClass"),
    ("Service", "spec.loadBalancerIP"),
    ("Service", "spec.loadBalancerSourceRanges"),
    ("Service", "spec.externalIPs"),
    ("Service", "spec.publishNotReadyAddresses"),
    ("Service", "spec.trafficDistribution"),
    ("Service", "spec.ports[].nodePort"),
    ("Service", "spec.ports[].appProtocol"),
    ("EndpointSlice", "endpoints[].nodeName"),
    ("EndpointSlice", "endpoints[].targetRef"),
    ("EndpointSlice", "endpoints[].zone"),
    ("EndpointSlice", "endpoints[].hints"),
    ("EndpointSlice", "endpoints[].hostname"),
    ("EndpointSlice", "endpoints[].deprecatedTopology"),
    ("EndpointSlice", "ports[].appProtocol"),
];

/// Whether `field` of a `kind` object is one Traefik does not read either.
fn traefik_ignores_too(kind: &str, field: &str) -> bool {
    let mut generic = String::with_capacity(field.len());
    let mut in_index = false;
    for c in field.chars() {
        match c {
            '[' => {
                in_index = true;
                generic.push('[');
            }
            ']' => {
                in_index = false;
                generic.push(']');
            }
            _ if in_index => {}
            c => generic.push(c),
        }
    }
    TRAEFIK_IGNORES
        .iter()
        .any(|(k, f)| *k == kind && (generic == *f || generic.starts_with(&format!("{f}."))))
}

/// With no entrypoint configured (only Traefik's implicit `http`), assume the Helm chart's.
fn assume_helm_entrypoints(config: &mut StaticConfig) -> bool {
    let implicit = EntryPointConfig::implicit_http();
    if config.entrypoints.len() != 1
        || config.entrypoints[0] != implicit
        || !config.udp_entrypoints.is_empty()
    {
        return false;
    }
    let web = EntryPointConfig {
        name: "web".into(),
        address: "0.0.0.0:8000".parse().expect("literal"),
        ..implicit.clone()
    };
    let mut websecure = EntryPointConfig {
        name: "websecure".into(),
        address: "0.0.0.0:8443".parse().expect("literal"),
        ..implicit
    };
    websecure.http.tls = Some(config::EntryPointTls::default());
    config.entrypoints = vec![web, websecure];
    true
}

/// Manifest files under `dir`, sorted, hidden entries skipped (as the manifests source).
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if manifests::is_manifest(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The documents of a YAML stream, `List`s expanded; empty when it does not parse (the parser
/// reports that).
fn raw_documents(text: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let Ok(v) = Value::deserialize(doc) else { return Vec::new() };
        expand(v, &mut out);
    }
    out
}

fn expand(v: Value, out: &mut Vec<Value>) {
    let is_list = v.get("kind").and_then(Value::as_str) == Some("List");
    match (is_list, v.get("items").and_then(Value::as_sequence)) {
        (true, Some(items)) => {
            for item in items.clone() {
                expand(item, out);
            }
        }
        _ => out.push(v),
    }
}

/// Removes and returns the raw document of an object.
fn take_raw(raws: &mut Vec<Value>, kind: &str, namespace: &str, name: &str) -> Option<Value> {
    let pos = raws.iter().position(|d| {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let meta = d.get("metadata");
        let ns = text(meta.and_then(|m| m.get("namespace")));
        let ns = if ns.is_empty() { crate::objects::DEFAULT_NAMESPACE.to_string() } else { ns };
        text(d.get("kind")).eq_ignore_ascii_case(kind)
            && text(meta.and_then(|m| m.get("name"))) == name
            && ns == namespace
    })?;
    Some(raws.remove(pos))
}

/// The object as weir holds it, serialized back (`None` for kinds kept raw).
fn typed_value(object: &Object) -> Option<Value> {
    let v = match object {
        Object::IngressRoute(o) => serde_yaml_ng::to_value(o),
        Object::Service(o) => serde_yaml_ng::to_value(o),
        Object::EndpointSlice(o) => serde_yaml_ng::to_value(o),
        Object::Middleware(o) => serde_yaml_ng::to_value(o),
        Object::MiddlewareTcp(o) => serde_yaml_ng::to_value(o),
        Object::Secret(_) => return None,
        Object::TlsOption(o) => serde_yaml_ng::to_value(o),
        Object::TlsStore(o) => serde_yaml_ng::to_value(o),
        Object::TraefikService(o) => serde_yaml_ng::to_value(o),
        Object::ServersTransport(o) => serde_yaml_ng::to_value(o),
        Object::Untranslated { .. } => return None,
        Object::IngressRouteUdp(o) => serde_yaml_ng::to_value(o),
        Object::Ingress(o) => serde_yaml_ng::to_value(o),
        Object::IngressClass(o) => serde_yaml_ng::to_value(o),
        Object::IngressRouteTcp(o) => serde_yaml_ng::to_value(o),
        Object::ServersTransportTcp(o) => serde_yaml_ng::to_value(o),
        Object::Node(o) => serde_yaml_ng::to_value(o),
    };
    v.ok()
}

/// Paths present in `raw` but not in `typed`: fields weir does not read. `apiVersion`, `kind`,
/// `metadata` (besides name, namespace, labels and annotations, which are read) and `status`
/// are Kubernetes bookkeeping and left out.
pub fn ignored_fields(raw: &Value, typed: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let (Value::Mapping(r), Value::Mapping(t)) = (raw, typed) {
        for (k, v) in r {
            let Some(key) = k.as_str() else { continue };
            if matches!(key, "apiVersion" | "kind" | "metadata" | "status") {
                continue;
            }
            match t.get(k) {
                Some(tv) => diff(key.to_string(), v, tv, &mut out),
                None if !v.is_null() => out.push(key.to_string()),
                None => {}
            }
        }
    }
    out
}

fn diff(path: String, raw: &Value, typed: &Value, out: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Mapping(r), Value::Mapping(t)) => {
            for (k, v) in r {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
                };
                match t.get(k) {
                    Some(tv) => diff(format!("{path}.{key}"), v, tv, out),
                    None if !v.is_null() => out.push(format!("{path}.{key}")),
                    None => {}
                }
            }
        }
        (Value::Sequence(r), Value::Sequence(t)) => {
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                diff(format!("{path}[{i}]"), rv, tv, out);
            }
        }
        (Value::Tagged(r), _) => diff(path, &r.value, typed, out),
        _ => {}
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// Which object a problem is about: (kind, namespace, name), or the file.
fn problem_key(p: &Problem) -> Result<(String, String, String), PathBuf> {
    match &p.subject {
        Subject::Object { kind, namespace, name } | Subject::Route { kind, namespace, name, .. } => {
            Ok((kind.clone(), namespace.clone(), name.clone()))
        }
        Subject::File { path, .. } => Err(path.clone()),
    }
}

fn problem_line(p: &Problem) -> String {
    let route = match &p.subject {
        Subject::Route { route, router, .. } => format!(" (route {route}, router {router})"),
        Subject::File { line: Some(l), column, .. } => format!(" (line {l}, column {})", column.unwrap_or(0)),
        _ => String::new(),
    };
    format!("{}{route}: {}", severity_word(p.severity), p.message)
}

fn format(
    config: &StaticConfig,
    assumed: bool,
    static_warnings: &[String],
    files: &[PathBuf],
    entries: &[Entry],
    snapshot: &weir_proto::Snapshot,
    problems: &[Problem],
) -> Report {
    let mut out = String::new();
    let eps: Vec<String> = config.entrypoints.iter().map(|e| format!("{} ({})", e.name, e.address)).collect();
    let _ = writeln!(
        out,
        "weir check: {} file(s), {} object(s); entrypoints: {}{}",
        files.len(),
        entries.len(),
        eps.join(", "),
        if assumed { " (assumed: none configured)" } else { "" }
    );
    let (mut errors, mut warnings) = (0, 0);
    // The Traefik options weir ignores or treats differently come before the objects they shape.
    if !static_warnings.is_empty() {
        let _ = writeln!(out, "\nstatic configuration");
        for w in static_warnings {
            warnings += 1;
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    let count = |p: &Problem, e: &mut usize, w: &mut usize| match p.severity {
        Severity::Error => *e += 1,
        Severity::Warning => *w += 1,
        Severity::Info => {}
    };
    // File-level problems first.
    for p in problems {
        if let Err(path) = problem_key(p) {
            count(p, &mut errors, &mut warnings);
            let _ = writeln!(out, "\nfile {}\n  {}", path.display(), problem_line(p));
        }
    }
    // Routers by the object that made them: the longest `<namespace>-<name>-` prefix wins.
    let prefixes: Vec<(String, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (normalize(&format!("{}-{}-", e.namespace, e.name)), i))
        .collect();
    let owner = |router: &str| {
        prefixes
            .iter()
            .filter(|(p, _)| router.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, i)| *i)
    };
    let mut lines: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut unowned = Vec::new();
    for r in &snapshot.routers {
        let mws = if r.middlewares.is_empty() {
            String::new()
        } else {
            format!(" middlewares [{}]", r.middlewares.join(", "))
        };
        let line = format!(
            "router {}: {} [entrypoints {}{}]{mws} -> service {}",
            r.name,
            r.rule,
            r.entrypoints.join(", "),
            if r.tls { "; tls" } else { "" },
            r.service
        );
        match owner(&r.name) {
            Some(i) => lines.entry(i).or_default().push(line),
            None => unowned.push(line),
        }
    }
    for r in &snapshot.tcp.routers {
        let line = format!(
            "tcp router {}: {} [entrypoints {}] -> service {}",
            r.name,
            r.rule,
            r.entrypoints.join(", "),
            r.service
        );
        match owner(&r.name) {
            Some(i) => lines.entry(i).or_default().push(line),
            None => unowned.push(line),
        }
    }
    for s in &snapshot.services {
        if let Some(i) = owner(&s.name) {
            if matches!(entries[i].kind.as_str(), "Service" | "TraefikService") {
                lines.entry(i).or_default().push(format!("service {}", s.name));
            }
        }
    }
    let used_mws: BTreeSet<&str> = snapshot.middlewares.iter().map(|m| m.name.as_str()).collect();
    for (i, e) in entries.iter().enumerate() {
        let id = normalize(&format!("{}-{}", e.namespace, e.name));
        if e.kind == "Middleware" && used_mws.contains(id.as_str()) {
            lines.entry(i).or_default().push(format!("middleware {id} (used by a router)"));
        }
    }
    for (i, e) in entries.iter().enumerate() {
        let _ = writeln!(out, "\n{} {}/{} ({})", e.kind, e.namespace, e.name, e.file.display());
        for l in lines.get(&i).into_iter().flatten() {
            let _ = writeln!(out, "  {l}");
        }
        for p in problems {
            if problem_key(p).ok().as_ref() == Some(&(e.kind.clone(), e.namespace.clone(), e.name.clone())) {
                let _ = writeln!(out, "  {}", problem_line(p));
            }
        }
        for f in &e.ignored {
            warnings += 1;
            let _ = writeln!(out, "  ignored field: {f} (weir does not read it)");
        }
    }
    // Problems about objects not read (unknown kinds, unparsable objects, entrypoints).
    let known: BTreeSet<(String, String, String)> =
        entries.iter().map(|e| (e.kind.clone(), e.namespace.clone(), e.name.clone())).collect();
    let mut other = Vec::new();
    for p in problems {
        if let Ok(key) = problem_key(p) {
            count(p, &mut errors, &mut warnings);
            if !known.contains(&key) {
                other.push(format!("{} {}/{}: {}", key.0, key.1, key.2, problem_line(p)));
            }
        }
    }
    if !other.is_empty() || !unowned.is_empty() {
        let _ = writeln!(out, "\nother");
        for l in unowned.iter().chain(&other) {
            let _ = writeln!(out, "  {l}");
        }
    }
    let _ = writeln!(
        out,
        "\nsummary: {} router(s), {} service(s), {} middleware(s); {errors} error(s), {warnings} warning(s)",
        snapshot.routers.len() + snapshot.tcp.routers.len(),
        snapshot.services.len(),
        snapshot.middlewares.len()
    );
    Report { text: out, errors, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml_ng::from_str(s).expect("yaml")
    }

    #[test]
    fn ignored_field_paths() {
        let cases = [
            ("same", "spec: {a: 1}", "spec: {a: 1}", vec![]),
            ("extra top", "spec: {a: 1}\nextra: 2", "spec: {a: 1}", vec!["extra"]),
            ("nested", "spec: {a: {b: 1, c: 2}}", "spec: {a: {b: 1}}", vec!["spec.a.c"]),
            (
                "in list",
                "spec: {r: [{x: 1}, {x: 1, y: 2}]}",
                "spec: {r: [{x: 1}, {x: 1}]}",
                vec!["spec.r[1].y"],
            ),
            ("bookkeeping", "metadata: {uid: u}\nstatus: {}\nkind: K", "kind: K", vec![]),
            ("null is nothing", "spec: {a: null}", "spec: {}", vec![]),
        ];
        for (name, raw, typed, want) in cases {
            assert_eq!(ignored_fields(&yaml(raw), &yaml(typed)), want, "{name}");
        }
    }

    #[test]
    fn fields_traefik_ignores_too() {
        let cases = [
            ("Service", "spec.selector", true),
            ("Service", "spec.ports[0].nodePort", true),
            ("Service", "spec.ports[0].frobnicate", false),
            ("EndpointSlice", "endpoints[3].targetRef", true),
            ("EndpointSlice", "endpoints[3].targetRef.uid", true),
            ("IngressRoute", "spec.selector", false),
        ];
        for (kind, field, want) in cases {
            assert_eq!(traefik_ignores_too(kind, field), want, "{kind} {field}");
        }
    }

    #[test]
    fn report_of_good_and_bad_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = "apiVersion: v1\nkind: Service\nmetadata: {name: whoami, namespace: default}\nspec:\n  ports: [{name: http, port: 80}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: whoami-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: whoami\naddressType: IPv4\nports:\n  - name: http\n    port: 8080\n    protocol: TCP\nendpoints:\n  - addresses: [\"10.0.0.1\"]\n    conditions:\n      ready: true\n---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: good, namespace: default}\nspec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`a.test`)\n      kind: Rule\n      frobnicate: true\n      services: [{name: whoami, port: 80}]\n";
        let bad = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: bad, namespace: default}\nspec:\n  routes:\n    - match: Host(`b.test`\n      kind: Rule\n      services: [{name: whoami, port: 80}]\n";
        std::fs::write(dir.path().join("good.yaml"), good).expect("write");
        let cfg = match config::parse(
            ["--manifests=/x"],
            &Environment { xdg_runtime_dir: None, euid: 0, exe_dir: None },
        ) {
            Ok(Command::Run { config, .. }) => *config,
            other => panic!("{other:?}"),
        };
        let r = run(dir.path(), cfg.clone());
        assert_eq!(r.errors, 0, "{}", r.text);
        assert!(r.text.contains("IngressRoute default/good"), "{}", r.text);
        assert!(r.text.contains("Host(`a.test`) [entrypoints web]"), "{}", r.text);
        assert!(r.text.contains("ignored field: spec.routes[0].frobnicate"), "{}", r.text);
        assert!(r.text.contains("(assumed: none configured)"), "{}", r.text);
        std::fs::write(dir.path().join("bad.yaml"), bad).expect("write");
        let r = run(dir.path(), cfg);
        assert!(r.errors >= 1, "{}", r.text);
        assert!(r.text.contains("IngressRoute default/bad"), "{}", r.text);
    }
}
