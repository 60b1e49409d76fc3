//! EncodedCharacters (Traefik 3.6): refuses with a bare **400** (empty body) a request whose
//! escaped path holds an encoded character the middleware does not allow (`%2F`, `%5C`, `%00`,
//! `%3B`, `%25`, `%3F`, `%23`; hex in either case where Traefik lists both), or ends in a
//! truncated escape.

use http::StatusCode;

use weir_proto::middleware as cfg;

use super::{body, Exchange, Outcome};

/// A compiled EncodedCharacters: the refused escapes, upper-cased.
#[derive(Debug)]
pub struct EncodedCharacters {
    denied: Vec<[u8; 2]>,
}

impl EncodedCharacters {
    /// Compiles the definition.
    pub fn new(c: &cfg::EncodedCharacters) -> EncodedCharacters {
        let all = [
            (c.allow_encoded_slash, *b"2F"),
            (c.allow_encoded_back_slash, *b"5C"),
            (c.allow_encoded_null_character, *b"00"),
            (c.allow_encoded_semicolon, *b"3B"),
            (c.allow_encoded_percent, *b"25"),
            (c.allow_encoded_question_mark, *b"3F"),
            (c.allow_encoded_hash, *b"23"),
        ];
        EncodedCharacters { denied: all.iter().filter(|(allowed, _)| !allowed).map(|(_, e)| *e).collect() }
    }

    /// Whether the escaped path passes.
    pub fn allows(&self, path: &str) -> bool {
        if self.denied.is_empty() {
            return true;
        }
        let b = path.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                i += 1;
                continue;
            }
            if i + 2 >= b.len() {
                return false;
            }
            let esc = [b[i + 1].to_ascii_uppercase(), b[i + 2].to_ascii_uppercase()];
            if self.denied.contains(&esc) {
                return false;
            }
            i += 3;
        }
        true
    }

    /// Request side.
    pub fn request(&self, ex: &mut Exchange<'_>) -> Outcome {
        if self.allows(&ex.path) {
            Outcome::Next
        } else {
            Outcome::Respond(body(StatusCode::BAD_REQUEST, bytes::Bytes::new()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_allowed() {
        let strict = EncodedCharacters::new(&cfg::EncodedCharacters::default());
        let slash = EncodedCharacters::new(&cfg::EncodedCharacters {
            allow_encoded_slash: true,
            ..Default::default()
        });
        let all = EncodedCharacters::new(&cfg::EncodedCharacters {
            allow_encoded_slash: true,
            allow_encoded_back_slash: true,
            allow_encoded_null_character: true,
            allow_encoded_semicolon: true,
            allow_encoded_percent: true,
            allow_encoded_question_mark: true,
            allow_encoded_hash: true,
        });
        // (case, middleware, path, allowed)
        let cases = [
            ("plain", &strict, "/a/b", true),
            ("other escapes pass", &strict, "/a%20b%41", true),
            ("slash", &strict, "/a%2Fb", false),
            ("slash lower", &strict, "/a%2fb", false),
            ("backslash", &strict, "/a%5cb", false),
            ("null", &strict, "/a%00", false),
            ("semicolon", &strict, "/a%3B", false),
            ("percent", &strict, "/a%25", false),
            ("question mark", &strict, "/a%3f", false),
            ("hash", &strict, "/a%23", false),
            ("escaped percent then 2F text", &slash, "/a%252F", false),
            ("slash allowed", &slash, "/a%2Fb", true),
            ("hash still refused", &slash, "/a%23", false),
            ("all allowed", &all, "/%2F%5C%00%3B%25%3F%23", true),
            ("truncated escape", &strict, "/a%2", false),
        ];
        for (name, m, path, want) in cases {
            assert_eq!(m.allows(path), want, "case {name}");
        }
    }
}
