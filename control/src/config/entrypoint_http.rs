//! HTTP options of an entrypoint (`--entryPoints.<name>.http.*` and `.http2.*`): the HTTP/2
//! stream limit, the entrypoint-wide redirection (Traefik generates a router for it) and the
//! entrypoint-wide TLS that makes every router on it a TLS router.

/// Traefik's `http2.maxConcurrentStreams` default.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 250;

/// Traefik's default priority of the generated redirection router: `math.MaxInt - 1`.
pub const DEFAULT_REDIRECT_PRIORITY: i64 = i64::MAX - 1;

/// HTTP options of one entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPointHttp {
    /// `http2.maxConcurrentStreams`.
    pub max_concurrent_streams: u32,
    /// `http.redirections.entryPoint`.
    pub redirection: Option<Redirection>,
    /// `http.tls`: every router of the entrypoint is a TLS router.
    pub tls: Option<EntryPointTls>,
    /// Transport options and request limits (`transport.*`, `http.maxHeaderBytes`, ...).
    pub transport: super::entrypoint_options::TransportOptions,
}

impl Default for EntryPointHttp {
    fn default() -> Self {
        EntryPointHttp {
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            redirection: None,
            tls: None,
            transport: Default::default(),
        }
    }
}

/// `http.redirections.entryPoint`: redirect every request to another entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// Target entrypoint name (`to`); its port is used in the `Location`.
    pub to: String,
    /// Scheme of the `Location` (default `https`).
    pub scheme: String,
    /// 301/308 when true (the default), 302/307 otherwise.
    pub permanent: bool,
    /// Priority of the generated router.
    pub priority: i64,
}

/// `http.tls` of an entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryPointTls {
    /// `http.tls.options`: TLS option of routers that name none.
    pub options: Option<String>,
    /// `http.tls.certResolver` (ACME is not supported: reported, then ignored).
    pub cert_resolver: Option<String>,
}

/// An `http.*` / `http2.*` option key, lower-cased, after `entryPoints.<name>.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKey {
    /// `http2.maxConcurrentStreams`.
    MaxConcurrentStreams,
    /// `http.redirections.entryPoint.to`.
    RedirectTo,
    /// `http.redirections.entryPoint.scheme`.
    RedirectScheme,
    /// `http.redirections.entryPoint.permanent`.
    RedirectPermanent,
    /// `http.redirections.entryPoint.priority`.
    RedirectPriority,
    /// `http.tls` (bare: enables TLS).
    Tls,
    /// `http.tls.options`.
    TlsOptions,
    /// `http.tls.certResolver`.
    TlsCertResolver,
    /// A transport option or request limit.
    Transport(super::entrypoint_options::OptKey),
}

impl HttpKey {
    /// The key for a lower-cased option name, if it is one of these.
    pub fn from_lower(option: &str) -> Option<HttpKey> {
        Some(match option {
            "http2.maxconcurrentstreams" => HttpKey::MaxConcurrentStreams,
            "http.redirections.entrypoint.to" => HttpKey::RedirectTo,
            "http.redirections.entrypoint.scheme" => HttpKey::RedirectScheme,
            "http.redirections.entrypoint.permanent" => HttpKey::RedirectPermanent,
            "http.redirections.entrypoint.priority" => HttpKey::RedirectPriority,
            "http.tls" => HttpKey::Tls,
            "http.tls.options" => HttpKey::TlsOptions,
            "http.tls.certresolver" => HttpKey::TlsCertResolver,
            other => HttpKey::Transport(super::entrypoint_options::OptKey::from_lower(other)?),
        })
    }
}

/// `http.*` options as they are read, checked once all arguments are in.
#[derive(Debug, Clone, Default)]
pub struct HttpDraft {
    max_concurrent_streams: Option<u32>,
    redirect_to: Option<String>,
    redirect_scheme: Option<String>,
    redirect_permanent: Option<bool>,
    redirect_priority: Option<i64>,
    tls: Option<bool>,
    tls_options: Option<String>,
    tls_cert_resolver: Option<String>,
    transport: super::entrypoint_options::TransportOptions,
}

