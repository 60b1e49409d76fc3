//! W4 end to end: RateLimit with `redis` through two real weir instances and a real
//! `redis-server` on a random loopback port — the instances share one bucket per source (the
//! total let through holds to the limit however the requests spread over instances and
//! workers), the bucket lives in the selected database behind the Secret's credentials, and a
//! Redis that is down or refuses the credentials answers 500 "Could not insert/update bucket"
//! (Traefik's behaviour), then recovers when Redis is back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::{free_port, service_yaml, Conn, Response, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);
const PASSWORD: &str = "w4-s3cret";

/// A `redis-server` on 127.0.0.1, killed (by pid) on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts redis-server on `port` with a password and nothing persisted; `None` (said
    /// loudly) when it is not installed and CI is not set.
    fn start(port: u16) -> Option<Redis> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", PASSWORD])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("SKIPPED: redis-server cannot be started ({e}); .ci/run installs it");
                return None;
            }
            Err(e) => panic!("redis-server is required under CI: {e}"),
        };
        let redis = Redis { child, port };
        let start = Instant::now();
        while redis.command("PING").is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not come up on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    /// Sends inline commands (after AUTH) on a new connection; the raw RESP replies to them.
    fn command(&self, lines: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(format!("AUTH {PASSWORD}\r\n{lines}\r\n").as_bytes())?;
        let mut r = BufReader::new(s);
        let mut auth = String::new();
        r.read_line(&mut auth)?;
        if auth.trim_end() != "+OK" {
            return Err(std::io::Error::other(format!("AUTH: {auth}")));
        }
        // The replies read here are small and come at once.
        std::thread::sleep(Duration::from_millis(30));
        let mut reply = [0u8; 4096];
        let n = r.read(&mut reply)?;
        Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Manifests: the credentials Secret, a RateLimit kept in Redis (database 3) by request host,
/// a route through it and a route without middleware.
fn manifests(
    redis_port: u16,
    password: &str,
    (average, period): (u32, &str),
    backend: &Whoami,
) -> Vec<(&'static str, String)> {
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: redis-creds, namespace: apps}}\nstringData: {{username: default, password: {password}}}\n"
    );
    let mw = format!(
        "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: shared, namespace: apps}}\nspec:\n  rateLimit:\n    average: {average}\n    period: {period}\n    burst: 1\n    sourceCriterion: {{requestHost: true}}\n    redis: {{endpoints: ['127.0.0.1:{redis_port}'], secret: redis-creds, db: 3, readTimeout: 1s, dialTimeout: 1s}}\n"
    );
    let ir = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: rl, namespace: apps}\nspec:\n  entryPoints: [web]\n  routes:\n    - match: Host(`limited.test`)\n      services: [{name: whoami, port: 80}]\n      middlewares: [{name: shared}]\n    - match: Host(`ready.test`)\n      services: [{name: whoami, port: 80}]\n".to_string();
    vec![
        ("svc.yaml", service_yaml("apps", "whoami", 80, "http", &[backend.addr])),
        ("secret.yaml", secret),
        ("mw.yaml", mw),
        ("ir.yaml", ir),
    ]
}

