//! Decoder for the chunked transfer coding (RFC 9112 section 7.1). Sans-IO: fed whatever bytes
//! have arrived, it appends the decoded body and says how many input bytes it used, so it can
//! resume at any split point. Chunk extensions and trailer fields are read and dropped.
//! Like Go's net/http, a chunk-size or trailer line may end in a bare LF, but chunk data must
//! be followed by exactly CRLF.

use crate::bad_request::BadRequest;

/// Longest trailer section accepted.
const MAX_TRAILERS_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        size: u64,
        digits: u8,
    },
    /// In a chunk extension, up to the end of the size line.
    Extension {
        size: u64,
    },
    /// Saw CR at the end of a size line; LF must follow.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section; `line_empty` while nothing but CR has been seen on this line.
    Trailers {
        line_empty: bool,
        len: usize,
    },
    TrailersLf {
        line_empty: bool,
        len: usize,
    },
    Done,
}

/// Decodes one chunked body.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder { state: State::Size { size: 0, digits: 0 } }
    }
}

impl ChunkedDecoder {
    /// Decodes from `input`, appending body bytes to `body`. Returns how many bytes of `input`
    /// were used: all of them unless the body ended inside `input`, in which case the rest belongs
    /// to the next request.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, BadRequest> {
        let mut pos = 0;
        while pos < input.len() && self.state != State::Done {
            if let State::Data { remaining } = self.state {
                let take = remaining.min((input.len() - pos) as u64) as usize;
                body.extend_from_slice(&input[pos..pos + take]);
                pos += take;
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 { State::DataCr } else { State::Data { remaining } };
                continue;
            }
            self.state = step(self.state, input[pos])?;
            pos += 1;
        }
        Ok(pos)
    }

    /// The last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// One byte of framing (anything but chunk data).
fn step(state: State, byte: u8) -> Result<State, BadRequest> {
    let end_of_size_line = |size: u64| {
        if size == 0 {
            State::Trailers { line_empty: true, len: 0 }
        } else {
            State::Data { remaining: size }
        }
    };
    let next = match (state, byte) {
        (State::Size { size, digits }, _) if byte.is_ascii_hexdigit() => {
            // 15 hex digits already exceed any body this server accepts; refuse more.
            if digits == 15 {
                return Err(BadRequest::Chunked);
            }
            let digit = (byte as char).to_digit(16).map(u64::from).ok_or(BadRequest::Chunked)?;
            State::Size { size: size << 4 | digit, digits: digits + 1 }
        }
        (State::Size { digits: 0, .. }, _) => return Err(BadRequest::Chunked),
        (State::Size { size, .. }, b';' | b' ' | b'\t') => State::Extension { size },
        (State::Size { size, .. } | State::Extension { size }, b'\r') => State::SizeLf { size },
        (State::Size { size, .. } | State::Extension { size } | State::SizeLf { size }, b'\n') => {
            end_of_size_line(size)
        }
        (State::Extension { size }, _) if byte == b'\t' || !byte.is_ascii_control() => {
            State::Extension { size }
        }
        (State::DataCr, b'\r') => State::DataLf,
        (State::DataLf, b'\n') => State::Size { size: 0, digits: 0 },
        (State::Trailers { line_empty, len } | State::TrailersLf { line_empty, len }, b'\n') => {
            if line_empty {
                State::Done
            } else {
                State::Trailers { line_empty: true, len }
            }
        }
        (State::Trailers { line_empty, len }, b'\r') => State::TrailersLf { line_empty, len },
        (State::Trailers { len, .. }, _)
            if len < MAX_TRAILERS_LEN && (byte == b'\t' || !byte.is_ascii_control()) =>
        {
            State::Trailers { line_empty: false, len: len + 1 }
        }
        _ => return Err(BadRequest::Chunked),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], split: Option<usize>) -> Result<(Vec<u8>, usize, bool), BadRequest> {
        let mut decoder = ChunkedDecoder::default();
        let mut body = Vec::new();
        let mut used = 0;
        let pieces: Vec<&[u8]> = match split {
            Some(at) => vec![&input[..at], &input[at..]],
            None => vec![input],
        };
        for piece in pieces {
            if decoder.is_done() {
                break;
            }
            used += decoder.decode(piece, &mut body)?;
        }
        Ok((body, used, decoder.is_done()))
    }

    #[test]
    fn decodes_at_every_split_point() {
        /// (case, input, body, bytes that belong to the next request)
        type Case = (&'static str, &'static [u8], &'static [u8], &'static [u8]);
        let cases: &[Case] = &[
            ("empty body", b"0\r\n\r\n", b"", b""),
            ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            ("two chunks", b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", b"hello", b""),
            ("uppercase hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", b""),
            ("leading zeros", b"0005\r\nhello\r\n0\r\n\r\n", b"hello", b""),
            ("data holds CRLF", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n", b""),
            ("extensions", b"5;name=\"v\"\r\nhello\r\n0;last\r\n\r\n", b"hello", b""),
            ("trailers", b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n", b"hello", b""),
            ("bare LF size lines", b"5\nhello\r\n0\n\n", b"hello", b""),
            ("next request follows", b"2\r\nhi\r\n0\r\n\r\nGET /", b"hi", b"GET /"),
        ];
        for (name, input, want_body, want_rest) in cases {
            for split in std::iter::once(None).chain((0..=input.len()).map(Some)) {
                let (body, used, done) =
                    decode_all(input, split).unwrap_or_else(|e| panic!("case {name} {split:?}: {e}"));
                assert!(done, "case {name} split {split:?}: not done");
                assert_eq!(&body, want_body, "case {name} split {split:?}: body");
                assert_eq!(&input[used..], *want_rest, "case {name} split {split:?}: rest");
            }
        }
    }

    #[test]
    fn incomplete_bodies_are_not_done() {
        let cases: &[(&str, &[u8])] = &[
            ("nothing", b""),
            ("size only", b"5\r\n"),
            ("short data", b"5\r\nhel"),
            ("no last chunk", b"5\r\nhello\r\n"),
            ("no end of trailers", b"0\r\nX: 1\r\n"),
        ];
        for (name, input) in cases {
            let (_, used, done) = decode_all(input, None).unwrap_or_else(|e| panic!("case {name}: {e}"));
            assert!(!done, "case {name}");
            assert_eq!(used, input.len(), "case {name}");
        }
    }

    #[test]
    fn rejects_malformed_bodies() {
        let cases: &[(&str, &[u8])] = &[
            ("no size", b"\r\nhello\r\n0\r\n\r\n"),
            ("not hex", b"g\r\n"),
            ("negative", b"-1\r\n"),
            ("too many digits", b"1000000000000000\r\n"),
            ("data longer than size", b"2\r\nhello\r\n0\r\n\r\n"),
            ("bare LF after data", b"5\r\nhello\n0\r\n\r\n"),
            ("CR without LF after size", b"5\rhello"),
            ("control in extension", b"5;\x01\r\n"),
            ("control in trailer", b"0\r\nX: \x01\r\n\r\n"),
        ];
        for (name, input) in cases {
            assert_eq!(decode_all(input, None), Err(BadRequest::Chunked), "case {name}");
        }
    }
}