impl HttpDraft {
    /// Records one option; the error is the reason the value is refused.
    pub fn set(&mut self, key: HttpKey, value: &str) -> Result<(), String> {
        match key {
            HttpKey::MaxConcurrentStreams => {
                let n: u32 = value.parse().map_err(|_| "expected a positive integer".to_string())?;
                if n == 0 {
                    return Err("must be at least 1".into());
                }
                self.max_concurrent_streams = Some(n);
            }
            HttpKey::RedirectTo => self.redirect_to = Some(value.to_string()),
            HttpKey::RedirectScheme => self.redirect_scheme = Some(value.to_string()),
            HttpKey::RedirectPermanent => self.redirect_permanent = Some(super::value::parse_bool(value)?),
            HttpKey::RedirectPriority => {
                self.redirect_priority = Some(value.parse().map_err(|_| "expected an integer".to_string())?)
            }
            HttpKey::Tls => self.tls = Some(super::value::parse_bool(value)?),
            HttpKey::TlsOptions => self.tls_options = Some(value.to_string()),
            HttpKey::TlsCertResolver => self.tls_cert_resolver = Some(value.to_string()),
            HttpKey::Transport(k) => self.transport.set(k, value)?,
        }
        Ok(())
    }

    /// The options, Traefik's defaults filled in. A `scheme`, `permanent` or `priority` without
    /// `to` configures nothing, as in Traefik (the redirection exists only with a target).
    pub fn finish(self) -> EntryPointHttp {
        let redirection = self.redirect_to.filter(|t| !t.is_empty()).map(|to| Redirection {
            to,
            scheme: self.redirect_scheme.filter(|s| !s.is_empty()).unwrap_or_else(|| "https".into()),
            permanent: self.redirect_permanent.unwrap_or(true),
            priority: self.redirect_priority.filter(|p| *p != 0).unwrap_or(DEFAULT_REDIRECT_PRIORITY),
        });
        // Traefik: setting `http.tls.options` or `.certResolver` enables the section too.
        let tls_on = self.tls.unwrap_or(self.tls_options.is_some() || self.tls_cert_resolver.is_some());
        let tls = tls_on.then(|| EntryPointTls {
            options: self.tls_options.filter(|o| !o.is_empty()),
            cert_resolver: self.tls_cert_resolver.filter(|r| !r.is_empty()),
        });
        EntryPointHttp {
            max_concurrent_streams: self.max_concurrent_streams.unwrap_or(DEFAULT_MAX_CONCURRENT_STREAMS),
            redirection,
            tls,
            transport: self.transport,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(options: &[(&str, &str)]) -> Result<EntryPointHttp, String> {
        let mut d = HttpDraft::default();
        for (k, v) in options {
            let key = HttpKey::from_lower(&k.to_ascii_lowercase()).ok_or(format!("unknown {k}"))?;
            d.set(key, v)?;
        }
        Ok(d.finish())
    }

    #[test]
    fn http_options() {
        let redirect = |to: &str, scheme: &str, permanent, priority| Redirection {
            to: to.into(),
            scheme: scheme.into(),
            permanent,
            priority,
        };
        type Case = (&'static str, Vec<(&'static str, &'static str)>, Result<EntryPointHttp, ()>);
        let cases: Vec<Case> = vec![
            ("defaults", vec![], Ok(EntryPointHttp::default())),
            (
                "streams",
                vec![("http2.maxConcurrentStreams", "42")],
                Ok(EntryPointHttp { max_concurrent_streams: 42, ..Default::default() }),
            ),
            ("zero streams", vec![("http2.maxConcurrentStreams", "0")], Err(())),
            (
                "redirection defaults",
                vec![("http.redirections.entryPoint.to", "websecure")],
                Ok(EntryPointHttp {
                    redirection: Some(redirect("websecure", "https", true, DEFAULT_REDIRECT_PRIORITY)),
                    ..Default::default()
                }),
            ),
            (
                "redirection spelled out",
                vec![
                    ("http.redirections.entryPoint.to", "other"),
                    ("http.redirections.entryPoint.scheme", "http"),
                    ("http.redirections.entryPoint.permanent", "false"),
                    ("http.redirections.entryPoint.priority", "10"),
                ],
                Ok(EntryPointHttp {
                    redirection: Some(redirect("other", "http", false, 10)),
                    ..Default::default()
                }),
            ),
            (
                "scheme without target does nothing",
                vec![("http.redirections.entryPoint.scheme", "https")],
                Ok(EntryPointHttp::default()),
            ),
            ("bad permanent", vec![("http.redirections.entryPoint.permanent", "yes")], Err(())),
            (
                "bare tls",
                vec![("http.tls", "true")],
                Ok(EntryPointHttp { tls: Some(EntryPointTls::default()), ..Default::default() }),
            ),
            (
                "tls options enable tls",
                vec![("http.tls.options", "foo-bar")],
                Ok(EntryPointHttp {
                    tls: Some(EntryPointTls { options: Some("foo-bar".into()), cert_resolver: None }),
                    ..Default::default()
                }),
            ),
            ("tls off", vec![("http.tls", "false")], Ok(EntryPointHttp::default())),
        ];
        for (name, options, want) in cases {
            assert_eq!(draft(&options).map_err(|_| ()), want, "case {name}");
        }
    }
}
