//! The Kubernetes API source: kube-rs watchers (list + watch, re-list on `410 Gone`, bookmarks,
//! backoff while the API server is away) for every kind weir reads, feeding an [`ObjectStore`]
//! the same way the manifests directory does. Watchers run as tasks and send [`Update`]s; the
//! control loop applies them to a [`KubeStore`] and recompiles, coalesced (see [`Coalesce`]).
//!
//! Secrets: only Secrets whose `type` is not `helm.sh/release.v1` are watched (a field
//! selector), so Helm release history — the bulk of Secret bytes in most clusters — never
//! reaches weir's memory.

mod client;
pub mod status;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use tokio::sync::mpsc;

pub use client::client;

use crate::config::{KubeConnection, StaticConfig};
use crate::objects::{Kind, Object, TRAEFIK_API_VERSIONS};
use crate::status::{Problem, Severity};
use crate::store::ObjectStore;

/// Identifies an object: kind, namespace, name.
pub type Key = (Kind, String, String);

/// Field selector of the Secret watch: Helm release Secrets are never read.
pub const SECRET_FIELD_SELECTOR: &str = "type!=helm.sh/release.v1";

/// The annotation Traefik filters CRD objects by when `ingressClass` is set.
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// What one watcher watches.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The resource (group, version, kind, plural).
    pub resource: ApiResource,
    /// weir's kind for it.
    pub kind: Kind,
    /// Only this namespace (`None`: all, or cluster scoped).
    pub namespace: Option<String>,
    /// Label selector passed to the API server.
    pub label_selector: Option<String>,
    /// Field selector passed to the API server.
    pub field_selector: Option<String>,
    /// Keep only objects whose `kubernetes.io/ingress.class` annotation equals this.
    pub ingress_class: Option<String>,
    /// Which provider's connection it uses.
    pub provider: Provider,
}

/// The two Kubernetes providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `kubernetesCRD`.
    Crd,
    /// `kubernetesIngress`.
    Ingress,
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() { version.into() } else { format!("{group}/{version}") },
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// The Traefik kinds, with their plurals.
const TRAEFIK_KINDS: [(&str, &str); 10] = [
    ("IngressRoute", "ingressroutes"),
    ("IngressRouteTCP", "ingressroutetcps"),
    ("IngressRouteUDP", "ingressrouteudps"),
    ("Middleware", "middlewares"),
    ("MiddlewareTCP", "middlewaretcps"),
    ("TraefikService", "traefikservices"),
    ("TLSOption", "tlsoptions"),
    ("TLSStore", "tlsstores"),
    ("ServersTransport", "serverstransports"),
    ("ServersTransportTCP", "serverstransporttcps"),
];

/// Whether the CRD provider reads the API server (rather than the manifests directory).
pub fn crd_wanted(config: &StaticConfig) -> bool {
    config.crd.enabled && (config.manifests.as_os_str().is_empty() || config.kube.crd.explicit())
}

/// Whether the Ingress provider reads the API server.
pub fn ingress_wanted(config: &StaticConfig) -> bool {
    config.ingress.enabled && (config.manifests.as_os_str().is_empty() || config.kube.ingress.explicit())
}

