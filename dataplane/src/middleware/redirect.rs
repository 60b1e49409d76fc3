//! RedirectScheme and RedirectRegex, both Traefik's `redirect` handler: rebuild the URL the
//! client asked for, rewrite it with a regex, and redirect (302/307, permanent 301/308, the
//! status text as body) unless the rewrite is the URL itself, which passes through.

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use regex::Regex;

use weir_proto::middleware as cfg;

use super::{go_error, status_text, Exchange, Outcome};

/// Traefik's `uriRegexp` (absolute-form request targets). `\w` is ASCII in Go.
const URI: &str = r"^(https?)://(\[[0-9A-Za-z_:.]+\]|[0-9A-Za-z_._-]+)?(:\d+)?(.*)$";
/// Traefik's RedirectScheme pattern.
const SCHEME_URI: &str = r"^(https?://)?(\[[0-9A-Za-z_:.]+\]|[0-9A-Za-z_._-]+)?(:\d+)?(.*)$";

/// Which URL the regex sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// RedirectRegex: scheme from TLS only, host with its port.
    Raw,
    /// RedirectScheme: `X-Forwarded-Proto` counts, default ports dropped.
    Client,
}

/// A compiled redirect.
#[derive(Debug)]
pub struct Redirect {
    regex: Regex,
    replacement: String,
    permanent: bool,
    source: Source,
    uri: Regex,
}

/// What the request looks like to a redirect (sans-IO input).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Method.
    pub method: &'a Method,
    /// Go's `req.Host`.
    pub host: &'a str,
    /// Go's `req.RequestURI`.
    pub request_uri: &'a str,
    /// Arrived over TLS.
    pub tls: bool,
    /// `X-Forwarded-Proto`, if any.
    pub forwarded_proto: Option<&'a str>,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve the request.
    Pass,
    /// Redirect with this status and `Location`.
    Redirect(StatusCode, String),
}

impl Redirect {
    /// RedirectScheme.
    pub fn scheme(c: &cfg::RedirectScheme) -> Result<Redirect, String> {
        let port = if c.port.is_empty()
            || (c.scheme == "http" && c.port == "80")
            || (c.scheme == "https" && c.port == "443")
        {
            String::new()
        } else {
            format!(":{}", c.port)
        };
        Ok(Redirect {
            regex: Regex::new(SCHEME_URI).map_err(|e| e.to_string())?,
            replacement: format!("{}://${{2}}{port}${{4}}", c.scheme),
            permanent: c.permanent,
            source: Source::Client,
            uri: Regex::new(URI).map_err(|e| e.to_string())?,
        })
    }

    /// RedirectRegex.
    pub fn regex(c: &cfg::RedirectRegex) -> Result<Redirect, String> {
        Ok(Redirect {
            regex: Regex::new(&c.regex).map_err(|e| e.to_string())?,
            replacement: c.replacement.clone(),
            permanent: c.permanent,
            source: Source::Raw,
            uri: Regex::new(URI).map_err(|e| e.to_string())?,
        })
    }

    /// The URL the regex is matched against.
    fn old_url(&self, r: &RequestView<'_>) -> String {
        let mut scheme = "http";
        let (mut host, mut port) = match self.source {
            Source::Raw => (r.host.to_string(), String::new()),
            Source::Client => split_host_port(r.host),
        };
        let mut uri = r.request_uri.to_string();
        if let Some(m) = self.uri.captures(r.request_uri) {
            scheme = if &m[1] == "https" { "https" } else { "http" };
            if let Some(h) = m.get(2).filter(|h| !h.is_empty()) {
                host = h.as_str().to_string();
            }
            if let Some(p) = m.get(3).filter(|p| !p.is_empty()) {
                port = p.as_str().to_string();
            }
            uri = m.get(4).map_or("", |u| u.as_str()).to_string();
        }
        if r.tls {
            scheme = "https";
        }
        if self.source == Source::Client {
            if let Some(proto) = r.forwarded_proto.filter(|p| !p.is_empty()) {
                if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") {
                    scheme = "http";
                } else if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") {
                    scheme = "https";
                }
            }
            if (scheme == "http" && port == ":80") || (scheme == "https" && port == ":443") {
                port.clear();
            }
        }
        format!("{scheme}://{host}{port}{uri}")
    }

    /// Decides for one request.
    pub fn decide(&self, r: &RequestView<'_>) -> Decision {
        let old = self.old_url(r);
        if !self.regex.is_match(&old) {
            return Decision::Pass;
        }
        let new = self.regex.replace_all(&old, self.replacement.as_str()).into_owned();
        if new == old {
            return Decision::Pass;
        }
        let get = r.method == Method::GET;
        let status = match (self.permanent, get) {
            (false, true) => StatusCode::FOUND,
            (false, false) => StatusCode::TEMPORARY_REDIRECT,
            (true, true) => StatusCode::MOVED_PERMANENTLY,
            (true, false) => StatusCode::PERMANENT_REDIRECT,
        };
        Decision::Redirect(status, new)
    }

    /// Request side.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        let uri = ex.request_uri();
        let view = RequestView {
            method: ex.method,
            host: &ex.host,
            request_uri: &uri,
            tls: ex.tls,
            forwarded_proto: ex.headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()),
        };
        match self.decide(&view) {
            Decision::Pass => Outcome::Next,
            Decision::Redirect(status, location) => match HeaderValue::from_str(&location) {
                Ok(loc) => {
                    let mut resp = status_text(status);
                    resp.headers_mut().insert(header::LOCATION, loc);
                    Outcome::Respond(resp)
                }
                // Go's url.Parse failure goes to oxy's error handler: 502.
                Err(_) => Outcome::Respond(go_error(StatusCode::BAD_GATEWAY, "Bad Gateway")),
            },
        }
    }
}

