//! Sticky sessions by cookie, as Traefik writes and reads them: the value is the first 16 hex
//! digits of sha256 of the server URL (load balancers) or of the child service name (weighted
//! services); `Set-Cookie` is serialised like Go's `http.Cookie.String`. Sans-IO.

use http::header::{HeaderMap, HeaderValue, COOKIE};
use sha2::{Digest, Sha256};
use weir_proto::snapshot::StickyCookie;

/// Traefik's sticky value for a handler name.
pub fn value(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut hex = String::with_capacity(16);
    for b in &digest[..8] {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The value of the first cookie named `name` in the request's `Cookie` headers (Go's
/// `Request.Cookie`: surrounding double quotes removed).
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| {
                let v = v.trim();
                v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v)
            })
        })
    })
}

/// The `Set-Cookie` value pinning the client to `value`.
pub fn set_cookie(cookie: &StickyCookie, value: &str) -> HeaderValue {
    let mut s = format!("{}={}", cookie.name, value);
    if let Some(path) = cookie.path.as_deref().filter(|p| !p.is_empty()) {
        s.push_str("; Path=");
        s.push_str(path);
    }
    if let Some(domain) = cookie.domain.as_deref().filter(|d| !d.is_empty()) {
        // Go drops a leading dot.
        s.push_str("; Domain=");
        s.push_str(domain.trim_start_matches('.'));
    }
    if cookie.max_age > 0 {
        s.push_str(&format!("; Max-Age={}", cookie.max_age));
    } else if cookie.max_age < 0 {
        s.push_str("; Max-Age=0");
    }
    if cookie.http_only {
        s.push_str("; HttpOnly");
    }
    if cookie.secure {
        s.push_str("; Secure");
    }
    if let Some(same_site) = &cookie.same_site {
        s.push_str("; SameSite=");
        s.push_str(same_site);
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie() -> StickyCookie {
        StickyCookie {
            name: "lvl1".into(),
            secure: false,
            http_only: false,
            same_site: None,
            max_age: 0,
            path: Some("/".into()),
            domain: None,
        }
    }

    #[test]
    fn values_are_sha256_prefixes() {
        let cases = [
            ("server url", "http://10.0.0.1:80", "df5bd2f9c0180410"),
            ("service name", "default-whoami-80", "3c7eb0accfc70196"),
        ];
        for (case, name, want) in cases {
            assert_eq!(value(name), want, "case {case}");
        }
        assert_ne!(value("a"), value("b"));
    }

    #[test]
    fn set_cookie_lines() {
        let full = StickyCookie {
            secure: true,
            http_only: true,
            same_site: Some("Strict".into()),
            max_age: 60,
            path: Some("/app".into()),
            domain: Some(".example.com".into()),
            ..cookie()
        };
        let cases = [
            ("defaults", cookie(), "lvl1=v; Path=/"),
            (
                "every attribute, in Go's order",
                full,
                "lvl1=v; Path=/app; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Strict",
            ),
            ("negative max age", StickyCookie { max_age: -1, ..cookie() }, "lvl1=v; Path=/; Max-Age=0"),
            ("no path", StickyCookie { path: None, ..cookie() }, "lvl1=v"),
        ];
        for (name, c, want) in cases {
            assert_eq!(set_cookie(&c, "v"), want, "case {name}");
        }
    }

    #[test]
    fn finds_cookies() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, "a=1; lvl1=abc".parse().expect("valid"));
        h.append(COOKIE, "lvl1=second".parse().expect("valid"));
        h.append(COOKIE, "q=\"quoted\"".parse().expect("valid"));
        let cases = [
            ("first match wins", "lvl1", Some("abc")),
            ("quotes removed", "q", Some("quoted")),
            ("absent", "x", None),
        ];
        for (name, cookie, want) in cases {
            assert_eq!(find(&h, cookie), want, "case {name}");
        }
    }
}
