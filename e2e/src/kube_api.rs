//! A small in-memory Kubernetes API server for tests (std threads, HTTP/1.1): it serves list
//! and watch for any resource it is given objects of, the way the real API server does what
//! kube-rs's watcher relies on:
//!
//! * lists return `metadata.resourceVersion`, honour `labelSelector` (`k=v`, `k!=v`, `k`, `!k`),
//!   `fieldSelector` (`type=`/`type!=`, `metadata.name=`, `metadata.namespace=`), `limit` and
//!   `continue`;
//! * `?watch=1` streams chunked JSON events (`ADDED`, `MODIFIED`, `DELETED`) after the given
//!   `resourceVersion`, `BOOKMARK`s when `allowWatchBookmarks` is set, ends after
//!   `timeoutSeconds`, and answers a resource version older than the last compaction with an
//!   `ERROR` event carrying a `410` Status (`Expired`), so the client must re-list;
//! * `sendInitialEvents=true` (streaming lists) sends the current objects as `ADDED` and a
//!   bookmark with the `k8s.io/initial-events-end` annotation;
//! * `POST …/events` and `PATCH …/status` are recorded;
//! * a bearer token is required when one is configured.
//!
//! Tests change objects with [`KubeApi::apply`] / [`KubeApi::delete`], cut the server off with
//! [`KubeApi::set_down`], and force re-lists with [`KubeApi::compact`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// `(API path prefix, plural)`, e.g. `("/apis/traefik.io/v1alpha1", "ingressroutes")`.
type Resource = (String, String);

#[derive(Default)]
struct State {
    rv: u64,
    /// Watches from resource versions at or below this get `410 Gone`.
    compacted: u64,
    objects: BTreeMap<Resource, BTreeMap<(String, String), Value>>,
    /// Every change: (rv, resource, event type, object).
    log: Vec<(u64, Resource, &'static str, Value)>,
    /// Every request line served (method and path with query).
    requests: Vec<String>,
    /// Bodies of `POST …/events`.
    events: Vec<Value>,
    /// `(path, body)` of status patches.
    status_patches: Vec<(String, Value)>,
    /// Incremented to end every open watch.
    watch_epoch: u64,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    down: AtomicBool,
    stop: AtomicBool,
    token: Option<String>,
}

/// The running server; stops when dropped.
pub struct KubeApi {
    shared: Arc<Shared>,
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
}

impl KubeApi {
    /// Starts a server on an ephemeral loopback port; requests must carry `token` when given.
    pub fn start(token: Option<&str>) -> KubeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake API server");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State { rv: 1, ..Default::default() }),
            changed: Condvar::new(),
            down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            token: token.map(String::from),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if s.down.load(Ordering::SeqCst) {
                    drop(conn); // Connection closed without an answer: the server is "down".
                    continue;
                }
                let s = s.clone();
                std::thread::spawn(move || serve_connection(&s, conn));
            }
        });
        KubeApi { shared, addr }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces an object (JSON with apiVersion, kind, metadata).
    pub fn apply(&self, object: Value) {
        let (resource, key) = locate(&object);
        let mut st = self.state();
        st.rv += 1;
        let rv = st.rv;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if object["metadata"].get("uid").is_none() {
            object["metadata"]["uid"] = json!(format!("uid-{}-{}-{}", key.0, key.1, rv));
        }
        let existed = st.objects.entry(resource.clone()).or_default().insert(key, object.clone()).is_some();
        st.log.push((rv, resource, if existed { "MODIFIED" } else { "ADDED" }, object));
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Adds every document of a YAML stream (see [`crate::service_yaml`] and friends).
    pub fn apply_yaml(&self, yaml: &str) {
        for doc in yaml.split("\n---\n") {
            if doc.trim().is_empty() {
                continue;
            }
            let v: Value = serde_yaml_ng::from_str(doc).expect("test YAML");
            self.apply(v);
        }
    }

    /// Deletes an object (by apiVersion, kind, namespace, name).
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) {
        let probe = json!({"apiVersion": api_version, "kind": kind, "metadata": {"namespace": namespace, "name": name}});
        let (resource, key) = locate(&probe);
        let mut st = self.state();
        let Some(mut object) = st.objects.get_mut(&resource).and_then(|m| m.remove(&key)) else { return };
        st.rv += 1;
        let rv = st.rv;
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.log.push((rv, resource, "DELETED", object));
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Makes every resource version seen so far too old (as etcd compaction does) and ends the
    /// open watches: clients re-watch, get `410 Gone`, and must re-list.
    pub fn compact(&self) {
        let mut st = self.state();
        st.compacted = st.rv;
        st.log.clear();
        st.watch_epoch += 1;
        drop(st);
        self.shared.changed.notify_all();
    }

    /// Takes the server down (every open watch ends, new connections are closed unanswered)
    /// or brings it back.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.state().watch_epoch += 1;
            self.shared.changed.notify_all();
        }
    }

    /// Request lines served so far (`GET /api/v1/services?…`).
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// Events created through the API.
    pub fn events(&self) -> Vec<Value> {
        self.state().events.clone()
    }

    /// Status patches received: (path, body).
    pub fn status_patches(&self) -> Vec<(String, Value)> {
        self.state().status_patches.clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.down.store(true, Ordering::SeqCst);
        self.state().watch_epoch += 1;
        self.shared.changed.notify_all();
        let _ = TcpStream::connect(self.addr); // Wakes the accept loop.
    }
}

