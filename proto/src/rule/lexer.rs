//! Tokeniser for the rule language: identifiers, parentheses, commas, `!`, `&&`, `||`,
//! back-quoted raw strings and double-quoted strings with Go escapes.

use super::RuleError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Not,
    And,
    Or,
}

pub(super) fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, RuleError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, reason: &str| RuleError { offset, reason: reason.to_string() };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push((start, Token::LParen)),
            b')' => out.push((start, Token::RParen)),
            b',' => out.push((start, Token::Comma)),
            b'!' => out.push((start, Token::Not)),
            b'&' | b'|' => {
                if bytes.get(i + 1) != Some(&c) {
                    return Err(err(i, "expected `&&` or `||`"));
                }
                i += 1;
                out.push((start, if c == b'&' { Token::And } else { Token::Or }));
            }
            b'`' => {
                let rest = &src[i + 1..];
                let end = rest.find('`').ok_or_else(|| err(i, "unterminated back-quoted string"))?;
                out.push((start, Token::Str(rest[..end].to_string())));
                i += end + 2;
                continue;
            }
            b'"' => {
                let (s, len) = go_string(&src[i..]).map_err(|r| err(i, &r))?;
                out.push((start, Token::Str(s)));
                i += len;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                    j += 1;
                }
                out.push((start, Token::Ident(src[i..j].to_string())));
                i = j;
                continue;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(err(i, &format!("unexpected character {ch:?}")));
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Decodes a Go double-quoted string at the start of `s`; returns it and its encoded length.
fn go_string(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => return Err("newline in double-quoted string".into()),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated escape")?;
                match e {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => return Err("escape \\' is not valid in a double-quoted string".into()),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{07}'),
                    'b' => out.push('\u{08}'),
                    'f' => out.push('\u{0c}'),
                    'v' => out.push('\u{0b}'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let (_, h) = chars.next().ok_or("short hex escape")?;
                            v = v * 16 + h.to_digit(16).ok_or("bad hex escape")?;
                        }
                        if e == 'x' {
                            // Go's \xHH is a byte; only ASCII bytes form valid text here.
                            if v > 0x7f {
                                return Err("non-ASCII \\x escape".into());
                            }
                        }
                        out.push(char::from_u32(v).ok_or("escape is not a valid code point")?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, o) = chars.next().ok_or("short octal escape")?;
                            v = v * 8 + o.to_digit(8).ok_or("bad octal escape")?;
                        }
                        if v > 0x7f {
                            return Err("non-ASCII octal escape".into());
                        }
                        out.push(char::from_u32(v).ok_or("bad octal escape")?);
                    }
                    other => return Err(format!("unknown escape \\{other}")),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated double-quoted string".into())
}
