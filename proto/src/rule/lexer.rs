//! Tokeniser for the rule language, which Traefik parses with Go's own expression parser
//! (`go/parser.ParseExpr`, through vulcand/predicate): identifiers, parentheses, commas, `!`,
//! `&&`, `||`, back-quoted raw strings, double-quoted strings with Go escapes, Go comments, and
//! Go's automatic semicolon at a line break after a name, a string or `)`.

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
    /// The semicolon Go inserts at a line break (or a comment holding one) that follows a name,
    /// a string or `)`. Only the last token of a rule may be one; anywhere else Go's parser
    /// stops there, so `Host(`a`)` + newline + `&& Path(`/`)` is an error in Traefik too.
    LineEnd,
}

impl Token {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("name `{name}`"),
            Token::Str(s) => format!("string {s:?}"),
            Token::LParen => "`(`".into(),
            Token::RParen => "`)`".into(),
            Token::Comma => "`,`".into(),
            Token::Not => "`!`".into(),
            Token::And => "`&&`".into(),
            Token::Or => "`||`".into(),
            Token::LineEnd => "a line break (Go ends the expression there)".into(),
        }
    }

    /// Go inserts a semicolon at a line break after these tokens.
    fn ends_line(&self) -> bool {
        matches!(self, Token::Ident(_) | Token::Str(_) | Token::RParen)
    }
}

/// Characters Go's scanner refuses anywhere, even inside strings (a BOM is allowed first only).
const ILLEGAL: [char; 2] = ['\0', '\u{feff}'];
const ILLEGAL_REASON: &str = "NUL or byte order mark in the rule (Go's scanner refuses both)";