/// Lower-case plural of a kind, as the API server names resources.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with("ss") {
        format!("{lower}es")
    } else if lower.ends_with('s') {
        lower
    } else {
        format!("{lower}s")
    }
}

fn prefix(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    }
}

fn locate(object: &Value) -> (Resource, (String, String)) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let api_version = s(&object["apiVersion"]);
    let kind = s(&object["kind"]);
    let plural = match kind.as_str() {
        "Ingress" => "ingresses".to_string(),
        "IngressClass" => "ingressclasses".to_string(),
        k => plural(k),
    };
    let cluster_scoped = kind == "IngressClass";
    let ns = if cluster_scoped { String::new() } else { s(&object["metadata"]["namespace"]) };
    let ns = if ns.is_empty() && !cluster_scoped { "default".to_string() } else { ns };
    ((prefix(&api_version), plural), (ns, s(&object["metadata"]["name"])))
}

/// A parsed request target: resource, namespace (if any), name (if any), subresource.
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    query: BTreeMap<String, String>,
}

fn parse_target(target: &str) -> Option<Target> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (prefix, rest) = match *parts.first()? {
        "api" => (format!("/api/{}", parts.get(1)?), &parts[2..]),
        "apis" => (format!("/apis/{}/{}", parts.get(1)?, parts.get(2)?), &parts[3..]),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        _ => (None, rest),
    };
    let plural = rest.first()?.to_string();
    Some(Target {
        resource: (prefix, plural),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
        query,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether an object passes a label selector (`a=b,c!=d,e,!f`).
fn labels_match(object: &Value, selector: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    selector.split(',').map(str::trim).filter(|t| !t.is_empty()).all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = term.split_once('=') {
            get(k.trim().trim_end_matches('=')) == Some(v.trim())
        } else if let Some(k) = term.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(term).is_some()
        }
    })
}

/// Whether an object passes a field selector (`type!=x`, `metadata.name=y`).
fn fields_match(object: &Value, selector: &str) -> bool {
    selector.split(',').map(str::trim).filter(|t| !t.is_empty()).all(|term| {
        let (field, value, negate) = match term.split_once("!=") {
            Some((f, v)) => (f, v, true),
            None => match term.split_once('=') {
                Some((f, v)) => (f.trim_end_matches('='), v, false),
                None => return true,
            },
        };
        let actual = match field.trim() {
            "type" => object["type"].as_str().unwrap_or(""),
            "metadata.name" => object["metadata"]["name"].as_str().unwrap_or(""),
            "metadata.namespace" => object["metadata"]["namespace"].as_str().unwrap_or(""),
            _ => return true,
        };
        (actual == value.trim()) != negate
    })
}

fn selected(object: &Value, t: &Target) -> bool {
    let ns_ok = match &t.namespace {
        Some(ns) => object["metadata"]["namespace"].as_str().unwrap_or("default") == ns,
        None => true,
    };
    ns_ok
        && t.query.get("labelSelector").is_none_or(|s| labels_match(object, s))
        && t.query.get("fieldSelector").is_none_or(|s| fields_match(object, s))
}

