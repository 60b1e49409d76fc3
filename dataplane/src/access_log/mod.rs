//! Access logs: each worker formats whole lines into its own buffer and writes the buffer with
//! one `write(2)` to its own `O_APPEND` descriptor (standard output or `accessLog.filePath`):
//! after every line when `bufferingSize` is 0 (Traefik writes synchronously then), else once
//! `bufferingSize` lines wait, and at least every 100 ms. No lock on the request path. SIGUSR1
//! makes every worker reopen its file (log rotation).

pub mod format;
pub mod subject;

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::fd::AsFd;
use std::time::Duration;

use weir_proto::observability::AccessLog;

pub use format::Entry;

/// How often a worker writes what is buffered.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Where this worker writes.
#[derive(Debug)]
enum Output {
    Stdout,
    File { path: String, file: File, reopen: u64 },
}

/// A worker's access-log writer.
#[derive(Debug, Default)]
pub struct WorkerLog {
    buf: RefCell<Vec<u8>>,
    lines: Cell<u64>,
    out: RefCell<Option<Output>>,
    count: Cell<u64>,
}

/// Traefik's filters: none set keeps everything; otherwise any one that matches keeps.
pub fn keep(config: &AccessLog, status: u16, retries: u32, duration: Duration) -> bool {
    let f = &config.filters;
    if f.status_codes.is_empty() && !f.retry_attempts && f.min_duration_ms == 0 {
        return true;
    }
    f.status_codes.iter().any(|(a, b)| (*a..=*b).contains(&status))
        || (f.retry_attempts && retries > 0)
        || (f.min_duration_ms > 0 && duration > Duration::from_millis(f.min_duration_ms))
}

fn open(path: &str) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().append(true).create(true).mode(0o664).open(path)
}

impl WorkerLog {
    /// The next request number of this worker (Traefik's RequestCount).
    pub fn next_count(&self) -> u64 {
        let n = self.count.get() + 1;
        self.count.set(n);
        n
    }

    /// Formats `entry` into the buffer (when the filters keep it) and writes when due.
    pub fn log(&self, config: &AccessLog, entry: &Entry<'_>) {
        if !keep(config, entry.status, entry.retry_attempts, entry.duration) {
            return;
        }
        format::write_line(config.format, &config.fields, entry, &mut self.buf.borrow_mut());
        let lines = self.lines.get() + 1;
        self.lines.set(lines);
        if lines >= config.buffering_size.max(1) || crate::shutdown::draining() {
            self.flush(config);
        }
    }

    /// Writes whatever is buffered, (re)opening the output when the path changed or SIGUSR1
    /// arrived since it was opened.
    pub fn flush(&self, config: &AccessLog) {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            return;
        }
        self.lines.set(0);
        let mut out = self.out.borrow_mut();
        let reopen = crate::shutdown::reopen_generation();
        let stale = match (&*out, &config.file_path) {
            (Some(Output::Stdout), None) => false,
            (Some(Output::File { path, reopen: r, .. }), Some(p)) => path != p || *r != reopen,
            _ => true,
        };
        if stale {
            *out = match &config.file_path {
                None => Some(Output::Stdout),
                Some(p) => match open(p) {
                    Ok(file) => Some(Output::File { path: p.clone(), file, reopen }),
                    Err(e) => {
                        tracing::error!(path = %p, "cannot open the access log file: {e}; lines dropped");
                        buf.clear();
                        return;
                    }
                },
            };
        }
        let result = match out.as_ref() {
            Some(Output::File { file, .. }) => write_all(file.as_fd(), &buf),
            _ => write_all(std::io::stdout().as_fd(), &buf),
        };
        if let Err(e) = result {
            tracing::warn!("access log write failed: {e}");
        }
        buf.clear();
    }
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The worker task that writes buffered lines every [`FLUSH_INTERVAL`], and at once when the
/// worker starts draining.
pub async fn flusher(worker: std::rc::Rc<crate::worker::Worker>) {
    use futures_util::FutureExt as _;
    // Fused: after the drain it stays pending and the ticks go on.
    let mut drained = std::pin::pin!(crate::shutdown::drained().fuse());
    loop {
        let tick = std::pin::pin!(monoio::time::sleep(FLUSH_INTERVAL));
        let _ = futures_util::future::select(tick, drained.as_mut()).await;
        let generation = worker.current();
        if let Some(config) = &generation.table.observability.access_log {
            worker.access_log.flush(config);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::observability::AccessLogFilters;

    #[test]
    fn filters() {
        let with = |filters: AccessLogFilters| AccessLog { filters, ..AccessLog::default() };
        let ms = Duration::from_millis;
        let cases = [
            ("no filter keeps all", with(AccessLogFilters::default()), 200, 0, ms(1), true),
            (
                "status in range",
                with(AccessLogFilters { status_codes: vec![(400, 499)], ..Default::default() }),
                404,
                0,
                ms(1),
                true,
            ),
            (
                "status out of range",
                with(AccessLogFilters { status_codes: vec![(400, 499)], ..Default::default() }),
                200,
                0,
                ms(1),
                false,
            ),
            (
                "retried",
                with(AccessLogFilters { retry_attempts: true, ..Default::default() }),
                200,
                2,
                ms(1),
                true,
            ),
            (
                "not retried",
                with(AccessLogFilters { retry_attempts: true, ..Default::default() }),
                200,
                0,
                ms(1),
                false,
            ),
            (
                "slow enough",
                with(AccessLogFilters { min_duration_ms: 10, ..Default::default() }),
                200,
                0,
                ms(11),
                true,
            ),
            (
                "too fast",
                with(AccessLogFilters { min_duration_ms: 10, ..Default::default() }),
                200,
                0,
                ms(10),
                false,
            ),
        ];
        for (name, config, status, retries, duration, want) in cases {
            assert_eq!(keep(&config, status, retries, duration), want, "case {name}");
        }
    }
}
