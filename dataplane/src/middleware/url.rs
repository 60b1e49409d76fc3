//! Go `net/url` path semantics the path middlewares reproduce: `Path` (decoded) versus the
//! escaped form, `PathUnescape`, `EscapedPath`, and the `JoinPath` cleaning Traefik uses to
//! refuse rewritten paths that cleaning would change. Bytes, not `str`: Go paths may decode
//! to any bytes.

/// Go's error text for a bad escape, `invalid URL escape "%zz"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL escape {0:?}")]
pub struct EscapeError(pub String);

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Go's `url.PathUnescape`.
pub fn unescape(s: &str) -> Result<Vec<u8>, EscapeError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    let end = (i + 3).min(b.len());
                    return Err(EscapeError(String::from_utf8_lossy(&b[i..end]).into_owned()));
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Go's `shouldEscape(c, encodePath)`.
fn should_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'_' | b'.' | b'~' | b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'
        ))
}

/// Go's `escape(s, encodePath)`.
pub fn escape(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &c in path {
        if should_escape(c) {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(c >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(c & 15)]));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

/// Go's `validEncoded(s, encodePath)`.
fn valid_encoded(s: &str) -> bool {
    s.bytes().all(|c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(c)
    })
}

/// Go's `URL.EscapedPath` for a URL whose `RawPath` is `raw` (may be empty) and `Path` is `path`.
pub fn escaped_path(raw: &str, path: &[u8]) -> String {
    if !raw.is_empty() && valid_encoded(raw) && unescape(raw).is_ok_and(|p| p == path) {
        return raw.to_string();
    }
    if path == b"*" {
        return "*".into();
    }
    escape(path)
}

/// Go's `url.setPath`: the `RawPath` kept for an escaped path (empty when it is the default
/// encoding).
pub fn raw_path_of(escaped: &str, path: &[u8]) -> String {
    if escape(path) == escaped {
        String::new()
    } else {
        escaped.to_string()
    }
}

/// Go's `path.Clean`.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The decoded path Go's `URL.JoinPath()` (no elements) leaves for a URL whose escaped path is
/// `escaped`: cleaned, a trailing slash kept.
pub fn join_path(escaped: &str) -> Result<Vec<u8>, EscapeError> {
    let mut p = if escaped.starts_with('/') {
        clean(escaped)
    } else {
        let c = clean(&format!("/{escaped}"));
        c[1..].to_string()
    };
    if escaped.ends_with('/') && !p.ends_with('/') {
        p.push('/');
    }
    unescape(&p)
}

/// Traefik's `encodedPrefixLen`: how many bytes of the escaped path cover the first
/// `decoded_len` decoded bytes.
pub fn encoded_prefix_len(raw: &str, decoded_len: usize) -> usize {
    let b = raw.as_bytes();
    let (mut decoded, mut i) = (0, 0);
    while i < b.len() && decoded < decoded_len {
        if b[i] == b'%' && i + 2 < b.len() {
            i += 3;
        } else {
            i += 1;
        }
        decoded += 1;
    }
    i
}

/// Prepends `/` to a non-empty path that lacks it.
pub fn ensure_leading_slash(p: Vec<u8>) -> Vec<u8> {
    if p.is_empty() || p[0] == b'/' {
        p
    } else {
        let mut out = Vec::with_capacity(p.len() + 1);
        out.push(b'/');
        out.extend_from_slice(&p);
        out
    }
}

/// `ensure_leading_slash` for escaped strings.
pub fn ensure_leading_slash_str(p: &str) -> String {
    if p.is_empty() || p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_clean() {
        let cases = [
            ("/a/b/../c", "/a/c"),
            ("/./foo", "/foo"),
            ("/../foo", "/foo"),
            ("//a//b/", "/a/b"),
            ("/", "/"),
            ("a/../..", ".."),
            ("", "."),
            ("/a%2F..%2Fb", "/a%2F..%2Fb"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(escape(b"/a b/c?d"), "/a%20b/c%3Fd");
        assert_eq!(escaped_path("/a%2Fb", b"/a/b"), "/a%2Fb");
        assert_eq!(escaped_path("", b"/a b"), "/a%20b");
        assert_eq!(escaped_path("/a b", b"/a b"), "/a%20b");
        assert_eq!(unescape("/a%zz").expect_err("bad").to_string(), "invalid URL escape \"%zz\"");
        assert_eq!(encoded_prefix_len("/stat/a%2Fb", 5), 5);
        assert_eq!(encoded_prefix_len("/%73tat/x", 5), 7);
    }
}