fn serve_connection(shared: &Arc<Shared>, conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) =
            (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let mut body = Vec::new();
        if let Some(len) = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()) {
            body.resize(len, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        if shared.down.load(Ordering::SeqCst) {
            return;
        }
        shared.state.lock().unwrap_or_else(|e| e.into_inner()).requests.push(format!("{method} {target}"));
        if let Some(token) = &shared.token {
            if headers.get("authorization") != Some(&format!("Bearer {token}")) {
                let status = status_body(401, "Unauthorized", "Unauthorized");
                if respond(&mut out, 401, &status).is_err() {
                    return;
                }
                continue;
            }
        }
        let Some(t) = parse_target(&target) else {
            if respond(&mut out, 404, &status_body(404, "NotFound", "not found")).is_err() {
                return;
            }
            continue;
        };
        let result = match method.as_str() {
            "GET" if matches!(t.query.get("watch").map(String::as_str), Some("1" | "true")) => {
                watch(shared, &mut out, &t);
                return; // A watch ends its connection.
            }
            "GET" => get(shared, &mut out, &t),
            "POST" if t.resource.1 == "events" => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                shared.state.lock().unwrap_or_else(|e| e.into_inner()).events.push(v.clone());
                respond(&mut out, 201, &v)
            }
            "PATCH" if t.subresource.as_deref() == Some("status") => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                st.status_patches.push((target.split('?').next().unwrap_or("").to_string(), v));
                let ns = t.namespace.clone().unwrap_or_default();
                let current = st
                    .objects
                    .get(&t.resource)
                    .and_then(|m| m.get(&(ns, t.name.clone().unwrap_or_default())))
                    .cloned();
                drop(st);
                match current {
                    Some(o) => respond(&mut out, 200, &o),
                    None => respond(&mut out, 404, &status_body(404, "NotFound", "not found")),
                }
            }
            _ => respond(&mut out, 405, &status_body(405, "MethodNotAllowed", "method not allowed")),
        };
        if result.is_err() {
            return;
        }
    }
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond(out: &mut TcpStream, code: u16, body: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        if code < 300 { "OK" } else { "Error" },
        body.len()
    );
    out.write_all(head.as_bytes())?;
    out.write_all(&body)?;
    out.flush()
}

