//! Parsers for scalar option values (booleans, log levels, worker counts, CPU lists), each
//! returning the reason a value is refused so the caller can name the option.

use std::str::FromStr;

use weir_proto::rule::Syntax;

/// Log verbosity, as Traefik's `--log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation (the default).
    Info,
    /// Problems that do not stop serving.
    Warn,
    /// Problems that disable something.
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive for this level.
    pub fn directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "TRACE" => Ok(LogLevel::Trace),
            "DEBUG" => Ok(LogLevel::Debug),
            "INFO" => Ok(LogLevel::Info),
            "WARN" | "WARNING" => Ok(LogLevel::Warn),
            // Traefik also knows FATAL and PANIC; weir has nothing above ERROR.
            "ERROR" | "FATAL" | "PANIC" => Ok(LogLevel::Error),
            _ => Err("expected one of TRACE, DEBUG, INFO, WARN, ERROR".into()),
        }
    }
}

/// Go's `strconv.ParseBool`, which Traefik uses for flags.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// `--core.defaultRuleSyntax`: exactly `v2` or `v3`, as Traefik's static configuration checks it.
pub fn parse_rule_syntax(s: &str) -> Result<Syntax, String> {
    Syntax::from_name(s).ok_or_else(|| "expected v2 or v3".into())
}

/// A duration greater than zero, as Traefik's static configuration writes one (integer
/// seconds or Go syntax: `3s`, `500ms`).
pub fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    match crate::translate::duration::parse_str_nanos(s.trim()) {
        Some(ns) if ns > 0 => Ok(std::time::Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))),
        Some(_) => Err("must be greater than zero".into()),
        None => Err(format!("`{s}` is not a duration (seconds, or Go syntax such as 500ms)")),
    }
}

/// A worker count: a positive integer.
pub fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a positive integer".into()),
    }
}

/// A CPU list as `taskset` writes it (`0-3,6`); checked here, passed on to the data plane as is.
pub fn parse_cpus(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("expected a CPU list such as 0-3,6".into());
    }
    for part in s.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: u32 = lo.parse().map_err(|_| format!("`{part}` is not a CPU number or range"))?;
        let hi: u32 = hi.parse().map_err(|_| format!("`{part}` is not a CPU number or range"))?;
        if lo > hi {
            return Err(format!("range `{part}` is reversed"));
        }
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools() {
        let cases = [
            ("true", Some(true)),
            ("True", Some(true)),
            ("1", Some(true)),
            ("f", Some(false)),
            ("FALSE", Some(false)),
            ("yes", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_bool(input).ok(), want, "{input:?}");
        }
    }

    #[test]
    fn log_levels() {
        let cases = [
            ("DEBUG", Some(LogLevel::Debug)),
            ("info", Some(LogLevel::Info)),
            ("Warn", Some(LogLevel::Warn)),
            ("WARNING", Some(LogLevel::Warn)),
            ("ERROR", Some(LogLevel::Error)),
            ("PANIC", Some(LogLevel::Error)),
            ("verbose", None),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<LogLevel>().ok(), want, "{input:?}");
        }
    }

    #[test]
    fn rule_syntaxes() {
        let cases =
            [("v3", Some(Syntax::V3)), ("v2", Some(Syntax::V2)), ("V2", None), ("", None), ("v4", None)];
        for (input, want) in cases {
            assert_eq!(parse_rule_syntax(input).ok(), want, "{input:?}");
        }
    }

    #[test]
    fn workers_and_cpus() {
        assert_eq!(parse_workers("4"), Ok(4));
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("-1").is_err());
        let cpus =
            [("0", true), ("0-3", true), ("0-3,6,8-9", true), ("", false), ("3-1", false), ("a", false)];
        for (input, ok) in cpus {
            assert_eq!(parse_cpus(input).is_ok(), ok, "{input:?}");
        }
    }
}
