//! W4 end to end: the GrpcWeb middleware. curl sends a hand-made gRPC-Web call over HTTP/1.1
//! (binary and `-text`, base64) to weir, which calls an h2c gRPC backend (the `h2` crate
//! speaking gRPC's framing by hand) and answers in gRPC-Web: the message frame, then the
//! trailers as a frame flagged 0x80. A CORS preflight for an allowed origin is answered by weir.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::net::TcpListener;
use weir_e2e::{service_yaml, TempDir, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

fn frame(flag: u8, message: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(flag);
    b.put_u32(u32::try_from(message.len()).expect("small"));
    b.put_slice(message);
    b.to_vec()
}

/// Splits a gRPC-Web body into its `(flag, payload)` frames.
fn frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let end = (5 + len).min(body.len());
        out.push((body[0], body[5..end].to_vec()));
        body = &body[end..];
    }
    out
}

/// An h2c gRPC server: `/weir.test.Echo/Unary` answers `echo: <message>` with
/// `grpc-status: 0` trailers; a request that is not `application/grpc…` gets status 3.
async fn backend(listener: TcpListener) {
    while let Ok((sock, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::handshake(sock).await else { return };
            while let Some(Ok((req, mut respond))) = conn.accept().await {
                tokio::spawn(async move {
                    let grpc =
                        req.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| {
                            v.starts_with("application/grpc") && !v.starts_with("application/grpc-web")
                        });
                    let path = req.uri().path().to_string();
                    let mut body = req.into_body();
                    let mut buf = BytesMut::new();
                    while let Some(Ok(chunk)) = body.data().await {
                        let _ = body.flow_control().release_capacity(chunk.len());
                        buf.extend_from_slice(&chunk);
                    }
                    let message = if buf.len() >= 5 {
                        buf.advance(5);
                        buf.freeze()
                    } else {
                        Bytes::new()
                    };
                    let head = http::Response::builder()
                        .header("content-type", "application/grpc+proto")
                        .body(())
                        .expect("head");
                    let Ok(mut send) = respond.send_response(head, false) else { return };
                    let mut t = http::HeaderMap::new();
                    if grpc && path == "/weir.test.Echo/Unary" {
                        let mut reply = b"echo: ".to_vec();
                        reply.extend_from_slice(&message);
                        let _ = send.send_data(Bytes::from(frame(0, &reply)), false);
                        t.insert("grpc-status", "0".parse().expect("ascii"));
                    } else {
                        t.insert("grpc-status", "3".parse().expect("ascii"));
                    }
                    let _ = send.send_trailers(t);
                });
            }
        });
    }
}

