//! Go's `mime.ParseMediaType`, which Traefik uses to compare content types (Compress): the
//! lower-cased `type/subtype` and its parameters (names lower-cased, quoted values unquoted).
//! Pure; shared by the control plane (validation) and the data plane (matching).

/// A parsed media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lower case.
    pub essence: String,
    /// Parameters in order, names lower case.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Traefik's `parsedContentType.equals`: same essence, and when `self` has parameters,
    /// exactly the same parameters.
    pub fn matches(&self, other: &MediaType) -> bool {
        if self.essence != other.essence {
            return false;
        }
        self.params.is_empty()
            || (self.params.len() == other.params.len()
                && self.params.iter().all(|(k, v)| other.params.iter().any(|(k2, v2)| k == k2 && v == v2)))
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii() && c > ' ' && c != '\x7f' && !"()<>@,;:\\\"/[]?=".contains(c)
}

fn token(s: &str) -> (&str, &str) {
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    s.split_at(end)
}

/// Parses a media type as Go does; the error text is Go's.
pub fn parse_media_type(v: &str) -> Result<MediaType, &'static str> {
    let base = v.split(';').next().unwrap_or("");
    let essence = base.to_ascii_lowercase().trim().to_string();
    let (first, rest) = token(&essence);
    if first.is_empty() {
        return Err("mime: no media type");
    }
    if !rest.is_empty() {
        let Some(sub) = rest.strip_prefix('/') else {
            return Err("mime: expected slash after first token");
        };
        let (subtype, rest) = token(sub);
        if subtype.is_empty() {
            return Err("mime: expected token after slash");
        }
        if !rest.is_empty() {
            return Err("mime: unexpected content after media subtype");
        }
    }
    let mut params: Vec<(String, String)> = Vec::new();
    let mut v = &v[base.len()..];
    loop {
        v = v.trim_start();
        if v.is_empty() {
            break;
        }
        let Some((key, value, rest)) = param(v) else {
            if v.trim() == ";" {
                break;
            }
            return Err("mime: invalid media parameter");
        };
        if params.iter().any(|(k, _)| *k == key) {
            return Err("mime: duplicate parameter name");
        }
        params.push((key, value));
        v = rest;
    }
    Ok(MediaType { essence, params })
}

/// `; name=value` (value a token or a quoted string).
fn param(v: &str) -> Option<(String, String, &str)> {
    let rest = v.strip_prefix(';')?.trim_start();
    let (name, rest) = token(rest);
    if name.is_empty() {
        return None;
    }
    let rest = rest.trim_start().strip_prefix('=')?.trim_start();
    let (value, rest) = match rest.strip_prefix('"') {
        Some(q) => {
            let mut out = String::new();
            let mut chars = q.char_indices();
            loop {
                match chars.next()? {
                    (i, '"') => break (out, &q[i + 1..]),
                    (_, '\\') => out.push(chars.next()?.1),
                    (_, c) => out.push(c),
                }
            }
        }
        None => {
            let (t, rest) = token(rest);
            if t.is_empty() {
                return None;
            }
            (t.to_string(), rest)
        }
    };
    Some((name.to_ascii_lowercase(), value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let p = |s: &str| parse_media_type(s).map(|m| (m.essence, m.params));
        let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
        // (case, input, expected)
        let cases = [
            ("plain", "text/html", Ok(("text/html".to_string(), vec![]))),
            (
                "case and spaces",
                " Text/HTML ; Charset=UTF-8",
                Ok(("text/html".into(), vec![kv("charset", "UTF-8")])),
            ),
            ("quoted", "a/b; x=\"1 2\"", Ok(("a/b".into(), vec![kv("x", "1 2")]))),
            ("trailing semicolon", "a/b;", Ok(("a/b".into(), vec![]))),
            ("empty", "", Err("mime: no media type")),
            ("no subtype", "text/", Err("mime: expected token after slash")),
            ("bad param", "a/b; =x", Err("mime: invalid media parameter")),
            ("duplicate", "a/b; x=1; X=2", Err("mime: duplicate parameter name")),
        ];
        for (name, input, want) in cases {
            assert_eq!(p(input), want, "case {name}");
        }
        let with = parse_media_type("text/plain; charset=utf-8").expect("valid");
        let bare = parse_media_type("text/plain").expect("valid");
        assert!(bare.matches(&with), "no params: any params match");
        assert!(!with.matches(&bare), "params must be identical");
    }
}
