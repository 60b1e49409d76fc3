//! Durations as Traefik's CRDs write them (`ptypes.Duration`): an integer is seconds, a string
//! is a Go duration (`1m30s`, `500ms`, `-1ms`) or an integer in a string. Signed, in
//! milliseconds-and-below precision kept as nanoseconds.

use crate::objects::IntOrString;

/// Parses a Traefik duration into signed nanoseconds; `None` when it does not parse.
pub fn parse_nanos(value: &IntOrString) -> Option<i128> {
    match value {
        IntOrString::Int(secs) => Some(i128::from(*secs) * 1_000_000_000),
        IntOrString::String(s) => parse_str_nanos(s.trim()),
    }
}

/// Parses a Traefik duration into signed milliseconds (rounded towards zero).
pub fn parse_millis(value: &IntOrString) -> Option<i64> {
    parse_nanos(value).and_then(|ns| i64::try_from(ns / 1_000_000).ok())
}

/// A string duration: integer seconds or Go's `time.ParseDuration` grammar.
pub fn parse_str_nanos(s: &str) -> Option<i128> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(i128::from(secs) * 1_000_000_000);
    }
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_number) = match after_int.strip_prefix('.') {
            Some(f) => f.split_at(f.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return None;
        }
        let unit_len =
            after_number.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_ns: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: i128 = if int_digits.is_empty() { 0 } else { int_digits.parse().ok()? };
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let frac: i128 = if frac_digits.is_empty() { 0 } else { frac_digits.parse().ok()? };
        let frac_ns = frac * unit_ns / 10i128.pow(frac_digits.len() as u32);
        total = total.checked_add(int.checked_mul(unit_ns)?.checked_add(frac_ns)?)?;
        if total > i128::from(i64::MAX) {
            return None;
        }
        rest = after_unit;
    }
    Some(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let s = |v: &str| IntOrString::String(v.into());
        let cases = [
            ("int seconds", IntOrString::Int(30), Some(30_000)),
            ("string seconds", s("5"), Some(5_000)),
            ("go seconds", s("2s"), Some(2_000)),
            ("go millis", s("100ms"), Some(100)),
            ("compound", s("1m30s"), Some(90_000)),
            ("fraction", s("1.5s"), Some(1_500)),
            ("negative", s("-1ms"), Some(-1)),
            ("negative int", s("-1"), Some(-1_000)),
            ("zero", s("0"), Some(0)),
            ("no unit", s("5x"), None),
            ("empty", s(""), None),
        ];
        for (name, value, want) in cases {
            assert_eq!(parse_millis(&value), want, "case {name}");
        }
    }
}