/// Every watch the configuration asks for.
pub fn watch_specs(config: &StaticConfig) -> Vec<WatchSpec> {
    let mut specs = Vec::new();
    let crd = crd_wanted(config);
    let ingress = ingress_wanted(config);
    let namespaced = |namespaces: &[String]| -> Vec<Option<String>> {
        if namespaces.is_empty() {
            vec![None]
        } else {
            namespaces.iter().cloned().map(Some).collect()
        }
    };
    let spec = |resource: ApiResource, kind: Kind, namespace: Option<String>, provider: Provider| WatchSpec {
        resource,
        kind,
        namespace,
        label_selector: None,
        field_selector: None,
        ingress_class: None,
        provider,
    };
    // Services, EndpointSlices and Secrets once, from the CRD provider's connection when it is
    // on (both providers read them); namespaces: the union when both restrict.
    let core_provider = if crd { Provider::Crd } else { Provider::Ingress };
    let core_namespaces: Vec<Option<String>> = match (crd, ingress) {
        (true, true) if config.kube.crd_namespaces.is_empty() || config.ingress.namespaces.is_empty() => {
            vec![None]
        }
        (true, true) => {
            let mut all: Vec<String> =
                config.kube.crd_namespaces.iter().chain(&config.ingress.namespaces).cloned().collect();
            all.sort();
            all.dedup();
            all.into_iter().map(Some).collect()
        }
        (true, false) => namespaced(&config.kube.crd_namespaces),
        (false, true) => namespaced(&config.ingress.namespaces),
        (false, false) => return specs,
    };
    for ns in &core_namespaces {
        specs.push(spec(resource("", "v1", "Service", "services"), Kind::Service, ns.clone(), core_provider));
        specs.push(spec(
            resource("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
            Kind::EndpointSlice,
            ns.clone(),
            core_provider,
        ));
        let mut secrets =
            spec(resource("", "v1", "Secret", "secrets"), Kind::Secret, ns.clone(), core_provider);
        secrets.field_selector = Some(SECRET_FIELD_SELECTOR.into());
        specs.push(secrets);
    }
    if crd {
        let labels = Some(config.kube.crd_label_selector.clone()).filter(|s| !s.is_empty());
        let class = Some(config.kube.crd_ingress_class.clone()).filter(|s| !s.is_empty());
        for api_version in TRAEFIK_API_VERSIONS {
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            for (kind_name, plural) in TRAEFIK_KINDS {
                let Some(kind) = Kind::from_type(api_version, kind_name) else { continue };
                for ns in namespaced(&config.kube.crd_namespaces) {
                    let mut s = spec(resource(group, version, kind_name, plural), kind, ns, Provider::Crd);
                    s.label_selector = labels.clone();
                    s.ingress_class = class.clone();
                    specs.push(s);
                }
            }
        }
    }
    if ingress {
        let labels = Some(config.ingress.label_selector.source.trim().to_string()).filter(|s| !s.is_empty());
        for ns in namespaced(&config.ingress.namespaces) {
            let mut s = spec(
                resource("networking.k8s.io", "v1", "Ingress", "ingresses"),
                Kind::Ingress,
                ns,
                Provider::Ingress,
            );
            s.label_selector = labels.clone();
            specs.push(s);
        }
        if !config.ingress.disable_cluster_scope_resources && !config.ingress.disable_ingress_class_lookup {
            specs.push(spec(
                resource("networking.k8s.io", "v1", "IngressClass", "ingressclasses"),
                Kind::IngressClass,
                None,
                Provider::Ingress,
            ));
        }
    }
    // Nodes (cluster scoped) for `nodePortLB`, once, unless every enabled provider is told to
    // leave cluster-scoped kinds alone.
    let crd_nodes = crd && !config.kube.crd_disable_cluster_scope_resources;
    let ingress_nodes = ingress && !config.ingress.disable_cluster_scope_resources;
    if crd_nodes || ingress_nodes {
        let provider = if crd_nodes { Provider::Crd } else { Provider::Ingress };
        specs.push(spec(resource("", "v1", "Node", "nodes"), Kind::Node, None, provider));
    }
    specs
}

/// An object read from the API server, or why it could not be read.
pub type Read = Result<Object, Problem>;

/// What a watcher reports.
// Messages live briefly in a channel; boxing the common `Apply` would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Update {
    /// An object was added or changed.
    Apply {
        /// Index of the watcher.
        watcher: usize,
        /// Its key.
        key: Key,
        /// It, or its problem.
        object: Read,
    },
    /// An object was deleted (or no longer passes the watcher's filter).
    Delete {
        /// Index of the watcher.
        watcher: usize,
        /// Its key.
        key: Key,
    },
    /// A complete (re-)list: these are all the objects the watcher sees.
    Replace {
        /// Index of the watcher.
        watcher: usize,
        /// The objects.
        objects: Vec<(Key, Read)>,
    },
    /// The watcher failed before its first complete list (the API server is unreachable, or
    /// the resource does not exist); it keeps retrying.
    Failed {
        /// Index of the watcher.
        watcher: usize,
    },
}

