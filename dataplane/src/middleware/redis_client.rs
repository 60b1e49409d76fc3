//! A small Redis client for the RateLimit middleware, on the worker's monoio runtime (no tokio
//! runtime in the data plane): RESP2 frames from the `redis-protocol` crate (sans-IO encoder and
//! decoder), a pool of connections per worker and per middleware, `AUTH`/`SELECT` when a
//! connection opens, optional TLS (rustls through monoio's poll-io bridge), go-redis's timeouts
//! (dial, read, write) and pool limits (poolSize idle connections kept, minIdleConns opened
//! ahead, maxActiveConns open at most), and Redis Cluster redirections learned per slot.
//! It runs one command at a time per connection and never pipelines.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monoio::io::poll_io::{AsyncRead, AsyncWrite, ReadBuf};
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use redis_protocol::resp2::types::{BorrowedFrame, OwnedFrame};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use weir_proto::middleware as cfg;

use super::rate_limit_redis::{self as glue, Reply};

/// go-redis's default pool size is 10 per CPU; a worker is one CPU.
const DEFAULT_POOL_SIZE: usize = 10;
/// Replies larger than this are a broken server or protocol, not a bucket.
const MAX_REPLY: usize = 64 * 1024;

/// What went wrong talking to Redis (every one answers 500, as in Traefik).
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// No connection could be made.
    #[error("redis {addr}: connect: {source}")]
    Connect {
        /// The endpoint.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// A timeout (dial, read, write or waiting for a free connection).
    #[error("redis {addr}: {what} timed out")]
    Timeout {
        /// The endpoint.
        addr: String,
        /// Which step.
        what: &'static str,
    },
    /// Reading or writing failed, or the server closed the connection.
    #[error("redis {addr}: {source}")]
    Io {
        /// The endpoint.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The server answered with an error or with something the client cannot read.
    #[error("redis {addr}: {reason}")]
    Protocol {
        /// The endpoint.
        addr: String,
        /// What it said.
        reason: String,
    },
}

impl RedisError {
    /// A broken connection worth one retry on a fresh one (a pooled connection the server
    /// closed while idle); never after a timeout, when the command may have run.
    fn is_stale(&self) -> bool {
        matches!(self, RedisError::Io { .. })
    }
}

/// The compiled `rateLimit.redis`: shared read-only by the workers.
#[derive(Debug)]
pub struct Settings {
    /// As configured (pools are rebuilt when it changes).
    pub config: cfg::RateLimitRedis,
    tls: Option<Arc<ClientConfig>>,
    dial_timeout: Duration,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// go-redis's pool timeout: the read timeout plus one second.
    pool_timeout: Duration,
    sha: String,
}

impl Settings {
    /// Compiles the configuration (TLS material included); errors name what is wrong.
    pub fn new(c: &cfg::RateLimitRedis) -> Result<Settings, String> {
        let tls = match &c.tls {
            None => None,
            Some(t) => {
                let transport =
                    crate::http::transport::Transport::build(&weir_proto::snapshot::ServersTransport {
                        insecure_skip_verify: t.insecure_skip_verify,
                        root_cas: t.root_cas.clone(),
                        certificates: t.certificate.iter().cloned().collect(),
                        disable_http2: true,
                        ..Default::default()
                    })
                    .map_err(|e| format!("redis tls: {e}"))?;
                Some(transport.http1_tls())
            }
        };
        let opt = |n: u64| (n > 0).then(|| Duration::from_nanos(n));
        let read_timeout = opt(c.read_timeout_nanos);
        Ok(Settings {
            config: c.clone(),
            tls,
            dial_timeout: opt(c.dial_timeout_nanos).unwrap_or(Duration::from_secs(5)),
            read_timeout,
            write_timeout: opt(c.write_timeout_nanos),
            pool_timeout: read_timeout.unwrap_or(Duration::from_secs(3)) + Duration::from_secs(1),
            sha: glue::script_sha(),
        })
    }
}

/// The pools of one worker, by middleware name.
#[derive(Debug, Default)]
pub struct Pools(RefCell<HashMap<String, Rc<Pool>>>);

impl Pools {
    /// The worker's pool for `middleware`, rebuilt when its configuration changed.
    pub fn get(&self, middleware: &str, settings: &Arc<Settings>) -> Rc<Pool> {
        let mut pools = self.0.borrow_mut();
        if let Some(p) = pools.get(middleware) {
            // The same compiled settings (the common case), or a new snapshot that kept them.
            if Arc::ptr_eq(&p.settings, settings) || p.settings.config == settings.config {
                return Rc::clone(p);
            }
        }
        let pool = Rc::new(Pool {
            settings: Arc::clone(settings),
            idle: RefCell::default(),
            open: Rc::new(Cell::new(0)),
            primary: Cell::new(0),
            slots: RefCell::default(),
            warmed: Cell::new(false),
        });
        pools.insert(middleware.to_string(), Rc::clone(&pool));
        pool
    }
}

/// Connections of one worker to the Redis of one middleware.
#[derive(Debug)]
pub struct Pool {
    settings: Arc<Settings>,
    idle: RefCell<Vec<Conn>>,
    /// Connections open (idle or in use).
    open: Rc<Cell<usize>>,
    /// The seed endpoint that answered last.
    primary: Cell<usize>,
    /// Cluster slots learned from MOVED.
    slots: RefCell<HashMap<u16, String>>,
    warmed: Cell<bool>,
}

impl Pool {
    /// Runs the bucket script for `key`; returns the wait before the request may go.
    pub async fn allow(self: &Rc<Self>, key: &str, params: &glue::Params) -> Result<Duration, RedisError> {
        self.warm();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros() as u64;
        let args = params.args(now);
        let slot = redis_protocol::redis_keyslot(key.as_bytes());
        let mut target = self.slots.borrow().get(&slot).cloned();
        let mut asking = false;
        for _ in 0..=glue::MAX_REDIRECTS {
            let (mut conn, reused) = self.checkout(target.as_deref()).await?;
            let mut reply = self.run(&mut conn, key, &args, asking).await;
            if reused && reply.as_ref().is_err_and(RedisError::is_stale) {
                // The server closed the idle connection: once more on a new one.
                drop(conn);
                conn = self.dial_any(target.as_deref()).await?.0;
                reply = self.run(&mut conn, key, &args, asking).await;
            }
            let reply = reply?;
            let addr = conn.addr.clone();
            self.checkin(conn);
            match glue::parse_reply(&reply).map_err(|reason| RedisError::Protocol { addr, reason })? {
                Reply::Wait(wait) => return Ok(wait),
                Reply::NoScript => {
                    let reason = "NOSCRIPT in answer to EVAL".to_string();
                    return Err(RedisError::Protocol { addr: self.primary_addr().to_string(), reason });
                }
                Reply::Redirect { slot, addr, ask } => {
                    if !ask {
                        self.slots.borrow_mut().insert(slot, addr.clone());
                    }
                    target = Some(addr);
                    asking = ask;
                }
            }
        }
        Err(RedisError::Protocol {
            addr: target.unwrap_or_default(),
            reason: format!("more than {} cluster redirections", glue::MAX_REDIRECTS),
        })
    }

    /// EVALSHA, then EVAL when the server lacks the script (`ASKING` first after an ASK).
    async fn run(
        &self,
        conn: &mut Conn,
        key: &str,
        args: &[String; 5],
        asking: bool,
    ) -> Result<OwnedFrame, RedisError> {
        let s = &self.settings;
        if asking {
            conn.call(&[b"ASKING"], s).await?;
        }
        let reply = conn.call(&glue::command(&s.sha, key, args, false), s).await?;
        if glue::parse_reply(&reply) == Ok(Reply::NoScript) {
            if asking {
                conn.call(&[b"ASKING"], s).await?;
            }
            return conn.call(&glue::command(&s.sha, key, args, true), s).await;
        }
        Ok(reply)
    }

    /// An idle connection to `target` (default: the primary seed), or a new one.
    async fn checkout(&self, target: Option<&str>) -> Result<(Conn, bool), RedisError> {
        let want = target.map(str::to_string).unwrap_or_else(|| self.primary_addr().to_string());
        let found = {
            let mut idle = self.idle.borrow_mut();
            idle.iter().rposition(|c| c.addr == want).map(|i| idle.swap_remove(i))
        };
        if let Some(conn) = found {
            return Ok((conn, true));
        }
        let max = self.settings.config.max_active_conns as usize;
        if max > 0 && self.open.get() >= max {
            // go-redis waits up to its pool timeout for a connection to come back.
            let deadline = Instant::now() + self.settings.pool_timeout;
            loop {
                monoio::time::sleep(Duration::from_millis(1)).await;
                let found = {
                    let mut idle = self.idle.borrow_mut();
                    idle.iter().rposition(|c| c.addr == want).map(|i| idle.swap_remove(i))
                };
                if let Some(conn) = found {
                    return Ok((conn, true));
                }
                if self.open.get() < max {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(RedisError::Timeout { addr: want, what: "waiting for a pooled connection" });
                }
            }
        }
        self.dial_any(target).await
    }

    fn checkin(&self, conn: Conn) {
        let size = match self.settings.config.pool_size as usize {
            0 => DEFAULT_POOL_SIZE,
            n => n,
        };
        let mut idle = self.idle.borrow_mut();
        if idle.len() < size {
            idle.push(conn);
        }
    }

    fn primary_addr(&self) -> &str {
        let seeds = &self.settings.config.endpoints;
        seeds.get(self.primary.get()).or(seeds.first()).map_or("localhost:6379", String::as_str)
    }

    /// Dials `target`, or the seed endpoints in turn starting with the one that answered last.
    async fn dial_any(&self, target: Option<&str>) -> Result<(Conn, bool), RedisError> {
        if let Some(addr) = target {
            return Ok((Conn::open(addr, &self.settings, &self.open).await?, false));
        }
        let seeds = &self.settings.config.endpoints;
        let first = self.primary.get();
        let mut last_err = None;
        for i in (0..seeds.len()).map(|k| (first + k) % seeds.len()) {
            match Conn::open(&seeds[i], &self.settings, &self.open).await {
                Ok(conn) => {
                    self.primary.set(i);
                    return Ok((conn, false));
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| RedisError::Connect {
            addr: String::new(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "no endpoints"),
        }))
    }

    /// Opens `minIdleConns` connections in the background the first time the pool is used.
    fn warm(self: &Rc<Self>) {
        let want = self.settings.config.min_idle_conns as usize;
        if want == 0 || self.warmed.replace(true) {
            return;
        }
        let pool = Rc::clone(self);
        monoio::spawn(async move {
            for _ in 0..want {
                match pool.dial_any(None).await {
                    Ok((conn, _)) => pool.checkin(conn),
                    Err(e) => {
                        tracing::debug!("redis: opening idle connections: {e}");
                        break;
                    }
                }
            }
        });
    }
}

/// The byte stream of one connection.
enum Stream {
    Plain(TcpStreamPoll),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStreamPoll>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Plain(_) => "Plain",
            Stream::Tls(_) => "Tls",
        })
    }
}

