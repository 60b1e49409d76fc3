//! The manifests source: every `*.yaml` / `*.yml` file under a directory (recursive, sorted),
//! each a multi-document YAML stream of Kubernetes objects. A file that is not YAML disables
//! that file's objects only; a document that does not fit its kind disables that object only.
//! Reading is synchronous and complete; watching for changes is `watch`'s concern. A
//! [`ParseCache`] lets a reload re-parse only the files whose metadata changed.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::objects::{Kind, Object, ObjectMeta, DEFAULT_NAMESPACE};
use crate::status::{Problem, Severity, Subject};
use crate::store::ObjectStore;

/// The result of reading a directory.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Every object read.
    pub store: ObjectStore,
    /// What went wrong, by file and object.
    pub problems: Vec<Problem>,
    /// Number of manifest files read.
    pub files: usize,
}

/// Parsed files by path, with the metadata they were read with, so that a reload re-parses
/// only the files that changed (10,000 files take over a second to parse; see
/// `bench/RESULTS.md`).
#[derive(Debug, Default)]
pub struct ParseCache {
    files: std::collections::HashMap<PathBuf, Parsed>,
}

#[derive(Debug)]
struct Parsed {
    stamp: FileStamp,
    objects: Vec<Object>,
    problems: Vec<Problem>,
}

/// What identifies a file's content without reading it: inode, size, mtime and ctime (any write
/// or rename changes one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the file changed so recently that a second write could still land within the
    /// same timestamp tick unnoticed (git's "racily clean" rule): such files are not cached.
    fn is_racy(&self, now: i64) -> bool {
        self.mtime.0.max(self.ctime.0) >= now - 2
    }
}

/// Reads every manifest under `dir`.
pub fn load(dir: &Path) -> Manifests {
    load_cached(dir, &mut ParseCache::default())
}

/// Reads every manifest under `dir`, re-parsing only files whose metadata changed since they
/// went into `cache`; files no longer present leave the cache.
pub fn load_cached(dir: &Path, cache: &mut ParseCache) -> Manifests {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    load_at(dir, cache, now)
}

fn load_at(dir: &Path, cache: &mut ParseCache, now: i64) -> Manifests {
    let mut out = Manifests::default();
    let mut files = Vec::new();
    if let Err(e) = collect_files(dir, &mut files) {
        out.problems.push(file_problem(dir, None, format!("cannot read manifests directory: {e}")));
        return out;
    }
    let mut origin = std::collections::BTreeMap::new();
    let mut seen = std::collections::HashSet::with_capacity(files.len());
    for path in files {
        let stamp = FileStamp::of(&path);
        let cached = cache.files.get(&path).filter(|c| Some(c.stamp) == stamp);
        let objects = match cached {
            Some(c) => {
                out.problems.extend(c.problems.iter().cloned());
                c.objects.clone()
            }
            None => {
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) => {
                        out.problems.push(file_problem(
                            &path,
                            None,
                            format!("cannot read manifest file: {e}"),
                        ));
                        continue;
                    }
                };
                let mut problems = Vec::new();
                let objects = parse_file(&path, &text, &mut problems);
                out.problems.extend(problems.iter().cloned());
                match stamp.filter(|s| !s.is_racy(now)) {
                    Some(stamp) => {
                        cache
                            .files
                            .insert(path.clone(), Parsed { stamp, objects: objects.clone(), problems });
                    }
                    None => {
                        cache.files.remove(&path);
                    }
                }
                objects
            }
        };
        seen.insert(path.clone());
        out.files += 1;
        for object in objects {
            let meta = object.metadata();
            let key = (object.kind(), meta.namespace().to_string(), meta.name.clone());
            if let Some(previous) = origin.insert(key.clone(), path.clone()) {
                out.problems.push(Problem::object(
                    Severity::Warning,
                    key.0.name(),
                    &key.1,
                    &key.2,
                    format!(
                        "defined in both {} and {}; the definition in {} is used",
                        previous.display(),
                        path.display(),
                        path.display()
                    ),
                ));
            }
            out.store.insert(object);
        }
    }
    cache.files.retain(|path, _| seen.contains(path));
    out
}

