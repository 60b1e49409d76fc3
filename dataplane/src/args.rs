//! Command-line options of `weir-dataplane` (it is normally started by `weir`).

use std::path::PathBuf;

/// Usage text.
pub const HELP: &str = "\
weir-dataplane: serves the snapshots that `weir` sends.

Options:
  --socket PATH      control socket to listen on (required)
  --state PATH       last applied snapshot, kept across restarts (default: SOCKET with .state)
  --workers N        worker threads (default: number of CPUs)
  --cpus LIST        CPUs to pin workers to, e.g. 0,1 or 0-3 (default: 0..workers)
  --log.level LEVEL  error|warn|info|debug|trace (default: info; RUST_LOG wins)
  --log.format F     common|json (default: common)
  --log.filePath P   append logs to this file (default: standard error)
  --log.noColor      no ANSI colours (default: colours when standard error is a terminal)
  --max-connections-per-worker N
                     open client connections each worker serves at most; beyond it new
                     connections are closed at once (default 65536)
  --ebpf on|off      eBPF per-core steering of listeners (default: on when the build has the
                     BPF programs and the process may load them; otherwise logged once, off)
  --experimental.sockmap
                     TCP passthrough moved in the kernel by the sockmap splice (default off;
                     falls back to splice(2) when the program cannot be loaded)
  --experimental.udpFastPath
                     established UDP flows forwarded in the kernel by a TC program (default
                     off; the userspace path stays when the program cannot be loaded)
  --experimental.udpFastPath.interfaces LIST
                     interfaces to attach it to, e.g. lo,eth0 (default: lo and every
                     interface with a route)
";

/// Parsed options.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// Control socket path.
    pub socket: PathBuf,
    /// State file for the last applied snapshot.
    pub state: Option<PathBuf>,
    /// Number of workers.
    pub workers: usize,
    /// CPUs to pin to.
    pub cpus: Option<Vec<usize>>,
    /// Log filter.
    pub log_level: String,
    /// `--log.format=json`.
    pub log_json: bool,
    /// `--log.filePath`.
    pub log_file: Option<PathBuf>,
    /// `--log.noColor`.
    pub log_no_color: bool,
    /// Use the eBPF programs when possible.
    pub ebpf: bool,
    /// Open client connections per worker (beyond: closed at accept).
    pub max_connections_per_worker: usize,
    /// `--experimental.sockmap`: plain TCP passthrough spliced in the kernel.
    pub sockmap: bool,
    /// `--experimental.udpFastPath`: established UDP flows forwarded by the TC program.
    pub udp_fast_path: bool,
    /// `--experimental.udpFastPath.interfaces`: where to attach it (None: lo and routed ones).
    pub udp_fast_path_interfaces: Option<Vec<String>>,
}

/// Bad command line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ArgsError {
    /// `--help` was asked for.
    #[error("help requested")]
    Help,
    /// An option needs a value.
    #[error("option {0} needs a value")]
    MissingValue(String),
    /// A value does not parse.
    #[error("option {option}: bad value {value:?}")]
    BadValue {
        /// The option.
        option: String,
        /// The value.
        value: String,
    },
    /// An unknown option.
    #[error("unknown option {0}")]
    Unknown(String),
    /// No socket given.
    #[error("--socket is required")]
    NoSocket,
}