pub(super) fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, RuleError> {
    let bytes = src.as_bytes();
    let mut out: Vec<(usize, Token)> = Vec::new();
    let mut i = 0;
    let err = |offset: usize, reason: &str| RuleError { offset, reason: reason.to_string() };
    // Go's scanner: a line break after a name, string or `)` is a semicolon.
    let line_break = |out: &mut Vec<(usize, Token)>, at: usize| {
        if out.last().is_some_and(|(_, t)| t.ends_line()) {
            out.push((at, Token::LineEnd));
        }
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'\n' => {
                line_break(&mut out, i);
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                // A line comment runs to the line break, which still ends the line.
                let end = src[i..].find('\n').map_or(bytes.len(), |n| i + n);
                line_break(&mut out, i);
                i = end + 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let len = src[i + 2..].find("*/").ok_or_else(|| err(i, "unterminated comment"))?;
                if src[i + 2..i + 2 + len].contains('\n') {
                    line_break(&mut out, i);
                }
                i += len + 4;
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
                if let Some(bad) = rest[..end].find(ILLEGAL) {
                    return Err(err(i + 1 + bad, ILLEGAL_REASON));
                }
                // Go drops carriage returns from raw strings.
                out.push((start, Token::Str(rest[..end].replace('\r', ""))));
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
                // Go skips a byte order mark at the very start of the source.
                if ch == '\u{feff}' && i == 0 {
                    i += ch.len_utf8();
                    continue;
                }
                if ILLEGAL.contains(&ch) {
                    return Err(err(i, ILLEGAL_REASON));
                }
                let hint = if ch.is_ascii_alphanumeric() || ch == '.' || ch == '/' || ch == '*' {
                    " (matcher arguments must be quoted with ` or \")"
                } else {
                    ""
                };
                return Err(err(i, &format!("unexpected character {ch:?}{hint}")));
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Decodes a Go double-quoted string at the start of `s`; returns it and its encoded length.
/// `\x` and octal escapes are bytes in Go; the bytes of the whole string must form UTF-8.
fn go_string(s: &str) -> Result<(String, usize), String> {
    let mut out: Vec<u8> = Vec::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let text = String::from_utf8(out)
                    .map_err(|_| "the escapes of a double-quoted string do not form UTF-8".to_string())?;
                return Ok((text, i + 1));
            }
            '\n' => return Err("line break in a double-quoted string".into()),
            c if ILLEGAL.contains(&c) => return Err(ILLEGAL_REASON.into()),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated escape")?;
                let simple = match e {
                    '\\' => Some('\\'),
                    '"' => Some('"'),
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'a' => Some('\u{07}'),
                    'b' => Some('\u{08}'),
                    'f' => Some('\u{0c}'),
                    'v' => Some('\u{0b}'),
                    _ => None,
                };
                if let Some(ch) = simple {
                    out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                match e {
                    '\'' => return Err("escape \\' is not valid in a double-quoted string".into()),
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
                            // Go: `\xHH` is one byte, not a code point.
                            out.push(v as u8);
                        } else {
                            let ch = char::from_u32(v).ok_or("escape is not a valid code point")?;
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, o) = chars.next().ok_or("short octal escape")?;
                            v = v * 8 + o.to_digit(8).ok_or("bad octal escape")?;
                        }
                        // Go: an octal escape is one byte, at most \377.
                        out.push(u8::try_from(v).map_err(|_| "octal escape above \\377")?);
                    }
                    other => return Err(format!("unknown escape \\{other}")),
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Err("unterminated double-quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(src: &str) -> Result<Vec<String>, String> {
        let tokens = tokenize(src).map_err(|e| e.reason)?;
        Ok(tokens
            .into_iter()
            .filter_map(|(_, t)| match t {
                Token::Str(s) => Some(s),
                _ => None,
            })
            .collect())
    }

    #[test]
    fn go_strings() {
        let cases: [(&str, &str, Result<&str, &str>); 21] = [
            ("raw", "`a\\nb`", Ok("a\\nb")),
            ("raw drops carriage returns", "`a\r\nb`", Ok("a\nb")),
            ("backslash", r#""a\\b""#, Ok("a\\b")),
            ("quote", r#""a\"b""#, Ok("a\"b")),
            ("control escapes", r#""\a\b\f\n\r\t\v""#, Ok("\u{7}\u{8}\u{c}\n\r\t\u{b}")),
            ("hex byte", r#""\x41""#, Ok("A")),
            ("hex bytes forming UTF-8", r#""\xc3\xa9""#, Ok("é")),
            ("octal", r#""\101\060""#, Ok("A0")),
            ("little u", r#""\u00e9""#, Ok("é")),
            ("big U", r#""\U0001F600""#, Ok("😀")),
            ("lone byte is not UTF-8", r#""\xff""#, Err("do not form UTF-8")),
            ("surrogate", r#""\ud800""#, Err("not a valid code point")),
            ("single quote escape", r#""\'""#, Err("\\' is not valid")),
            ("unknown escape", r#""\q""#, Err("unknown escape \\q")),
            ("line break", "\"a\nb\"", Err("line break")),
            ("unterminated", r#""abc"#, Err("unterminated")),
            ("NUL in raw string", "`a\0b`", Err("NUL or byte order mark")),
            ("NUL in double-quoted string", "\"a\0b\"", Err("NUL or byte order mark")),
            ("escaped NUL is fine", r#""a\x00b""#, Ok("a\0b")),
            ("leading byte order mark skipped", "\u{feff}`a`", Ok("a")),
            ("byte order mark later", "`a` \u{feff}", Err("NUL or byte order mark")),
        ];
        for (name, src, want) in cases {
            let got = strings(src);
            match want {
                Ok(s) => assert_eq!(got, Ok(vec![s.to_string()]), "case {name}"),
                Err(e) => {
                    let got = got.expect_err(name);
                    assert!(got.contains(e), "case {name}: {got}");
                }
            }
        }
    }

    #[test]
    fn line_ends_and_comments() {
        let kinds =
            |src: &str| -> Vec<Token> { tokenize(src).expect(src).into_iter().map(|(_, t)| t).collect() };
        let s = |v: &str| Token::Str(v.into());
        let id = |v: &str| Token::Ident(v.into());
        let cases: Vec<(&str, &str, Vec<Token>)> = vec![
            (
                "break after ) ends the line",
                "f(`a`)\n",
                vec![id("f"), Token::LParen, s("a"), Token::RParen, Token::LineEnd],
            ),
            ("break after && does not", "&&\n", vec![Token::And]),
            ("break after , does not", ",\n`a`", vec![Token::Comma, s("a")]),
            ("one line end for blank lines", "`a`\n\n\n", vec![s("a"), Token::LineEnd]),
            ("line comment ends the line", "`a` // c\n", vec![s("a"), Token::LineEnd]),
            ("block comment on one line", "`a` /* c */ ||", vec![s("a"), Token::Or]),
            ("block comment over lines", "`a` /* c\n */ ||", vec![s("a"), Token::LineEnd, Token::Or]),
        ];
        for (name, src, want) in cases {
            assert_eq!(kinds(src), want, "case {name}");
        }
    }
}
