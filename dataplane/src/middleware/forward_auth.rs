//! ForwardAuth: asks an authentication server first (through the worker's upstream pool). The
//! sub-request is a GET (or the request's method with `preserveRequestMethod`) to `address`,
//! with the request's headers (only `authRequestHeaders` when given) minus hop-by-hop ones, and
//! Traefik's `X-Forwarded-Method/-Proto/-Host/-Uri/-For` (the request's own values only with
//! `trustForwardHeader`). A 2xx lets the request through, with `authResponseHeaders` (and those
//! matching `authResponseHeadersRegex`) copied onto it and `addAuthCookiesToResponse` cookies
//! added to the final response; any other status is the answer, with the auth server's
//! headers and body (`Location` made absolute unless `preserveLocationHeader`). An unreachable
//! auth server is a bare 500; a body over `maxBodySize` with `forwardBody` a bare 401.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};

use weir_proto::middleware as cfg;
use weir_proto::snapshot::{Scheme, ServersTransport};

use super::buffering::{read_all, BufferError};
use super::{body, Cx, Exchange, Hook, Outcome};
use crate::http::pool::Target;
use crate::http::transport::Transport;
use crate::http::{hop, Body};
use crate::service::UpstreamBody;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// A compiled ForwardAuth.
pub struct ForwardAuth {
    scheme: Scheme,
    host: String,
    authority: String,
    /// `scheme://authority`, to make `Location` absolute.
    origin: String,
    /// The address's directory, for relative `Location`s.
    base_dir: String,
    target: Uri,
    addr: Option<SocketAddr>,
    transport: Arc<Transport>,
    trust: bool,
    response_headers: Vec<HeaderName>,
    response_regex: Option<regex::Regex>,
    request_headers: Vec<HeaderName>,
    cookies: Vec<String>,
    forward_body: bool,
    max_body: u64,
    preserve_location: bool,
    preserve_method: bool,
    /// Largest auth response body (`None`: no limit).
    max_response: Option<u64>,
    /// `authSigninURL`: a 401 from the auth server becomes a 302 there.
    signin: Option<HeaderValue>,
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuth").field("origin", &self.origin).field("target", &self.target).finish()
    }
}

