//! Active health checks (Traefik's `healthCheck`), one checker per server for the whole data
//! plane — not per worker. The checks run on one dedicated thread (`weir-health`) with its own
//! monoio runtime; each server's health is published to the workers through an
//! `Arc<AtomicBool>` that the compiled table holds and the load balancer reads (one relaxed
//! load) at pick time: no lock and no message on the request path.
//!
//! Flags are kept by (service name, server URL) across snapshots, so a server that is down
//! stays down when an unrelated change arrives, and comes back on its own schedule. That
//! registry belongs to the thread that builds tables (the data plane's control thread), so it
//! needs no lock.

pub mod check;
pub mod state;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_channel::{mpsc, oneshot};
use futures_util::StreamExt;

use crate::service::compiled::HealthTarget;
use state::HealthState;

type Key = (String, String);

thread_local! {
    static FLAGS: RefCell<HashMap<Key, Arc<AtomicBool>>> = RefCell::default();
}

/// The persistent health flag of a health-checked server (up when first seen). Called while
/// a table is built, on the control thread.
pub fn flag(service: &str, url: &str) -> Arc<AtomicBool> {
    FLAGS.with_borrow_mut(|flags| {
        Arc::clone(
            flags
                .entry((service.to_string(), url.to_string()))
                .or_insert_with(|| Arc::new(AtomicBool::new(true))),
        )
    })
}

/// Hands the servers to check for the table now served to the checker thread (started on
/// first use). Servers no longer listed stop being checked and forget their state.
pub fn publish(targets: &[HealthTarget]) {
    static CHECKER: OnceLock<Option<mpsc::UnboundedSender<Vec<HealthTarget>>>> = OnceLock::new();
    FLAGS.with_borrow_mut(|flags| flags.retain(|k, _| targets.iter().any(|t| t.key == *k)));
    let tx = CHECKER.get_or_init(|| {
        let (tx, rx) = mpsc::unbounded();
        let started = std::thread::Builder::new().name("weir-health".into()).spawn(move || {
            match monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build() {
                Ok(mut rt) => rt.block_on(run(rx)),
                Err(e) => tracing::error!("health checker cannot start its runtime: {e}"),
            }
        });
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::error!("cannot start the health checker: {e}");
                None
            }
        }
    });
    if let Some(tx) = tx {
        let _ = tx.unbounded_send(targets.to_vec());
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Vec<HealthTarget>>) {
    // Per server: what it was started with (to restart it when that changes) and its stop.
    let mut running: HashMap<Key, (String, oneshot::Sender<()>)> = HashMap::new();
    while let Some(targets) = rx.next().await {
        let mut next = HashMap::with_capacity(targets.len());
        for target in targets {
            let fingerprint = format!(
                "{:?}|{:?}|{:?}|{}",
                target.check, target.address, target.scheme, target.transport.name
            );
            match running.remove(&target.key) {
                Some((old, stop)) if old == fingerprint && !stop.is_canceled() => {
                    next.insert(target.key.clone(), (old, stop));
                }
                _ => {
                    let (stop_tx, stop_rx) = oneshot::channel();
                    next.insert(target.key.clone(), (fingerprint, stop_tx));
                    monoio::spawn(watch(target, stop_rx));
                }
            }
        }
        // Dropping the senders left in `running` stops those checkers.
        running = next;
    }
}

/// Checks one server until told to stop.
async fn watch(target: HealthTarget, stop: oneshot::Receiver<()>) {
    let ms = Duration::from_millis;
    let mut state = HealthState::new(
        Instant::now(),
        target.flag.load(Ordering::Relaxed),
        ms(target.check.interval_ms),
        ms(target.check.unhealthy_interval_ms),
    );
    let checks = async {
        loop {
            monoio::time::sleep_until(state.next_check().into()).await;
            let ok = check::run(&target).await;
            if let Some(up) = state.record(Instant::now(), ok) {
                target.flag.store(up, Ordering::Relaxed);
                let (service, url) = &target.key;
                if up {
                    tracing::info!(%service, %url, "server is healthy again");
                } else {
                    tracing::warn!(%service, %url, "server failed its health check; no longer receives requests");
                }
            }
        }
    };
    futures_util::future::select(std::pin::pin!(checks), stop).await;
}
