//! Query-string matching as Go's `url.ParseQuery` reads a query: pairs split on `&`, a pair
//! containing `;` is dropped (Go rejects it), keys and values are unescaped (`+` is a space).
//! Comparison decodes on the fly, so equality checks allocate nothing.

use std::borrow::Cow;

/// Iterates over `(raw key, raw value)` pairs the way Go keeps them.
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty() && !p.contains(';'))
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decoded bytes of a query component; `None` at an invalid escape (Go drops such a pair).
fn decoded(raw: &str) -> impl Iterator<Item = Option<u8>> + '_ {
    let b = raw.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        i += 1;
        Some(match c {
            b'+' => Some(b' '),
            b'%' => {
                let v = b.get(i).copied().and_then(hex).zip(b.get(i + 1).copied().and_then(hex));
                i += 2;
                v.map(|(h, l)| h << 4 | l)
            }
            c => Some(c),
        })
    })
}

/// Whether `raw` unescapes to exactly `want`.
pub fn eq_decoded(raw: &str, want: &str) -> bool {
    let mut d = decoded(raw);
    for w in want.bytes() {
        match d.next() {
            Some(Some(c)) if c == w => {}
            _ => return false,
        }
    }
    d.next().is_none()
}

/// Whether `raw` is a well-formed component (Go drops pairs with bad escapes).
pub fn valid(raw: &str) -> bool {
    decoded(raw).all(|c| c.is_some())
}

/// The unescaped text (borrowed when nothing is escaped).
pub fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes: Vec<u8> = decoded(raw).map(|c| c.unwrap_or(b'?')).collect();
    Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        let cases = [
            ("plain", "abc", "abc", true),
            ("plus is space", "a+b", "a b", true),
            ("escape", "a%20b", "a b", true),
            ("escaped plus", "a%2Bb", "a+b", true),
            ("shorter", "ab", "abc", false),
            ("longer", "abcd", "abc", false),
            ("bad escape", "a%zz", "a", false),
        ];
        for (name, raw, want, eq) in cases {
            assert_eq!(eq_decoded(raw, want), eq, "case {name}");
        }
        assert_eq!(decode("a%20b+c"), "a b c");
        assert!(!valid("%g0"));
    }

    #[test]
    fn pair_splitting() {
        let got: Vec<_> = pairs("a=1&b&c=&;x=1&d=2=3&&e").collect();
        assert_eq!(got, [("a", "1"), ("b", ""), ("c", ""), ("d", "2=3"), ("e", "")]);
    }
}
