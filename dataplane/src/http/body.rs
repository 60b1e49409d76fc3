//! The body of every response weir sends: the backend's, streamed as it arrives; a complete
//! one in memory (canned answers, buffered responses); or a body a middleware transforms as it
//! streams (compression, sniffing, in-flight accounting). The first two cost no allocation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, Incoming, SizeHint};

/// Error of a response body.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A transformed body (not `Send`: per-worker state rides along, e.g. in-flight guards).
pub type LocalBody = Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = BodyError>>>;

/// A response body.
pub enum Body {
    /// The backend's body, streamed.
    Incoming(Incoming),
    /// A complete body.
    Full(Full<Bytes>),
    /// A body a middleware wraps.
    Local(LocalBody),
}

impl Body {
    /// A complete body.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body::Full(Full::new(bytes.into()))
    }

    /// An empty body.
    pub fn empty() -> Body {
        Body::full(Bytes::new())
    }

    /// Wraps any body.
    pub fn local<B>(body: B) -> Body
    where
        B: hyper::body::Body<Data = Bytes> + 'static,
        B::Error: Into<BodyError>,
    {
        Body::Local(Box::pin(http_body_util::BodyExt::map_err(body, Into::into)))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Incoming(b) => b.fmt(f),
            Body::Full(b) => b.fmt(f),
            Body::Local(_) => f.write_str("Body::Local"),
        }
    }
}

impl From<Incoming> for Body {
    fn from(body: Incoming) -> Body {
        Body::Incoming(body)
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Body::Full(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            Body::Local(b) => b.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Incoming(b) => b.is_end_stream(),
            Body::Full(b) => b.is_end_stream(),
            Body::Local(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Incoming(b) => b.size_hint(),
            Body::Full(b) => b.size_hint(),
            Body::Local(b) => b.size_hint(),
        }
    }
}