struct Out {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn curl(port: u16, dir: &TempDir, args: &[&str]) -> Out {
    let (h, b) = (dir.join("headers"), dir.join("body"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--http1.1", "-D"])
        .arg(&h)
        .arg("-o")
        .arg(&b)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}/weir.test.Echo/Unary"))
        .output()
        .expect("curl runs");
    Out {
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0),
        headers: std::fs::read_to_string(&h).unwrap_or_default(),
        body: std::fs::read(&b).unwrap_or_default(),
    }
}

fn header(out: &Out, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    out.headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
}

fn write(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).expect("write");
    format!("@{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_calls_reach_a_grpc_backend_and_get_trailer_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(backend(listener));
    let whoami = Whoami::start("ready");
    let docs = "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {name: gw, namespace: default}\n\
         spec: {grpcWeb: {allowOrigins: ['https://app.test']}}\n---\n\
         apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: grpc, namespace: default}\n\
         spec:\n  entryPoints: [web]\n  routes:\n  - match: \"Host(`127.0.0.1`)\"\n    middlewares: [{name: gw}]\n    \
         services: [{name: grpc, port: 80, scheme: h2c}]\n---\n\
         apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: ready, namespace: default}\n\
         spec:\n  entryPoints: [web]\n  routes:\n  - match: \"Host(`ready.test`)\"\n    services: [{name: ready, port: 80}]\n";
    let grpc = service_yaml("default", "grpc", 80, "grpc", &[addr]);
    let ready = service_yaml("default", "ready", 80, "http", &[whoami.addr]);
    let weir = tokio::task::block_in_place(|| {
        let weir = Weir::start(&[("grpc.yaml", &grpc), ("ready.yaml", &ready), ("docs.yaml", docs)], &[]);
        weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
        weir
    });
    let port = weir.port;
    let dir = TempDir::new();
    let request = frame(0, b"hello");

    // Binary gRPC-Web.
    let data = write(&dir.join("req"), &request);
    let out = tokio::task::block_in_place(|| {
        curl(
            port,
            &dir,
            &[
                "-H",
                "Content-Type: application/grpc-web+proto",
                "-H",
                "X-Grpc-Web: 1",
                "-H",
                "Origin: https://app.test",
                "--data-binary",
                &data,
            ],
        )
    });
    assert_eq!(out.status, 200, "{}\n{}", out.headers, weir.log());
    assert_eq!(
        header(&out, "content-type").as_deref(),
        Some("application/grpc-web+proto"),
        "{}",
        out.headers
    );
    assert_eq!(header(&out, "access-control-allow-origin").as_deref(), Some("https://app.test"));
    let exposed = header(&out, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("grpc-status") && exposed.contains("grpc-message"), "{exposed}");
    let got = frames(&out.body);
    assert_eq!(got.len(), 2, "{:?}", out.body);
    assert_eq!(got[0], (0, b"echo: hello".to_vec()));
    assert_eq!(got[1], (0x80, b"grpc-status: 0\r\n".to_vec()));

    // gRPC-Web text: base64 both ways.
    let text = base64_encode(&request);
    let data = write(&dir.join("req.txt"), text.as_bytes());
    let out = tokio::task::block_in_place(|| {
        curl(port, &dir, &["-H", "Content-Type: application/grpc-web-text", "--data-binary", &data])
    });
    assert_eq!(out.status, 200, "{}", out.headers);
    assert_eq!(header(&out, "content-type").as_deref(), Some("application/grpc-web-text+proto"));
    let decoded = base64_decode_segments(&String::from_utf8_lossy(&out.body));
    let got = frames(&decoded);
    assert_eq!(got, vec![(0, b"echo: hello".to_vec()), (0x80, b"grpc-status: 0\r\n".to_vec())]);

    // The CORS preflight is answered by weir for the allowed origin only.
    let preflight = |origin: &str| {
        let o = format!("Origin: {origin}");
        tokio::task::block_in_place(|| {
            curl(
                port,
                &dir,
                &[
                    "-X",
                    "OPTIONS",
                    "-H",
                    &o,
                    "-H",
                    "Access-Control-Request-Method: POST",
                    "-H",
                    "Access-Control-Request-Headers: x-grpc-web,content-type",
                ],
            )
        })
    };
    let out = preflight("https://app.test");
    assert_eq!(out.status, 200, "{}", out.headers);
    assert_eq!(header(&out, "access-control-allow-origin").as_deref(), Some("https://app.test"));
    assert_eq!(header(&out, "access-control-allow-headers").as_deref(), Some("X-Grpc-Web, Content-Type"));
    let out = preflight("https://evil.test");
    assert_eq!(out.status, 200);
    assert_eq!(header(&out, "access-control-allow-origin"), None, "{}", out.headers);
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes concatenated padded base64 segments.
fn base64_decode_segments(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    for quad in bytes.chunks(4) {
        let mut n = 0u32;
        let mut valid = 0u32;
        for (i, &c) in quad.iter().enumerate() {
            if c == b'=' {
                continue;
            }
            let v = ALPHABET.iter().position(|&a| a == c).expect("base64 alphabet") as u32;
            n |= v << (18 - 6 * i);
            valid += 1;
        }
        for i in 0..valid.saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
