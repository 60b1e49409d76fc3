//! Access-log lines as Traefik writes them (pkg/middlewares/accesslog): the extended Common
//! Log Format, plain CLF (`genericCLF`), and logrus's JSON with Traefik's field names. Pure:
//! an [`Entry`] and the field settings in, bytes out.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use weir_proto::observability::{AccessLogFields, AccessLogFormat, FieldMode};

/// What one request leaves for the access log.
#[derive(Debug)]
pub struct Entry<'a> {
    /// When the request arrived.
    pub start: SystemTime,
    /// Until the end of the response body.
    pub duration: Duration,
    /// Until the backend's response headers, when a backend answered.
    pub origin_duration: Option<Duration>,
    /// The client's address.
    pub client_addr: std::net::SocketAddr,
    /// `X-Forwarded-For` as the client sent it (Traefik's ClientHost prefers it).
    pub forwarded_for: Option<&'a str>,
    /// `Host` (or the absolute-form authority).
    pub host: Option<&'a str>,
    /// Method.
    pub method: &'a str,
    /// Path and query as received.
    pub path: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub protocol: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Status sent to the client.
    pub status: u16,
    /// Status the backend answered, when one did.
    pub origin_status: Option<u16>,
    /// Response body bytes sent.
    pub size: u64,
    /// Request body bytes.
    pub request_size: u64,
    /// Request number on this worker.
    pub count: u64,
    /// Entrypoint.
    pub entrypoint: &'a str,
    /// Router, when one matched.
    pub router: Option<&'a str>,
    /// The router's service.
    pub service: Option<&'a str>,
    /// The server that answered (`http://10.0.0.1:80`).
    pub service_url: Option<&'a str>,
    /// The server's `host:port`.
    pub service_addr: Option<&'a str>,
    /// Retries the Retry middleware made.
    pub retry_attempts: u32,
    /// Request headers (only filled when some header is kept).
    pub request_headers: &'a HeaderMap,
    /// Response headers (only filled when some header is kept).
    pub response_headers: &'a HeaderMap,
    /// The server's response headers before middlewares (only filled when some header is kept).
    pub origin_headers: &'a HeaderMap,
    /// `(TLSVersion, TLSCipher)` when the request arrived over TLS.
    pub tls: Option<(&'a str, &'a str)>,
    /// The client certificate's subject (Go's `pkix.Name` string), with mutual TLS.
    pub tls_client_subject: Option<&'a str>,
    /// The user an authentication middleware accepted (Traefik's ClientUsername, else `-`).
    pub client_username: Option<&'a str>,
}

/// A value in a line.
enum Value<'a> {
    Str(&'a str),
    Owned(String),
    Int(i128),
}

/// Traefik's `Fields.Keep`: per-name mode (names compared lowercase), else the default.
fn keep(fields: &AccessLogFields, name: &str) -> bool {
    let mode = fields
        .names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or(fields.default_mode, |(_, m)| *m);
    mode != FieldMode::Drop
}

/// Traefik's `Fields.KeepHeader` for a canonical header name.
pub fn header_mode(fields: &AccessLogFields, canonical: &str) -> FieldMode {
    fields
        .header_names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(canonical))
        .map_or(fields.headers_default_mode, |(_, m)| *m)
}

/// Whether any header could be logged (then the headers are worth capturing).
pub fn wants_headers(fields: &AccessLogFields) -> bool {
    fields.headers_default_mode != FieldMode::Drop
        || fields.header_names.iter().any(|(_, m)| *m != FieldMode::Drop)
}

/// Go's `textproto.CanonicalMIMEHeaderKey`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() });
        upper = c == '-';
    }
    out
}

/// `host:port` → (`host`, `port`); Traefik's `silentSplitHostPort` gives (`value`, `-`) when
/// there is no port.
fn split_host_port(v: &str) -> (String, String) {
    match v.rsplit_once(':') {
        Some((h, p))
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.starts_with('[')) =>
        {
            (h.trim_start_matches('[').trim_end_matches(']').to_string(), p.to_string())
        }
        _ => (v.to_string(), "-".to_string()),
    }
}

