//! Hop-by-hop headers (RFC 9110 §7.6.1) are removed in both directions, including those named
//! in `Connection` — except the forwarded headers weir manages itself, which a client cannot
//! strip that way (Traefik behaves the same).

use http::header::{self, HeaderMap, HeaderName};

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers. `TE: trailers` survives on requests, as Go's proxy keeps it.
pub fn strip(headers: &mut HeaderMap, is_request: bool) {
    // Most messages carry none of these: one pass over the names (comparisons of standard
    // header ids) is cheaper than nine hashed removals of absent headers.
    if !headers.keys().any(|k| *k == header::TE || HOP_BY_HOP.contains(k)) {
        return;
    }
    // The value is cloned (a reference count) so that the names it lists can be removed while
    // it is read; names are looked up as written (case-insensitively), never copied.
    if let Some(conn) = headers.get(header::CONNECTION).cloned() {
        if let Ok(list) = conn.to_str() {
            for n in list.split(',').map(str::trim) {
                if !n.is_empty() && !super::forwarded::is_managed(n) {
                    headers.remove(n);
                }
            }
        }
    }
    for h in &HOP_BY_HOP {
        headers.remove(h);
    }
    let te_trailers = is_request
        && headers.get_all(header::TE).iter().any(|v| v.to_str().is_ok_and(|s| s.contains("trailers")));
    headers.remove(header::TE);
    if te_trailers {
        headers.insert(header::TE, http::HeaderValue::from_static("trailers"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "close, X-Secret, X-Forwarded-For, , bad name"),
            ("x-secret", "1"),
            ("x-forwarded-for", "1.2.3.4"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers, deflate"),
            ("upgrade", "h2c"),
            ("x-kept", "yes"),
        ] {
            h.append(k, v.parse().expect("valid value"));
        }
        strip(&mut h, true);
        let mut names: Vec<_> = h.keys().map(|k| k.as_str().to_string()).collect();
        names.sort();
        assert_eq!(names, ["te", "x-forwarded-for", "x-kept"]);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn keeps_end_to_end_headers() {
        let mut h = HeaderMap::new();
        for (k, v) in [("host", "a"), ("accept", "*/*"), ("x-kept", "yes"), ("x-kept", "twice")] {
            h.append(k, v.parse().expect("valid value"));
        }
        let before = h.clone();
        strip(&mut h, true);
        assert_eq!(h, before);
        // Only `TE: trailers` survives of a TE header, also without any other hop-by-hop header.
        h.append("te", "gzip".parse().expect("valid value"));
        strip(&mut h, true);
        assert_eq!(h, before);
    }
}
