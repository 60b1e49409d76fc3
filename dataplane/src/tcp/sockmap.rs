//! Plain TCP passthrough moved in the kernel by the sockmap splice (`--experimental.sockmap`,
//! weir-ebpf's `Splicer`): once the server is dialled and the bytes weir read itself are
//! written to it, both sockets join the map and the kernel moves every later byte. What the
//! kernel does not do is done by one thread for the whole process, the "watcher": it waits on
//! epoll for end of input (RDHUP) or errors and propagates FIN only once every byte has reached
//! the other socket's send queue, applies the termination delay, and takes the sockets out of
//! the map before they are closed. It never reads or writes payload. When the program cannot be
//! loaded or a pair cannot join, the caller keeps its splice(2) path.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::event::{epoll, poll, PollFd, PollFlags};
use weir_ebpf::{Direction, SpliceCounters, Spliced, Splicer};

/// How often the watcher copies the program's counters for `/metrics`.
const COUNTERS_EVERY: Duration = Duration::from_millis(250);

/// How often pairs waiting for their last bytes to move are looked at again.
const DRAIN_TICK: Duration = Duration::from_millis(1);
/// epoll token of the watcher's wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// A pair handed to the watcher: duplicates of both sockets (the caller keeps its own).
struct Job {
    client: OwnedFd,
    server: OwnedFd,
    termination_delay: Option<Duration>,
    done: futures_channel::oneshot::Sender<Outcome>,
}

/// What became of a pair.
enum Outcome {
    /// The pair could not join: the caller moves the bytes itself.
    NotJoined,
    /// Both directions ended (or the pair was cut); bytes moved each way.
    Finished(u64, u64),
}

struct Handle {
    jobs: mpsc::Sender<Job>,
    wake: OwnedFd,
}

/// The program's counters as the watcher last read them: packets, bytes, redirects, drops,
/// passed, refused, refused bytes (written by the watcher, read by scrapes; no lock).
static COUNTERS: [AtomicU64; 7] = [const { AtomicU64::new(0) }; 7];

static WATCHER: OnceLock<Option<Handle>> = OnceLock::new();

/// Loads the splice program and starts the watcher (once, at start, when
/// `--experimental.sockmap` is given). On failure weir logs why once and stays on splice(2).
pub fn enable() {
    WATCHER.get_or_init(|| match start() {
        Ok(handle) => {
            tracing::info!("experimental sockmap splice enabled for plain TCP passthrough");
            Some(handle)
        }
        Err(e) => {
            tracing::warn!("--experimental.sockmap: not in use, TCP passthrough stays on splice(2): {e}");
            None
        }
    });
}

/// The splice program's counters (None when it is not in use).
pub fn counters() -> Option<SpliceCounters> {
    WATCHER.get()?.as_ref()?;
    let c = |i: usize| COUNTERS[i].load(Ordering::Relaxed);
    Some(SpliceCounters {
        packets: c(0),
        bytes: c(1),
        redirects: c(2),
        drops: c(3),
        passed: c(4),
        refused: c(5),
        refused_bytes: c(6),
    })
}

