//! Log setup: `--log.level` when given, else `RUST_LOG`, else INFO; plain text (or JSON with
//! `--log.format=json`) on stderr, or appended to `--log.filePath`; colours only on a terminal
//! and never with `--log.noColor`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogLevel;

/// The filter directives to use.
pub fn directives(level: Option<LogLevel>, rust_log: Option<&str>) -> String {
    match (level, rust_log.filter(|s| !s.trim().is_empty())) {
        (Some(level), _) => level.directive().to_string(),
        (None, Some(env)) => env.to_string(),
        (None, None) => LogLevel::Info.directive().to_string(),
    }
}

/// Installs the global subscriber with the `--log.*` options.
pub fn init_with(level: Option<LogLevel>, options: &crate::config::LogOptions) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let wanted = directives(level, rust_log.as_deref());
    let filter = EnvFilter::try_new(&wanted).unwrap_or_else(|e| {
        eprintln!("weir: RUST_LOG `{wanted}` is not a valid filter ({e}); using info");
        EnvFilter::new("info")
    });
    let file = options.file_path.as_ref().and_then(|p| {
        match std::fs::OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("weir: cannot open log file {p}: {e}; logging to standard error");
                None
            }
        }
    });
    let ansi = file.is_none() && !options.no_color && std::io::stderr().is_terminal();
    let json = options.format == crate::config::LogFormat::Json;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    match (file, json) {
        (Some(f), true) => builder.json().with_writer(std::sync::Arc::new(f)).init(),
        (Some(f), false) => builder.with_writer(std::sync::Arc::new(f)).init(),
        (None, true) => builder.json().with_writer(std::io::stderr).init(),
        (None, false) => builder.with_writer(std::io::stderr).init(),
    }
}

/// Installs the global subscriber.
pub fn init(level: Option<LogLevel>) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let wanted = directives(level, rust_log.as_deref());
    let filter = EnvFilter::try_new(&wanted).unwrap_or_else(|e| {
        eprintln!("weir: RUST_LOG `{wanted}` is not a valid filter ({e}); using info");
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_choice() {
        let cases = [
            (None, None, "info"),
            (None, Some("weir_control=debug"), "weir_control=debug"),
            (None, Some("  "), "info"),
            (Some(LogLevel::Warn), Some("debug"), "warn"),
            (Some(LogLevel::Debug), None, "debug"),
        ];
        for (level, env, want) in cases {
            assert_eq!(directives(level, env), want, "{level:?} {env:?}");
        }
    }
}
