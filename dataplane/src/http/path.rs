//! The request path as Traefik routes on it: dot segments and doubled slashes removed first
//! (entrypoint `sanitizePath`, default on; a trailing slash is kept), then percent-escapes
//! decoded except those of reserved characters (`%2F` stays `%2F`, so it never splits a
//! segment). An escape that is not `%` + two hex digits makes the request a 400.

use std::borrow::Cow;

/// A path with a malformed percent-escape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid percent-escape in the request path")]
pub struct BadEscape;

/// Traefik keeps these escaped in the routing path (`:/?#[]@!$&'()*+,;=%`).
fn reserved(b: u8) -> bool {
    matches!(
        b,
        b':' | b'/'
            | b'?'
            | b'#'
            | b'['
            | b']'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'%'
    )
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_dot_segment(seg: &str, dots: usize) -> bool {
    // `.` and `..`, also when written as `%2e`.
    let mut n = 0;
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
        } else if b[i] == b'%'
            && i + 2 < b.len() + 1
            && b.get(i + 1) == Some(&b'2')
            && matches!(b.get(i + 2), Some(b'e' | b'E'))
        {
            i += 3;
        } else {
            return false;
        }
        n += 1;
    }
    n == dots
}

/// Removes `.` and `..` segments and empty segments (`//`), keeping a trailing slash, as Go's
/// `path.Clean` plus Traefik's trailing-slash rule. Borrowed when nothing changes.
pub fn sanitize(raw: &str) -> Cow<'_, str> {
    let needs = raw.is_empty()
        || !raw.starts_with('/')
        || raw.contains("//")
        || raw.split('/').any(|s| is_dot_segment(s, 1) || is_dot_segment(s, 2));
    if !needs {
        return Cow::Borrowed(raw);
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in raw.split('/') {
        if seg.is_empty() || is_dot_segment(seg, 1) {
            continue;
        }
        if is_dot_segment(seg, 2) {
            out.pop();
            continue;
        }
        out.push(seg);
    }
    let mut s = String::with_capacity(raw.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    let trailing = raw.ends_with('/') || raw.ends_with("/.") || raw.ends_with("/..");
    if s.is_empty() || (trailing && !s.ends_with('/')) {
        s.push('/');
    }
    Cow::Owned(s)
}

/// Decodes every escape except those of reserved characters.
pub fn routing_path(raw: &str) -> Result<Cow<'_, str>, BadEscape> {
    let b = raw.as_bytes();
    let Some(first) = b.iter().position(|&c| c == b'%') else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..first]);
    let mut i = first;
    while i < b.len() {
        if b[i] == b'%' {
            let (h, l) = match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => (h, l),
                _ => return Err(BadEscape),
            };
            let v = h << 4 | l;
            if reserved(v) {
                out.extend_from_slice(&b[i..i + 3]);
            } else {
                out.push(v);
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

/// Checks the escapes of a raw query string (Go answers 400 for a bad one in the target).
pub fn valid_escapes(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if b.get(i + 1).copied().and_then(hex).is_none() || b.get(i + 2).copied().and_then(hex).is_none()
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising() {
        let cases = [
            ("clean", "/a/b", "/a/b"),
            ("root", "/", "/"),
            ("double slash", "/a//b", "/a/b"),
            ("dot", "/a/./b", "/a/b"),
            ("dot dot", "/a/../b", "/b"),
            ("dot dot above root", "/../../a", "/a"),
            ("trailing slash kept", "/a/b/", "/a/b/"),
            ("trailing dot dot", "/a/b/..", "/a/"),
            ("encoded dots", "/a/%2e%2E/b", "/b"),
            ("dots in names are not segments", "/a/.well-known/x..y", "/a/.well-known/x..y"),
            ("empty", "", "/"),
        ];
        for (name, raw, want) in cases {
            assert_eq!(sanitize(raw), want, "case {name}");
        }
    }

    #[test]
    fn decoding() {
        let cases = [
            ("nothing to decode", "/a/b", Ok("/a/b")),
            ("space", "/foo%20bar", Ok("/foo bar")),
            ("slash stays encoded", "/foo%2Fbar", Ok("/foo%2Fbar")),
            ("lower-case slash stays as sent", "/foo%2fbar", Ok("/foo%2fbar")),
            ("percent stays encoded", "/100%25", Ok("/100%25")),
            ("unreserved letters", "/%41%62c", Ok("/Abc")),
            ("utf-8", "/caf%C3%A9", Ok("/café")),
            ("bad hex", "/a%zz", Err(BadEscape)),
            ("truncated", "/a%4", Err(BadEscape)),
            ("trailing percent", "/a%", Err(BadEscape)),
        ];
        for (name, raw, want) in cases {
            assert_eq!(routing_path(raw).as_deref().map_err(|e| *e), want, "case {name}");
        }
    }
}
