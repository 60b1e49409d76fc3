//! W5 end to end: HTTP/2 conformance cases h2spec-style tools do not reach through a proxy —
//! flow control with a small client window over a large body both ways, SETTINGS
//! (`maxConcurrentStreams` 250 advertised and enforced with REFUSED_STREAM), and a client's
//! RST_STREAM in the middle of a response (the other streams and the connection carry on).
//! Clients: the `h2` crate, and raw frames where the test must break the rules `h2` enforces.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_e2e::{service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// A backend that accepts connections and never answers, so the streams proxied to it stay open.
fn silent_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind silent backend");
    let addr = listener.local_addr().expect("silent backend address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    addr
}

/// weir with `h2.test` routed to a whoami echo backend, and `h2.test/hold` to a silent one.
fn start(echo: &Whoami) -> Weir {
    let hold = silent_backend();
    let files = [
        ("echo.yaml".to_string(), service_yaml("default", "echo", 80, "http", &[echo.addr])),
        ("hold.yaml".to_string(), service_yaml("default", "hold", 80, "http", &[hold])),
        (
            "routes.yaml".to_string(),
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: h2, namespace: default}\n\
             spec:\n  entryPoints: [web]\n  routes:\n  - match: \"Host(`h2.test`) && Path(`/hold`)\"\n    \
             services: [{name: hold, port: 80}]\n  - match: \"Host(`h2.test`)\"\n    \
             services: [{name: echo, port: 80}]\n"
                .to_string(),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = Weir::start(&files, &[]);
    weir.wait_for("h2.test", "/", READY, |r| r.status == 200);
    weir
}

/// A body of `len` printable bytes that is not periodic in any small window.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + ((i * 7 + i / 251) % 26) as u8).collect()
}

// ---- The h2 crate client (tokio). ----

async fn client(port: u16, window: u32) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let (client, conn) = h2::client::Builder::new()
        .initial_window_size(window)
        .initial_connection_window_size(8 << 20)
        .handshake(tcp)
        .await
        .expect("h2c handshake with weir");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// POSTs `body` to the echo backend; returns the response head and body stream, and the
/// request stream (to reset it).
async fn post(
    client: &h2::client::SendRequest<Bytes>,
    body: &[u8],
) -> (u16, h2::RecvStream, h2::SendStream<Bytes>) {
    let req = http::Request::builder()
        .method("POST")
        .uri("http://h2.test/echo")
        .header("content-length", body.len())
        .body(())
        .expect("request");
    let mut client = client.clone().ready().await.expect("connection ready");
    let (response, mut send) = client.send_request(req, false).expect("send request");
    // send_data queues what the peer's window does not allow yet; h2 sends it as weir opens it.
    send.send_data(Bytes::copy_from_slice(body), true).expect("send body");
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .expect("response head in time")
        .expect("response head");
    (response.status().as_u16(), response.into_body(), send)
}

