//! The manifests source: every `*.yaml` / `*.yml` file under a directory (recursive, sorted),
//! each a multi-document YAML stream of Kubernetes objects. A file that is not YAML disables
//! that file's objects only; a document that does not fit its kind disables that object only.
//! Reading is synchronous and complete; watching for changes is `watch`'s concern.

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

/// Reads every manifest under `dir`.
pub fn load(dir: &Path) -> Manifests {
    let mut out = Manifests::default();
    let mut files = Vec::new();
    if let Err(e) = collect_files(dir, &mut files) {
        out.problems.push(file_problem(dir, None, format!("cannot read manifests directory: {e}")));
        return out;
    }
    let mut origin = std::collections::BTreeMap::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.problems.push(file_problem(&path, None, format!("cannot read manifest file: {e}")));
                continue;
            }
        };
        out.files += 1;
        for object in parse_file(&path, &text, &mut out.problems) {
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
                "untranslated kind stored with a notice",
                "apiVersion: traefik.io/v1alpha1\nkind: IngressRouteUDP\nmetadata: {name: auth}\n\
                 spec: {routes: []}\n",
                vec![id(Kind::Untranslated("IngressRouteUDP"), "default", "auth")],
                vec![(Severity::Info, "not translated yet")],
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
}
