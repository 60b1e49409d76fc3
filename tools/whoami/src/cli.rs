//! Command-line flags. Both `--flag value` and `--flag=value` are accepted; an address written
//! Traefik's way (`:9001`) listens on every IPv4 interface.

pub const USAGE: &str = "\
usage: weir-whoami [--listen ADDR] [--name NAME]

An echo backend in the spirit of Traefik's whoami.

  --listen ADDR   address to listen on (default 127.0.0.1:0; port 0 picks a free port,
                  ':PORT' listens on all interfaces)
  --name NAME     name shown in the page and in the X-Whoami-Name header (default whoami)

Prints one line, 'listening on <addr>', when it accepts connections.
Paths and parameters: /bench answers 'ok'; ?wait=<go duration> sleeps first;
?status=<200..599> sets the status.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Address to bind, ready for `TcpListener::bind`.
    pub listen: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unknown argument {0:?}")]
    Unknown(String),
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("{0} must not be empty")]
    Empty(&'static str),
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, UsageError> {
    let mut options = Options { listen: "127.0.0.1:0".to_owned(), name: "whoami".to_owned() };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let slot = match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => (&mut options.listen, "--listen"),
            "--name" => (&mut options.name, "--name"),
            _ => return Err(UsageError::Unknown(flag)),
        };
        let value = inline.or_else(|| args.next()).ok_or(UsageError::MissingValue(slot.1))?;
        if value.is_empty() {
            return Err(UsageError::Empty(slot.1));
        }
        *slot.0 = value;
    }
    if options.listen.starts_with(':') {
        options.listen = format!("0.0.0.0{}", options.listen);
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags() {
        let run =
            |listen: &str, name: &str| Ok(Command::Run(Options { listen: listen.into(), name: name.into() }));
        let cases: &[(&str, &[&str], Result<Command, UsageError>)] = &[
            ("defaults", &[], run("127.0.0.1:0", "whoami")),
            (
                "separate values",
                &["--listen", "127.0.0.1:9001", "--name", "whoami-1"],
                run("127.0.0.1:9001", "whoami-1"),
            ),
            ("inline values", &["--name=a=b", "--listen=[::1]:0"], run("[::1]:0", "a=b")),
            ("traefik-style port", &["--listen", ":9002"], run("0.0.0.0:9002", "whoami")),
            ("help", &["--name", "x", "--help"], Ok(Command::Help)),
            ("unknown flag", &["--port", "80"], Err(UsageError::Unknown("--port".into()))),
            ("positional", &["9001"], Err(UsageError::Unknown("9001".into()))),
            ("missing value", &["--listen"], Err(UsageError::MissingValue("--listen"))),
            ("empty name", &["--name="], Err(UsageError::Empty("--name"))),
        ];
        for (name, args, want) in cases {
            assert_eq!(&parse(args.iter().map(|a| a.to_string())), want, "case {name}");
        }
    }
}
