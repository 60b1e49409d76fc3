//! Entrypoint transport options and request limits: `transport.respondingTimeouts.*`,
//! `transport.lifeCycle.*`, `transport.keepAliveMax*`, `http.maxHeaderBytes`,
//! `http.underscoreHeadersStrategy`, `http.encodedCharacters.*`, `http.middlewares`,
//! `http.sanitizePath`, `http.encodeQuerySemicolons` and `forwardedHeaders.connection`.

use weir_proto::entrypoint::{EntryPointOptions, UnderscoreHeaders};

/// Traefik 3.6's `http.encodedCharacters` options (lower-case) and the escape each allows.
pub const ENCODED: [(&str, &str); 7] = [
    ("allowencodedslash", "2F"),
    ("allowencodedbackslash", "5C"),
    ("allowencodednullcharacter", "00"),
    ("allowencodedsemicolon", "3B"),
    ("allowencodedpercent", "25"),
    ("allowencodedquestionmark", "3F"),
    ("allowencodedhash", "23"),
];

/// One of these options (lower-cased key after `entryPoints.<name>.`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKey {
    /// `transport.respondingTimeouts.readTimeout`.
    ReadTimeout,
    /// `transport.respondingTimeouts.writeTimeout`.
    WriteTimeout,
    /// `transport.respondingTimeouts.idleTimeout`.
    IdleTimeout,
    /// `transport.lifeCycle.requestAcceptGraceTimeout`.
    RequestAcceptGraceTimeout,
    /// `transport.lifeCycle.graceTimeOut`.
    GraceTimeout,
    /// `transport.keepAliveMaxRequests`.
    KeepAliveMaxRequests,
    /// `transport.keepAliveMaxTime`.
    KeepAliveMaxTime,
    /// `http.maxHeaderBytes`.
    MaxHeaderBytes,
    /// `http.underscoreHeadersStrategy`.
    UnderscoreHeaders,
    /// `http.encodedCharacters.allowEncoded*`: index into [`ENCODED`].
    Encoded(usize),
    /// `http.middlewares`.
    Middlewares,
    /// `http.sanitizePath`.
    SanitizePath,
    /// `http.encodeQuerySemicolons`.
    EncodeQuerySemicolons,
    /// `forwardedHeaders.connection`.
    ForwardedConnection,
}

impl OptKey {
    /// The key for a lower-cased option name, if it is one of these.
    pub fn from_lower(option: &str) -> Option<OptKey> {
        Some(match option {
            "transport.respondingtimeouts.readtimeout" => OptKey::ReadTimeout,
            "transport.respondingtimeouts.writetimeout" => OptKey::WriteTimeout,
            "transport.respondingtimeouts.idletimeout" => OptKey::IdleTimeout,
            "transport.lifecycle.requestacceptgracetimeout" => OptKey::RequestAcceptGraceTimeout,
            "transport.lifecycle.gracetimeout" => OptKey::GraceTimeout,
            "transport.keepalivemaxrequests" => OptKey::KeepAliveMaxRequests,
            "transport.keepalivemaxtime" => OptKey::KeepAliveMaxTime,
            "http.maxheaderbytes" => OptKey::MaxHeaderBytes,
            "http.underscoreheadersstrategy" => OptKey::UnderscoreHeaders,
            "http.middlewares" => OptKey::Middlewares,
            "http.sanitizepath" => OptKey::SanitizePath,
            "http.encodequerysemicolons" => OptKey::EncodeQuerySemicolons,
            "forwardedheaders.connection" => OptKey::ForwardedConnection,
            other => {
                let name = other.strip_prefix("http.encodedcharacters.")?;
                OptKey::Encoded(ENCODED.iter().position(|(n, _)| *n == name)?)
            }
        })
    }
}

/// These options as read; `Default` is Traefik's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// What the data plane applies.
    pub options: EntryPointOptions,
    /// `http.middlewares`: prepended to every router of the entrypoint (`name@provider`).
    pub middlewares: Vec<String>,
    /// `http.sanitizePath` (default true).
    pub sanitize_path: bool,
    /// `http.encodeQuerySemicolons` (default false).
    pub encode_query_semicolons: bool,
    allowed: [bool; 7],
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            options: EntryPointOptions::default(),
            middlewares: Vec::new(),
            sanitize_path: true,
            encode_query_semicolons: false,
            allowed: [true; 7],
        }
    }
}

/// A duration where `0` means none: integer seconds or Go syntax.
fn duration_ms(value: &str) -> Result<u64, String> {
    let v = value.trim();
    if v == "0" {
        return Ok(0);
    }
    match crate::translate::duration::parse_str_nanos(v) {
        Some(ns) if ns >= 0 => Ok(u64::try_from(ns / 1_000_000).unwrap_or(u64::MAX)),
        Some(_) => Err("must not be negative".into()),
        None => Err(format!("`{value}` is not a duration (seconds, or Go syntax such as 500ms)")),
    }
}

fn count(value: &str) -> Result<u64, String> {
    value.trim().parse::<u64>().map_err(|_| "expected a non-negative integer".to_string())
}

fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