/// Converts what the API server sent into a typed object. `None` when the watcher's filter
/// excludes it.
pub fn convert(spec: &WatchSpec, object: DynamicObject) -> Option<(Key, Read)> {
    let key = key_of(spec, &object);
    let (namespace, name) = (key.1.clone(), key.2.clone());
    if let Some(class) = &spec.ingress_class {
        let annotation = object.metadata.annotations.as_ref().and_then(|a| a.get(INGRESS_CLASS_ANNOTATION));
        if annotation != Some(class) {
            return None;
        }
    }
    let mut value = match serde_json::to_value(&object) {
        Ok(v) => v,
        Err(e) => return Some((key, Err(problem(spec.kind, &namespace, &name, e.to_string())))),
    };
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), spec.resource.api_version.clone().into());
        map.insert("kind".into(), spec.resource.kind.clone().into());
    }
    // The same typed reading as a manifests file (one place knows every kind).
    let doc = match serde_yaml_ng::to_value(&value) {
        Ok(doc) => doc,
        Err(e) => return Some((key, Err(problem(spec.kind, &namespace, &name, e.to_string())))),
    };
    let mut problems = Vec::new();
    let origin = format!("the Kubernetes API ({})", spec.resource.api_version);
    let read = match crate::source::manifests::parse_object(&origin, doc, &mut problems) {
        Some(object) => Ok(object),
        None => Err(problems.into_iter().next().unwrap_or_else(|| {
            problem(spec.kind, &namespace, &name, format!("kind {} is not handled", spec.kind))
        })),
    };
    Some((key, read))
}

fn problem(kind: Kind, namespace: &str, name: &str, message: String) -> Problem {
    Problem::object(Severity::Error, kind.name(), namespace, name, message)
}

/// Runs one watcher until the receiver is gone.
pub async fn run_watcher(
    index: usize,
    spec: WatchSpec,
    client: kube::Client,
    tx: mpsc::UnboundedSender<Update>,
) {
    let api: Api<DynamicObject> = match &spec.namespace {
        Some(ns) => Api::namespaced_with(client, ns, &spec.resource),
        None => Api::all_with(client, &spec.resource),
    };
    let mut config = watcher::Config::default();
    if let Some(l) = &spec.label_selector {
        config = config.labels(l);
    }
    if let Some(f) = &spec.field_selector {
        config = config.fields(f);
    }
    let what = format!(
        "{} ({}){}",
        spec.resource.kind,
        spec.resource.api_version,
        spec.namespace.as_ref().map(|n| format!(" in namespace {n}")).unwrap_or_default()
    );
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let (mut listing, mut synced, mut failing) = (Vec::new(), false, false);
    while let Some(event) = stream.next().await {
        let update = match event {
            Ok(event) => {
                if failing {
                    tracing::info!("watching {what}: connected again");
                    failing = false;
                }
                match event {
                    Event::Init => {
                        listing = Vec::new();
                        continue;
                    }
                    Event::InitApply(o) => {
                        listing.extend(convert(&spec, o));
                        continue;
                    }
                    Event::InitDone => {
                        synced = true;
                        tracing::debug!(objects = listing.len(), "listed {what}");
                        Update::Replace { watcher: index, objects: std::mem::take(&mut listing) }
                    }
                    Event::Apply(o) => {
                        let key = key_of(&spec, &o);
                        match convert(&spec, o) {
                            Some((key, object)) => Update::Apply { watcher: index, key, object },
                            None => Update::Delete { watcher: index, key },
                        }
                    }
                    Event::Delete(o) => Update::Delete { watcher: index, key: key_of(&spec, &o) },
                }
            }
            Err(e) => {
                // Logged once per outage; the watcher retries with backoff on its own. A kind
                // the API server does not serve (the Traefik v2 group without its CRDs) is
                // worth an info line, not a warning.
                if !failing && not_found(&e) {
                    tracing::info!("{what} is not served by the API server (CRD not installed?); will retry");
                    failing = true;
                } else if !failing {
                    tracing::warn!(
                        "watching {what}: {e}; retrying (the last applied configuration keeps serving)"
                    );
                    failing = true;
                } else {
                    tracing::debug!("watching {what}: {e}");
                }
                if synced {
                    continue;
                }
                Update::Failed { watcher: index }
            }
        };
        if tx.send(update).is_err() {
            return;
        }
    }
}

/// Whether the API server answered 404 (the resource type does not exist).
fn not_found(e: &watcher::Error) -> bool {
    matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.code == 404)
}

/// The store's key of an object: cluster-scoped objects (and any without a namespace) are
/// keyed under `default`, as `ObjectMeta::namespace` reads them.
fn key_of(spec: &WatchSpec, o: &DynamicObject) -> Key {
    let namespace = o.metadata.namespace.clone().filter(|n| !n.is_empty());
    let namespace = namespace.unwrap_or_else(|| crate::objects::DEFAULT_NAMESPACE.to_string());
    (spec.kind, namespace, o.metadata.name.clone().unwrap_or_default())
}

