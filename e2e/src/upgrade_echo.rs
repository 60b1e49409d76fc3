//! A WebSocket-style backend for upgrade tests: it answers an upgrade request `101`, then echoes
//! every byte until the client closes, then closes too, and reports each request head it saw.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;

/// A running echo-after-upgrade backend on an ephemeral loopback port.
pub struct EchoUpgrade {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The request heads it received, in order.
    pub heads: mpsc::Receiver<String>,
}

impl EchoUpgrade {
    /// Starts the backend on its own threads (one per connection).
    pub fn start() -> EchoUpgrade {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upgrade backend");
        let addr = listener.local_addr().expect("upgrade backend address");
        let (tx, heads) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || serve(stream, tx));
            }
        });
        EchoUpgrade { addr, heads }
    }
}

fn serve(stream: std::net::TcpStream, heads: mpsc::Sender<String>) {
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let _ = heads.send(head.clone());
    let mut out = stream;
    if !head.to_ascii_lowercase().contains("upgrade: websocket") {
        let _ =
            out.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno");
        return;
    }
    let _ = out.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = out.shutdown(std::net::Shutdown::Both);
}

/// Sends a WebSocket upgrade request for `host` on `conn`; returns the response head, lower-cased.
pub fn upgrade_request<S: Read + Write>(conn: &mut BufReader<S>, host: &str) -> String {
    let req = format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    conn.get_mut().write_all(req.as_bytes()).expect("send upgrade");
    conn.get_mut().flush().expect("flush upgrade");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("read upgrade response head");
        head.push_str(&line.to_ascii_lowercase());
        if line == "\r\n" || line.is_empty() {
            return head;
        }
    }
}