impl TransportOptions {
    /// Records one option; the error is the reason the value is refused.
    pub fn set(&mut self, key: OptKey, value: &str) -> Result<(), String> {
        let o = &mut self.options;
        match key {
            OptKey::ReadTimeout => o.read_timeout_ms = duration_ms(value)?,
            OptKey::WriteTimeout => o.write_timeout_ms = duration_ms(value)?,
            OptKey::IdleTimeout => o.idle_timeout_ms = duration_ms(value)?,
            OptKey::RequestAcceptGraceTimeout => o.request_accept_grace_timeout_ms = duration_ms(value)?,
            OptKey::GraceTimeout => o.grace_timeout_ms = duration_ms(value)?,
            OptKey::KeepAliveMaxRequests => o.keep_alive_max_requests = count(value)?,
            OptKey::KeepAliveMaxTime => o.keep_alive_max_time_ms = duration_ms(value)?,
            OptKey::MaxHeaderBytes => {
                // Go's http.Server: 0 (or less) means its default, 1 MiB.
                let n: i64 = value.trim().parse().map_err(|_| "expected an integer".to_string())?;
                o.max_header_bytes =
                    if n <= 0 { weir_proto::entrypoint::DEFAULT_MAX_HEADER_BYTES } else { n as u64 };
            }
            OptKey::UnderscoreHeaders => {
                o.underscore_headers = match value.trim().to_ascii_lowercase().as_str() {
                    "" | "keep" => UnderscoreHeaders::Keep,
                    "delete" => UnderscoreHeaders::Delete,
                    "reject" => UnderscoreHeaders::Reject,
                    _ => return Err("expected keep, delete or reject".into()),
                }
            }
            OptKey::Encoded(i) => {
                self.allowed[i] = super::value::parse_bool(value)?;
                o.denied_encoded = ENCODED
                    .iter()
                    .zip(self.allowed)
                    .filter(|(_, allowed)| !allowed)
                    .map(|((_, hex), _)| (*hex).to_string())
                    .collect();
            }
            OptKey::Middlewares => self.middlewares = list(value),
            OptKey::SanitizePath => self.sanitize_path = super::value::parse_bool(value)?,
            OptKey::EncodeQuerySemicolons => self.encode_query_semicolons = super::value::parse_bool(value)?,
            OptKey::ForwardedConnection => o.forwarded_connection = list(value),
        }
        Ok(())
    }

    /// Options weir reads but does not apply, for the startup warning.
    pub fn not_honoured(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.sanitize_path {
            out.push("http.sanitizePath=false (weir always cleans the path)");
        }
        if self.encode_query_semicolons {
            out.push("http.encodeQuerySemicolons");
        }
        if !self.options.forwarded_connection.is_empty() {
            out.push("forwardedHeaders.connection");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(options: &[(&str, &str)]) -> Result<TransportOptions, String> {
        let mut t = TransportOptions::default();
        for (k, v) in options {
            let key = OptKey::from_lower(&k.to_ascii_lowercase()).ok_or(format!("unknown {k}"))?;
            t.set(key, v)?;
        }
        Ok(t)
    }

    #[test]
    fn options() {
        let def = EntryPointOptions::default;
        type Case = (&'static str, Vec<(&'static str, &'static str)>, Result<EntryPointOptions, ()>);
        let cases: Vec<Case> = vec![
            ("defaults", vec![], Ok(def())),
            (
                "timeouts",
                vec![
                    ("transport.respondingTimeouts.readTimeout", "5s"),
                    ("transport.respondingTimeouts.writeTimeout", "1m30s"),
                    ("transport.respondingTimeouts.idleTimeout", "2"),
                    ("transport.lifeCycle.requestAcceptGraceTimeout", "250ms"),
                    ("transport.lifeCycle.graceTimeOut", "0"),
                ],
                Ok(EntryPointOptions {
                    read_timeout_ms: 5000,
                    write_timeout_ms: 90_000,
                    idle_timeout_ms: 2000,
                    request_accept_grace_timeout_ms: 250,
                    grace_timeout_ms: 0,
                    ..def()
                }),
            ),
            (
                "keep-alive limits",
                vec![("transport.keepAliveMaxRequests", "3"), ("transport.keepAliveMaxTime", "10s")],
                Ok(EntryPointOptions { keep_alive_max_requests: 3, keep_alive_max_time_ms: 10_000, ..def() }),
            ),
            (
                "header bytes",
                vec![("http.maxHeaderBytes", "4096")],
                Ok(EntryPointOptions { max_header_bytes: 4096, ..def() }),
            ),
            ("zero header bytes is the default", vec![("http.maxHeaderBytes", "0")], Ok(def())),
            (
                "underscore reject",
                vec![("http.underscoreHeadersStrategy", "Reject")],
                Ok(EntryPointOptions { underscore_headers: UnderscoreHeaders::Reject, ..def() }),
            ),
            (
                "encoded characters",
                vec![
                    ("http.encodedCharacters.allowEncodedSlash", "false"),
                    ("http.encodedCharacters.allowEncodedHash", "false"),
                    ("http.encodedCharacters.allowEncodedHash", "true"),
                ],
                Ok(EntryPointOptions { denied_encoded: vec!["2F".into()], ..def() }),
            ),
            ("bad duration", vec![("transport.respondingTimeouts.idleTimeout", "soon")], Err(())),
            ("bad strategy", vec![("http.underscoreHeadersStrategy", "drop")], Err(())),
            ("bad count", vec![("transport.keepAliveMaxRequests", "-1")], Err(())),
        ];
        for (name, options, want) in cases {
            assert_eq!(read(&options).map(|t| t.options).map_err(|_| ()), want, "case {name}");
        }
        let t =
            read(&[("http.middlewares", "auth@kubernetescrd, strip@file"), ("http.sanitizePath", "false")])
                .expect("parses");
        assert_eq!(t.middlewares, vec!["auth@kubernetescrd".to_string(), "strip@file".to_string()]);
        assert_eq!(t.not_honoured().len(), 1);
    }
}
