//! weir-whoami: an echo backend in the spirit of Traefik's whoami, for the quickstart, the
//! end-to-end tests and the benchmarks. Std only, one thread per connection, HTTP/1.x with
//! correct keep-alive. Prints exactly one line, `listening on <addr>`, once it accepts
//! connections, so a test can wait for it and learn the port.
#![forbid(unsafe_code)]

mod bad_request;
mod chunked;
mod cli;
mod conn;
mod duration;
mod head;
mod respond;
mod route;

use std::io::Write as _;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::Command;
use crate::respond::Identity;

/// Stack for connection threads: the per-request buffers live on the heap, so little is needed,
/// and a small stack lets a load test open thousands of connections.
const CONNECTION_STACK: usize = 256 * 1024;

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("weir-whoami: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weir-whoami: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: cli::Options) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(options.listen.as_str()).with_context(|| format!("binding {}", options.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let identity = Arc::new(Identity { name: options.name, hostname: hostname() });

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")
        .and_then(|()| stdout.flush())
        .context("announcing the address")?;
    drop(stdout);

    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Typically EMFILE under a load test: back off instead of spinning.
                eprintln!("weir-whoami: accept: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let identity = Arc::clone(&identity);
        let spawned = thread::Builder::new().stack_size(CONNECTION_STACK).spawn(move || {
            // A connection's I/O errors (reset, broken pipe) end that connection only.
            let _ = conn::serve(stream, &identity);
        });
        if let Err(e) = spawned {
            eprintln!("weir-whoami: spawning a connection thread: {e}");
        }
    }
    Ok(())
}

/// The kernel's hostname, as Go's `os.Hostname` reports it on Linux.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            let name = std::fs::read_to_string(path).ok()?;
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}
