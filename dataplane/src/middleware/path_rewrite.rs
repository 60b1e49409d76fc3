//! The path middlewares — AddPrefix, StripPrefix, StripPrefixRegex, ReplacePath,
//! ReplacePathRegex — on Go's `Path`/`RawPath` model, with Traefik's headers
//! (`X-Forwarded-Prefix`, `X-Replaced-Path`), its 400 when cleaning would change a stripped or
//! rewritten path, and its 500 when a new path does not unescape.

use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use regex::Regex;

use weir_proto::middleware as cfg;

use super::url::{self, EscapeError};
use super::{go_error, Exchange, Outcome};

const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
const X_REPLACED_PATH: HeaderName = HeaderName::from_static("x-replaced-path");

/// One path middleware.
#[derive(Debug)]
pub enum PathRewrite {
    /// AddPrefix.
    AddPrefix(String),
    /// StripPrefix (prefixes, forceSlash).
    StripPrefix(Vec<String>, bool),
    /// StripPrefixRegex.
    StripPrefixRegex(Vec<Regex>),
    /// ReplacePath.
    ReplacePath(String),
    /// ReplacePathRegex.
    ReplacePathRegex(Regex, String),
}

/// What a path middleware decided, before it touches the request (sans-IO, testable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Leave the request alone.
    Keep,
    /// New escaped path, and a header to add.
    To { path: String, header: Option<(&'static str, String)> },
    /// 400 Bad Request (cleaning would change the rewritten path).
    BadRequest,
    /// 500 with Go's unescape error.
    BadEscape(EscapeError),
}

impl PathRewrite {
    /// AddPrefix.
    pub fn add_prefix(c: &cfg::AddPrefix) -> PathRewrite {
        PathRewrite::AddPrefix(c.prefix.clone())
    }
    /// StripPrefix.
    pub fn strip_prefix(c: &cfg::StripPrefix) -> PathRewrite {
        PathRewrite::StripPrefix(c.prefixes.clone(), c.force_slash)
    }
    /// StripPrefixRegex.
    pub fn strip_prefix_regex(c: &cfg::StripPrefixRegex) -> Result<PathRewrite, String> {
        let res =
            c.regex.iter().map(|r| Regex::new(r).map_err(|e| e.to_string())).collect::<Result<_, _>>()?;
        Ok(PathRewrite::StripPrefixRegex(res))
    }
    /// ReplacePath.
    pub fn replace_path(c: &cfg::ReplacePath) -> PathRewrite {
        PathRewrite::ReplacePath(c.path.clone())
    }
    /// ReplacePathRegex.
    pub fn replace_path_regex(c: &cfg::ReplacePathRegex) -> Result<PathRewrite, String> {
        Ok(PathRewrite::ReplacePathRegex(
            Regex::new(&c.regex).map_err(|e| e.to_string())?,
            c.replacement.clone(),
        ))
    }

    /// Decides the rewrite of the escaped path `escaped`.
    pub fn decide(&self, escaped: &str) -> Rewrite {
        // Go: `req.URL.Path` is the decoded path; the entrypoint refused bad escapes already.
        let Ok(decoded) = url::unescape(escaped) else { return Rewrite::Keep };
        let raw = url::raw_path_of(escaped, &decoded);
        match self {
            PathRewrite::AddPrefix(prefix) => {
                let mut path = prefix.as_bytes().to_vec();
                path.extend_from_slice(&decoded);
                let path = url::ensure_leading_slash(path);
                let raw = if raw.is_empty() {
                    String::new()
                } else {
                    url::ensure_leading_slash_str(&format!("{prefix}{raw}"))
                };
                Rewrite::To { path: url::escaped_path(&raw, &path), header: None }
            }
            PathRewrite::StripPrefix(prefixes, force_slash) => {
                for prefix in prefixes {
                    if let Some(rest) = decoded.strip_prefix(prefix.as_bytes()) {
                        let (path, raw) = strip(rest, &raw, prefix.len(), *force_slash);
                        return checked(path, &raw, Some(("x-forwarded-prefix", prefix.clone())));
                    }
                }
                Rewrite::Keep
            }
            PathRewrite::StripPrefixRegex(res) => {
                // Go regexes run on the decoded path, which may not be UTF-8.
                let text = String::from_utf8_lossy(&decoded);
                for re in res {
                    let Some(m) = re.find(&text) else { continue };
                    let prefix = m.as_str();
                    if prefix.is_empty() || !text.starts_with(prefix) {
                        continue;
                    }
                    let rest = text.replacen(prefix, "", 1).into_bytes();
                    let (path, raw) = strip(&rest, &raw, prefix.len(), false);
                    let path = url::ensure_leading_slash(path);
                    return checked(path, &raw, Some(("x-forwarded-prefix", prefix.to_string())));
                }
                Rewrite::Keep
            }
            PathRewrite::ReplacePath(new) => match url::unescape(new) {
                Ok(path) => Rewrite::To {
                    path: url::escaped_path(new, &path),
                    header: Some(("x-replaced-path", escaped.to_string())),
                },
                Err(e) => Rewrite::BadEscape(e),
            },
            PathRewrite::ReplacePathRegex(re, replacement) => {
                if !re.is_match(escaped) {
                    return Rewrite::Keep;
                }
                let new = re.replace_all(escaped, replacement.as_str()).into_owned();
                match url::unescape(&new) {
                    Ok(path) => checked(path, &new, Some(("x-replaced-path", escaped.to_string()))),
                    Err(e) => Rewrite::BadEscape(e),
                }
            }
        }
    }

    /// Applies the decision to the request.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        match self.decide(&ex.path) {
            Rewrite::Keep => Outcome::Next,
            Rewrite::To { path, header } => {
                if let Some((name, value)) = header {
                    let name =
                        if name == "x-forwarded-prefix" { X_FORWARDED_PREFIX } else { X_REPLACED_PATH };
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        ex.headers.append(name, v);
                    }
                }
                ex.path = path;
                Outcome::Next
            }
            Rewrite::BadRequest => Outcome::Respond(go_error(StatusCode::BAD_REQUEST, "Bad Request")),
            Rewrite::BadEscape(e) => {
                Outcome::Respond(go_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
            }
        }
    }
}