/// The objects the watchers delivered, and which watcher delivered what (so a re-list can
/// drop exactly the objects that disappeared).
#[derive(Debug)]
pub struct KubeStore {
    /// Every valid object.
    pub store: ObjectStore,
    /// A copy of every object, kept only when another source must be merged in.
    objects: Option<BTreeMap<Key, Object>>,
    owned: Vec<HashSet<Key>>,
    problems: BTreeMap<Key, Problem>,
    /// Per watcher: listed completely (or failed) at least once.
    ready: Vec<bool>,
}

impl KubeStore {
    /// A store for `watchers` watchers; `keep_objects` when it will be merged with another
    /// source.
    pub fn new(watchers: usize, keep_objects: bool) -> KubeStore {
        KubeStore {
            store: ObjectStore::new(),
            objects: keep_objects.then(BTreeMap::new),
            owned: vec![HashSet::new(); watchers],
            problems: BTreeMap::new(),
            ready: vec![false; watchers],
        }
    }

    /// Whether every watcher has listed (or failed) once.
    pub fn ready(&self) -> bool {
        self.ready.iter().all(|r| *r)
    }

    /// Problems of objects that could not be read.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.values()
    }

    /// Copies every object into `into` (used to merge with the manifests directory).
    pub fn merge_into(&self, into: &mut ObjectStore) {
        for o in self.objects.iter().flat_map(|m| m.values()) {
            into.insert(o.clone());
        }
    }

    /// Applies one update; whether anything changed.
    pub fn apply(&mut self, update: Update) -> bool {
        match update {
            Update::Apply { watcher, key, object } => self.put(watcher, key, object),
            Update::Delete { watcher, key } => self.delete(watcher, &key),
            Update::Failed { watcher } => {
                if let Some(r) = self.ready.get_mut(watcher) {
                    *r = true;
                }
                false
            }
            Update::Replace { watcher, objects } => {
                if let Some(r) = self.ready.get_mut(watcher) {
                    *r = true;
                }
                let listed: HashSet<&Key> = objects.iter().map(|(k, _)| k).collect();
                let gone: Vec<Key> = self
                    .owned
                    .get(watcher)
                    .map(|o| o.iter().filter(|k| !listed.contains(k)).cloned().collect())
                    .unwrap_or_default();
                let mut changed = false;
                for key in gone {
                    changed |= self.delete(watcher, &key);
                }
                for (key, object) in objects {
                    changed |= self.put(watcher, key, object);
                }
                changed
            }
        }
    }

    fn put(&mut self, watcher: usize, key: Key, object: Read) -> bool {
        if let Some(owned) = self.owned.get_mut(watcher) {
            owned.insert(key.clone());
        }
        match object {
            Ok(object) => {
                let had_problem = self.problems.remove(&key).is_some();
                if let Some(objects) = &mut self.objects {
                    objects.insert(key.clone(), object.clone());
                }
                let new = object.clone();
                // The store hands back what it replaced: an identical object changes nothing.
                let old = self.store.insert(object);
                had_problem || old.as_ref() != Some(&new)
            }
            Err(problem) => {
                let removed = self.store.remove(key.0, &key.1, &key.2).is_some();
                if let Some(objects) = &mut self.objects {
                    objects.remove(&key);
                }
                let new_problem = self.problems.get(&key) != Some(&problem);
                self.problems.insert(key, problem);
                removed || new_problem
            }
        }
    }

    fn delete(&mut self, watcher: usize, key: &Key) -> bool {
        if let Some(owned) = self.owned.get_mut(watcher) {
            owned.remove(key);
        }
        if let Some(objects) = &mut self.objects {
            objects.remove(key);
        }
        let problem = self.problems.remove(key).is_some();
        self.store.remove(key.0, &key.1, &key.2).is_some() || problem
    }
}

/// Collects updates into one rebuild: waits until updates have been quiet for `QUIET` (or
/// `throttle` when it is longer) or `MAX_DELAY` after the first one.
pub struct Coalesce;

impl Coalesce {
    /// Quiet time after the last update before rebuilding.
    pub const QUIET: Duration = Duration::from_millis(5);
    /// Longest delay between the first update of a burst and the rebuild (without throttle).
    pub const MAX_DELAY: Duration = Duration::from_millis(100);