thread_local! {
    /// The system time zone (`TZ`, else `/etc/localtime`), read once per worker thread.
    static LOCAL: jiff::tz::TimeZone = jiff::tz::TimeZone::system();
}

/// The local UTC offset at `t` in seconds (Go's `time.Local`), DST included.
fn local_offset(t: SystemTime) -> i32 {
    let Ok(ts) = jiff::Timestamp::try_from(t) else { return 0 };
    LOCAL.with(|tz| tz.to_offset(ts).seconds())
}

/// RFC 3339 with nanoseconds (Go's `time.Time` in JSON: `RFC3339Nano`, trailing zeros of the
/// fraction trimmed, `Z` for a zero offset), at `offset` seconds east of UTC.
fn rfc3339_nano(t: SystemTime, offset: i32) -> String {
    let utc_offset = time::UtcOffset::from_whole_seconds(offset).unwrap_or(time::UtcOffset::UTC);
    let odt = time::OffsetDateTime::from(t).to_offset(utc_offset);
    let frac = odt.nanosecond();
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        odt.year(),
        u8::from(odt.month()),
        odt.day(),
        odt.hour(),
        odt.minute(),
        odt.second()
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        let _ = write!(s, ".{}", digits.trim_end_matches('0'));
    }
    zone(offset, &mut s);
    s
}

/// Go's `Z07:00`.
fn zone(offset: i32, s: &mut String) {
    if offset == 0 {
        s.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        let _ = write!(s, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60);
    }
}

fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// The core fields as Traefik names them, before the field filter. The origin fields exist
/// only when the request reached a backend (Traefik sets them around its proxy), `GzipRatio`
/// only when the origin's and the client's sizes differ, TLS fields only over TLS.
fn core<'a>(e: &'a Entry<'a>) -> Vec<(&'static str, Value<'a>)> {
    let client = e.client_addr.to_string();
    let (client_host, client_port) = split_host_port(&client);
    let local = local_offset(e.start);
    let mut v: Vec<(&'static str, Value<'a>)> = vec![
        ("ClientAddr", Value::Owned(client)),
        ("ClientHost", e.forwarded_for.map_or(Value::Owned(client_host), Value::Str)),
        ("ClientPort", Value::Owned(client_port)),
        ("ClientUsername", Value::Str(e.client_username.unwrap_or("-"))),
        ("DownstreamContentSize", Value::Int(i128::from(e.size))),
        ("DownstreamStatus", Value::Int(i128::from(e.status))),
        ("Duration", Value::Int(nanos(e.duration))),
        ("Overhead", Value::Int(nanos(e.duration.saturating_sub(e.origin_duration.unwrap_or_default())))),
        ("RequestContentSize", Value::Int(i128::from(e.request_size))),
        ("RequestCount", Value::Int(i128::from(e.count))),
        ("RequestMethod", Value::Str(e.method)),
        ("RequestPath", Value::Str(e.path)),
        ("RequestProtocol", Value::Str(e.protocol)),
        ("RequestScheme", Value::Str(e.scheme)),
        ("RetryAttempts", Value::Int(i128::from(e.retry_attempts))),
        ("StartLocal", Value::Owned(rfc3339_nano(e.start, local))),
        ("StartUTC", Value::Owned(rfc3339_nano(e.start, 0))),
        ("entryPointName", Value::Str(e.entrypoint)),
    ];
    if let Some(status) = e.origin_status {
        v.push(("OriginContentSize", Value::Int(i128::from(e.size))));
        v.push(("OriginDuration", Value::Int(e.origin_duration.map_or(0, nanos))));
        v.push(("OriginStatus", Value::Int(i128::from(status))));
    }
    if let Some((version, cipher)) = e.tls {
        v.push(("TLSVersion", Value::Str(version)));
        v.push(("TLSCipher", Value::Str(cipher)));
    }
    if let Some(subject) = e.tls_client_subject {
        v.push(("TLSClientSubject", Value::Str(subject)));
    }
    if let Some(host) = e.host.filter(|h| !h.is_empty()) {
        let (h, p) = split_host_port(host);
        v.push(("RequestAddr", Value::Str(host)));
        v.push(("RequestHost", Value::Owned(h)));
        v.push(("RequestPort", Value::Owned(p)));
    }
    if let Some(r) = e.router {
        v.push(("RouterName", Value::Owned(crate::metrics::qualified(r).into_owned())));
    }
    if let Some(s) = e.service {
        v.push(("ServiceName", Value::Owned(crate::metrics::qualified(s).into_owned())));
    }
    if let Some(u) = e.service_url {
        v.push(("ServiceURL", Value::Str(u)));
    }
    if let Some(a) = e.service_addr {
        v.push(("ServiceAddr", Value::Str(a)));
    }
    v
}

