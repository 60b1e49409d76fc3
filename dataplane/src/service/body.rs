//! The body of a request on its way to a backend: the client's body streamed as it arrives,
//! a buffered copy (mirroring), or the buffered start of a body followed by the rest.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

/// A request body sent upstream.
#[derive(Debug)]
pub enum UpstreamBody {
    /// The client's body, streamed.
    Incoming(Incoming),
    /// A complete body in memory (`None` once sent).
    Full(Option<Bytes>),
    /// Chunks already read from the client, then the rest of its body.
    Prefixed {
        /// Chunks to send first.
        prefix: VecDeque<Bytes>,
        /// The rest.
        rest: Incoming,
    },
}

impl UpstreamBody {
    /// A complete body.
    pub fn full(bytes: Bytes) -> UpstreamBody {
        UpstreamBody::Full(Some(bytes).filter(|b| !b.is_empty()))
    }
}

impl From<Incoming> for UpstreamBody {
    fn from(body: Incoming) -> Self {
        UpstreamBody::Incoming(body)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Incoming(b) => Pin::new(b).poll_frame(cx),
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Prefixed { prefix, rest } => match prefix.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Incoming(b) => b.is_end_stream(),
            UpstreamBody::Full(b) => b.is_none(),
            UpstreamBody::Prefixed { prefix, rest } => prefix.is_empty() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Incoming(b) => b.size_hint(),
            UpstreamBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            UpstreamBody::Prefixed { prefix, rest } => {
                let buffered: u64 = prefix.iter().map(|c| c.len() as u64).sum();
                let r = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(r.lower() + buffered);
                if let Some(upper) = r.upper() {
                    hint.set_upper(upper + buffered);
                }
                hint
            }
        }
    }
}
