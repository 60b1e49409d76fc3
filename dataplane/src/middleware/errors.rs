//! Errors: when the response status is in `status`, Traefik's custom error pages replace it
//! with the answer of the page service to `GET http://<original host><query>` — `{status}`
//! (after `statusRewrites`), `{originalStatus}` and `{url}` (the query-escaped original request
//! URI) substituted, the query always starting with `/` — sent with the request's headers (or
//! only `errorRequestHeaders`). The client gets the page's headers and body with the original
//! (or rewritten) status.

use std::rc::Rc;

use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode, Uri};

use weir_proto::middleware as cfg;

use super::{go_error, Cx, Exchange, Hook, Outcome};
use crate::http::Body;
use crate::service::UpstreamBody;
use crate::table::ServiceId;

/// A compiled Errors.
#[derive(Debug)]
pub struct Errors {
    status: Vec<(u16, u16)>,
    rewrites: Vec<((u16, u16), u16)>,
    service: ServiceId,
    query: String,
    headers: Option<Vec<HeaderName>>,
}

/// What the page request needs from the original request.
#[derive(Debug)]
pub struct Original {
    host: String,
    uri: String,
    headers: HeaderMap,
}

impl Errors {
    /// Compiles the definition; `service` is the page service's id.
    pub fn new(c: &cfg::Errors, service: ServiceId) -> Result<Errors, String> {
        let headers = match &c.error_request_headers {
            None => None,
            Some(l) => Some(
                l.iter()
                    .map(|h| HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string()))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Errors {
            status: c.status.clone(),
            rewrites: c.status_rewrites.clone(),
            service,
            query: c.query.clone(),
            headers,
        })
    }

    /// Request side: remembers what the page request needs.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        let headers = match &self.headers {
            None => ex.headers.clone(),
            Some(names) => {
                let mut h = HeaderMap::new();
                for n in names {
                    for v in ex.headers.get_all(n) {
                        h.append(n.clone(), v.clone());
                    }
                }
                h
            }
        };
        Outcome::NextWith(Hook::Errors(Box::new(Original {
            host: ex.host.clone(),
            uri: ex.request_uri(),
            headers,
        })))
    }

    /// The status the client gets for `code`, if the page replaces the response.
    pub fn catches(&self, code: u16) -> Option<u16> {
        let within = |(a, b): &(u16, u16)| (*a..=*b).contains(&code);
        if !self.status.iter().any(within) {
            return None;
        }
        Some(self.rewrites.iter().find(|(r, _)| within(r)).map_or(code, |(_, to)| *to))
    }

    /// The page path for a caught response.
    pub fn page_path(&self, code: u16, original: u16, uri: &str) -> String {
        if self.query.is_empty() {
            return "/".into();
        }
        format!("/{}", self.query.trim_start_matches('/'))
            .replace("{status}", &code.to_string())
            .replace("{originalStatus}", &original.to_string())
            .replace("{url}", &query_escape(uri))
    }

    /// Response side.
    pub async fn response(&self, original: Original, resp: Response<Body>, cx: &Cx<'_>) -> Response<Body> {
        let from = resp.status().as_u16();
        let Some(code) = self.catches(from) else { return resp };
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        drop(resp);
        let Ok(uri) = self.page_path(code, from, &original.uri).parse::<Uri>() else {
            return go_error(status, super::go_status_text(status));
        };
        let mut req = Request::new(UpstreamBody::Full(None));
        *req.method_mut() = Method::GET;
        *req.uri_mut() = uri;
        *req.headers_mut() = original.headers;
        req.headers_mut().remove(http::header::CONTENT_LENGTH);
        req.headers_mut().remove(http::header::TRANSFER_ENCODING);
        if let Ok(h) = http::HeaderValue::from_str(&original.host) {
            req.headers_mut().insert(http::header::HOST, h);
        }
        let mut page =
            crate::service::forward(Rc::clone(cx.worker), Rc::clone(cx.generation), self.service, req).await;
        *page.status_mut() = status;
        page
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_and_builds_page_paths() {
        let e = Errors::new(
            &cfg::Errors {
                status: vec![(500, 599), (404, 404)],
                status_rewrites: vec![((502, 504), 500)],
                service: "s".into(),
                query: "err/{status}.html?from={originalStatus}&u={url}".into(),
                error_request_headers: None,
            },
            0,
        )
        .expect("valid");
        // (case, backend status, client status)
        let cases = [
            ("not caught", 200, None),
            ("caught", 500, Some(500)),
            ("single code", 404, Some(404)),
            ("rewritten", 503, Some(500)),
            ("outside", 403, None),
        ];
        for (name, from, want) in cases {
            assert_eq!(e.catches(from), want, "case {name}");
        }
        assert_eq!(e.page_path(500, 503, "/a b?x=1"), "/err/500.html?from=503&u=%2Fa+b%3Fx%3D1");
        let bare = Errors::new(
            &cfg::Errors {
                status: vec![(500, 500)],
                status_rewrites: vec![],
                service: "s".into(),
                query: String::new(),
                error_request_headers: None,
            },
            0,
        )
        .expect("valid");
        assert_eq!(bare.page_path(500, 500, "/x"), "/");
    }
}