impl ForwardAuth {
    /// Compiles the definition (resolving the auth server's host name now, off the hot path).
    pub fn new(c: &cfg::ForwardAuth) -> Result<ForwardAuth, String> {
        let uri: Uri = c.address.parse().map_err(|e| format!("address {:?}: {e}", c.address))?;
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            _ => return Err(format!("address {:?} must be an http or https URL", c.address)),
        };
        let authority = uri.authority().ok_or_else(|| format!("address {:?} has no host", c.address))?;
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = authority.port_u16().unwrap_or(if scheme == Scheme::Https { 443 } else { 80 });
        let addr = (host.as_str(), port).to_socket_addrs().ok().and_then(|mut a| a.next());
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let target: Uri = path.parse().map_err(|e| format!("address {:?}: {e}", c.address))?;
        let base_dir = match uri.path().rfind('/') {
            Some(i) => uri.path()[..=i].to_string(),
            None => "/".into(),
        };
        let transport = Transport::build(&ServersTransport {
            insecure_skip_verify: c.insecure_skip_verify,
            root_cas: c.root_cas.clone(),
            certificates: c.certificate.iter().cloned().collect(),
            ..ServersTransport::default()
        })?;
        let signin = match c.auth_signin_url.as_str() {
            "" => None,
            u => Some(HeaderValue::from_str(u).map_err(|e| format!("authSigninURL {u:?}: {e}"))?),
        };
        let names = |l: &[String]| -> Result<Vec<HeaderName>, String> {
            l.iter().map(|h| HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string())).collect()
        };
        let response_regex = match c.auth_response_headers_regex.as_str() {
            "" => None,
            r => Some(regex::Regex::new(r).map_err(|e| e.to_string())?),
        };
        Ok(ForwardAuth {
            scheme,
            origin: format!("{}://{}", uri.scheme_str().unwrap_or("http"), authority.as_str()),
            authority: authority.as_str().to_string(),
            host,
            base_dir,
            target,
            addr,
            transport: Arc::new(transport),
            trust: c.trust_forward_header,
            response_headers: names(&c.auth_response_headers)?,
            response_regex,
            request_headers: names(&c.auth_request_headers)?,
            cookies: c.add_auth_cookies_to_response.clone(),
            forward_body: c.forward_body,
            max_body: u64::try_from(c.max_body_size).unwrap_or(0),
            preserve_location: c.preserve_location_header,
            preserve_method: c.preserve_request_method,
            max_response: u64::try_from(c.max_response_body_size).ok(),
            signin,
        })
    }

    /// The auth request's headers (Traefik's `writeHeader`).
    pub fn auth_headers(&self, ex: &Exchange<'_>) -> HeaderMap {
        let mut h = ex.headers.clone();
        hop::strip(&mut h, true);
        for n in [header::TE, header::CONTENT_LENGTH, header::HOST] {
            h.remove(n);
        }
        if !self.request_headers.is_empty() {
            let mut kept = HeaderMap::new();
            for n in &self.request_headers {
                for v in h.get_all(n) {
                    kept.append(n.clone(), v.clone());
                }
            }
            h = kept;
        }
        let own = |n: &HeaderName| ex.headers.get(n).filter(|v| self.trust && !v.is_empty()).cloned();
        let mut xff = ex.peer.ip().to_string();
        if self.trust && ex.headers.contains_key(&X_FORWARDED_FOR) {
            let prior: Vec<&str> =
                ex.headers.get_all(&X_FORWARDED_FOR).iter().filter_map(|v| v.to_str().ok()).collect();
            xff = format!("{}, {xff}", prior.join(", "));
        }
        let set = |h: &mut HeaderMap, n: HeaderName, v: Option<HeaderValue>| match v {
            Some(v) => {
                h.insert(n, v);
            }
            None => {
                h.remove(n);
            }
        };
        set(&mut h, X_FORWARDED_FOR, HeaderValue::from_str(&xff).ok());
        let method = own(&X_FORWARDED_METHOD).or_else(|| HeaderValue::from_str(ex.method.as_str()).ok());
        set(&mut h, X_FORWARDED_METHOD, method);
        let proto = own(&X_FORWARDED_PROTO)
            .unwrap_or_else(|| HeaderValue::from_static(if ex.tls { "https" } else { "http" }));
        set(&mut h, X_FORWARDED_PROTO, Some(proto));
        if let Some(port) = own(&HeaderName::from_static("x-forwarded-port")) {
            h.insert("x-forwarded-port", port);
        }
        let host = own(&X_FORWARDED_HOST)
            .or_else(|| (!ex.host.is_empty()).then(|| HeaderValue::from_str(&ex.host).ok()).flatten());
        set(&mut h, X_FORWARDED_HOST, host);
        let uri = own(&X_FORWARDED_URI).or_else(|| HeaderValue::from_str(&ex.request_uri()).ok());
        set(&mut h, X_FORWARDED_URI, uri);
        if let Ok(v) = HeaderValue::from_str(&self.authority) {
            h.insert(header::HOST, v);
        }
        h
    }

    /// Request side.
    pub async fn request(&self, ex: &mut Exchange<'_>, cx: &Cx<'_>) -> Outcome {
        let mut headers = self.auth_headers(ex);
        let mut auth_body = UpstreamBody::Full(None);
        if self.forward_body {
            let taken = std::mem::replace(ex.body, UpstreamBody::Full(None));
            let bytes = match read_all(taken, self.max_body).await {
                Ok(b) => b,
                Err(BufferError::TooLarge) => {
                    return Outcome::Respond(body(StatusCode::UNAUTHORIZED, Bytes::new()))
                }
                Err(BufferError::Read) => {
                    return Outcome::Respond(body(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()))
                }
            };
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            *ex.body = UpstreamBody::full(bytes.clone());
            auth_body = UpstreamBody::full(bytes);
        }
        let mut req = Request::new(auth_body);
        *req.method_mut() = if self.preserve_method { ex.method.clone() } else { Method::GET };
        *req.uri_mut() = self.target.clone();
        *req.headers_mut() = headers;
        let unreachable = || Outcome::Respond(body(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()));
        let Some(addr) = self.addr else { return unreachable() };
        let target = Target {
            transport: &self.transport,
            addr,
            scheme: self.scheme,
            host: &self.host,
            authority: &self.authority,
        };
        let resp = match cx.worker.pool.send(&target, req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("forwardAuth {}: {}", self.origin, e.error);
                return unreachable();
            }
        };
        let (mut parts, incoming) = resp.into_parts();
        let auth_body = match read_limited(incoming, self.max_response).await {
            Ok(b) => b,
            // Traefik: an auth response over `maxResponseBodySize` is a bare 401.
            Err(BufferError::TooLarge) => {
                return Outcome::Respond(body(StatusCode::UNAUTHORIZED, Bytes::new()))
            }
            Err(BufferError::Read) => return unreachable(),
        };
        if let (Some(url), StatusCode::UNAUTHORIZED) = (&self.signin, parts.status) {
            return Outcome::Respond(signin_redirect(url, ex.method));
        }
        if !parts.status.is_success() {
            hop::strip(&mut parts.headers, false);
            if !self.preserve_location {
                if let Some(abs) = parts.headers.get(header::LOCATION).and_then(|l| self.absolute(l)) {
                    parts.headers.insert(header::LOCATION, abs);
                }
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            return Outcome::Respond(Response::from_parts(parts, Body::full(auth_body)));
        }
        for n in &self.response_headers {
            ex.headers.remove(n);
            for v in parts.headers.get_all(n) {
                ex.headers.append(n.clone(), v.clone());
            }
        }
        if let Some(re) = &self.response_regex {
            let drop: Vec<HeaderName> =
                ex.headers.keys().filter(|k| re.is_match(&canonical(k.as_str()))).cloned().collect();
            for k in drop {
                ex.headers.remove(k);
            }
            for (k, v) in &parts.headers {
                if re.is_match(&canonical(k.as_str())) {
                    ex.headers.append(k.clone(), v.clone());
                }
            }
        }
        let cookies: Vec<HeaderValue> = parts.headers.get_all(header::SET_COOKIE).iter().cloned().collect();
        if cookies.is_empty() {
            return Outcome::Next;
        }
        Outcome::NextWith(Hook::AuthCookies(cookies))
    }

    /// Response side: the listed auth cookies replace the response's cookies of the same name
    /// (Traefik applies this only when the auth server set cookies at all).
    pub fn response(&self, auth_cookies: &[HeaderValue], headers: &mut HeaderMap) {
        let listed = |v: &HeaderValue| {
            let text = v.to_str().unwrap_or("");
            let name = text.split(['=', ';']).next().unwrap_or("").trim();
            self.cookies.iter().any(|c| c == name)
        };
        let own: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
        headers.remove(header::SET_COOKIE);
        for v in own.into_iter().filter(|v| !listed(v)) {
            headers.append(header::SET_COOKIE, v);
        }
        for v in auth_cookies.iter().filter(|v| listed(v)) {
            headers.append(header::SET_COOKIE, v.clone());
        }
    }

    /// Go's `Response.Location()`: resolved against the auth server's URL.
    fn absolute(&self, location: &HeaderValue) -> Option<HeaderValue> {
        let l = location.to_str().ok()?;
        let abs = if l.contains("://") {
            return None;
        } else if let Some(rest) = l.strip_prefix("//") {
            format!("{}://{rest}", self.origin.split("://").next().unwrap_or("http"))
        } else if l.starts_with('/') {
            format!("{}{l}", self.origin)
        } else {
            format!("{}{}{l}", self.origin, self.base_dir)
        };
        HeaderValue::from_str(&abs).ok()
    }
}