/// Header fields (`request_User-Agent`, ...) after the header filter.
fn headers(fields: &AccessLogFields, map: &HeaderMap, prefix: &str, out: &mut Vec<(String, String)>) {
    for name in map.keys() {
        let canonical = canonical(name.as_str());
        let value = match header_mode(fields, &canonical) {
            FieldMode::Drop => continue,
            FieldMode::Redact => "REDACTED".to_string(),
            FieldMode::Keep => {
                let values: Vec<&str> = map.get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect();
                values.join(",")
            }
        };
        out.push((format!("{prefix}{canonical}"), value));
    }
}

/// Appends one line (with its newline) to `out`.
pub fn write_line(format: AccessLogFormat, fields: &AccessLogFields, e: &Entry<'_>, out: &mut Vec<u8>) {
    match format {
        AccessLogFormat::Json => {
            let core = core(e);
            let mut extra = Vec::new();
            headers(fields, e.request_headers, "request_", &mut extra);
            headers(fields, e.origin_headers, "origin_", &mut extra);
            headers(fields, e.response_headers, "downstream_", &mut extra);
            json(&core, &extra, &|name: &str| keep(fields, name), e, out)
        }
        AccessLogFormat::Common | AccessLogFormat::GenericClf => clf(format, fields, e, out),
    }
}

/// Writes `s` as Traefik's `toLogEntry` does: `-` when empty, quoted with inner quotes escaped.
fn put(out: &mut Vec<u8>, s: &str, quoted: bool) {
    match (s.is_empty(), quoted) {
        (true, true) => out.extend_from_slice(b"\"-\""),
        (true, false) => out.push(b'-'),
        (false, false) => out.extend_from_slice(s.as_bytes()),
        (false, true) => {
            out.push(b'"');
            for part in s.split_inclusive('"') {
                match part.strip_suffix('"') {
                    Some(p) => {
                        out.extend_from_slice(p.as_bytes());
                        out.extend_from_slice(b"\\\"");
                    }
                    None => out.extend_from_slice(part.as_bytes()),
                }
            }
            out.push(b'"');
        }
    }
}

