//! Traefik's `sourceCriterion` (`GetSourceExtractor`): the key a RateLimit bucket or an
//! InFlightReq count is kept under — the client IP by an IP strategy, a request header's value
//! (Go's `Header.Get`, "" when absent) or the request host (Go's `req.Host`).

use weir_proto::middleware as cfg;

use super::ip_allow_list::Strategy;
use super::Exchange;

/// A compiled source criterion.
#[derive(Debug)]
pub enum Source {
    /// Client IP.
    Ip(Strategy),
    /// A request header's first value.
    Header(http::HeaderName),
    /// The request host.
    Host,
}

impl Source {
    /// Compiles a criterion.
    pub fn new(c: &cfg::SourceCriterion) -> Result<Source, String> {
        Ok(match c {
            cfg::SourceCriterion::Ip(s) => Source::Ip(Strategy::new(s)?),
            cfg::SourceCriterion::RequestHeader(h) => {
                Source::Header(http::HeaderName::from_bytes(h.as_bytes()).map_err(|e| e.to_string())?)
            }
            cfg::SourceCriterion::RequestHost => Source::Host,
        })
    }

    /// The request's source key.
    pub fn key(&self, ex: &Exchange<'_>) -> String {
        match self {
            Source::Ip(s) => s.client_ip(ex.peer.ip(), ex.headers),
            Source::Header(h) => ex
                .headers
                .get(h)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default(),
            Source::Host => ex.host.clone(),
        }
    }
}