/// Reads the auth response body; `max` bytes at most (Traefik reads `max + 1` and refuses
/// when they all came; a zero limit thus refuses any non-empty body).
async fn read_limited(incoming: hyper::body::Incoming, max: Option<u64>) -> Result<Bytes, BufferError> {
    match max {
        None => read_all(incoming, 0).await,
        Some(0) => match read_all(incoming, 1).await {
            Ok(b) if b.is_empty() => Ok(b),
            Ok(_) => Err(BufferError::TooLarge),
            Err(e) => Err(e),
        },
        Some(n) => read_all(incoming, n).await,
    }
}

/// Go's `http.Redirect(rw, req, url, 302)`: `Location`, and for GET and HEAD an HTML body
/// `Content-Type: text/html`, and for GET a body linking to it (`<a href="…">Found</a>.`).
pub fn signin_redirect(url: &HeaderValue, method: &Method) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut().insert(header::LOCATION, url.clone());
    if *method == Method::GET || *method == Method::HEAD {
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    }
    if *method == Method::GET {
        let escaped = html_escape(url.to_str().unwrap_or(""));
        *resp.body_mut() = Body::full(Bytes::from(format!("<a href=\"{escaped}\">Found</a>.\n\n")));
    }
    resp
}

/// Go's `html.EscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `http.CanonicalHeaderKey`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(trust: bool, request_headers: &[&str]) -> ForwardAuth {
        ForwardAuth::new(&cfg::ForwardAuth {
            address: "http://127.0.0.1:9/auth/check?x=1".into(),
            insecure_skip_verify: false,
            trust_forward_header: trust,
            auth_response_headers: vec![],
            auth_response_headers_regex: String::new(),
            auth_request_headers: request_headers.iter().map(|s| s.to_string()).collect(),
            add_auth_cookies_to_response: vec!["session".into()],
            forward_body: false,
            max_body_size: -1,
            preserve_location_header: false,
            preserve_request_method: false,
            root_cas: vec![],
            certificate: None,
            max_response_body_size: -1,
            auth_signin_url: String::new(),
        })
        .expect("valid")
    }

    #[test]
    fn auth_request_headers() {
        let method = Method::POST;
        let mut body = UpstreamBody::Full(None);
        let mut headers = HeaderMap::new();
        for (k, v) in [
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "proxy.test"),
            ("authorization", "Bearer t"),
            ("content-length", "3"),
            ("connection", "keep-alive"),
            ("host", "app.test"),
        ] {
            headers.insert(k, v.parse().expect("value"));
        }
        let peer: SocketAddr = "192.0.2.7:5000".parse().expect("addr");
        // (case, trust, authRequestHeaders, header, expected value)
        let cases = [
            ("peer only when untrusted", false, vec![], "x-forwarded-for", Some("192.0.2.7")),
            ("appended when trusted", true, vec![], "x-forwarded-for", Some("10.0.0.1, 192.0.2.7")),
            ("method", false, vec![], "x-forwarded-method", Some("POST")),
            ("proto from the connection", false, vec![], "x-forwarded-proto", Some("http")),
            ("proto trusted", true, vec![], "x-forwarded-proto", Some("https")),
            ("host from the request", false, vec![], "x-forwarded-host", Some("app.test")),
            ("uri", false, vec![], "x-forwarded-uri", Some("/p?q=1")),
            ("auth server host", false, vec![], "host", Some("127.0.0.1:9")),
            ("headers copied", false, vec![], "authorization", Some("Bearer t")),
            ("no body length", false, vec![], "content-length", None),
            ("hop-by-hop removed", false, vec![], "connection", None),
            ("filtered out", false, vec!["x-other"], "authorization", None),
            ("filtered in", false, vec!["Authorization"], "authorization", Some("Bearer t")),
        ];
        for (name, trust, filter, h, want) in cases {
            let m = auth(trust, &filter);
            let ex = Exchange {
                method: &method,
                headers: &mut headers,
                body: &mut body,
                path: "/p".into(),
                query: Some("q=1".into()),
                host: "app.test".into(),
                peer,
                tls: false,
                client_certs: &[],
                suppress_xff: false,
            };
            let got = m.auth_headers(&ex);
            assert_eq!(got.get(h).map(|v| v.to_str().unwrap_or("")), want, "case {name}");
        }
    }

    #[test]
    fn signin_redirects() {
        let url = HeaderValue::from_static("https://sso.test/login?next=a&b='c'");
        let cases = [
            (
                Method::GET,
                Some("text/html; charset=utf-8"),
                "<a href=\"https://sso.test/login?next=a&amp;b=&#39;c&#39;\">Found</a>.\n\n",
            ),
            (Method::HEAD, Some("text/html; charset=utf-8"), ""),
            (Method::POST, None, ""),
        ];
        for (method, ct, want) in cases {
            let resp = signin_redirect(&url, &method);
            assert_eq!(resp.status(), 302, "{method}");
            assert_eq!(resp.headers()[header::LOCATION], url, "{method}");
            assert_eq!(
                resp.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")),
                ct,
                "{method}"
            );
            let body =
                futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(resp.into_body()))
                    .expect("ready")
                    .expect("body")
                    .to_bytes();
            assert_eq!(body, want.as_bytes(), "{method}");
        }
    }

    #[test]
    fn locations_and_cookies() {
        let m = auth(false, &[]);
        let abs = |l: &'static str| {
            m.absolute(&HeaderValue::from_static(l)).map(|v| v.to_str().unwrap_or("").to_string())
        };
        assert_eq!(abs("/login").as_deref(), Some("http://127.0.0.1:9/login"));
        assert_eq!(abs("login").as_deref(), Some("http://127.0.0.1:9/auth/login"));
        assert_eq!(abs("https://sso.test/x"), None, "already absolute");
        let mut h = HeaderMap::new();
        h.append(header::SET_COOKIE, HeaderValue::from_static("session=old"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("theme=dark"));
        m.response(
            &[HeaderValue::from_static("session=new; Path=/"), HeaderValue::from_static("other=1")],
            &mut h,
        );
        let got: Vec<&str> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap_or("")).collect();
        assert_eq!(got, ["theme=dark", "session=new; Path=/"]);
        assert_eq!(canonical("x-auth-user"), "X-Auth-User");
    }
}