fn start() -> Result<Handle, String> {
    let splicer = Splicer::load().map_err(|e| e.to_string())?;
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| format!("epoll: {e}"))?;
    let wake = rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
    )
    .map_err(|e| format!("eventfd: {e}"))?;
    epoll::add(&epoll, &wake, epoll::EventData::new_u64(WAKE), epoll::EventFlags::IN | epoll::EventFlags::ET)
        .map_err(|e| format!("epoll: {e}"))?;
    let wake_reader = wake.try_clone().map_err(|e| format!("eventfd: {e}"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("weir-sockmap".into())
        .spawn(move || {
            Watcher { splicer, epoll, wake: wake_reader, jobs: rx, pairs: HashMap::new(), next: 0 }.run()
        })
        .map_err(|e| format!("watcher thread: {e}"))?;
    Ok(Handle { jobs: tx, wake })
}

/// Moves the bytes of a plain pair in the kernel until both directions are done; `None` when
/// the sockmap is not in use or the pair could not join (the caller then moves them itself).
/// Bytes weir read from the client must already be written to the server.
pub async fn splice(
    client: &monoio::net::TcpStream,
    server: &mut monoio::net::TcpStream,
    termination_delay: Option<Duration>,
) -> Option<(u64, u64)> {
    let handle = WATCHER.get()?.as_ref()?;
    let client_fd = weir_ebpf::duplicate(client).ok()?;
    // The verdict is handed whole queued segments: the rest of the one weir read part of (the
    // ClientHello's) and whatever came with it goes by hand first.
    let (rest, clean) = weir_ebpf::read_to_short(client_fd.as_fd()).ok()?;
    let by_hand = rest.len();
    if !rest.is_empty() {
        super::proxy::write_all(server, rest).await.ok()?;
    }
    if !clean {
        // EOF already, or a flood: splice(2) carries on from here.
        tracing::debug!(
            by_hand,
            "sockmap: client queue not emptied before the join, pair stays on splice(2)"
        );
        return None;
    }
    let client = client_fd;
    let server = weir_ebpf::duplicate(&*server).ok()?;
    let (done, result) = futures_channel::oneshot::channel();
    handle.jobs.send(Job { client, server, termination_delay, done }).ok()?;
    let _ = rustix::io::write(&handle.wake, &1u64.to_ne_bytes());
    match result.await {
        Ok(Outcome::Finished(up, down)) => Some((up, down)),
        // The watcher is gone: the pair's duplicates went with it and the sockets were left.
        Ok(Outcome::NotJoined) | Err(_) => {
            tracing::debug!("sockmap: pair not joined, it stays on splice(2)");
            None
        }
    }
}

struct Pair {
    client: OwnedFd,
    server: OwnedFd,
    spliced: Spliced,
    /// client → server (up) and server → client (down) have ended and FIN was passed on.
    up_done: bool,
    down_done: bool,
    termination_delay: Option<Duration>,
    /// When the first direction ended.
    first_done: Option<Instant>,
    /// Bytes the kernel did not pass on (see `Splicer::lost`) already reported.
    lost_reported: u64,
    /// A duplicate was reported (see `Splicer::duplicated`): once per pair.
    duplicate_reported: bool,
    done: futures_channel::oneshot::Sender<Outcome>,
}

struct Watcher {
    splicer: Splicer,
    epoll: OwnedFd,
    wake: OwnedFd,
    jobs: mpsc::Receiver<Job>,
    pairs: HashMap<u64, Pair>,
    next: u64,
}

/// What looking at a pair decided.
enum Step {
    Wait,
    /// A direction ended but bytes are still on their way, or a delay runs: look again soon.
    Soon,
    Finish,
}

impl Watcher {
    fn run(mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        let mut soon: Vec<u64> = Vec::new();
        let mut last_counters = Instant::now();
        loop {
            let tick = rustix::event::Timespec { tv_sec: 0, tv_nsec: DRAIN_TICK.as_nanos() as i64 };
            // Idle, wake at least every COUNTERS_EVERY so /metrics stays current.
            let idle = rustix::event::Timespec { tv_sec: 0, tv_nsec: COUNTERS_EVERY.as_nanos() as i64 };
            let timeout = if soon.is_empty() { Some(&idle) } else { Some(&tick) };
            events.clear();
            match epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), timeout) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::error!(
                        "sockmap watcher: epoll failed, spliced connections are left as they are: {e}"
                    );
                    return;
                }
            }
            let mut look: Vec<u64> = std::mem::take(&mut soon);
            for event in &events {
                let token = event.data.u64();
                if token == WAKE {
                    let mut buf = [0u8; 8];
                    let _ = rustix::io::read(&self.wake, &mut buf);
                } else {
                    look.push(token >> 1);
                }
            }
            while let Ok(job) = self.jobs.try_recv() {
                if let Some(id) = self.adopt(job) {
                    look.push(id);
                }
            }
            look.sort_unstable();
            look.dedup();
            for id in look {
                match self.step(id) {
                    Step::Wait => {}
                    Step::Soon => soon.push(id),
                    Step::Finish => self.finish(id),
                }
            }
            if last_counters.elapsed() >= COUNTERS_EVERY {
                last_counters = Instant::now();
                let c = self.splicer.counters();
                let values = [c.packets, c.bytes, c.redirects, c.drops, c.passed, c.refused, c.refused_bytes];
                let (passed_before, refused_before) =
                    (COUNTERS[4].load(Ordering::Relaxed), COUNTERS[5].load(Ordering::Relaxed));
                for (slot, v) in COUNTERS.iter().zip(values) {
                    slot.store(v, Ordering::Relaxed);
                }
                // Refusals are normal for a pair whose other side was reset (the kernel took
                // it out of the maps); which pairs they hit is checked below.
                if c.refused > refused_before || c.passed > passed_before {
                    tracing::debug!(
                        "sockmap: payload segments not redirected: {} refused by the kernel ({} bytes in \
                         all since start), {} left to userspace with no peer",
                        c.refused - refused_before.min(c.refused),
                        c.refused_bytes,
                        c.passed - passed_before.min(c.passed),
                    );
                }
                self.report_gaps();
            }
        }
    }

    /// Joins a new pair and watches both sockets; `None` when it could not join.
    fn adopt(&mut self, job: Job) -> Option<u64> {
        let spliced = match self.splicer.join(job.client.as_fd(), job.server.as_fd()) {
            Ok(s) => s,
            Err(weir_ebpf::EbpfError::HalfJoined) => {
                tracing::warn!(
                    "sockmap: a pair failed to join halfway; connection closed rather than risk a gap"
                );
                let _ = job.done.send(Outcome::Finished(0, 0));
                return None;
            }
            Err(e) => {
                // Typically a side whose peer already sent FIN (only ESTABLISHED sockets join).
                tracing::debug!("sockmap: pair not joined, splice(2) moves it: {e}");
                let _ = job.done.send(Outcome::NotJoined);
                return None;
            }
        };
        let id = self.next;
        self.next += 1;
        // Where the kernel took over (bytes received and consumed by hand on each side), for
        // matching a test's byte offset with a join.
        tracing::debug!(id, ?spliced, "sockmap: pair joined");
        // Edge-triggered: one wake-up per change (FIN, error, hang-up), never a busy loop on a
        // socket whose input has ended while its peer drains.
        let flags = epoll::EventFlags::RDHUP | epoll::EventFlags::ET;
        let watched = epoll::add(&self.epoll, &job.client, epoll::EventData::new_u64(id << 1), flags)
            .and_then(|()| {
                epoll::add(&self.epoll, &job.server, epoll::EventData::new_u64(id << 1 | 1), flags)
            });
        let pair = Pair {
            client: job.client,
            server: job.server,
            spliced,
            up_done: false,
            down_done: false,
            termination_delay: job.termination_delay,
            first_done: None,
            lost_reported: 0,
            duplicate_reported: false,
            done: job.done,
        };
        self.pairs.insert(id, pair);
        if let Err(e) = watched {
            tracing::warn!("sockmap: cannot watch a spliced pair, closing it: {e}");
            self.finish(id);
            return None;
        }
        Some(id)
    }

    fn step(&mut self, id: u64) -> Step {
        let Some(pair) = self.pairs.get_mut(&id) else { return Step::Wait };
        let (c, s) = (pair.client.as_fd(), pair.server.as_fd());
        let (c_flags, s_flags) = (revents(c), revents(s));
        if (c_flags | s_flags).contains(PollFlags::ERR) {
            // A reset on either side: nothing more can be delivered both ways.
            return Step::Finish;
        }
        let ended = |f: PollFlags| f.intersects(PollFlags::RDHUP | PollFlags::HUP);
        let mut pending = false;
        if !pair.up_done && ended(c_flags) {
            match pair.spliced.drained(Direction::AtoB, c, s) {
                Ok(true) => {
                    let _ = rustix::net::shutdown(s, rustix::net::Shutdown::Write);
                    pair.up_done = true;
                }
                Ok(false) => pending = true,
                Err(_) => return Step::Finish,
            }
        }
        if !pair.down_done && ended(s_flags) {
            match pair.spliced.drained(Direction::BtoA, c, s) {
                Ok(true) => {
                    let _ = rustix::net::shutdown(c, rustix::net::Shutdown::Write);
                    pair.down_done = true;
                }
                Ok(false) => pending = true,
                Err(_) => return Step::Finish,
            }
        }
        if pair.up_done && pair.down_done {
            return Step::Finish;
        }
        if pair.up_done || pair.down_done {
            let first = *pair.first_done.get_or_insert_with(Instant::now);
            if let Some(delay) = pair.termination_delay {
                // Traefik: once one side is done the other gets terminationDelay, then is cut.
                return if first.elapsed() >= delay { Step::Finish } else { Step::Soon };
            }
        }
        if pending {
            Step::Soon
        } else {
            Step::Wait
        }
    }

    /// Warns about every live pair, neither side reset, whose sockets received bytes the
    /// kernel did not pass on: its stream has a gap (the client sees bytes missing).
    fn report_gaps(&mut self) {
        let reset = |fd: BorrowedFd<'_>| revents(fd).intersects(PollFlags::ERR | PollFlags::HUP);
        for pair in self.pairs.values_mut() {
            if !pair.duplicate_reported && !reset(pair.client.as_fd()) && !reset(pair.server.as_fd()) {
                if let Ok(Some(what)) =
                    self.splicer.duplicated(&pair.spliced, pair.client.as_fd(), pair.server.as_fd())
                {
                    tracing::warn!("sockmap: a joined pair's stream has duplicated bytes: {what}");
                    pair.duplicate_reported = true;
                }
            }
            let lost = self.splicer.lost(&pair.spliced);
            if lost <= pair.lost_reported {
                continue;
            }
            if reset(pair.client.as_fd()) || reset(pair.server.as_fd()) {
                continue;
            }
            tracing::warn!(
                "sockmap: a joined pair's stream has a gap: {} bytes it received were not passed on by the \
                 kernel (redirect refused or no peer; both sides still connected)",
                lost - pair.lost_reported
            );
            pair.lost_reported = lost;
        }
    }

    fn finish(&mut self, id: u64) {
        let Some(pair) = self.pairs.remove(&id) else { return };
        if pair.up_done && pair.down_done {
            if !pair.duplicate_reported {
                if let Ok(Some(what)) =
                    self.splicer.duplicated(&pair.spliced, pair.client.as_fd(), pair.server.as_fd())
                {
                    tracing::warn!("sockmap: a joined pair's stream has duplicated bytes: {what}");
                }
            }
            // Both directions ended normally: any byte not passed on is a gap.
            let lost = self.splicer.lost(&pair.spliced);
            if lost > pair.lost_reported {
                tracing::warn!(
                    "sockmap: a joined pair's stream has a gap: {} bytes it received were not passed on \
                     by the kernel (found when it ended)",
                    lost - pair.lost_reported
                );
            }
        }
        let up = pair
            .spliced
            .progress(Direction::AtoB, pair.client.as_fd(), pair.server.as_fd())
            .map_or(0, |p| p.1);
        let down = pair
            .spliced
            .progress(Direction::BtoA, pair.client.as_fd(), pair.server.as_fd())
            .map_or(0, |p| p.1);
        let _ = epoll::delete(&self.epoll, &pair.client);
        let _ = epoll::delete(&self.epoll, &pair.server);
        self.splicer.leave(&pair.spliced);
        // Our duplicates close here; the caller closes its own once told.
        let _ = pair.done.send(Outcome::Finished(up, down));
    }
}

/// The socket's poll flags now (RDHUP, HUP, ERR), without waiting.
fn revents(fd: BorrowedFd<'_>) -> PollFlags {
    let mut fds = [PollFd::new(&fd, PollFlags::RDHUP)];
    let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    match poll(&mut fds, Some(&zero)) {
        Ok(n) if n > 0 => fds[0].revents(),
        Ok(_) => PollFlags::empty(),
        Err(_) => PollFlags::ERR,
    }
}