/// Reads the rest of a response body, giving the window back after every chunk.
async fn read_all(body: &mut h2::RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), body.data()).await.expect("data in time") {
            Some(chunk) => {
                let chunk = chunk.expect("response data within flow control");
                let _ = body.flow_control().release_capacity(chunk.len());
                out.extend_from_slice(&chunk);
            }
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_control_carries_large_bodies_through_small_windows() {
    let echo = Whoami::start("echo");
    let weir = tokio::task::block_in_place(|| start(&echo));
    // 2 MiB up (more than any initial window weir announces), echoed back through a 4 KiB
    // stream window: hundreds of WINDOW_UPDATEs each way, and h2 fails the stream with
    // FLOW_CONTROL_ERROR if weir ever sends beyond the window.
    let client = client(weir.port, 4096).await;
    let sent = body(2 << 20);
    let (status, mut recv, _send) = post(&client, &sent).await;
    assert_eq!(status, 200, "{}", weir.log());
    let got = read_all(&mut recv).await;
    assert!(got.len() > sent.len(), "echo is shorter than the body: {} bytes", got.len());
    assert!(got.ends_with(&sent), "the body came back altered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reset_mid_response_leaves_other_streams_and_the_connection_alive() {
    let echo = Whoami::start("echo");
    let weir = tokio::task::block_in_place(|| start(&echo));
    // A 16 KiB window the test does not give back on stream A holds its response mid-way.
    let client = client(weir.port, 16 << 10).await;
    let sent = body(1 << 20);
    let (a, b) = tokio::join!(post(&client, &sent), post(&client, &sent));
    let ((status_a, mut recv_a, mut send_a), (status_b, mut recv_b, _send_b)) = (a, b);
    assert_eq!((status_a, status_b), (200, 200));
    let first = tokio::time::timeout(Duration::from_secs(20), recv_a.data())
        .await
        .expect("first chunk in time")
        .expect("stream A has data")
        .expect("stream A data");
    assert!(!first.is_empty());
    send_a.send_reset(h2::Reason::CANCEL);

    let got = read_all(&mut recv_b).await;
    assert!(got.ends_with(&sent), "stream B was cut or altered ({} bytes)", got.len());
    // Stream A ended with the reset, not with its whole body.
    let mut rest_a = first.len();
    while let Some(Ok(chunk)) = recv_a.data().await {
        rest_a += chunk.len();
    }
    assert!(rest_a < sent.len(), "stream A was not cut: {rest_a} bytes");
    // The connection still takes new streams.
    let (status, mut recv, _send) = post(&client, b"after").await;
    assert_eq!(status, 200);
    assert!(read_all(&mut recv).await.ends_with(b"after"));
}

// ---- Raw frames: what the h2 crate would not let a client do. ----

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn write_frame(s: &mut TcpStream, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    s.write_all(&f).expect("write frame");
}

fn read_frame(s: &mut TcpStream) -> Frame {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("frame header (did weir close the connection?)");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).expect("frame payload");
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Frame { kind: head[3], flags: head[4], stream, payload }
}

/// An HPACK header block without Huffman coding or indexing: `method` from the static table
/// (0x82 GET, 0x83 POST), `:scheme http`, then `:path` and `:authority` as literals.
fn header_block(method: u8, path: &str, authority: &str) -> Vec<u8> {
    let mut b = vec![method, 0x86];
    for (index, value) in [(0x04, path), (0x01, authority)] {
        b.push(index); // literal without indexing, name from static table entry `index`
        b.push(value.len() as u8);
        b.extend_from_slice(value.as_bytes());
    }
    b
}

/// Reads frames until `want` matches one, panicking on GOAWAY or after 10 s.
fn read_until(s: &mut TcpStream, what: &str, want: impl Fn(&Frame) -> bool) -> Frame {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no {what} within 10 s");
        let f = read_frame(s);
        assert_ne!(f.kind, GOAWAY, "weir closed the connection while waiting for {what}: {:?}", f.payload);
        if want(&f) {
            return f;
        }
    }
}

#[test]
fn max_concurrent_streams_is_announced_and_stream_251_is_refused() {
    let echo = Whoami::start("echo");
    let weir = start(&echo);
    let mut s = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").expect("preface");
    write_frame(&mut s, SETTINGS, 0, 0, &[]);

    // The server's SETTINGS announce Traefik's default of 250 concurrent streams.
    let settings = read_until(&mut s, "SETTINGS", |f| f.kind == SETTINGS && f.flags & ACK == 0);
    let announced = settings
        .payload
        .chunks(6)
        .find(|p| u16::from_be_bytes([p[0], p[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS)
        .map(|p| u32::from_be_bytes([p[2], p[3], p[4], p[5]]));
    assert_eq!(announced, Some(250));
    write_frame(&mut s, SETTINGS, ACK, 0, &[]);

    // 251 requests whose bodies never end, to a backend that never answers: all stay open.
    let hold = header_block(0x83, "/hold", "h2.test");
    for n in 0..251u32 {
        write_frame(&mut s, HEADERS, END_HEADERS, 2 * n + 1, &hold);
    }
    let rst = read_until(&mut s, "RST_STREAM", |f| f.kind == RST_STREAM);
    assert_eq!(rst.stream, 501, "the first stream refused must be the 251st");
    assert_eq!(u32::from_be_bytes(rst.payload[..4].try_into().expect("4-byte code")), REFUSED_STREAM);

    // Cancelling one stream frees a slot: the connection is alive and takes a new request.
    write_frame(&mut s, RST_STREAM, 0, 1, &CANCEL.to_be_bytes());
    write_frame(&mut s, HEADERS, END_HEADERS | END_STREAM, 503, &header_block(0x82, "/", "h2.test"));
    let answer = read_until(&mut s, "the answer on stream 503", |f| {
        f.stream == 503 && (f.kind == HEADERS || f.kind == RST_STREAM)
    });
    assert_eq!(answer.kind, HEADERS, "stream 503 was reset instead of answered");
    // hyper encodes `:status: 200` as static table entry 8.
    assert_eq!(answer.payload.first(), Some(&0x88), "stream 503 did not answer 200");
}
