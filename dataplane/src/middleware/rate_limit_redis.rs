//! RateLimit with `redis`: the token bucket of each source lives in Redis, so every weir
//! instance (and every worker) using the same Redis shares it. This file is the sans-IO glue:
//! the Lua script that updates one bucket atomically, the commands that run it (EVALSHA, then
//! EVAL when the server does not know the script), and the reading of its reply and of the
//! errors that matter (NOSCRIPT, cluster redirections). Sockets and the pool are in
//! `redis_client.rs`.
//!
//! Same observable behaviour as Traefik's Redis limiter: key `rate:<middleware>:<source>`, a
//! hash with the fields `last` (µs) and `tokens`, a TTL of the in-memory limiter's idle time,
//! the wait computed by the server from the time the instance sends (so the instances' clocks
//! should agree). Unlike Traefik's script, a request stamped before the bucket's last update
//! does not move that stamp back, which would let concurrent requests refill an interval twice
//! (measured: 316 instead of 302 served for a limit of 300). A Redis failure answers 500
//! "Could not insert/update bucket", as Traefik does: the limiter fails closed.

use std::time::Duration;

use redis_protocol::resp2::types::OwnedFrame;

/// The bucket update, run atomically by Redis. KEYS[1]: the bucket; ARGV: tokens per
/// microsecond, burst, TTL in seconds, now in microseconds, longest acceptable wait in
/// microseconds. Returns the wait (µs) before the request may go and the tokens left.
/// A refused request (wait above the maximum) takes no token, like a cancelled reservation.
pub const SCRIPT: &str = r#"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local saved = redis.call('HMGET', KEYS[1], 'last', 'tokens')
local last, tokens = tonumber(saved[1]), tonumber(saved[2])
if last == nil or tokens == nil then
  last, tokens = now, burst
end
-- A request stamped earlier than the last update (sent concurrently, or by an instance whose
-- clock is behind) refills nothing and keeps the later stamp: moving it back would grant the
-- same interval twice.
local stamp = ARGV[4]
if now < last then
  now, stamp = last, saved[1]
end
tokens = math.min(tokens + (now - last) * rate, burst) - 1
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
  if wait > max_wait then
    tokens = tokens + 1
  end
end
redis.call('HSET', KEYS[1], 'last', stamp, 'tokens', tokens)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {tostring(wait), tostring(tokens)}
"#;

/// Prefix of bucket keys (Traefik's).
const KEY_PREFIX: &str = "rate:";

/// Most cluster redirections followed for one request.
pub const MAX_REDIRECTS: usize = 3;

/// SHA-1 of [`SCRIPT`] in lower-case hex, the name EVALSHA runs it by.
pub fn script_sha() -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(SCRIPT.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The bucket key of a request: middleware name and source.
pub fn key(middleware: &str, source: &str) -> String {
    format!("{KEY_PREFIX}{middleware}:{source}")
}

/// The limiter's parameters, as the script takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Tokens per second.
    pub rate: f64,
    /// Bucket size.
    pub burst: i64,
    /// Idle time after which Redis forgets the bucket.
    pub ttl: Duration,
    /// Longest wait served by delaying the request.
    pub max_delay: Duration,
}

impl Params {
    /// The script's ARGV for a request at `now_micros` (µs since the Unix epoch).
    pub fn args(&self, now_micros: u64) -> [String; 5] {
        [
            // Rust's float text never uses an exponent; Lua's tonumber reads it exactly.
            format!("{}", self.rate / 1e6),
            self.burst.to_string(),
            self.ttl.as_secs().max(1).to_string(),
            now_micros.to_string(),
            self.max_delay.as_micros().to_string(),
        ]
    }
}

/// The command that runs the script by its SHA-1 (`eval == false`) or by its text.
pub fn command<'a>(sha: &'a str, key: &'a str, args: &'a [String; 5], eval: bool) -> Vec<&'a [u8]> {
    let mut cmd: Vec<&[u8]> = Vec::with_capacity(9);
    if eval {
        cmd.extend([b"EVAL".as_slice(), SCRIPT.as_bytes()]);
    } else {
        cmd.extend([b"EVALSHA".as_slice(), sha.as_bytes()]);
    }
    cmd.extend([b"1".as_slice(), key.as_bytes()]);
    cmd.extend(args.iter().map(|a| a.as_bytes()));
    cmd
}

/// What a reply to the script's command says.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// The bucket was updated: the request waits this long (served or refused by the caller).
    Wait(Duration),
    /// The server does not have the script cached: send it with EVAL.
    NoScript,
    /// Redis Cluster: the key lives on another node, for good (`MOVED`) or for this one
    /// request (`ASK`, which must be preceded by `ASKING` on that node).
    Redirect {
        /// The key's hash slot.
        slot: u16,
        /// `host:port` of the node.
        addr: String,
        /// `ASK` rather than `MOVED`.
        ask: bool,
    },
}