/// Go's `net.SplitHostPort` as RedirectScheme uses it (`:port` kept with its colon); an IPv6
/// host keeps its brackets so the rebuilt URL stays valid.
fn split_host_port(host: &str) -> (String, String) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((h, after)) = rest.split_once(']') {
            if let Some(p) = after.strip_prefix(':') {
                return (format!("[{h}]"), format!(":{p}"));
            }
        }
        return (host.to_string(), String::new());
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h.to_string(), format!(":{p}")),
        _ => (host.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(method: &'a Method, host: &'a str, uri: &'a str, proto: Option<&'a str>) -> RequestView<'a> {
        RequestView { method, host, request_uri: uri, tls: false, forwarded_proto: proto }
    }

    fn scheme(s: &str, port: &str, permanent: bool) -> Redirect {
        Redirect::scheme(&cfg::RedirectScheme { scheme: s.into(), port: port.into(), permanent })
            .expect("valid")
    }

    #[test]
    fn redirect_scheme() {
        let (get, post) = (Method::GET, Method::POST);
        let found = |l: &str| Decision::Redirect(StatusCode::FOUND, l.into());
        let cases = [
            (
                "http to https",
                scheme("https", "", false),
                view(&get, "a.com", "/x?y=1", Some("http")),
                found("https://a.com/x?y=1"),
            ),
            (
                "port dropped when none is set",
                scheme("https", "", false),
                view(&get, "a.com:8080", "/", Some("http")),
                found("https://a.com/"),
            ),
            (
                "port set",
                scheme("https", "8443", false),
                view(&get, "a.com:8080", "/", Some("http")),
                found("https://a.com:8443/"),
            ),
            (
                "443 dropped",
                scheme("https", "443", false),
                view(&get, "a.com", "/", Some("http")),
                found("https://a.com/"),
            ),
            (
                "80 dropped from source",
                scheme("https", "", false),
                view(&get, "a.com:80", "/", Some("http")),
                found("https://a.com/"),
            ),
            (
                "already https",
                scheme("https", "", false),
                view(&get, "a.com", "/", Some("https")),
                Decision::Pass,
            ),
            (
                "wss counts as https",
                scheme("https", "", false),
                view(&get, "a.com", "/", Some("wss")),
                Decision::Pass,
            ),
            (
                "post is 307",
                scheme("https", "", false),
                view(&post, "a.com", "/", None),
                Decision::Redirect(StatusCode::TEMPORARY_REDIRECT, "https://a.com/".into()),
            ),
            (
                "permanent get is 301",
                scheme("https", "", true),
                view(&get, "a.com", "/", None),
                Decision::Redirect(StatusCode::MOVED_PERMANENTLY, "https://a.com/".into()),
            ),
            (
                "permanent post is 308",
                scheme("https", "", true),
                view(&post, "a.com", "/", None),
                Decision::Redirect(StatusCode::PERMANENT_REDIRECT, "https://a.com/".into()),
            ),
            (
                "ipv6 kept",
                scheme("https", "8443", false),
                view(&get, "[::1]:80", "/", None),
                found("https://[::1]:8443/"),
            ),
            (
                "absolute form",
                scheme("https", "", false),
                view(&get, "x", "http://b.com:80/p", None),
                found("https://b.com/p"),
            ),
        ];
        for (name, r, v, want) in cases {
            assert_eq!(r.decide(&v), want, "case {name}");
        }
    }

    #[test]
    fn redirect_regex() {
        let get = Method::GET;
        let r = |re: &str, rep: &str| {
            Redirect::regex(&cfg::RedirectRegex {
                regex: re.into(),
                replacement: rep.into(),
                permanent: false,
            })
            .expect("valid")
        };
        let cases = [
            (
                "rewrite",
                r("^http://a.com/(.*)", "https://b.com/${1}"),
                view(&get, "a.com", "/x", None),
                Decision::Redirect(StatusCode::FOUND, "https://b.com/x".into()),
            ),
            (
                "host port kept",
                r("^http://(.*)", "http://x/$1"),
                view(&get, "a.com:81", "/p", None),
                Decision::Redirect(StatusCode::FOUND, "http://x/a.com:81/p".into()),
            ),
            ("no match", r("^https://", "x"), view(&get, "a.com", "/", None), Decision::Pass),
            (
                "same url passes",
                r("^(http://a.com/.*)", "$1"),
                view(&get, "a.com", "/x", None),
                Decision::Pass,
            ),
            (
                "proto header ignored",
                r("^http://a.com/(.*)", "https://a.com/$1"),
                view(&get, "a.com", "/", Some("https")),
                Decision::Redirect(StatusCode::FOUND, "https://a.com/".into()),
            ),
        ];
        for (name, r, v, want) in cases {
            assert_eq!(r.decide(&v), want, "case {name}");
        }
    }
}
