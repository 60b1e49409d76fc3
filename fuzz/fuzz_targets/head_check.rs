//! AFL target for the data plane's request-head check (the file is compiled here as it is in
//! the data plane, which this crate does not link). Invariants: any bytes get a verdict, never
//! a panic; a head with a single `chunked` coding and one plain Host line is never refused for
//! its coding; the verdict does not depend on the HTTP/1.0 Transfer-Encoding; the pre-parse
//! `Framing` passes on a prefix of any stream, however it is split, changed only by a spoiled
//! head's NUL or a version digit read as 1.

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

use head_check::{check_lines, Framing, Refusal, Scan};
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
        // The same bytes as a connection's stream, whole and in pieces of the first byte's size:
        // what reaches hyper is a prefix of the stream, changed only where a head is spoiled
        // (LF into NUL) or an HTTP/1.2+ minor version is read as 1.
        let _ = head_check::judge(data);
        let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
        for step in [data.len().max(1), step] {
            let mut framing = Framing::new();
            let mut passed = Vec::new();
            for piece in data.chunks(step) {
                let mut piece = piece.to_vec();
                match framing.scan(&mut piece) {
                    Scan::Pass | Scan::Spoiled => passed.extend_from_slice(&piece),
                    Scan::Refuse { keep, .. } => {
                        assert!(keep <= piece.len());
                        passed.extend_from_slice(&piece[..keep]);
                        break;
                    }
                }
            }
            let _ = framing.eof();
            for (at, (&was, &now)) in data.iter().zip(&passed).enumerate() {
                assert!(
                    was == now || (was, now) == (b'\n', 0) || (was.is_ascii_digit() && now == b'1'),
                    "byte {at}: {was} -> {now}"
                );
            }
        }
    });
}
