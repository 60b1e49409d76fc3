//! Traefik's DigestAuth (go-http-auth, MD5, `qop="auth"`): a request without valid digest
//! credentials gets **401** with `WWW-Authenticate: Digest realm="…", nonce="…", opaque="…",
//! algorithm=MD5, qop="auth"` (plus `stale=true` for an unknown nonce or a replayed nonce
//! count), `text/plain` and `401 Unauthorized\n`. On success the user goes to `headerField`
//! and `removeHeader` drops `Authorization`, as BasicAuth does.
//!
//! Nonces are stateless — a timestamp and a keyed SHA-256 tag made with a key drawn when the
//! snapshot applied — so a nonce issued by one worker is accepted by every other; each worker
//! only remembers the last nonce count per nonce to refuse replays (go-http-auth keeps one
//! table per process).

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use md5::{Digest, Md5};
use sha2::Sha256;

use weir_proto::middleware as cfg;

use super::{Exchange, Outcome};
use crate::http::Body;

/// Remembered nonce counts per worker before the table is reset.
const MAX_CLIENTS: usize = 1100;

/// Nonce counts seen on this worker, by (middleware opaque, nonce).
pub type NonceCounts = RefCell<HashMap<(String, String), u64>>;

/// A compiled DigestAuth.
pub struct DigestAuth {
    users: HashMap<(String, String), String>,
    realm: String,
    key: [u8; 32],
    opaque: String,
    remove_header: bool,
    header_field: Option<HeaderName>,
}

impl std::fmt::Debug for DigestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestAuth").field("realm", &self.realm).field("users", &self.users.len()).finish()
    }
}

/// Why credentials were refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// Missing or wrong.
    Invalid,
    /// Right, but with a nonce this server does not know (or a replayed count).
    Stale,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

