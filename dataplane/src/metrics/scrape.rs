//! Gathering for a scrape: every worker registers a channel on which it answers with a copy
//! of its counters. The scraping worker asks all of them (itself included, through the same
//! path) and merges. Nothing is shared on the request path; the cost is paid per scrape.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use super::Counters;

/// How long a scrape waits for a busy worker before rendering without it.
const WORKER_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

type Ask = oneshot::Sender<Counters>;

/// Every worker's scrape channel, set once per slot as workers start (no lock).
static PEERS: [OnceLock<mpsc::UnboundedSender<Ask>>; crate::shutdown::MAX_WORKERS] =
    [const { OnceLock::new() }; crate::shutdown::MAX_WORKERS];
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// Registers the calling worker (on its runtime): a task answers scrapes with its counters.
pub fn register_worker(worker: Rc<crate::worker::Worker>) {
    let (tx, mut rx) = mpsc::unbounded::<Ask>();
    let slot = REGISTERED.fetch_add(1, Ordering::Relaxed);
    match PEERS.get(slot) {
        Some(cell) => {
            let _ = cell.set(tx);
        }
        None => tracing::error!(slot, "too many workers: this one's metrics are not scraped"),
    }
    monoio::spawn(async move {
        while let Some(reply) = rx.next().await {
            let _ = reply.send(worker.metrics.snapshot());
        }
    });
}

/// Every worker's counters, merged.
pub async fn gather() -> Counters {
    let registered = REGISTERED.load(Ordering::Relaxed).min(PEERS.len());
    let mut answers = Vec::with_capacity(registered);
    for peer in PEERS[..registered].iter().filter_map(OnceLock::get) {
        let (tx, rx) = oneshot::channel();
        if peer.unbounded_send(tx).is_ok() {
            answers.push(rx);
        }
    }
    let mut merged = Counters::default();
    for rx in answers {
        match monoio::time::timeout(WORKER_ANSWER_TIMEOUT, rx).await {
            Ok(Ok(c)) => merged.merge(&c),
            _ => tracing::warn!("a worker did not answer the metrics scrape in time"),
        }
    }
    merged
}
