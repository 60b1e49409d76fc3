//! Go duration strings (`2s`, `500ms`, `1m30s`, `1.5h`), as Traefik's whoami takes them in
//! `?wait=`. Follows Go's `time.ParseDuration` grammar; a negative duration means "do not wait",
//! as it does for Go's `time.Sleep`.

use std::time::Duration;

/// The string is not a Go duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuration;

/// Parses a Go duration string. Negative durations come back as zero.
pub fn parse_go_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    // Go: "0" is the only number allowed without a unit.
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(InvalidDuration);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        let (frac_digits, after_number) = match after_int.strip_prefix('.') {
            Some(f) => {
                let frac_len = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(InvalidDuration);
        }
        let unit_len =
            after_number.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(InvalidDuration),
        };
        let int: u128 =
            if int_digits.is_empty() { 0 } else { int_digits.parse().map_err(|_| InvalidDuration)? };
        // Digits past nanosecond precision cannot change the result: drop them before scaling.
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let frac: u128 =
            if frac_digits.is_empty() { 0 } else { frac_digits.parse().map_err(|_| InvalidDuration)? };
        let frac_ns = frac * unit_ns / 10u128.pow(frac_digits.len() as u32);
        total = int
            .checked_mul(unit_ns)
            .and_then(|v| v.checked_add(frac_ns))
            .and_then(|v| v.checked_add(total))
            .filter(|v| *v <= u64::MAX as u128)
            .ok_or(InvalidDuration)?;
        rest = after_unit;
    }
    if negative {
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let ms = Duration::from_millis;
        let cases: &[(&str, &str, Result<Duration, InvalidDuration>)] = &[
            ("seconds", "2s", Ok(ms(2_000))),
            ("milliseconds", "500ms", Ok(ms(500))),
            ("minutes and seconds", "1m30s", Ok(ms(90_000))),
            ("fractional seconds", "1.5s", Ok(ms(1_500))),
            ("fraction without integer", ".5s", Ok(ms(500))),
            ("integer with trailing dot", "1.s", Ok(ms(1_000))),
            ("hours", "1h", Ok(ms(3_600_000))),
            ("microseconds ascii", "100us", Ok(Duration::from_micros(100))),
            ("microseconds micro sign", "100µs", Ok(Duration::from_micros(100))),
            ("nanoseconds", "7ns", Ok(Duration::from_nanos(7))),
            ("bare zero", "0", Ok(Duration::ZERO)),
            ("explicit plus", "+2s", Ok(ms(2_000))),
            ("negative is no wait", "-1s", Ok(Duration::ZERO)),
            ("many fraction digits", "1.0000000000000000000001s", Ok(ms(1_000))),
            ("empty", "", Err(InvalidDuration)),
            ("sign only", "-", Err(InvalidDuration)),
            ("number without unit", "5", Err(InvalidDuration)),
            ("unknown unit", "5x", Err(InvalidDuration)),
            ("unit without number", "s", Err(InvalidDuration)),
            ("dot without digits", ".s", Err(InvalidDuration)),
            ("trailing number without unit", "1s5", Err(InvalidDuration)),
            ("space inside", "1 s", Err(InvalidDuration)),
            ("overflow", "9999999999999999h", Err(InvalidDuration)),
        ];
        for (name, input, want) in cases {
            assert_eq!(&parse_go_duration(input), want, "case {name}: {input:?}");
        }
    }
}
