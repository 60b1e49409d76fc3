//! Routing: what a request offers a rule (`RequestInfo`, computed once per request as Traefik
//! computes it), rules compiled for matching (`expr`), query-string matching (`query`) and the
//! host-indexed router table (`index`). Sans-IO: no sockets, nothing allocated per match.

pub mod expr;
pub mod index;
pub mod query;

use std::net::IpAddr;

use http::{HeaderMap, Method};

pub use expr::{CompileError, CompiledExpr};
pub use index::{IndexedRouter, RouterIndex};

/// What a rule can look at, computed once per request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// Canonical host: lower-cased, port and IPv6 brackets stripped, trailing dot removed.
    pub host: &'a str,
    /// Routing path (percent-decoded except reserved characters, sanitised).
    pub path: &'a str,
    /// Request method.
    pub method: &'a Method,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Raw query string (without `?`), if any.
    pub query: Option<&'a str>,
    /// Peer address (or the PROXY-protocol client once that exists).
    pub client_ip: IpAddr,
}

/// Canonical host from a raw `Host` value or URI authority: lower-cased, port stripped,
/// IPv6 brackets removed, trailing dot removed. Borrowed when already canonical.
pub fn canonical_host(raw: &str) -> std::borrow::Cow<'_, str> {
    let raw = raw.rsplit_once('@').map_or(raw, |(_, h)| h);
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        match raw.rsplit_once(':') {
            // A bare IPv6 address has several colons: only `host:port` loses its port.
            Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests;
