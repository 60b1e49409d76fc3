//! Kubernetes Events (`events.k8s.io/v1`) for invalid objects: when a problem about an object
//! appears (a source could not read it, or translation disabled it or one of its routes), one
//! Event is created regarding that object, with reason `InvalidConfiguration` (errors) or
//! `Warning` … and the problem's message as note. A problem that lasts is reported once; one
//! that goes away and comes back is reported again (the same rule as the log).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

use crate::objects::Kind;
use crate::status::{Problem, Severity, Subject};

/// The `reportingController` of weir's Events.
pub const REPORTING_CONTROLLER: &str = "weir.dev/ingress-controller";

/// Sends Events from a background task.
#[derive(Debug, Clone)]
pub struct EventRecorder {
    tx: mpsc::UnboundedSender<Vec<Problem>>,
}

impl EventRecorder {
    /// Starts the task that creates Events through `client`.
    pub fn spawn(client: kube::Client) -> EventRecorder {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Problem>>();
        let instance = std::env::var("POD_NAME")
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string())
            })
            .unwrap_or_else(|| "weir".into());
        tokio::spawn(async move {
            let mut reported = BTreeSet::new();
            while let Some(mut batch) = rx.recv().await {
                // Only the latest state matters.
                while let Ok(newer) = rx.try_recv() {
                    batch = newer;
                }
                let current: BTreeSet<Problem> = batch.into_iter().collect();
                for problem in current.difference(&reported) {
                    let Some(event) = event_for(problem, &instance, now()) else { continue };
                    let namespace = event.metadata.namespace.clone().unwrap_or_else(|| "default".into());
                    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                    if let Err(e) = api.create(&PostParams::default(), &event).await {
                        tracing::debug!("cannot create an Event in {namespace}: {e}");
                    }
                }
                reported = current;
            }
        });
        EventRecorder { tx }
    }

    /// Reports the problems of the latest build (all of them; the task picks the new ones).
    pub fn record(&self, problems: &[Problem]) {
        let _ = self.tx.send(problems.to_vec());
    }
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// The API version objects of `kind` are read as.
fn api_version(kind: &str) -> &'static str {
    match kind {
        "Service" | "Secret" => "v1",
        "EndpointSlice" => "discovery.k8s.io/v1",
        "Ingress" | "IngressClass" => "networking.k8s.io/v1",
        _ => "traefik.io/v1alpha1",
    }
}

/// The Event for a problem about an object; `None` for problems about files and for
/// informational ones.
pub fn event_for(problem: &Problem, instance: &str, at: k8s_openapi::jiff::Timestamp) -> Option<Event> {
    if problem.severity == Severity::Info {
        return None;
    }
    let (kind, namespace, name) = match &problem.subject {
        Subject::Object { kind, namespace, name } | Subject::Route { kind, namespace, name, .. } => {
            (kind, namespace, name)
        }
        Subject::File { .. } => return None,
    };
    if name.is_empty() {
        return None;
    }
    let cluster_scoped = kind == Kind::IngressClass.name();
    let event_namespace = if cluster_scoped || namespace.is_empty() { "default" } else { namespace.as_str() };
    let (reason, type_) = match problem.severity {
        Severity::Error => ("InvalidConfiguration", "Warning"),
        _ => ("ConfigurationWarning", "Warning"),
    };
    let mut note = problem.message.clone();
    if let Subject::Route { route, router, .. } = &problem.subject {
        note = format!("route {route} (router {router}): {note}");
    }
    // Notes are limited to 1 KiB by the API server.
    if note.len() > 1024 {
        let mut cut = 1021;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let nanos = at.as_nanosecond();
    Some(Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", dns_safe(name), nanos)),
            namespace: Some(event_namespace.to_string()),
            ..Default::default()
        },
        event_time: Some(MicroTime(at)),
        action: Some("Translate".into()),
        reason: Some(reason.into()),
        note: Some(note),
        type_: Some(type_.into()),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(instance.to_string()),
        regarding: Some(ObjectReference {
            api_version: Some(api_version(kind).into()),
            kind: Some(kind.clone()),
            namespace: (!cluster_scoped && !namespace.is_empty()).then(|| namespace.clone()),
            name: Some(name.clone()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A name usable as an Event name prefix (lower-case DNS subdomain characters).
fn dns_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c.to_ascii_lowercase() } else { '-' })
        .take(200)
        .collect();
    if s.is_empty() {
        "object".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_for_problems() {
        let at = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("time");
        let object = Problem::object(Severity::Error, "IngressRoute", "apps", "web", "bad rule".into());
        let e = event_for(&object, "node-1", at).expect("event");
        assert_eq!(e.metadata.namespace.as_deref(), Some("apps"));
        assert!(e.metadata.name.as_deref().is_some_and(|n| n.starts_with("web.")));
        assert_eq!(
            (e.reason.as_deref(), e.type_.as_deref()),
            (Some("InvalidConfiguration"), Some("Warning"))
        );
        assert_eq!(e.note.as_deref(), Some("bad rule"));
        let r = e.regarding.expect("regarding");
        assert_eq!(
            (r.api_version.as_deref(), r.kind.as_deref(), r.namespace.as_deref(), r.name.as_deref()),
            (Some("traefik.io/v1alpha1"), Some("IngressRoute"), Some("apps"), Some("web"))
        );
        let route = Problem {
            severity: Severity::Warning,
            subject: Subject::Route {
                kind: "IngressRoute".into(),
                namespace: "apps".into(),
                name: "Web_1".into(),
                route: 2,
                router: "apps-web-1-abc".into(),
            },
            message: "x".repeat(2000),
        };
        let e = event_for(&route, "n", at).expect("event");
        assert_eq!(e.reason.as_deref(), Some("ConfigurationWarning"));
        assert!(e.metadata.name.as_deref().is_some_and(|n| n.starts_with("web-1.")));
        assert!(e
            .note
            .as_deref()
            .is_some_and(|n| n.len() <= 1024 && n.starts_with("route 2 (router apps-web-1-abc)")));
        let svc = Problem::object(Severity::Error, "Service", "default", "s", "x".into());
        assert_eq!(event_for(&svc, "n", at).and_then(|e| e.regarding?.api_version), Some("v1".into()));
        let info = Problem::object(Severity::Info, "IngressRouteTCP", "apps", "t", "stored only".into());
        assert!(event_for(&info, "n", at).is_none());
        let file = Problem {
            severity: Severity::Error,
            subject: Subject::File { path: "/m/a.yaml".into(), line: None, column: None },
            message: "bad".into(),
        };
        assert!(event_for(&file, "n", at).is_none());
    }
}