fn get(shared: &Arc<Shared>, out: &mut TcpStream, t: &Target) -> std::io::Result<()> {
    let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let objects = st.objects.get(&t.resource);
    if let Some(name) = &t.name {
        let ns = t.namespace.clone().unwrap_or_default();
        let found = objects.and_then(|m| m.get(&(ns, name.clone()))).cloned();
        drop(st);
        return match found {
            Some(o) => respond(out, 200, &o),
            None => respond(out, 404, &status_body(404, "NotFound", &format!("{name} not found"))),
        };
    }
    let all: Vec<&Value> = objects.into_iter().flat_map(|m| m.values()).filter(|o| selected(o, t)).collect();
    let start: usize = t.query.get("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
    let limit: usize =
        t.query.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(all.len());
    let items: Vec<Value> = all.get(start..end).unwrap_or(&[]).iter().map(|v| (*v).clone()).collect();
    let mut metadata = json!({"resourceVersion": st.rv.to_string()});
    if end < all.len() {
        metadata["continue"] = json!(end.to_string());
        metadata["remainingItemCount"] = json!(all.len() - end);
    }
    drop(st);
    respond(out, 200, &json!({"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": items}))
}

fn chunk(out: &mut TcpStream, event: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(event).unwrap_or_default();
    line.push(b'\n');
    out.write_all(format!("{:x}\r\n", line.len()).as_bytes())?;
    out.write_all(&line)?;
    out.write_all(b"\r\n")?;
    out.flush()
}

fn watch(shared: &Arc<Shared>, out: &mut TcpStream, t: &Target) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let timeout = t.query.get("timeoutSeconds").and_then(|s| s.parse().ok()).unwrap_or(290u64);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let bookmarks = t.query.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let initial = t.query.get("sendInitialEvents").is_some_and(|v| v == "true");
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let epoch = st.watch_epoch;
    let mut from: u64 = t.query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    if initial || from == 0 {
        // Streaming list (or "any" version): the current objects first.
        let objects: Vec<Value> = st
            .objects
            .get(&t.resource)
            .into_iter()
            .flat_map(|m| m.values())
            .filter(|o| selected(o, t))
            .cloned()
            .collect();
        from = st.rv;
        let rv = st.rv;
        drop(st);
        for o in objects {
            if chunk(out, &json!({"type": "ADDED", "object": o})).is_err() {
                return;
            }
        }
        if initial {
            let mark = json!({"type": "BOOKMARK", "object": {"kind": "Bookmark", "apiVersion": "v1",
                "metadata": {"resourceVersion": rv.to_string(),
                             "annotations": {"k8s.io/initial-events-end": "true"}}}});
            if chunk(out, &mark).is_err() {
                return;
            }
        }
        st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    } else if from <= st.compacted {
        drop(st);
        let gone = status_body(410, "Expired", &format!("too old resource version: {from}"));
        let _ = chunk(out, &json!({"type": "ERROR", "object": gone}));
        let _ = out.write_all(b"0\r\n\r\n");
        return;
    }
    let mut last_bookmark = Instant::now();
    // Every change up to `scanned` has been looked at (changes of other resources included).
    let mut scanned = from;
    loop {
        if st.watch_epoch != epoch || shared.down.load(Ordering::SeqCst) || Instant::now() >= deadline {
            drop(st);
            // An outage ends the stream abruptly; a timeout or compaction ends it cleanly.
            if !shared.down.load(Ordering::SeqCst) {
                let _ = out.write_all(b"0\r\n\r\n");
            }
            let _ = out.shutdown(std::net::Shutdown::Both);
            return;
        }
        let pending: Vec<(u64, &'static str, Value)> = st
            .log
            .iter()
            .filter(|(rv, r, _, o)| *rv > scanned && *r == t.resource && selected(o, t))
            .map(|(rv, _, ty, o)| (*rv, *ty, o.clone()))
            .collect();
        let current = st.rv;
        drop(st);
        for (_, ty, o) in pending {
            if chunk(out, &json!({"type": ty, "object": o})).is_err() {
                return;
            }
        }
        scanned = current;
        if bookmarks && last_bookmark.elapsed() > Duration::from_secs(1) {
            from = scanned;
            let mark = json!({"type": "BOOKMARK", "object": {"kind": "Bookmark", "apiVersion": "v1",
                "metadata": {"resourceVersion": from.to_string()}}});
            if chunk(out, &mark).is_err() {
                return;
            }
            last_bookmark = Instant::now();
        }
        st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.rv <= scanned && st.watch_epoch == epoch {
            st = shared
                .changed
                .wait_timeout(st, Duration::from_millis(250))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_and_targets() {
        let o =
            json!({"type": "Opaque", "metadata": {"name": "a", "namespace": "n", "labels": {"app": "web"}}});
        for (sel, want) in
            [("app=web", true), ("app!=web", false), ("app", true), ("!app", false), ("", true)]
        {
            assert_eq!(labels_match(&o, sel), want, "{sel}");
        }
        for (sel, want) in
            [("type!=helm.sh/release.v1", true), ("type=Opaque", true), ("metadata.name=b", false)]
        {
            assert_eq!(fields_match(&o, sel), want, "{sel}");
        }
        let t =
            parse_target("/apis/traefik.io/v1alpha1/namespaces/n/ingressroutes?watch=1&labelSelector=a%3Db")
                .expect("target");
        assert_eq!(t.resource, ("/apis/traefik.io/v1alpha1".to_string(), "ingressroutes".to_string()));
        assert_eq!(
            (t.namespace.as_deref(), t.query.get("labelSelector").map(String::as_str)),
            (Some("n"), Some("a=b"))
        );
        let t = parse_target("/apis/networking.k8s.io/v1/namespaces/n/ingresses/x/status").expect("target");
        assert_eq!((t.name.as_deref(), t.subresource.as_deref()), (Some("x"), Some("status")));
        assert_eq!(plural("IngressRoute"), "ingressroutes");
        assert_eq!(plural("ServersTransport"), "serverstransports");
        assert_eq!(plural("TLSOption"), "tlsoptions");
    }
}