/// Lists manifest files under `dir`, sorted, skipping hidden entries (editor swap files, the
/// `..data` links of a mounted ConfigMap) and not following directory symlinks.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(&path, out)?;
        } else if is_manifest(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a path names a manifest file (`.yaml` or `.yml`).
pub fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

fn file_problem(path: &Path, err: Option<&serde_yaml_ng::Error>, message: String) -> Problem {
    let location = err.and_then(serde_yaml_ng::Error::location);
    Problem {
        severity: Severity::Error,
        subject: Subject::File {
            path: path.to_path_buf(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
        },
        message,
    }
}

/// Parses one multi-document YAML stream. On a YAML syntax error the whole file yields nothing.
pub fn parse_file(path: &Path, text: &str, problems: &mut Vec<Problem>) -> Vec<Object> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        match Value::deserialize(document) {
            Ok(v) => documents.push(v),
            Err(e) => {
                // The deserializer repeats a stream error forever: stop at the first.
                problems.push(file_problem(
                    path,
                    Some(&e),
                    format!("not valid YAML, the objects of this file are ignored: {e}"),
                ));
                return Vec::new();
            }
        }
    }
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        parse_document(path, index, document, &mut objects, problems);
    }
    objects
}

/// Reads one object delivered by another source (the Kubernetes API watcher), with the same
/// rules as a document of a file; `origin` names where it came from in messages.
pub fn parse_object(origin: &str, doc: Value, problems: &mut Vec<Problem>) -> Option<Object> {
    let mut out = Vec::new();
    parse_document(Path::new(origin), 0, doc, &mut out, problems);
    out.pop()
}

