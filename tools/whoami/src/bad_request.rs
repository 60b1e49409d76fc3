//! Why a request could not be served, and the status each reason answers with.
//! Every parser in this crate reports through this one enum so the connection loop has a
//! single place that turns "the client sent something wrong" into a response.

use crate::head::MAX_HEAD_LEN;

/// Largest request body the server reads (it echoes the body, so it holds it in memory).
pub const MAX_BODY_LEN: u64 = 64 << 20;

/// The client sent something this server will not serve. The connection is closed after the
/// error response, because the framing of whatever follows cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("request head larger than {MAX_HEAD_LEN} bytes")]
    HeadTooLarge,
    #[error("malformed request line")]
    RequestLine,
    #[error("unsupported HTTP version (HTTP/1.0 and HTTP/1.1 are served)")]
    Version,
    #[error("malformed header field on line {line}")]
    HeaderField { line: usize },
    #[error("missing Host header in an HTTP/1.1 request")]
    MissingHost,
    #[error("more than one Host header")]
    DuplicateHost,
    #[error("invalid or conflicting Content-Length")]
    ContentLength,
    #[error("unsupported Transfer-Encoding (only chunked is understood)")]
    TransferEncoding,
    #[error("malformed chunked body")]
    Chunked,
    #[error("request body larger than {MAX_BODY_LEN} bytes")]
    BodyTooLarge,
    #[error("invalid status parameter (want 200 to 599)")]
    StatusParam,
    #[error("invalid wait parameter (want a Go duration such as 2s or 500ms)")]
    WaitParam,
}

impl BadRequest {
    /// The response status that names this fault.
    pub fn status(&self) -> u16 {
        match self {
            BadRequest::HeadTooLarge => 431,
            BadRequest::Version => 505,
            BadRequest::TransferEncoding => 501,
            BadRequest::BodyTooLarge => 413,
            BadRequest::RequestLine
            | BadRequest::HeaderField { .. }
            | BadRequest::MissingHost
            | BadRequest::DuplicateHost
            | BadRequest::ContentLength
            | BadRequest::Chunked
            | BadRequest::StatusParam
            | BadRequest::WaitParam => 400,
        }
    }
}