impl DigestAuth {
    /// Compiles the user table and draws the nonce key and opaque value.
    pub fn new(c: &cfg::DigestAuth) -> Result<DigestAuth, String> {
        let mut random = [0u8; 48];
        rustls::crypto::aws_lc_rs::default_provider()
            .secure_random
            .fill(&mut random)
            .map_err(|_| "no randomness for digest nonces".to_string())?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&random[..32]);
        let header_field = match c.header_field.as_str() {
            "" => None,
            f => Some(HeaderName::from_bytes(f.as_bytes()).map_err(|e| e.to_string())?),
        };
        Ok(DigestAuth {
            users: c.users.iter().map(|(u, r, h)| ((u.clone(), r.clone()), h.clone())).collect(),
            realm: c.realm.clone(),
            key,
            opaque: hex(&random[32..]),
            remove_header: c.remove_header,
            header_field,
        })
    }

    fn tag(&self, stamp: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(stamp.as_bytes());
        hex(&h.finalize()[..12])
    }

    /// A fresh nonce.
    pub fn nonce(&self) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let stamp = format!("{:x}", now.as_nanos());
        format!("{stamp}{}", self.tag(&stamp))
    }

    fn nonce_ok(&self, nonce: &str) -> bool {
        // The tag is the last 24 hex digits.
        nonce.len() > 24 && nonce.is_char_boundary(nonce.len() - 24) && {
            let (stamp, tag) = nonce.split_at(nonce.len() - 24);
            self.tag(stamp) == tag
        }
    }

    /// go-http-auth's `CheckAuth`: the user, or why not.
    pub fn check(
        &self,
        method: &Method,
        request_uri: &str,
        path: &str,
        headers: &HeaderMap,
        counts: &NonceCounts,
    ) -> Result<String, Refusal> {
        let value =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(Refusal::Invalid)?;
        let params = value.strip_prefix("Digest ").map(parse_pairs).ok_or(Refusal::Invalid)?;
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let algorithm = params.get("algorithm").map_or("MD5", String::as_str);
        if get("opaque") != self.opaque || algorithm != "MD5" || get("qop") != "auth" {
            return Err(Refusal::Invalid);
        }
        let uri = get("uri");
        if uri != request_uri {
            // go-http-auth also accepts a path prefix of the request's path.
            let upath = uri.split('?').next().unwrap_or("");
            if upath.len() > path.len() || !path.starts_with(upath) {
                return Err(Refusal::Invalid);
            }
        }
        let user = get("username");
        let ha1 = self.users.get(&(user.to_string(), self.realm.clone())).map_or("", String::as_str);
        let ha2 = md5_hex(&format!("{}:{uri}", method.as_str()));
        let kd = md5_hex(&[ha1, get("nonce"), get("nc"), get("cnonce"), get("qop"), &ha2].join(":"));
        if ha1.is_empty() || kd.as_bytes() != get("response").as_bytes() {
            return Err(Refusal::Invalid);
        }
        let nc = u64::from_str_radix(get("nc"), 16).map_err(|_| Refusal::Invalid)?;
        if !self.nonce_ok(get("nonce")) {
            return Err(Refusal::Stale);
        }
        let mut counts = counts.borrow_mut();
        if counts.len() >= MAX_CLIENTS {
            counts.clear();
        }
        let seen = counts.entry((self.opaque.clone(), get("nonce").to_string())).or_insert(0);
        if *seen != 0 && *seen >= nc {
            return Err(Refusal::Stale);
        }
        *seen = nc;
        Ok(user.to_string())
    }

    /// Request side.
    pub fn request(&self, ex: &mut Exchange<'_>, counts: &NonceCounts) -> Outcome {
        let user = match self.check(ex.method, &ex.request_uri(), &ex.path, ex.headers, counts) {
            Ok(user) => user,
            Err(refusal) => return Outcome::Respond(self.challenge(refusal == Refusal::Stale)),
        };
        if let Some(field) = &self.header_field {
            if let Ok(v) = HeaderValue::from_str(&user) {
                ex.headers.insert(field.clone(), v);
            }
        }
        if self.remove_header {
            ex.headers.remove(header::AUTHORIZATION);
        }
        Outcome::NextWith(super::Hook::Authenticated(user))
    }

    fn challenge(&self, stale: bool) -> http::Response<Body> {
        let mut resp = http::Response::new(Body::full(Bytes::from_static(b"401 Unauthorized\n")));
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        let mut value = format!(
            "Digest realm=\"{}\", nonce=\"{}\", opaque=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm,
            self.nonce(),
            self.opaque
        );
        if stale {
            value.push_str(", stale=true");
        }
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// go-http-auth's `ParsePairs`: comma-separated `k=v` / `k="v"` (commas inside quotes kept).
fn parse_pairs(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut item = String::new();
    let mut quoted = false;
    let mut items = Vec::new();
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                item.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    for it in items {
        if let Some((k, v)) = it.trim().split_once('=') {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            out.insert(k.trim().to_string(), v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's `Authorization` for realm `traefik` and method GET.
    fn answer(user: &str, password: &str, uri: &str, nonce: &str, opaque: &str, nc: &str) -> String {
        let ha1 = md5_hex(&format!("{user}:traefik:{password}"));
        let ha2 = md5_hex(&format!("GET:{uri}"));
        let resp = md5_hex(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"traefik\", nonce=\"{nonce}\", uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"c0ffee\", response=\"{resp}\", opaque=\"{opaque}\", algorithm=MD5"
        )
    }

    #[test]
    fn checks_like_go_http_auth() {
        let m = DigestAuth::new(&cfg::DigestAuth {
            users: vec![("alice".into(), "traefik".into(), md5_hex("alice:traefik:secret"))],
            realm: "traefik".into(),
            remove_header: false,
            header_field: String::new(),
        })
        .expect("valid");
        let other = DigestAuth::new(&cfg::DigestAuth {
            users: vec![],
            realm: "traefik".into(),
            remove_header: false,
            header_field: String::new(),
        })
        .expect("valid");
        let nonce = m.nonce();
        let foreign = other.nonce();
        let op = m.opaque.clone();
        let counts = NonceCounts::default();
        // (case, Authorization, request URI, expected)
        let cases: Vec<(&str, String, &str, Result<&str, Refusal>)> = vec![
            ("valid", answer("alice", "secret", "/a?b=1", &nonce, &op, "00000001"), "/a?b=1", Ok("alice")),
            (
                "replayed count",
                answer("alice", "secret", "/a?b=1", &nonce, &op, "00000001"),
                "/a?b=1",
                Err(Refusal::Stale),
            ),
            (
                "next count",
                answer("alice", "secret", "/a?b=1", &nonce, &op, "00000002"),
                "/a?b=1",
                Ok("alice"),
            ),
            (
                "wrong password",
                answer("alice", "nope", "/a", &nonce, &op, "00000003"),
                "/a",
                Err(Refusal::Invalid),
            ),
            (
                "unknown user",
                answer("bob", "secret", "/a", &nonce, &op, "00000003"),
                "/a",
                Err(Refusal::Invalid),
            ),
            (
                "other opaque",
                answer("alice", "secret", "/a", &nonce, "x", "00000003"),
                "/a",
                Err(Refusal::Invalid),
            ),
            (
                "foreign nonce",
                answer("alice", "secret", "/a", &foreign, &op, "00000001"),
                "/a",
                Err(Refusal::Stale),
            ),
            (
                "uri of another path",
                answer("alice", "secret", "/b", &nonce, &op, "00000004"),
                "/a",
                Err(Refusal::Invalid),
            ),
            ("basic credentials", "Basic YWxpY2U6c2VjcmV0".to_string(), "/a", Err(Refusal::Invalid)),
        ];
        for (name, auth, uri, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, auth.parse().expect("value"));
            let path = uri.split('?').next().unwrap_or("");
            let got = m.check(&Method::GET, uri, path, &h, &counts);
            assert_eq!(
                got.as_deref().map_err(|e| format!("{e:?}")),
                want.map_err(|e| format!("{e:?}")),
                "case {name}"
            );
        }
        let challenge = m.challenge(true);
        let v = challenge.headers()[header::WWW_AUTHENTICATE].to_str().expect("ascii").to_string();
        assert!(v.starts_with("Digest realm=\"traefik\", nonce=\""), "{v}");
        assert!(v.ends_with(&format!("opaque=\"{op}\", algorithm=MD5, qop=\"auth\", stale=true")), "{v}");
    }
}
