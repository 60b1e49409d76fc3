//! Watches the manifests directory (inotify through `notify`, recursive) and turns bursts of
//! events into single "changed" ticks: a tick fires once events have been quiet for
//! [`QUIET_PERIOD`], or [`MAX_DELAY`] after the first event of a burst at the latest, so an
//! editor's write-temp-then-rename or a `kubectl`-style rewrite of many files reloads once.

use std::path::Path;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Quiet time after the last event before reloading. Short, because it is added to every
/// isolated change; the events of one editor save or one `kubectl`-style rewrite arrive
/// within a millisecond of each other, and a burst that pauses longer costs one more reload
/// (incremental, see `crate::translate::cache`), never a wrong result.
pub const QUIET_PERIOD: Duration = Duration::from_millis(10);
/// Longest delay between the first event of a burst and the reload.
pub const MAX_DELAY: Duration = Duration::from_millis(300);

/// Editor scratch files whose changes never matter (vim swap and backup files).
const SCRATCH_SUFFIXES: [&str; 4] = [".swp", ".swx", ".swo", "~"];

/// A watched directory.
pub struct DirWatcher {
    // Dropping the watcher stops it; kept for that.
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
}

impl DirWatcher {
    /// Starts watching `dir` and everything below it.
    pub fn new(dir: &Path) -> notify::Result<DirWatcher> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| match res {
            Ok(event) if !relevant(&event) => {}
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => {
                // An overflowed queue or a failed watch: reload to be safe.
                tracing::warn!("watching manifests: {e}");
                let _ = tx.send(());
            }
        })?;
        watcher.watch(dir, RecursiveMode::Recursive)?;
        Ok(DirWatcher { _watcher: watcher, events })
    }

    /// Waits for the next burst of changes to end. `None` when the watcher has stopped.
    pub async fn changed(&mut self) -> Option<()> {
        self.events.recv().await?;
        let first = Instant::now();
        loop {
            let deadline = (Instant::now() + QUIET_PERIOD).min(first + MAX_DELAY);
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) | Err(_) => return Some(()),
            }
        }
    }
}

/// Whether an event may change what the directory holds. Opening and reading files (our own
/// reloads among them) must not count, or every reload would trigger the next.
fn relevant(event: &Event) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    event.paths.is_empty()
        || event.paths.iter().any(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
            !SCRATCH_SUFFIXES.iter().any(|s| name.ends_with(s))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};
    use std::path::PathBuf;

    #[test]
    fn relevant_events() {
        let ev = |kind, paths: &[&str]| Event {
            kind,
            paths: paths.iter().map(PathBuf::from).collect(),
            attrs: Default::default(),
        };
        let cases = [
            (
                "open is ignored",
                ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), &["/m/a.yaml"]),
                false,
            ),
            (
                "close after read is ignored",
                ev(EventKind::Access(AccessKind::Close(AccessMode::Read)), &["/m/a.yaml"]),
                false,
            ),
            (
                "close after write counts",
                ev(EventKind::Access(AccessKind::Close(AccessMode::Write)), &["/m/a.yaml"]),
                true,
            ),
            ("create counts", ev(EventKind::Create(CreateKind::File), &["/m/b.yaml"]), true),
            (
                "rename onto a manifest counts",
                ev(EventKind::Modify(ModifyKind::Name(RenameMode::Both)), &["/m/.a.yaml.tmp", "/m/a.yaml"]),
                true,
            ),
            ("vim swap file is ignored", ev(EventKind::Modify(ModifyKind::Any), &["/m/.a.yaml.swp"]), false),
            (
                "configmap data link swap counts",
                ev(EventKind::Create(CreateKind::Any), &["/m/..data_tmp"]),
                true,
            ),
            ("rescan without paths counts", ev(EventKind::Other, &[]), true),
        ];
        for (name, event, want) in cases {
            assert_eq!(relevant(&event), want, "{name}");
        }
    }

    #[tokio::test]
    async fn burst_of_writes_gives_one_tick() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut watcher = DirWatcher::new(dir.path()).expect("watch");
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("{i}.yaml")), "a: 1\n").expect("write");
        }
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(2), watcher.changed()).await.expect("tick").expect("alive");
        assert!(started.elapsed() < Duration::from_millis(500));
        // Reading the files back must not produce another tick.
        for i in 0..5 {
            std::fs::read(dir.path().join(format!("{i}.yaml"))).expect("read");
        }
        assert!(tokio::time::timeout(Duration::from_millis(200), watcher.changed()).await.is_err());
    }
}