fn start_weir(files: &[(&'static str, String)]) -> Weir {
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (*n, b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
    weir
}

fn get(weir: &Weir, host: &str) -> Response {
    Conn::open(weir.port).and_then(|mut c| c.get(host, "/", &[("Connection", "close")])).expect("request")
}

#[test]
fn two_instances_share_one_bucket_per_source() {
    let Some(redis) = Redis::start(free_port()) else { return };
    let backend = Whoami::start("w");
    const AVERAGE: u64 = 50;
    let files = manifests(redis.port, PASSWORD, (AVERAGE as u32, "1s"), &backend);
    let weirs = [start_weir(&files), start_weir(&files)];
    // Both instances have the route (not 404) before the measurement starts.
    for w in &weirs {
        w.wait_for("limited.test", "/", READY, |r| r.status == 200 || r.status == 429);
    }
    std::thread::sleep(Duration::from_secs(1));

    // 8 keep-alive clients, alternating between the instances (each with 2 workers), for 6 s.
    const SECONDS: u64 = 6;
    let ports = [weirs[0].port, weirs[1].port];
    let served: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let refused: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let other = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(SECONDS);
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (served, refused, other) = (Arc::clone(&served), Arc::clone(&refused), Arc::clone(&other));
            let which = i % 2;
            let port = ports[which];
            std::thread::spawn(move || {
                let mut conn = Conn::open(port).ok();
                while Instant::now() < end {
                    let Some(c) = conn.as_mut() else {
                        conn = Conn::open(port).ok();
                        continue;
                    };
                    match c.get("limited.test", "/", &[]) {
                        Ok(r) if r.status == 200 => served[which].fetch_add(1, Ordering::Relaxed),
                        Ok(r) if r.status == 429 => {
                            assert_eq!(r.text(), "Too Many Requests");
                            assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
                            assert!(r.header("x-retry-in").is_some_and(|v| v.ends_with("ms")), "{r:?}");
                            refused[which].fetch_add(1, Ordering::Relaxed)
                        }
                        Ok(_) => other.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            conn = None;
                            0
                        }
                    };
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    let served: Vec<u64> = served.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let refused: Vec<u64> = refused.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let total = served[0] + served[1];
    let want = AVERAGE * SECONDS;
    eprintln!("redis rate limit: served {served:?} refused {refused:?} (limit {want} over {SECONDS}s)");
    assert_eq!(other.load(Ordering::Relaxed), 0, "only 200 and 429 are expected");
    assert!(refused[0] > 0 && refused[1] > 0, "both instances were over the limit: {refused:?}");
    // One shared bucket: the total holds to the limit (± 10 %), not to a multiple of it.
    assert!(
        (want * 9 / 10..=want * 11 / 10).contains(&total),
        "served {total} ({served:?}) for a shared limit of {want}\n--- log ---\n{}",
        weirs[0].log()
    );
    assert!(served[0] > want / 10 && served[1] > want / 10, "both instances served: {served:?}");

    // The bucket is a hash in database 3 with a TTL; database 0 holds nothing.
    let db3 = redis.command("SELECT 3\r\nKEYS rate:*\r\nTTL rate:apps-shared:limited.test").expect("db 3");
    assert!(db3.contains("rate:apps-shared:limited.test"), "{db3:?}");
    assert!(db3.trim_end().ends_with(":1") || db3.trim_end().ends_with(":2"), "TTL of 2 s: {db3:?}");
    let db0 = redis.command("KEYS rate:*").expect("keys in db 0");
    assert_eq!(db0.trim_end(), "*0", "nothing in database 0");
}

#[test]
fn redis_failures_answer_500_and_recover() {
    let port = free_port();
    let Some(redis) = Redis::start(port) else { return };
    let backend = Whoami::start("w");
    // A slow rate: one request per 10 s, so a second one is refused and the status says
    // which path answered.
    let weir = start_weir(&manifests(port, PASSWORD, (1, "10s"), &backend));
    weir.wait_for("limited.test", "/", READY, |r| r.status == 200 || r.status == 429);

    // (case, what happens to Redis first, expected status)
    let cases = [
        ("buckets and script cache flushed: EVAL after NOSCRIPT", "FLUSHALL\r\nSCRIPT FLUSH", 200),
        ("second request within the period", "", 429),
        ("redis down", "stop", 500),
    ];
    let mut redis = Some(redis);
    for (name, action, status) in cases {
        match action {
            "" => {}
            "stop" => {
                drop(redis.take());
                std::thread::sleep(Duration::from_millis(100));
            }
            cmd => {
                redis.as_ref().expect("redis running").command(cmd).expect("redis command");
            }
        }
        let r = get(&weir, "limited.test");
        assert_eq!(r.status, status, "case {name}: {r:?}\n--- log ---\n{}", weir.log());
        if status == 429 {
            assert_eq!(r.header("retry-after"), Some("10"), "case {name}: {r:?}");
        }
        if status == 500 {
            assert_eq!(r.text(), "Could not insert/update bucket\n", "case {name}");
            assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"), "case {name}");
        }
    }
    // Routes without the middleware are not affected.
    assert_eq!(get(&weir, "ready.test").status, 200);

    // Redis back on the same port (empty: new buckets, no script cached): served again.
    let redis = Redis::start(port).expect("redis restarts");
    weir.wait_for("limited.test", "/", Duration::from_secs(10), |r| r.status == 200);
    assert!(redis
        .command("SELECT 3\r\nKEYS rate:*")
        .expect("keys")
        .contains("rate:apps-shared:limited.test"));
}

#[test]
fn wrong_credentials_answer_500() {
    let Some(redis) = Redis::start(free_port()) else { return };
    let backend = Whoami::start("w");
    let weir = start_weir(&manifests(redis.port, "not-the-password", (10, "1s"), &backend));
    let r = weir.wait_for("limited.test", "/", READY, |r| r.status != 404);
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.text(), "Could not insert/update bucket\n");
    assert!(weir.log().contains("AUTH"), "the log says why\n{}", weir.log());
}
