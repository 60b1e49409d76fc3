//! Traefik's Headers middleware: custom request/response headers, CORS (preflight answered
//! here with 200, the rest decorated on the way back) and the security headers Traefik takes
//! from `unrolled/secure` (allowed hosts → 500 "Bad Host", STS, frame options, nosniff, XSS,
//! CSP, referrer and permissions policies). Order as in Traefik: the CORS/custom layer wraps
//! the secure layer, so its response rewrites run last and win.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use regex::Regex;

use weir_proto::middleware as cfg;

use super::{go_error, Exchange, Hook, Outcome};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// A compiled Headers middleware.
#[derive(Debug)]
pub struct Headers {
    request: Vec<(HeaderName, Option<HeaderValue>)>,
    /// `Host` override from `customRequestHeaders`.
    host: Option<String>,
    /// `customRequestHeaders: {X-Forwarded-For: ""}`.
    suppress_xff: bool,
    response: Vec<(HeaderName, Option<HeaderValue>)>,
    cors: bool,
    cfg: cfg::Headers,
    origin_regexes: Vec<Regex>,
    secure: Vec<(HeaderName, HeaderValue)>,
    sts: Option<HeaderValue>,
    public_key: Option<HeaderValue>,
    ssl_proxy: Vec<(HeaderName, String)>,
    hosts_proxy: Vec<HeaderName>,
}

/// What the response side needs from the request.
#[derive(Debug)]
pub struct ResponseState {
    origin: Option<String>,
    ssl: bool,
}

fn value(v: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(v).map_err(|_| format!("invalid header value {v:?}"))
}

fn name(n: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(n.as_bytes()).map_err(|_| format!("invalid header name {n:?}"))
}