    /// Applies `first` and every update that follows within the window; whether the store
    /// changed.
    pub async fn collect(
        store: &mut KubeStore,
        first: Update,
        rx: &mut mpsc::UnboundedReceiver<Update>,
        throttle: Duration,
    ) -> bool {
        let start = tokio::time::Instant::now();
        let mut changed = store.apply(first);
        let max = start + Self::MAX_DELAY.max(throttle);
        loop {
            let quiet_deadline = if throttle > Duration::ZERO {
                start + throttle
            } else {
                tokio::time::Instant::now() + Self::QUIET
            };
            match tokio::time::timeout_at(quiet_deadline.min(max), rx.recv()).await {
                Ok(Some(update)) => changed |= store.apply(update),
                Ok(None) | Err(_) => return changed,
            }
        }
    }
}

/// Connection options of a provider.
pub fn connection(config: &StaticConfig, provider: Provider) -> &KubeConnection {
    match provider {
        Provider::Crd => &config.kube.crd,
        Provider::Ingress => &config.kube.ingress,
    }
}

#[cfg(test)]
mod tests;

/// How long the first snapshot waits for every watcher's first list. Traefik waits for its
/// caches too; past this weir starts with what it has (a missing CRD group, an API server
/// that is down) and applies the rest as it arrives.
pub const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(30);

/// The running watchers.
pub struct KubeSource {
    /// Number of watchers (indexes of [`Update`]s).
    pub watchers: usize,
    /// What they report.
    pub updates: mpsc::UnboundedReceiver<Update>,
    client: kube::Client,
    ingress_client: Option<kube::Client>,
}

impl KubeSource {
    /// Starts the watchers the configuration asks for; `None` when neither provider reads the
    /// API server.
    pub async fn start(config: &StaticConfig) -> anyhow::Result<Option<KubeSource>> {
        let specs = watch_specs(config);
        if specs.is_empty() {
            return Ok(None);
        }
        let crd_client = if crd_wanted(config) { Some(client(&config.kube.crd).await?) } else { None };
        let ingress_client = if ingress_wanted(config) {
            // One connection when both providers name the same one.
            match &crd_client {
                Some(c) if config.kube.ingress == config.kube.crd || !config.kube.ingress.explicit() => {
                    Some(c.clone())
                }
                _ => Some(client(&config.kube.ingress).await?),
            }
        } else {
            None
        };
        let (tx, updates) = mpsc::unbounded_channel();
        let watchers = specs.len();
        for (index, spec) in specs.into_iter().enumerate() {
            let c = match spec.provider {
                Provider::Crd => crd_client.clone(),
                Provider::Ingress => ingress_client.clone(),
            };
            let Some(c) = c else { continue };
            tracing::debug!(kind = spec.resource.kind, api_version = spec.resource.api_version, "watching");
            tokio::spawn(run_watcher(index, spec, c, tx.clone()));
        }
        let Some(client) = crd_client.or_else(|| ingress_client.clone()) else {
            return Ok(None);
        };
        tracing::info!(watchers, "watching the Kubernetes API");
        Ok(Some(KubeSource { watchers, updates, client, ingress_client }))
    }

    /// Applies updates until every watcher has listed once (or failed), or `timeout`.
    pub async fn initial_sync(&mut self, store: &mut KubeStore, timeout: Duration) {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        while !store.ready() {
            match tokio::time::timeout_at(deadline, self.updates.recv()).await {
                Ok(Some(update)) => {
                    store.apply(update);
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        "the Kubernetes API did not list every kind within {timeout:?}; starting with what it sent"
                    );
                    break;
                }
            }
        }
        // What arrived meanwhile (watch events after the lists).
        while let Ok(update) = self.updates.try_recv() {
            store.apply(update);
        }
        tracing::info!(
            objects = store.store.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "listed the Kubernetes API"
        );
    }

    /// The Event recorder and the Ingress status writer for this source.
    pub fn reporters(&self, config: &StaticConfig, options: crate::translate::TranslateOptions) -> Reporters {
        let status = match (&self.ingress_client, &config.ingress.ingress_endpoint) {
            (Some(c), Some(_)) => Some(status::StatusWriter::spawn(c.clone(), options)),
            _ => None,
        };
        Reporters { events: crate::events::EventRecorder::spawn(self.client.clone()), status }
    }
}

/// What runs after every build when the API server is a source.
pub struct Reporters {
    events: crate::events::EventRecorder,
    status: Option<status::StatusWriter>,
}

impl Reporters {
    /// Reports problems as Events and writes the status of handled Ingresses.
    pub fn after_compile(&self, problems: &[Problem], store: Option<&ObjectStore>) {
        self.events.record(problems);
        if let (Some(status), Some(store)) = (&self.status, store) {
            status.update(store);
        }
    }
}