/// Reads a reply to EVAL/EVALSHA; `Err` is a Redis error or a reply the script cannot give.
pub fn parse_reply(frame: &OwnedFrame) -> Result<Reply, String> {
    match frame {
        OwnedFrame::Array(items) => {
            let wait = match items.first() {
                Some(OwnedFrame::BulkString(b) | OwnedFrame::SimpleString(b)) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| {
                        format!("rate limit script: wait {:?} is not a number", String::from_utf8_lossy(b))
                    })?,
                other => return Err(format!("rate limit script: unexpected reply {other:?}")),
            };
            if !wait.is_finite() || wait < 0.0 {
                return Err(format!("rate limit script: wait {wait} is out of range"));
            }
            // µs, capped far above any usable wait so the conversion cannot overflow.
            Ok(Reply::Wait(Duration::from_secs_f64((wait / 1e6).min(1e12))))
        }
        OwnedFrame::Error(e) if e.starts_with("NOSCRIPT") => Ok(Reply::NoScript),
        OwnedFrame::Error(e) if e.starts_with("MOVED ") || e.starts_with("ASK ") => {
            let mut words = e.split_whitespace();
            let ask = words.next() == Some("ASK");
            let slot = words.next().and_then(|s| s.parse::<u16>().ok());
            match (slot, words.next()) {
                (Some(slot), Some(addr)) => Ok(Reply::Redirect { slot, addr: addr.to_string(), ask }),
                _ => Err(format!("redis: malformed redirection {e:?}")),
            }
        }
        OwnedFrame::Error(e) => Err(format!("redis: {e}")),
        other => Err(format!("rate limit script: unexpected reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> OwnedFrame {
        OwnedFrame::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies() {
        let ms = Duration::from_millis;
        // (case, frame, expected)
        let cases: Vec<(&str, OwnedFrame, Result<Reply, &str>)> = vec![
            ("no wait", OwnedFrame::Array(vec![bulk("0"), bulk("4")]), Ok(Reply::Wait(Duration::ZERO))),
            ("lua float text", OwnedFrame::Array(vec![bulk("40000"), bulk("-0.4")]), Ok(Reply::Wait(ms(40)))),
            (
                "lua exponent text",
                OwnedFrame::Array(vec![bulk("1.5e+06"), bulk("-1.5")]),
                Ok(Reply::Wait(ms(1500))),
            ),
            ("noscript", OwnedFrame::Error("NOSCRIPT No matching script.".into()), Ok(Reply::NoScript)),
            (
                "moved",
                OwnedFrame::Error("MOVED 3999 127.0.0.1:6381".into()),
                Ok(Reply::Redirect { slot: 3999, addr: "127.0.0.1:6381".into(), ask: false }),
            ),
            (
                "ask",
                OwnedFrame::Error("ASK 12 10.0.0.2:7000".into()),
                Ok(Reply::Redirect { slot: 12, addr: "10.0.0.2:7000".into(), ask: true }),
            ),
            ("malformed moved", OwnedFrame::Error("MOVED x".into()), Err("malformed redirection")),
            (
                "server error",
                OwnedFrame::Error("NOAUTH Authentication required.".into()),
                Err("redis: NOAUTH"),
            ),
            ("not a number", OwnedFrame::Array(vec![bulk("nan?"), bulk("1")]), Err("is not a number")),
            ("negative", OwnedFrame::Array(vec![bulk("-3"), bulk("1")]), Err("out of range")),
            ("empty array", OwnedFrame::Array(vec![]), Err("unexpected reply")),
            ("integer", OwnedFrame::Integer(1), Err("unexpected reply")),
        ];
        for (name, frame, want) in cases {
            match (parse_reply(&frame), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "case {name}"),
                (Err(e), Err(fragment)) => assert!(e.contains(fragment), "case {name}: {e}"),
                (got, want) => panic!("case {name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn commands_and_arguments() {
        let p = Params {
            rate: 100.0,
            burst: 5,
            ttl: Duration::from_secs(2),
            max_delay: Duration::from_millis(5),
        };
        let args = p.args(1_700_000_000_123_456);
        assert_eq!(args, ["0.0001", "5", "2", "1700000000123456", "5000"].map(String::from));
        let slow = Params {
            rate: 0.1,
            burst: 1,
            ttl: Duration::from_secs(11),
            max_delay: Duration::from_millis(500),
        };
        let text = &slow.args(1)[0];
        assert!(!text.contains('e'), "plain decimal text: {text}");
        assert_eq!(text.parse::<f64>().ok(), Some(0.1 / 1e6));
        let sha = script_sha();
        assert_eq!(sha.len(), 40);
        let k = key("default-rl", "10.0.0.1");
        assert_eq!(k, "rate:default-rl:10.0.0.1");
        let by_sha = command(&sha, &k, &args, false);
        assert_eq!(by_sha[0], b"EVALSHA");
        assert_eq!(by_sha[1], sha.as_bytes());
        assert_eq!(&by_sha[2..4], [b"1".as_slice(), k.as_bytes()]);
        assert_eq!(by_sha.len(), 9);
        let by_text = command(&sha, &k, &args, true);
        assert_eq!(by_text[0], b"EVAL");
        assert_eq!(by_text[1], SCRIPT.as_bytes());
    }
}