impl Args {
    /// Parses `--key value` and `--key=value` forms.
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, ArgsError> {
        let mut socket = None;
        let mut state = None;
        let mut workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut cpus = None;
        let mut log_level = "info".to_string();
        let mut log_json = false;
        let mut log_file = None;
        let mut log_no_color = false;
        let mut ebpf = true;
        let mut sockmap = false;
        let mut udp_fast_path = false;
        let mut udp_fast_path_interfaces = None;
        let mut max_connections_per_worker = crate::http::conn_limit::DEFAULT;
        while let Some(arg) = it.next() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
                None => (arg.to_ascii_lowercase(), None),
            };
            if key == "--help" || key == "-h" {
                return Err(ArgsError::Help);
            }
            let mut value =
                || inline.clone().or_else(|| it.next()).ok_or_else(|| ArgsError::MissingValue(key.clone()));
            let bad = |v: &str| ArgsError::BadValue { option: key.clone(), value: v.to_string() };
            match key.as_str() {
                "--socket" => socket = Some(PathBuf::from(value()?)),
                "--state" => state = Some(PathBuf::from(value()?)),
                "--workers" => {
                    let v = value()?;
                    workers = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(&v))?;
                }
                "--cpus" => {
                    let v = value()?;
                    cpus = Some(parse_cpus(&v).ok_or_else(|| bad(&v))?);
                }
                "--log.level" => log_level = value()?.to_ascii_lowercase(),
                "--log.format" => {
                    let v = value()?;
                    log_json = match v.to_ascii_lowercase().as_str() {
                        "json" => true,
                        "common" => false,
                        _ => return Err(bad(&v)),
                    };
                }
                "--log.filepath" => {
                    log_file = Some(PathBuf::from(value()?)).filter(|p| !p.as_os_str().is_empty())
                }
                "--log.nocolor" => {
                    // A bare flag means true (Traefik style); only `--log.noColor=false` turns it off.
                    log_no_color = inline.as_deref().is_none_or(|v| !v.eq_ignore_ascii_case("false"));
                }
                "--ebpf" => {
                    let v = value()?;
                    ebpf = match v.to_ascii_lowercase().as_str() {
                        "on" | "true" => true,
                        "off" | "false" => false,
                        _ => return Err(bad(&v)),
                    };
                }
                "--experimental.sockmap" => {
                    // A bare flag means true; `--experimental.sockmap=false` turns it off.
                    sockmap = inline.as_deref().is_none_or(|v| !v.eq_ignore_ascii_case("false"));
                }
                "--experimental.udpfastpath" => {
                    // A bare flag means true; `--experimental.udpFastPath=false` turns it off.
                    udp_fast_path = inline.as_deref().is_none_or(|v| !v.eq_ignore_ascii_case("false"));
                }
                "--experimental.udpfastpath.interfaces" => {
                    let v = value()?;
                    let names: Vec<String> =
                        v.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
                    if names.is_empty() {
                        return Err(bad(&v));
                    }
                    udp_fast_path_interfaces = Some(names);
                }
                "--max-connections-per-worker" => {
                    let v = value()?;
                    max_connections_per_worker = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(&v))?;
                }
                _ => return Err(ArgsError::Unknown(arg)),
            }
        }
        Ok(Args {
            socket: socket.ok_or(ArgsError::NoSocket)?,
            state,
            workers,
            cpus,
            log_level,
            log_json,
            log_file,
            log_no_color,
            ebpf,
            max_connections_per_worker,
            sockmap,
            udp_fast_path,
            udp_fast_path_interfaces,
        })
    }
}

/// `0,2,4-6` → `[0, 2, 4, 5, 6]`.
fn parse_cpus(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, ArgsError> {
        Args::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn options() {
        let a = parse("--socket /s --workers 3 --cpus=0,2-3 --LOG.LEVEL=DEBUG").expect("valid");
        assert_eq!(a.socket, PathBuf::from("/s"));
        assert_eq!(a.workers, 3);
        assert_eq!(a.cpus, Some(vec![0, 2, 3]));
        assert_eq!(a.log_level, "debug");
        assert_eq!(a.max_connections_per_worker, crate::http::conn_limit::DEFAULT);
        let a = parse("--socket /s --max-connections-per-worker=10").expect("valid");
        assert_eq!(a.max_connections_per_worker, 10);
        assert!(!a.sockmap, "the sockmap splice is off by default");
        assert!(parse("--socket /s --experimental.sockmap").expect("valid").sockmap);
        assert!(!parse("--socket /s --experimental.sockmap=false").expect("valid").sockmap);
        assert!(!a.udp_fast_path, "the UDP fast path is off by default");
        let on =
            parse("--socket /s --experimental.udpFastPath --experimental.udpFastPath.interfaces=lo,eth0")
                .expect("valid");
        assert!(on.udp_fast_path);
        assert_eq!(on.udp_fast_path_interfaces, Some(vec!["lo".to_string(), "eth0".to_string()]));
        assert!(parse("--socket /s --experimental.udpFastPath.interfaces=,").is_err(), "no interface");
        let cases = [
            ("no socket", "--workers 1", ArgsError::NoSocket),
            (
                "zero workers",
                "--socket /s --workers 0",
                ArgsError::BadValue { option: "--workers".into(), value: "0".into() },
            ),
            (
                "bad cpus",
                "--socket /s --cpus 3-1",
                ArgsError::BadValue { option: "--cpus".into(), value: "3-1".into() },
            ),
            ("missing value", "--socket", ArgsError::MissingValue("--socket".into())),
            ("unknown", "--socket /s --bogus", ArgsError::Unknown("--bogus".into())),
            (
                "zero connections",
                "--socket /s --max-connections-per-worker 0",
                ArgsError::BadValue { option: "--max-connections-per-worker".into(), value: "0".into() },
            ),
        ];
        for (name, line, want) in cases {
            assert_eq!(parse(line), Err(want), "case {name}");
        }
    }
}