impl Stream {
    async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut rb = ReadBuf::new(buf);
            let r = match self {
                Stream::Plain(s) => Pin::new(s).poll_read(cx, &mut rb),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, &mut rb),
            };
            r.map_ok(|()| rb.filled().len())
        })
        .await
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| match self {
                Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
                Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        poll_fn(|cx| match self {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        })
        .await
    }
}

/// A place among a pool's open connections, taken before dialing (so concurrent dials count
/// against `maxActiveConns`) and given back when the connection or the failed dial is dropped.
#[derive(Debug)]
struct Slot(Rc<Cell<usize>>);

impl Slot {
    fn take(open: &Rc<Cell<usize>>) -> Slot {
        open.set(open.get() + 1);
        Slot(Rc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// One open connection.
#[derive(Debug)]
struct Conn {
    addr: String,
    stream: Stream,
    buf: Vec<u8>,
    _slot: Slot,
}

impl Conn {
    /// Connects (dial timeout), shakes hands for TLS, then `AUTH` and `SELECT` as configured.
    async fn open(addr: &str, s: &Settings, open: &Rc<Cell<usize>>) -> Result<Conn, RedisError> {
        let slot = Slot::take(open);
        let connect = |source| RedisError::Connect { addr: addr.to_string(), source };
        let timeout = || RedisError::Timeout { addr: addr.to_string(), what: "dial" };
        // A name (a Kubernetes Service) is resolved here, blocking the worker briefly; this
        // happens only when a connection is opened, not per request.
        let sock: SocketAddr = match addr.parse() {
            Ok(a) => a,
            Err(_) => addr
                .to_socket_addrs()
                .map_err(connect)?
                .next()
                .ok_or_else(|| connect(io::Error::new(io::ErrorKind::NotFound, "no address")))?,
        };
        let tcp = monoio::time::timeout(s.dial_timeout, monoio::net::TcpStream::connect(sock))
            .await
            .map_err(|_| timeout())?
            .map_err(connect)?;
        let _ = tcp.set_nodelay(true);
        let poll = tcp.try_into_poll_io().map_err(|(e, _)| connect(e))?;
        let stream = match &s.tls {
            None => Stream::Plain(poll),
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name =
                    ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                        .map_err(|e| RedisError::Protocol {
                            addr: addr.to_string(),
                            reason: format!("tls name: {e}"),
                        })?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
                let tls = monoio::time::timeout(s.dial_timeout, connector.connect(name, poll))
                    .await
                    .map_err(|_| timeout())?
                    .map_err(|e| RedisError::Protocol {
                        addr: addr.to_string(),
                        reason: format!("tls: {e}"),
                    })?;
                Stream::Tls(Box::new(tls))
            }
        };
        let mut conn = Conn { addr: addr.to_string(), stream, buf: Vec::with_capacity(256), _slot: slot };
        let c = &s.config;
        if !c.password.is_empty() {
            let auth: Vec<&[u8]> = if c.username.is_empty() {
                vec![b"AUTH", c.password.as_bytes()]
            } else {
                vec![b"AUTH", c.username.as_bytes(), c.password.as_bytes()]
            };
            conn.expect_ok(&auth, s).await?;
        }
        if c.db != 0 {
            let db = c.db.to_string();
            conn.expect_ok(&[b"SELECT", db.as_bytes()], s).await?;
        }
        Ok(conn)
    }

    async fn expect_ok(&mut self, cmd: &[&[u8]], s: &Settings) -> Result<(), RedisError> {
        match self.call(cmd, s).await? {
            OwnedFrame::Error(e) => {
                let verb = String::from_utf8_lossy(cmd[0]);
                Err(RedisError::Protocol { addr: self.addr.clone(), reason: format!("{verb}: {e}") })
            }
            _ => Ok(()),
        }
    }

    /// Sends one command and reads its reply (a Redis error reply is `Ok(Error)`).
    async fn call(&mut self, cmd: &[&[u8]], s: &Settings) -> Result<OwnedFrame, RedisError> {
        let parts: Vec<BorrowedFrame<'_>> = cmd.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
        let frame = BorrowedFrame::Array(&parts);
        let mut out = vec![0; frame.encode_len(false)];
        redis_protocol::resp2::encode::encode_borrowed(&mut out, &frame, false)
            .map_err(|e| RedisError::Protocol { addr: self.addr.clone(), reason: e.to_string() })?;
        let io_err = |addr: &str, source| RedisError::Io { addr: addr.to_string(), source };
        match s.write_timeout {
            Some(t) => monoio::time::timeout(t, self.stream.write_all(&out))
                .await
                .map_err(|_| RedisError::Timeout { addr: self.addr.clone(), what: "write" })?,
            None => self.stream.write_all(&out).await,
        }
        .map_err(|e| io_err(&self.addr, e))?;
        let deadline = s.read_timeout.map(|t| Instant::now() + t);
        loop {
            match redis_protocol::resp2::decode::decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    self.buf.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(RedisError::Protocol { addr: self.addr.clone(), reason: e.to_string() })
                }
            }
            if self.buf.len() > MAX_REPLY {
                return Err(RedisError::Protocol {
                    addr: self.addr.clone(),
                    reason: "reply too large".into(),
                });
            }
            let mut chunk = [0u8; 512];
            let read = self.stream.read_some(&mut chunk);
            let n = match deadline {
                Some(d) => monoio::time::timeout(d.saturating_duration_since(Instant::now()), read)
                    .await
                    .map_err(|_| RedisError::Timeout { addr: self.addr.clone(), what: "read" })?,
                None => read.await,
            }
            .map_err(|e| io_err(&self.addr, e))?;
            if n == 0 {
                return Err(io_err(&self.addr, io::ErrorKind::UnexpectedEof.into()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::rate_limit::{Decision, RateLimit};

    const PASSWORD: &str = "unit-s3cret";

    /// A `redis-server` on a free loopback port, killed on drop; `None` (said loudly) when it
    /// is not installed and CI is not set.
    struct Server(std::process::Child, u16);

    impl Server {
        fn start() -> Option<Server> {
            Server::start_with(|port| vec!["--port".into(), port.to_string()])
        }

        /// Starts with the listening arguments `listen(port)` gives.
        fn start_with(listen: impl Fn(u16) -> Vec<String>) -> Option<Server> {
            let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).ok()?.port();
            let spawned = std::process::Command::new("redis-server")
                .args(listen(port))
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--requirepass", PASSWORD])
                .stdout(std::process::Stdio::null())
                .spawn();
            let child = match spawned {
                Ok(c) => c,
                Err(e) if std::env::var_os("CI").is_none() => {
                    eprintln!("SKIPPED: redis-server cannot be started ({e})");
                    return None;
                }
                Err(e) => panic!("redis-server is required under CI: {e}"),
            };
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
                std::thread::sleep(Duration::from_millis(10));
            }
            Some(Server(child, port))
        }

        fn config(&self, password: &str) -> cfg::RateLimitRedis {
            config(self.1, password)
        }
    }

    fn config(port: u16, password: &str) -> cfg::RateLimitRedis {
        cfg::RateLimitRedis {
            endpoints: vec![format!("127.0.0.1:{port}")],
            username: "default".into(),
            password: password.into(),
            db: 2,
            tls: None,
            pool_size: 1,
            min_idle_conns: 0,
            max_active_conns: 0,
            read_timeout_nanos: 2_000_000_000,
            write_timeout_nanos: 2_000_000_000,
            dial_timeout_nanos: 1_000_000_000,
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut rt =
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().expect("runtime");
        rt.block_on(f)
    }

    fn limiter(average: i64, period_ms: u64, burst: i64) -> RateLimit {
        let c = cfg::RateLimit {
            average,
            period_nanos: period_ms * 1_000_000,
            burst,
            source: cfg::SourceCriterion::RequestHost,
            redis: None,
        };
        RateLimit::new("unit", &c).expect("valid limiter")
    }

    fn rounded(d: Decision) -> (bool, u64) {
        match d {
            Decision::After(w) => (true, w.as_micros() as u64),
            Decision::Refuse(w) => (false, w.as_micros() as u64),
        }
    }

    /// The script takes the same decisions as the in-memory limiter (Traefik's
    /// `golang.org/x/time/rate` reservation), request by request, including out-of-order stamps.
    #[test]
    fn script_decides_like_the_in_memory_limiter() {
        let Some(server) = Server::start() else { return };
        // (case, average, period ms, burst, request times in ms)
        let cases: [(&str, i64, u64, i64, &[u64]); 6] = [
            ("burst then refuse", 1, 1000, 2, &[0, 0, 0, 0]),
            ("refill after a period", 1, 1000, 1, &[0, 1000, 1500, 2000]),
            ("short wait is a delay", 10, 1000, 1, &[0, 60, 100, 101, 102]),
            ("slow rate waits up to 500ms", 1, 2000, 1, &[0, 1600, 1700, 5000]),
            ("fast rate", 1000, 1000, 5, &[0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 3, 10]),
            ("idle bucket is full again", 5, 1000, 3, &[0, 0, 0, 0, 4000, 4000, 4000, 4000]),
        ];
        let settings = Settings::new(&server.config(PASSWORD)).expect("settings");
        block_on(async {
            let open = Rc::new(Cell::new(0));
            let mut conn =
                Conn::open(&settings.config.endpoints[0], &settings, &open).await.expect("connect");
            let base_us = 1_700_000_000_000_000u64;
            for (name, average, period, burst, times) in cases {
                let l = limiter(average, period, burst);
                let params = l.redis_params();
                let key = glue::key("unit", name);
                let start = Instant::now();
                let mut bucket = l.new_bucket(start);
                for (i, t) in times.iter().enumerate() {
                    let want = rounded(l.reserve(&mut bucket, start + Duration::from_millis(*t)));
                    let args = params.args(base_us + t * 1000);
                    let reply = conn.call(&glue::command(&settings.sha, &key, &args, true), &settings).await;
                    let wait = match glue::parse_reply(&reply.expect("reply")) {
                        Ok(Reply::Wait(w)) => w,
                        other => panic!("case {name}: {other:?}"),
                    };
                    let got = rounded(l.judge(wait));
                    assert_eq!(got.0, want.0, "case {name}, request {i}: served?");
                    assert!(got.1.abs_diff(want.1) <= 1, "case {name}, request {i}: {got:?} vs {want:?}");
                }
            }
            // A stamp older than the bucket's last update refills nothing.
            let l = limiter(1, 1000, 1);
            let key = glue::key("unit", "late stamp");
            let mut waits = Vec::new();
            for t in [5000u64, 4000, 5000] {
                let args = l.redis_params().args(base_us + t * 1000);
                let reply = conn.call(&glue::command(&settings.sha, &key, &args, true), &settings).await;
                waits.push(glue::parse_reply(&reply.expect("reply")).expect("reply"));
            }
            let secs = |s: u64| Reply::Wait(Duration::from_secs(s));
            assert_eq!(waits, [secs(0), secs(1), secs(1)]);
        });
    }

    #[test]
    fn pool_authenticates_selects_and_reports_failures() {
        let Some(server) = Server::start() else { return };
        let params = limiter(1, 60_000, 2).redis_params();
        block_on(async {
            let pools = Pools::default();
            let settings = Arc::new(Settings::new(&server.config(PASSWORD)).expect("settings"));
            let pool = pools.get("m", &settings);
            // (case, expected wait in whole seconds)
            for (case, want) in
                [("first token (EVALSHA, then EVAL)", 0), ("burst", 0), ("empty: one token a minute", 60)]
            {
                let wait = pool.allow("rate:m:k", &params).await.expect(case);
                assert_eq!(wait.as_secs_f64().round() as u64, want, "case {case}");
            }
            assert_eq!(pool.idle.borrow().len(), 1, "the connection went back to the pool");
            assert_eq!(pool.open.get(), 1);
            assert!(Rc::ptr_eq(&pool, &pools.get("m", &settings)), "same configuration, same pool");

            let wrong = Arc::new(Settings::new(&server.config("nope")).expect("settings"));
            let err = pools.get("m", &wrong).allow("rate:m:k", &params).await.expect_err("wrong password");
            assert!(err.to_string().contains("AUTH"), "{err}");
        });
        let port = server.1;
        drop(server);
        block_on(async {
            let settings = Settings::new(&config(port, PASSWORD)).expect("settings");
            let pool = Pools::default().get("m", &Arc::new(settings));
            let err = pool.allow("rate:m:k", &params).await.expect_err("redis down");
            assert!(matches!(err, RedisError::Connect { .. }), "{err}");
        });
    }

    #[test]
    fn tls_with_client_certificates() {
        let dir = std::env::temp_dir().join(format!("weir-redis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "redis test CA");
        let ca_pem = ca_params.self_signed(&ca_key).expect("CA cert").pem();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = |names: &[&str]| {
            let key = rcgen::KeyPair::generate().expect("key");
            let params =
                rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                    .expect("params");
            (params.signed_by(&key, &issuer).expect("leaf").pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(&["127.0.0.1"]);
        let client = leaf(&["weir"]);
        let write = |name: &str, body: &str| {
            let p = dir.join(name);
            std::fs::write(&p, body).expect("write pem");
            p.to_string_lossy().into_owned()
        };
        let files =
            [write("ca.pem", &ca_pem), write("cert.pem", &server_cert), write("key.pem", &server_key)];
        let server = Server::start_with(|port| {
            let mut a: Vec<String> = vec!["--port".into(), "0".into(), "--tls-port".into(), port.to_string()];
            for (flag, file) in ["--tls-ca-cert-file", "--tls-cert-file", "--tls-key-file"].iter().zip(&files)
            {
                a.extend([flag.to_string(), file.clone()]);
            }
            a.extend(["--tls-auth-clients".into(), "yes".into()]);
            a
        });
        let _ = std::fs::remove_dir_all(&dir);
        let Some(server) = server else { return };
        let params = limiter(10, 1000, 1).redis_params();
        // (case, trusted CAs, client certificate, insecureSkipVerify, served)
        let cases = [
            ("trusted CA and client certificate", vec![ca_pem.clone()], Some(client.clone()), false, true),
            ("no client certificate", vec![ca_pem.clone()], None, false, false),
            ("server not trusted", vec![], Some(client.clone()), false, false),
            ("insecureSkipVerify", vec![], Some(client.clone()), true, true),
        ];
        for (name, root_cas, certificate, insecure_skip_verify, served) in cases {
            let mut c = server.config(PASSWORD);
            c.tls = Some(cfg::RateLimitRedisTls { root_cas, certificate, insecure_skip_verify });
            let settings = Arc::new(Settings::new(&c).expect("settings"));
            let got =
                block_on(async { Pools::default().get("m", &settings).allow("rate:m:tls", &params).await });
            assert_eq!(got.is_ok(), served, "case {name}: {got:?}");
        }
    }

    #[test]
    fn max_active_conns_makes_requests_wait_for_a_connection() {
        let Some(server) = Server::start() else { return };
        let params = limiter(1000, 1000, 100).redis_params();
        // (case, maxActiveConns, poolSize, most connections seen open)
        let cases = [("capped at one", 1, 1, 1), ("no cap", 0, 4, 4)];
        for (name, max_active_conns, pool_size, most) in cases {
            let mut c = server.config(PASSWORD);
            c.max_active_conns = max_active_conns;
            c.pool_size = pool_size;
            let settings = Arc::new(Settings::new(&c).expect("settings"));
            let pool = Pools::default().get("m", &settings);
            let peak = Rc::new(Cell::new(0));
            block_on(async {
                let calls = (0..4).map(|_| {
                    let (pool, peak, params) = (Rc::clone(&pool), Rc::clone(&peak), params.clone());
                    monoio::spawn(async move {
                        let r = pool.allow("rate:m:cap", &params).await;
                        peak.set(peak.get().max(pool.open.get()));
                        r
                    })
                });
                let calls: Vec<_> = calls.collect();
                for call in calls {
                    call.await.expect("served");
                }
            });
            assert_eq!(peak.get(), most, "case {name}");
            assert!(pool.idle.borrow().len() <= pool_size as usize, "case {name}");
        }
    }

    /// A stand-in for a cluster node that does not own the key: AUTH and SELECT succeed, every
    /// other command is redirected to `to` with `kind` (MOVED or ASK). Returns its address and
    /// the count of redirected commands.
    fn redirecting_node(
        kind: &'static str,
        slot: u16,
        to: u16,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let redirected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&redirected);
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let count = Arc::clone(&count);
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n @ 1..) = s.read(&mut chunk) {
                        buf.extend_from_slice(&chunk[..n]);
                        while let Ok(Some((frame, used))) = redis_protocol::resp2::decode::decode(&buf) {
                            buf.drain(..used);
                            let verb = match &frame {
                                OwnedFrame::Array(items) => match items.first() {
                                    Some(OwnedFrame::BulkString(v)) => v.to_ascii_uppercase(),
                                    _ => Vec::new(),
                                },
                                _ => Vec::new(),
                            };
                            let answer = if verb == b"AUTH" || verb == b"SELECT" {
                                "+OK\r\n".to_string()
                            } else {
                                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                format!("-{kind} {slot} 127.0.0.1:{to}\r\n")
                            };
                            if s.write_all(answer.as_bytes()).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, redirected)
    }

    #[test]
    fn cluster_redirections_are_followed() {
        let Some(server) = Server::start() else { return };
        let params = limiter(10, 1000, 5).redis_params();
        let key = "rate:m:moved";
        let slot = redis_protocol::redis_keyslot(key.as_bytes());
        // (case, redirection, redirected commands after two requests: MOVED is learned, ASK is not)
        for (case, kind, redirected) in [("moved", "MOVED", 1), ("ask", "ASK", 2)] {
            let (node, count) = redirecting_node(kind, slot, server.1);
            let mut c = server.config(PASSWORD);
            c.endpoints = vec![node];
            let settings = Arc::new(Settings::new(&c).expect("settings"));
            let pool = Pools::default().get("m", &settings);
            block_on(async {
                for _ in 0..2 {
                    let wait = pool.allow(key, &params).await.expect(case);
                    assert_eq!(wait, Duration::ZERO, "case {case}");
                }
            });
            assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), redirected, "case {case}");
        }
    }
}
