//! Traefik's BasicAuth: credentials from `Authorization: Basic`, checked against htpasswd
//! hashes; a miss answers 401 with `WWW-Authenticate: Basic realm="<realm>"`, `text/plain`,
//! and go-http-auth's body `401 Unauthorized\n`. An unknown user is checked against some
//! user's hash anyway, so timing does not tell which users exist.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};

use weir_proto::middleware as cfg;

use super::{htpasswd, Exchange, Outcome};

/// A compiled BasicAuth.
#[derive(Debug)]
pub struct BasicAuth {
    users: HashMap<String, String>,
    not_found_hash: String,
    challenge: HeaderValue,
    remove_header: bool,
    header_field: Option<HeaderName>,
}

impl BasicAuth {
    /// Compiles the user table.
    pub fn new(c: &cfg::BasicAuth) -> Result<BasicAuth, String> {
        let users: HashMap<String, String> = c.users.iter().cloned().collect();
        let not_found_hash = c.users.first().map(|(_, h)| h.clone()).ok_or("no users found")?;
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{}\"", c.realm)).map_err(|e| e.to_string())?;
        let header_field = if c.header_field.is_empty() {
            None
        } else {
            Some(HeaderName::from_bytes(c.header_field.as_bytes()).map_err(|e| e.to_string())?)
        };
        Ok(BasicAuth { users, not_found_hash, challenge, remove_header: c.remove_header, header_field })
    }

    /// The authenticated user, if the request's credentials are valid.
    pub fn authenticate(&self, headers: &HeaderMap) -> Option<String> {
        let (user, password) = basic_credentials(headers)?;
        match self.users.get(&user) {
            Some(hash) => htpasswd::verify(password.as_bytes(), hash).then_some(user),
            None => {
                let _ = htpasswd::verify(password.as_bytes(), &self.not_found_hash);
                None
            }
        }
    }

    /// Request side.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        let Some(user) = self.authenticate(ex.headers) else {
            let mut resp =
                http::Response::new(crate::http::Body::full(Bytes::from_static(b"401 Unauthorized\n")));
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            h.insert(header::WWW_AUTHENTICATE, self.challenge.clone());
            return Outcome::Respond(resp);
        };
        if let Some(field) = &self.header_field {
            if let Ok(v) = HeaderValue::from_str(&user) {
                ex.headers.insert(field.clone(), v);
            }
        }
        if self.remove_header {
            ex.headers.remove(header::AUTHORIZATION);
        }
        Outcome::NextWith(super::Hook::Authenticated(user))
    }
}

/// Go's `req.BasicAuth()`: case-insensitive `Basic ` scheme, standard base64, split at the
/// first colon.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.as_bytes();
    if v.len() < 6 || !v[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(&v[6..]).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let auth = BasicAuth::new(&cfg::BasicAuth {
            users: vec![("test".into(), "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/".into())],
            realm: "traefik".into(),
            remove_header: false,
            header_field: String::new(),
        })
        .expect("valid");
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let cases = [
            ("valid", format!("Basic {}", b64("test:test")), Some("test")),
            ("scheme case-insensitive", format!("bAsIc {}", b64("test:test")), Some("test")),
            ("wrong password", format!("Basic {}", b64("test:nope")), None),
            ("unknown user", format!("Basic {}", b64("who:test")), None),
            ("no colon", format!("Basic {}", b64("test")), None),
            ("bearer", "Bearer abc".to_string(), None),
            ("bad base64", "Basic !!!".to_string(), None),
        ];
        for (name, value, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).expect("ascii"));
            assert_eq!(auth.authenticate(&h).as_deref(), want, "case {name}");
        }
        assert_eq!(auth.authenticate(&HeaderMap::new()), None, "no header");
    }
}
