//! AFL target for the data plane's request-head check (the file is compiled here as it is in
//! the data plane, which this crate does not link). Invariants: any bytes get a verdict, never
//! a panic; a head with a single `chunked` coding and one plain Host line is never refused for
//! its coding; the verdict does not depend on the HTTP/1.0 Transfer-Encoding; the pre-parse
//! `Framing` changes at most one byte of any stream, an LF into a NUL, however it is split.

/// The data plane's response body, reduced to what the check's answers need.
pub struct Body;

impl Body {
    pub fn full(_: bytes::Bytes) -> Body {
        Body
    }
}

#[path = "../../dataplane/src/http/head_check.rs"]
#[allow(dead_code)]
mod head_check;

use head_check::{check_lines, Framing, Refusal};
use http::Version;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let v11 = check_lines(Version::HTTP_11, data);
        let v10 = check_lines(Version::HTTP_10, data);
        assert_eq!(v10, Ok(()), "HTTP/1.0 heads are not checked: {v11:?}");
        if let Err(r) = v11 {
            let _ = r.response();
        }
        // The fuzz bytes as the value of another header: they cannot add a coding line.
        let mut with = b"host: a.test\ntransfer-encoding: chunked\nx-fuzz: ".to_vec();
        with.extend(data.iter().filter(|&&b| b != b'\n' && b != b'\r'));
        assert_ne!(
            check_lines(Version::HTTP_11, &with),
            Err(Refusal::UnsupportedTransferEncoding),
            "one chunked coding refused"
        );
        // The same bytes as a connection's stream, whole and in pieces of the first byte's size.
        let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
        for step in [data.len().max(1), step] {
            let mut stream = data.to_vec();
            let mut framing = Framing::new();
            let spoiled = stream.chunks_mut(step).fold(false, |s, piece| framing.scan(piece) | s);
            let changed: Vec<usize> = (0..data.len()).filter(|&i| stream[i] != data[i]).collect();
            assert!(changed.len() <= 1 && spoiled == (changed.len() == 1), "{changed:?}");
            if let [at] = changed[..] {
                assert_eq!((data[at], stream[at]), (b'\n', 0));
            }
        }
    });
}