/// The common and generic CLF lines, written straight into `out` (the hot format: no field
/// table, one pass).
fn clf(format: AccessLogFormat, fields: &AccessLogFields, e: &Entry<'_>, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let kept = |name: &str| keep(fields, name);
    // ClientHost: X-Forwarded-For when present, else the peer's address.
    match (kept("ClientHost"), e.forwarded_for) {
        (false, _) => out.push(b'-'),
        (true, Some(f)) => put(out, f, false),
        (true, None) => {
            let _ = write!(out, "{}", e.client_addr.ip());
        }
    }
    out.extend_from_slice(b" - ");
    match e.client_username.filter(|_| kept("ClientUsername")) {
        Some(user) => put(out, user, false),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" [");
    if kept("StartUTC") {
        const MONTHS: [&str; 12] =
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let t = time::OffsetDateTime::from(e.start);
        let month = MONTHS[usize::from(u8::from(t.month())) - 1];
        let (y, d, h, m, sec) = (t.year(), t.day(), t.hour(), t.minute(), t.second());
        let _ = write!(out, "{d:02}/{month}/{y:04}:{h:02}:{m:02}:{sec:02} +0000");
    } else {
        out.push(b'-');
    }
    out.extend_from_slice(b"] \"");
    let field = |out: &mut Vec<u8>, name: &str, value: &str| {
        if kept(name) {
            put(out, value, false)
        } else {
            out.push(b'-')
        }
    };
    field(out, "RequestMethod", e.method);
    out.push(b' ');
    field(out, "RequestPath", e.path);
    out.push(b' ');
    field(out, "RequestProtocol", e.protocol);
    out.extend_from_slice(b"\" ");
    let number = |out: &mut Vec<u8>, name: &str, n: u64| {
        if kept(name) {
            let _ = write!(out, "{n}");
        } else {
            out.extend_from_slice(b"\"-\"");
        }
    };
    number(out, "DownstreamStatus", u64::from(e.status));
    out.push(b' ');
    number(out, "DownstreamContentSize", e.size);
    for header in ["Referer", "User-Agent"] {
        out.push(b' ');
        match header_mode(fields, header) {
            FieldMode::Drop => put(out, "", true),
            FieldMode::Redact if e.request_headers.contains_key(header) => put(out, "REDACTED", true),
            _ => {
                let values: Vec<&str> =
                    e.request_headers.get_all(header).iter().map(|v| v.to_str().unwrap_or("")).collect();
                put(out, &values.join(","), true)
            }
        }
    }
    if format == AccessLogFormat::Common {
        out.push(b' ');
        number(out, "RequestCount", e.count);
        out.push(b' ');
        match e.router.filter(|_| kept("RouterName")) {
            Some(r) => put(out, &crate::metrics::qualified(r), true),
            None => put(out, "", true),
        }
        out.push(b' ');
        put(out, e.service_url.filter(|_| kept("ServiceURL")).unwrap_or(""), true);
        let millis = if kept("Duration") { e.duration.as_millis() } else { 0 };
        let _ = write!(out, " {millis}ms");
    }
    out.push(b'\n');
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go's encoder escapes these for HTML safety.
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// logrus's JSON formatter: the fields plus `level`, `msg` and `time`, keys sorted.
fn json(
    core: &[(&'static str, Value<'_>)],
    extra: &[(String, String)],
    kept: &dyn Fn(&str) -> bool,
    e: &Entry<'_>,
    out: &mut Vec<u8>,
) {
    let mut pairs: Vec<(&str, String)> = Vec::with_capacity(core.len() + extra.len() + 3);
    for (name, v) in core.iter().filter(|(n, _)| kept(n)) {
        let mut s = String::new();
        match v {
            Value::Str(v) => json_string(v, &mut s),
            Value::Owned(v) => json_string(v, &mut s),
            Value::Int(i) => s = i.to_string(),
        }
        pairs.push((name, s));
    }
    for (name, v) in extra {
        let mut s = String::new();
        json_string(v, &mut s);
        pairs.push((name, s));
    }
    pairs.push(("level", "\"info\"".into()));
    pairs.push(("msg", "\"\"".into()));
    // logrus stamps the entry when it is written, in local time, to the second (`RFC3339`).
    let now = e.start + e.duration;
    let whole = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(now, |d| std::time::UNIX_EPOCH + Duration::from_secs(d.as_secs()));
    let time = rfc3339_nano(whole, local_offset(now));
    pairs.push(("time", format!("\"{time}\"")));
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut line = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        json_string(k, &mut line);
        line.push(':');
        line.push_str(v);
    }
    line.push_str("}\n");
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests;