impl Headers {
    /// Compiles the configuration.
    pub fn new(c: &cfg::Headers) -> Result<Headers, String> {
        let mut request = Vec::new();
        let mut host = None;
        let mut suppress_xff = false;
        for (k, v) in &c.custom_request_headers {
            if v.is_empty() && k.eq_ignore_ascii_case(X_FORWARDED_FOR) {
                // Traefik: `req.Header["X-Forwarded-For"] = nil` stops the proxy appending.
                suppress_xff = true;
                request.push((name(k)?, None));
            } else if v.is_empty() {
                request.push((name(k)?, None));
            } else if k.eq_ignore_ascii_case("host") {
                host = Some(v.clone());
            } else {
                request.push((name(k)?, Some(value(v)?)));
            }
        }
        let response = c
            .custom_response_headers
            .iter()
            .map(|(k, v)| Ok((name(k)?, if v.is_empty() { None } else { Some(value(v)?) })))
            .collect::<Result<_, String>>()?;
        let cors = c.access_control_allow_credentials
            || !c.access_control_allow_headers.is_empty()
            || !c.access_control_allow_methods.is_empty()
            || !c.access_control_allow_origin_list.is_empty()
            || !c.access_control_allow_origin_list_regex.is_empty()
            || !c.access_control_expose_headers.is_empty()
            || c.access_control_max_age.is_some()
            || c.add_vary_header;
        let origin_regexes = c
            .access_control_allow_origin_list_regex
            .iter()
            .map(|r| Regex::new(r).map_err(|e| format!("error occurred during origin parsing: {e}")))
            .collect::<Result<_, _>>()?;
        let mut secure = Vec::new();
        let mut add = |n: &'static str, v: &str| -> Result<(), String> {
            secure.push((HeaderName::from_static(n), value(v)?));
            Ok(())
        };
        if !c.custom_frame_options_value.is_empty() {
            add("x-frame-options", &c.custom_frame_options_value)?;
        } else if c.frame_deny {
            add("x-frame-options", "DENY")?;
        }
        if c.content_type_nosniff {
            add("x-content-type-options", "nosniff")?;
        }
        if !c.custom_browser_xss_value.is_empty() {
            add("x-xss-protection", &c.custom_browser_xss_value)?;
        } else if c.browser_xss_filter {
            add("x-xss-protection", "1; mode=block")?;
        }
        if !c.content_security_policy.is_empty() {
            add("content-security-policy", &c.content_security_policy)?;
        }
        if !c.content_security_policy_report_only.is_empty() {
            add("content-security-policy-report-only", &c.content_security_policy_report_only)?;
        }
        if !c.referrer_policy.is_empty() {
            add("referrer-policy", &c.referrer_policy)?;
        }
        if !c.permissions_policy.is_empty() {
            add("permissions-policy", &c.permissions_policy)?;
        }
        let sts = (c.sts_seconds != 0)
            .then(|| {
                let mut v = format!("max-age={}", c.sts_seconds);
                if c.sts_include_subdomains {
                    v.push_str("; includeSubDomains");
                }
                if c.sts_preload {
                    v.push_str("; preload");
                }
                value(&v)
            })
            .transpose()?;
        let public_key = (!c.public_key.is_empty()).then(|| value(&c.public_key)).transpose()?;
        let ssl_proxy = c
            .ssl_proxy_headers
            .iter()
            .map(|(k, v)| Ok((name(k)?, v.clone())))
            .collect::<Result<_, String>>()?;
        let hosts_proxy = c.hosts_proxy_headers.iter().map(|n| name(n)).collect::<Result<_, _>>()?;
        Ok(Headers {
            request,
            host,
            suppress_xff,
            response,
            cors,
            cfg: c.clone(),
            origin_regexes,
            secure,
            sts,
            public_key,
            ssl_proxy,
            hosts_proxy,
        })
    }

    /// Traefik's `matchOrigin`: the value for `Access-Control-Allow-Origin`, if the origin is allowed.
    pub fn match_origin(&self, origin: &str) -> Option<String> {
        for item in &self.cfg.access_control_allow_origin_list {
            if item == origin {
                return Some(item.clone());
            }
            if item == "*" {
                // A wildcard cannot go with credentials: echo the origin instead.
                return Some(if self.cfg.access_control_allow_credentials {
                    origin.into()
                } else {
                    "*".into()
                });
            }
        }
        self.origin_regexes.iter().any(|r| r.is_match(origin)).then(|| origin.to_string())
    }

    /// The preflight answer's headers, when the request is a CORS preflight.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Vec<(&'static str, String)>> {
        if !self.cors || method != Method::OPTIONS {
            return None;
        }
        let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (ac_method, origin) = (get("access-control-request-method"), get("origin"));
        if ac_method.is_empty() || origin.is_empty() {
            return None;
        }
        let c = &self.cfg;
        let mut out = Vec::new();
        if c.access_control_allow_credentials {
            out.push(("access-control-allow-credentials", "true".to_string()));
        }
        let wildcard = |l: &[String]| l.iter().any(|h| h == "*") && c.access_control_allow_credentials;
        if wildcard(&c.access_control_allow_headers) {
            let requested = get("access-control-request-headers");
            if !requested.is_empty() {
                out.push(("access-control-allow-headers", requested.to_string()));
            }
        } else if !c.access_control_allow_headers.is_empty() {
            out.push(("access-control-allow-headers", c.access_control_allow_headers.join(",")));
        }
        if wildcard(&c.access_control_allow_methods) {
            out.push(("access-control-allow-methods", ac_method.to_string()));
        } else if !c.access_control_allow_methods.is_empty() {
            out.push(("access-control-allow-methods", c.access_control_allow_methods.join(",")));
        }
        if let Some(o) = self.match_origin(origin) {
            out.push(("access-control-allow-origin", o));
        }
        if let Some(age) = c.access_control_max_age {
            out.push(("access-control-max-age", age.to_string()));
        }
        if !c.access_control_expose_headers.is_empty() && !wildcard(&c.access_control_expose_headers) {
            out.push(("access-control-expose-headers", c.access_control_expose_headers.join(",")));
        }
        Some(out)
    }

    /// unrolled/secure's host check: whether the host is refused.
    fn bad_host(&self, ex: &Exchange<'_>) -> bool {
        if self.cfg.allowed_hosts.is_empty() || self.cfg.is_development {
            return false;
        }
        let proxied = self
            .hosts_proxy
            .iter()
            .find_map(|h| ex.headers.get(h).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()));
        let host = proxied.unwrap_or(&ex.host);
        !self.cfg.allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(host))
    }

    fn is_ssl(&self, ex: &Exchange<'_>) -> bool {
        ex.tls
            || self
                .ssl_proxy
                .iter()
                .any(|(k, v)| ex.headers.get(k).and_then(|h| h.to_str().ok()).is_some_and(|h| h == v))
    }

    /// Request side.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        if let Some(headers) = self.preflight(ex.method, ex.headers) {
            let mut resp = super::status_text(StatusCode::OK);
            *resp.body_mut() = crate::http::Body::empty();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            for (n, v) in headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(n, v);
                }
            }
            return Outcome::Respond(resp);
        }
        for (n, v) in &self.request {
            match v {
                Some(v) => {
                    ex.headers.insert(n.clone(), v.clone());
                }
                None => {
                    ex.headers.remove(n);
                }
            }
        }
        if self.suppress_xff {
            ex.suppress_xff = true;
        }
        if let Some(h) = &self.host {
            ex.host = h.clone();
            if let Ok(v) = HeaderValue::from_str(h) {
                ex.headers.insert(header::HOST, v);
            }
        }
        if self.bad_host(ex) {
            // The secure layer answers inside the custom-headers layer, so custom response
            // headers still apply to it.
            let mut resp = go_error(StatusCode::INTERNAL_SERVER_ERROR, "Bad Host");
            let state = ResponseState { origin: None, ssl: false };
            self.custom_response(&state, resp.headers_mut(), ex.headers);
            return Outcome::Respond(resp);
        }
        let origin = ex.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(String::from);
        Outcome::NextWith(Hook::Headers(ResponseState { origin, ssl: self.is_ssl(ex) }))
    }

    fn custom_response(&self, state: &ResponseState, h: &mut HeaderMap, _req: &HeaderMap) {
        for (n, v) in &self.response {
            match v {
                Some(v) => {
                    h.insert(n.clone(), v.clone());
                }
                None => {
                    h.remove(n);
                }
            }
        }
        let c = &self.cfg;
        if let Some(o) = state.origin.as_deref().and_then(|o| self.match_origin(o)) {
            if let Ok(v) = HeaderValue::from_str(&o) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            }
        }
        if c.access_control_allow_credentials {
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        let wildcard =
            c.access_control_expose_headers.iter().any(|e| e == "*") && c.access_control_allow_credentials;
        if !c.access_control_expose_headers.is_empty() && !wildcard {
            if let Ok(v) = HeaderValue::from_str(&c.access_control_expose_headers.join(",")) {
                h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
            }
        }
        if c.add_vary_header {
            let vary = h.get(header::VARY).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            if vary != "Origin" {
                let new = if vary.is_empty() { "Origin".to_string() } else { format!("{vary},Origin") };
                if let Ok(v) = HeaderValue::from_str(&new) {
                    h.insert(header::VARY, v);
                }
            }
        }
    }

    /// Response side: secure headers first (inner layer), then custom and CORS headers.
    pub fn response(&self, state: &ResponseState, h: &mut HeaderMap) {
        let dev = self.cfg.is_development;
        if let Some(sts) = &self.sts {
            if (state.ssl || self.cfg.force_sts_header) && !dev {
                h.insert(header::STRICT_TRANSPORT_SECURITY, sts.clone());
            }
        }
        for (n, v) in &self.secure {
            h.insert(n.clone(), v.clone());
        }
        if let Some(pk) = &self.public_key {
            if state.ssl && !dev {
                h.insert(HeaderName::from_static("public-key-pins"), pk.clone());
            }
        }
        self.custom_response(state, h, &HeaderMap::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(allow_origins: &[&str], credentials: bool) -> Headers {
        Headers::new(&cfg::Headers {
            access_control_allow_origin_list: allow_origins.iter().map(|s| s.to_string()).collect(),
            access_control_allow_origin_list_regex: vec![r"^https://.*\.example\.org$".into()],
            access_control_allow_methods: vec!["GET".into(), "POST".into()],
            access_control_allow_headers: vec!["X-A".into(), "X-B".into()],
            access_control_expose_headers: vec!["X-E".into()],
            access_control_max_age: Some(100),
            access_control_allow_credentials: credentials,
            add_vary_header: true,
            ..Default::default()
        })
        .expect("valid")
    }

    #[test]
    fn origins() {
        let cases = [
            ("exact", cors(&["https://a.com"], false), "https://a.com", Some("https://a.com")),
            ("other", cors(&["https://a.com"], false), "https://b.com", None),
            ("wildcard", cors(&["*"], false), "https://b.com", Some("*")),
            ("wildcard with credentials echoes", cors(&["*"], true), "https://b.com", Some("https://b.com")),
            ("regex", cors(&[], false), "https://x.example.org", Some("https://x.example.org")),
        ];
        for (name, h, origin, want) in cases {
            assert_eq!(h.match_origin(origin).as_deref(), want, "case {name}");
        }
    }

    #[test]
    fn preflight_headers() {
        let h = cors(&["https://a.com"], true);
        let mut req = HeaderMap::new();
        req.insert("origin", HeaderValue::from_static("https://a.com"));
        assert!(h.preflight(&Method::OPTIONS, &req).is_none(), "no request method: not a preflight");
        req.insert("access-control-request-method", HeaderValue::from_static("POST"));
        assert!(h.preflight(&Method::GET, &req).is_none(), "GET is not a preflight");
        let got = h.preflight(&Method::OPTIONS, &req).expect("preflight");
        let want = [
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-headers", "X-A,X-B"),
            ("access-control-allow-methods", "GET,POST"),
            ("access-control-allow-origin", "https://a.com"),
            ("access-control-max-age", "100"),
            ("access-control-expose-headers", "X-E"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn response_headers() {
        let h = Headers::new(&cfg::Headers {
            custom_response_headers: vec![("X-Custom".into(), "1".into()), ("Server".into(), String::new())],
            frame_deny: true,
            content_type_nosniff: true,
            browser_xss_filter: true,
            sts_seconds: 31536000,
            sts_include_subdomains: true,
            sts_preload: true,
            referrer_policy: "no-referrer".into(),
            add_vary_header: true,
            ..Default::default()
        })
        .expect("valid");
        let cases =
            [("http", false, None), ("https", true, Some("max-age=31536000; includeSubDomains; preload"))];
        for (name, ssl, sts) in cases {
            let mut resp = HeaderMap::new();
            resp.insert("server", HeaderValue::from_static("backend"));
            resp.insert("vary", HeaderValue::from_static("Accept-Encoding"));
            h.response(&ResponseState { origin: None, ssl }, &mut resp);
            assert_eq!(
                resp.get("strict-transport-security").map(|v| v.to_str().expect("ascii")),
                sts,
                "case {name}"
            );
            assert_eq!(resp["x-frame-options"], "DENY", "case {name}");
            assert_eq!(resp["x-content-type-options"], "nosniff", "case {name}");
            assert_eq!(resp["x-xss-protection"], "1; mode=block", "case {name}");
            assert_eq!(resp["referrer-policy"], "no-referrer", "case {name}");
            assert_eq!(resp["x-custom"], "1", "case {name}");
            assert_eq!(resp["vary"], "Accept-Encoding,Origin", "case {name}");
            assert!(!resp.contains_key("server"), "case {name}");
        }
    }
}
