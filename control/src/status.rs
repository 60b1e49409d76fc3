//! Problems found while reading and translating objects, kept as data (so a future API can
//! list them) and logged once per change: a problem is logged when it first appears, not again
//! on every rebuild while it lasts.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing is disabled.
    Info,
    /// Something is ignored or degraded, the rest serves.
    Warning,
    /// Something (an object, a router, a file) is disabled.
    Error,
}

/// What a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// A manifest file.
    File {
        /// Its path.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// A Kubernetes object.
    Object {
        /// Kind (`IngressRoute`, `Service`, ...).
        kind: String,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// One route of an IngressRoute (one router).
    Route {
        /// Kind of the object holding the route.
        kind: String,
        /// Namespace.
        namespace: String,
        /// Object name.
        name: String,
        /// Index in `spec.routes`.
        route: usize,
        /// Generated router name.
        router: String,
    },
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// How bad.
    pub severity: Severity,
    /// About what.
    pub subject: Subject,
    /// What is wrong, in words.
    pub message: String,
}

impl Problem {
    /// A problem with an object.
    pub fn object(severity: Severity, kind: &str, namespace: &str, name: &str, message: String) -> Problem {
        Problem {
            severity,
            subject: Subject::Object { kind: kind.into(), namespace: namespace.into(), name: name.into() },
            message,
        }
    }

    /// Writes the problem to the log.
    pub fn log(&self) {
        let msg = &self.message;
        match (&self.subject, self.severity) {
            (Subject::File { path, line, column }, Severity::Error) => tracing::error!(
                file = %path.display(),
                line = line.unwrap_or(0),
                column = column.unwrap_or(0),
                "{msg}"
            ),
            (Subject::File { path, .. }, _) => tracing::warn!(file = %path.display(), "{msg}"),
            (Subject::Object { kind, namespace, name }, Severity::Error) => {
                tracing::error!(kind, namespace, name, "object ignored: {msg}")
            }
            (Subject::Object { kind, namespace, name }, Severity::Warning) => {
                tracing::warn!(kind, namespace, name, "{msg}")
            }
            (Subject::Object { kind, namespace, name }, Severity::Info) => {
                tracing::info!(kind, namespace, name, "{msg}")
            }
            (Subject::Route { kind, namespace, name, route, router }, Severity::Error) => {
                tracing::error!(kind, namespace, name, route, router, "router disabled: {msg}")
            }
            (Subject::Route { kind, namespace, name, route, router }, Severity::Warning) => {
                tracing::warn!(kind, namespace, name, route, router, "{msg}")
            }
            (Subject::Route { kind, namespace, name, route, router }, Severity::Info) => {
                tracing::info!(kind, namespace, name, route, router, "{msg}")
            }
        }
    }
}

/// The problems of the latest build, and which of them were already logged.
#[derive(Debug, Default)]
pub struct ProblemLog {
    current: BTreeSet<Problem>,
}

impl ProblemLog {
    /// Replaces the current problems, logging those that were not there before; returns how
    /// many were new.
    pub fn report(&mut self, problems: impl IntoIterator<Item = Problem>) -> usize {
        let next: BTreeSet<Problem> = problems.into_iter().collect();
        let mut new = 0;
        for p in next.difference(&self.current) {
            p.log();
            new += 1;
        }
        self.current = next;
        new
    }

    /// The current problems, sorted.
    pub fn current(&self) -> impl Iterator<Item = &Problem> {
        self.current.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_each_problem_once_per_appearance() {
        let a = Problem::object(Severity::Error, "Service", "default", "a", "bad".into());
        let b = Problem::object(Severity::Warning, "Service", "default", "b", "odd".into());
        let mut log = ProblemLog::default();
        let rounds: [(&[&Problem], usize); 5] =
            [(&[&a], 1), (&[&a], 0), (&[&a, &b], 1), (&[], 0), (&[&a], 1)];
        for (i, (problems, want_new)) in rounds.into_iter().enumerate() {
            assert_eq!(log.report(problems.iter().map(|p| (*p).clone())), want_new, "round {i}");
            assert_eq!(log.current().count(), problems.len(), "round {i}");
        }
    }
}