/// Traefik's `getPathStripped` / `getRawPathStripped`: the decoded rest, and the raw path cut
/// at the same decoded length (when the URL had one).
fn strip(rest: &[u8], raw: &str, prefix_len: usize, force_slash: bool) -> (Vec<u8>, String) {
    let slash = |p: Vec<u8>| -> Vec<u8> {
        if force_slash {
            let mut out = vec![b'/'];
            out.extend_from_slice(p.strip_prefix(b"/").unwrap_or(&p));
            out
        } else {
            url::ensure_leading_slash(p)
        }
    };
    let path = slash(rest.to_vec());
    let raw = if raw.is_empty() {
        String::new()
    } else {
        let cut = &raw[url::encoded_prefix_len(raw, prefix_len)..];
        String::from_utf8_lossy(&slash(cut.as_bytes().to_vec())).into_owned()
    };
    (path, raw)
}

/// Traefik's check after a rewrite: `JoinPath()` must not change the decoded path.
fn checked(path: Vec<u8>, raw: &str, header: Option<(&'static str, String)>) -> Rewrite {
    let escaped = url::escaped_path(raw, &path);
    if !path.is_empty() && url::join_path(&escaped).map_or(true, |p| p != path) {
        return Rewrite::BadRequest;
    }
    Rewrite::To { path: escaped, header }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_prefix(prefixes: &[&str]) -> PathRewrite {
        PathRewrite::strip_prefix(&cfg::StripPrefix {
            prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            force_slash: false,
        })
    }

    fn to(path: &str, header: Option<(&'static str, &str)>) -> Rewrite {
        Rewrite::To { path: path.into(), header: header.map(|(n, v)| (n, v.to_string())) }
    }

    #[test]
    fn rewrites() {
        let prefix = Some(("x-forwarded-prefix", "/api"));
        let cases: Vec<(&str, PathRewrite, &str, Rewrite)> = vec![
            ("add prefix", PathRewrite::AddPrefix("/v1".into()), "/users", to("/v1/users", None)),
            (
                "add prefix keeps escapes",
                PathRewrite::AddPrefix("/v1".into()),
                "/a%2Fb",
                to("/v1/a%2Fb", None),
            ),
            ("strip", strip_prefix(&["/api"]), "/api/users", to("/users", prefix)),
            (
                "strip to root",
                strip_prefix(&["/api"]),
                "/api",
                Rewrite::To { path: String::new(), header: Some(("x-forwarded-prefix", "/api".into())) },
            ),
            (
                "strip character-wise",
                strip_prefix(&["/stat"]),
                "/status",
                to("/us", Some(("x-forwarded-prefix", "/stat"))),
            ),
            (
                "strip first listed",
                strip_prefix(&["/b", "/a"]),
                "/a/x",
                to("/x", Some(("x-forwarded-prefix", "/a"))),
            ),
            ("strip no match", strip_prefix(&["/api"]), "/other", Rewrite::Keep),
            (
                "strip keeps raw escapes",
                strip_prefix(&["/stat"]),
                "/stat/a%2Fb",
                to("/a%2Fb", Some(("x-forwarded-prefix", "/stat"))),
            ),
            ("strip dot segment is 400", strip_prefix(&["/api"]), "/api./foo", Rewrite::BadRequest),
            ("strip dotdot segment is 400", strip_prefix(&["/api"]), "/api../foo", Rewrite::BadRequest),
            (
                "strip regex",
                PathRewrite::StripPrefixRegex(vec![Regex::new("/foo/[a-z]+").expect("re")]),
                "/foo/abc/bar",
                to("/bar", Some(("x-forwarded-prefix", "/foo/abc"))),
            ),
            (
                "strip regex not a prefix",
                PathRewrite::StripPrefixRegex(vec![Regex::new("/[a-z]+/bar").expect("re")]),
                "/1/foo/bar",
                Rewrite::Keep,
            ),
            (
                "replace",
                PathRewrite::ReplacePath("/new".into()),
                "/old",
                to("/new", Some(("x-replaced-path", "/old"))),
            ),
            (
                "replace bad escape",
                PathRewrite::ReplacePath("/a%zz".into()),
                "/x",
                Rewrite::BadEscape(EscapeError("%zz".into())),
            ),
            (
                "replace regex",
                PathRewrite::ReplacePathRegex(Regex::new("^/foo/(.*)").expect("re"), "/bar/$1".into()),
                "/foo/x/y",
                to("/bar/x/y", Some(("x-replaced-path", "/foo/x/y"))),
            ),
            (
                "replace regex no match",
                PathRewrite::ReplacePathRegex(Regex::new("^/foo/(.*)").expect("re"), "/bar/$1".into()),
                "/other",
                Rewrite::Keep,
            ),
            (
                "replace regex cleaning is 400",
                PathRewrite::ReplacePathRegex(Regex::new("^/foo/(.*)").expect("re"), "/bar/../$1".into()),
                "/foo/x",
                Rewrite::BadRequest,
            ),
        ];
        for (name, m, path, want) in cases {
            assert_eq!(m.decide(path), want, "case {name}");
        }
    }
}