/// Adds the object(s) of one document (a `List` holds several) to `out`.
fn parse_document(path: &Path, index: usize, doc: Value, out: &mut Vec<Object>, problems: &mut Vec<Problem>) {
    if doc.is_null() {
        return; // An empty document (`---` at the end of a file).
    }
    let text_field = |field: &str| doc.get(field).and_then(Value::as_str).unwrap_or("").to_string();
    let (api_version, kind) = (text_field("apiVersion"), text_field("kind"));
    if api_version.is_empty() || kind.is_empty() {
        problems.push(Problem {
            severity: Severity::Warning,
            subject: Subject::File { path: path.to_path_buf(), line: None, column: None },
            message: format!("document {} has no apiVersion or kind; ignored", index + 1),
        });
        return;
    }
    if api_version == "v1" && kind == "List" {
        if let Some(items) = doc.get("items").and_then(Value::as_sequence) {
            for item in items {
                parse_document(path, index, item.clone(), out, problems);
            }
        }
        return;
    }
    let meta = doc.get("metadata").cloned().and_then(|m| serde_yaml_ng::from_value::<ObjectMeta>(m).ok());
    let (namespace, name) = match &meta {
        Some(m) if !m.name.is_empty() => (m.namespace().to_string(), m.name.clone()),
        _ => {
            let ns = doc
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .unwrap_or(DEFAULT_NAMESPACE);
            problems.push(Problem::object(
                Severity::Error,
                &kind,
                ns,
                "",
                format!("document {} in {} has no metadata.name", index + 1, path.display()),
            ));
            return;
        }
    };
    let Some(known) = Kind::from_type(&api_version, &kind) else {
        problems.push(Problem::object(
            Severity::Warning,
            &kind,
            &namespace,
            &name,
            format!("kind {kind} ({api_version}) is not handled by weir; ignored"),
        ));
        return;
    };
    let typed = match known {
        Kind::IngressRoute => serde_yaml_ng::from_value(doc).map(Object::IngressRoute),
        Kind::Service => serde_yaml_ng::from_value(doc).map(Object::Service),
        Kind::EndpointSlice => serde_yaml_ng::from_value(doc).map(Object::EndpointSlice),
        Kind::Middleware => serde_yaml_ng::from_value(doc).map(Object::Middleware),
        Kind::MiddlewareTcp => serde_yaml_ng::from_value(doc).map(Object::MiddlewareTcp),
        Kind::Secret => serde_yaml_ng::from_value(doc).map(Object::Secret),
        Kind::TlsOption => serde_yaml_ng::from_value(doc).map(Object::TlsOption),
        Kind::TlsStore => serde_yaml_ng::from_value(doc).map(Object::TlsStore),
        Kind::TraefikService => serde_yaml_ng::from_value(doc).map(Object::TraefikService),
        Kind::ServersTransport => serde_yaml_ng::from_value(doc).map(Object::ServersTransport),
        Kind::IngressRouteUdp => serde_yaml_ng::from_value(doc).map(Object::IngressRouteUdp),
        Kind::Ingress => serde_yaml_ng::from_value(doc).map(Object::Ingress),
        Kind::IngressClass => serde_yaml_ng::from_value(doc).map(Object::IngressClass),
        Kind::IngressRouteTcp => serde_yaml_ng::from_value(doc).map(Object::IngressRouteTcp),
        Kind::ServersTransportTcp => serde_yaml_ng::from_value(doc).map(Object::ServersTransportTcp),
        Kind::Node => serde_yaml_ng::from_value(doc).map(Object::Node),
        Kind::Untranslated(kind_name) => {
            problems.push(Problem::object(
                Severity::Info,
                kind_name,
                &namespace,
                &name,
                format!("kind {kind_name} is not translated yet; stored only"),
            ));
            let metadata = meta.unwrap_or_default();
            Ok(Object::Untranslated { kind: kind_name, metadata, raw: doc })
        }
    };
    match typed {
        Ok(object) => out.push(object),
        Err(e) => problems.push(Problem::object(
            Severity::Error,
            &kind,
            &namespace,
            &name,
            format!("does not fit {kind} ({}): {e}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Id = (Kind, String, String);
    /// Name, YAML, objects read, problems (severity and message fragment).
    type Case = (&'static str, &'static str, Vec<Id>, Vec<(Severity, &'static str)>);

    fn parse(text: &str) -> (Vec<Id>, Vec<Problem>) {
        let mut problems = Vec::new();
        let objects = parse_file(Path::new("m.yaml"), text, &mut problems);
        let ids = objects
            .iter()
            .map(|o| (o.kind(), o.metadata().namespace().to_string(), o.metadata().name.clone()))
            .collect();
        (ids, problems)
    }

    fn id(kind: Kind, ns: &str, name: &str) -> Id {
        (kind, ns.into(), name.into())
    }

    #[test]
    fn documents() {
        let cases: Vec<Case> = vec![
            (
                "ingressroute defaults to namespace default",
                "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: web}\nspec: {routes: []}\n",
                vec![id(Kind::IngressRoute, "default", "web")],
                vec![],
            ),
            (
                "several documents, empty ones skipped",
                "---\napiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: x}\n---\n---\n\
                 apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: a-1, namespace: x}\n\
                 addressType: IPv4\nendpoints: []\n---\n",
                vec![id(Kind::Service, "x", "a"), id(Kind::EndpointSlice, "x", "a-1")],
                vec![],
            ),
            (
                "v2 group accepted",
                "apiVersion: traefik.containo.us/v1alpha1\nkind: IngressRoute\nmetadata: {name: old}\nspec: {}\n",
                vec![id(Kind::IngressRoute, "default", "old")],
                vec![],
            ),
            (
                "tcp kinds stored",
                "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: auth}\n\
                 spec: {}\n",
                vec![id(Kind::ServersTransportTcp, "default", "auth")],
                vec![],
            ),
            (
                "unknown kind warned",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
                vec![],
                vec![(Severity::Warning, "not handled")],
            ),
            (
                "object that does not fit its kind is disabled alone",
                "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: bad}\n\
                 spec: {routes: [{match: 'Host(`a`)', priority: high}]}\n---\n\
                 apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n",
                vec![id(Kind::Service, "default", "ok")],
                vec![(Severity::Error, "does not fit IngressRoute")],
            ),
            (
                "missing name",
                "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n",
                vec![],
                vec![(Severity::Error, "has no metadata.name")],
            ),
            (
                "list is unpacked",
                "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: a}}\n\
                 - {apiVersion: v1, kind: Service, metadata: {name: b}}\n",
                vec![id(Kind::Service, "default", "a"), id(Kind::Service, "default", "b")],
                vec![],
            ),
        ];
        for (name, text, want_ids, want_problems) in cases {
            let (ids, problems) = parse(text);
            assert_eq!(ids, want_ids, "{name}");
            assert_eq!(problems.len(), want_problems.len(), "{name}: {problems:?}");
            for (p, (severity, fragment)) in problems.iter().zip(want_problems) {
                assert_eq!(p.severity, severity, "{name}: {p:?}");
                assert!(p.message.contains(fragment), "{name}: {p:?}");
            }
        }
    }

    #[test]
    fn yaml_error_disables_the_file_and_names_the_line() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let (ids, problems) = parse(text);
        assert!(ids.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        match &problems[0].subject {
            Subject::File { path, line, .. } => {
                assert_eq!(path, Path::new("m.yaml"));
                assert_eq!(*line, Some(6), "{problems:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn directory_is_read_recursively_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        let svc = |name: &str| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n");
        write("a.yaml", &svc("a"));
        write("sub/b.yml", &svc("b"));
        write("sub/deeper/c.YAML", &svc("c"));
        write("z.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {type: ExternalName}\n");
        write("broken.yaml", "key: [\n");
        write("notes.txt", &svc("ignored"));
        write(".hidden.yaml", &svc("ignored2"));
        let m = load(dir.path());
        assert_eq!(m.files, 5);
        for name in ["a", "b", "c"] {
            assert!(m.store.service("default", name).is_some(), "{name}");
        }
        assert!(m.store.service("default", "ignored").is_none());
        assert!(m.store.service("default", "ignored2").is_none());
        // z.yaml comes after a.yaml: its definition wins, with a warning.
        let a = m.store.service("default", "a").expect("a");
        assert_eq!(a.spec.type_.as_deref(), Some("ExternalName"));
        let severities: Vec<Severity> = m.problems.iter().map(|p| p.severity).collect();
        assert_eq!(severities, [Severity::Error, Severity::Warning], "{:?}", m.problems);
    }

    #[test]
    fn cached_reload_sees_every_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let svc = |name: &str, port: u16| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{ports: [{{port: {port}}}]}}\n")
        };
        let port = |m: &Manifests, name: &str| {
            m.store.service("default", name).map(|s| s.spec.ports.first().map(|p| p.port))
        };
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        write("a.yaml", &svc("a", 80));
        write("b.yaml", &svc("b", 80));
        // Far in the future: no file counts as racily clean, so everything is cached.
        let (mut cache, later) = (ParseCache::default(), i64::MAX / 2);
        let m = load_at(dir.path(), &mut cache, later);
        assert_eq!((port(&m, "a"), port(&m, "b")), (Some(Some(80)), Some(Some(80))));
        assert_eq!(cache.files.len(), 2);
        // In place, same size (new mtime/ctime), and by rename (new inode).
        std::thread::sleep(std::time::Duration::from_millis(20));
        write("a.yaml", &svc("a", 81));
        std::fs::write(dir.path().join(".b.tmp"), svc("b", 82)).expect("write");
        std::fs::rename(dir.path().join(".b.tmp"), dir.path().join("b.yaml")).expect("rename");
        let m = load_at(dir.path(), &mut cache, later);
        assert_eq!((port(&m, "a"), port(&m, "b")), (Some(Some(81)), Some(Some(82))));
        std::fs::remove_file(dir.path().join("b.yaml")).expect("remove");
        let m = load_at(dir.path(), &mut cache, later);
        assert_eq!((port(&m, "a"), port(&m, "b")), (Some(Some(81)), None));
        assert_eq!(cache.files.len(), 1, "a removed file leaves the cache");
        // Racily clean files (changed within the last seconds) are never cached.
        let mut fresh = ParseCache::default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        load_at(dir.path(), &mut fresh, now);
        assert!(fresh.files.is_empty());
    }
}
