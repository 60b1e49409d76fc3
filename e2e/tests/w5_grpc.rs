//! W5 end to end: gRPC through weir, over h2c and over TLS (ALPN h2), with a real HTTP/2
//! client and server (the `h2` crate) speaking gRPC's wire format by hand: each message is a
//! 1-byte compression flag and a 4-byte big-endian length before its bytes, the status comes in
//! `grpc-status` trailers. A unary call, a server-streaming call, and a client that cancels a
//! stream mid-way (the backend must see the cancellation, not keep streaming into the void).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use weir_e2e::{service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);
const UNARY: &str = "/weir.test.Echo/Unary";
const COUNT: &str = "/weir.test.Echo/Count";

/// One gRPC message on the wire: uncompressed flag, length, bytes.
fn frame(message: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + message.len());
    b.put_u8(0);
    b.put_u32(u32::try_from(message.len()).expect("test messages are small"));
    b.put_slice(message);
    b.freeze()
}

/// Takes the next complete message off the front of `buf`, if there is one.
fn unframe(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if buf.len() < 5 + len {
        return None;
    }
    buf.advance(5);
    Some(buf.split_to(len).freeze())
}

// ---- The backend: an h2c gRPC server with a unary and a server-streaming method. ----

/// What the backend saw happen to its server-streaming calls.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The stream was reset by the peer after `sent` messages.
    Cancelled { sent: usize, reason: h2::Reason },
    /// The stream ran to its end.
    Completed,
}

/// Serves `Unary` (answers `echo: <message>`) and `Count` (streams `0`, `1`, … up to the number
/// in the request, one every 20 ms, then `grpc-status: 0`).
async fn grpc_backend(listener: TcpListener, seen: mpsc::UnboundedSender<Seen>) {
    while let Ok((sock, _)) = listener.accept().await {
        let seen = seen.clone();
        tokio::spawn(async move {
            let Ok(mut conn) = h2::server::handshake(sock).await else { return };
            while let Some(Ok((req, respond))) = conn.accept().await {
                tokio::spawn(grpc_call(req, respond, seen.clone()));
            }
        });
    }
}

async fn grpc_call(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    seen: mpsc::UnboundedSender<Seen>,
) {
    let path = req.uri().path().to_string();
    let is_grpc = req.headers().get("content-type").is_some_and(|v| v == "application/grpc");
    let te_trailers = req.headers().get("te").is_some_and(|v| v == "trailers");
    let mut body = req.into_body();
    let mut buf = BytesMut::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
    let message = unframe(&mut buf).unwrap_or_default();
    let head = http::Response::builder()
        .header("content-type", "application/grpc")
        .body(())
        .expect("static response head");
    let Ok(mut send) = respond.send_response(head, false) else { return };
    let trailers = |code: &str, message: &str| {
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", code.parse().expect("ascii"));
        t.insert("grpc-message", message.parse().expect("ascii"));
        t
    };
    if !is_grpc || !te_trailers {
        // The proxy must pass gRPC's request headers through untouched.
        let _ = send.send_trailers(trailers("3", "missing content-type or te"));
        return;
    }
    let status = match path.as_str() {
        UNARY => {
            let mut reply = b"echo: ".to_vec();
            reply.extend_from_slice(&message);
            let _ = send.send_data(frame(&reply), false);
            trailers("0", "fine")
        }
        COUNT => {
            let n: usize = std::str::from_utf8(&message).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
            for i in 0..n {
                if let Err(e) = send.send_data(frame(i.to_string().as_bytes()), false) {
                    let reason = e.reason().unwrap_or(h2::Reason::INTERNAL_ERROR);
                    let _ = seen.send(Seen::Cancelled { sent: i, reason });
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    reason = std::future::poll_fn(|cx| send.poll_reset(cx)) => {
                        let reason = reason.unwrap_or(h2::Reason::INTERNAL_ERROR);
                        let _ = seen.send(Seen::Cancelled { sent: i + 1, reason });
                        return;
                    }
                }
            }
            let _ = seen.send(Seen::Completed);
            trailers("0", "counted")
        }
        _ => trailers("12", "unknown method"),
    };
    let _ = send.send_trailers(status);
}

// ---- The client side. ----

/// The outcome of one call: response messages and the trailers.
#[derive(Debug)]
struct Reply {
    status: u16,
    messages: Vec<String>,
    trailers: http::HeaderMap,
}

impl Reply {
    fn grpc_status(&self) -> Option<&str> {
        self.trailers.get("grpc-status").and_then(|v| v.to_str().ok())
    }
}

/// An HTTP/2 client connection; aborting `conn` drops the socket without a goodbye.
struct Client {
    send: h2::client::SendRequest<Bytes>,
    conn: tokio::task::AbortHandle,
}

async fn h2_client<T>(io: T) -> Client
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::handshake(io).await.expect("h2 handshake with weir");
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    })
    .abort_handle();
    Client { send, conn }
}

/// Starts a call: sends the request and its single message, returns the response.
async fn start_call(
    client: &h2::client::SendRequest<Bytes>,
    scheme: &str,
    method: &str,
    message: &str,
) -> (http::response::Parts, h2::RecvStream, h2::SendStream<Bytes>) {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{scheme}://grpc.test{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
    let mut client = client.clone().ready().await.expect("connection ready");
    let (response, mut send) = client.send_request(req, false).expect("send request");
    send.send_data(frame(message.as_bytes()), true).expect("send message");
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("response head in time")
        .expect("response head");
    let (parts, body) = response.into_parts();
    (parts, body, send)
}

/// Reads messages until `limit` of them arrived or the stream ends.
async fn read_messages(body: &mut h2::RecvStream, limit: usize) -> Vec<String> {
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    while messages.len() < limit {
        while let Some(m) = unframe(&mut buf) {
            messages.push(String::from_utf8_lossy(&m).into_owned());
        }
        if messages.len() >= limit {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(10), body.data()).await.expect("data in time") {
            Some(chunk) => {
                let chunk = chunk.expect("response data");
                let _ = body.flow_control().release_capacity(chunk.len());
                buf.extend_from_slice(&chunk);
            }
            None => break,
        }
    }
    messages
}

async fn call(client: &h2::client::SendRequest<Bytes>, scheme: &str, method: &str, message: &str) -> Reply {
    let (parts, mut body, _send) = start_call(client, scheme, method, message).await;
    let messages = read_messages(&mut body, usize::MAX).await;
    let trailers = tokio::time::timeout(Duration::from_secs(10), body.trailers())
        .await
        .expect("trailers in time")
        .expect("trailers")
        .unwrap_or_default();
    Reply { status: parts.status.as_u16(), messages, trailers }
}

/// A self-signed CA and a `grpc.test` certificate it signed: `(ca DER, cert PEM, key PEM)`.
fn certificate() -> (Vec<u8>, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "weir gRPC test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(vec!["grpc.test".to_string()]).expect("leaf params");
    let cert = leaf.signed_by(&key, &issuer).expect("leaf cert");
    (ca_cert.der().to_vec(), cert.pem(), key.serialize_pem())
}

async fn tls_client(port: u16, ca: &[u8]) -> Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(ca.to_vec())).expect("CA is a valid anchor");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("grpc.test").expect("server name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with weir");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "weir must pick h2 by ALPN");
    h2_client(tls).await
}

/// weir with a cleartext and a TLS route for `grpc.test` to the h2c gRPC backend, plus the
/// backend's reports.
struct Setup {
    weir: Weir,
    ca: Vec<u8>,
    seen: mpsc::UnboundedReceiver<Seen>,
    _whoami: Whoami,
}

async fn setup() -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let backend: SocketAddr = listener.local_addr().expect("backend address");
    let (tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(grpc_backend(listener, tx));
    let whoami = Whoami::start("ready");
    let (ca, cert, key) = certificate();
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    let route = |name: &str, tls: &str| {
        format!(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  entryPoints: [web]\n{tls}  routes:\n  - match: \"Host(`grpc.test`)\"\n    \
             services: [{{name: grpc, port: 80, scheme: h2c}}]\n"
        )
    };
    let files = [
        ("grpc.yaml".to_string(), service_yaml("default", "grpc", 80, "grpc", &[backend])),
        ("ready.yaml".to_string(), service_yaml("default", "ready", 80, "http", &[whoami.addr])),
        (
            "ready-route.yaml".to_string(),
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: ready, namespace: default}\n\
             spec:\n  entryPoints: [web]\n  routes:\n  - match: \"Host(`ready.test`)\"\n    \
             services: [{name: ready, port: 80}]\n"
                .to_string(),
        ),
        (
            "secret.yaml".to_string(),
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: grpc-tls, namespace: default}}\n\
                 type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
                indent(&cert),
                indent(&key)
            ),
        ),
        ("clear.yaml".to_string(), route("clear", "")),
        ("secure.yaml".to_string(), route("secure", "  tls: {secretName: grpc-tls}\n")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = tokio::task::block_in_place(|| {
        let weir = Weir::start(&files, &[]);
        weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
        weir
    });
    Setup { weir, ca, seen, _whoami: whoami }
}

/// A new h2c or TLS (`https`) client connection to weir.
async fn connect(s: &Setup, scheme: &str) -> Client {
    match scheme {
        "https" => tls_client(s.weir.port, &s.ca).await,
        _ => h2_client(TcpStream::connect(("127.0.0.1", s.weir.port)).await.expect("connect")).await,
    }
}

/// Waits for the backend to report a cancelled `Count` stream.
async fn expect_cancelled(s: &mut Setup, scheme: &str, how: &str) {
    let seen = tokio::time::timeout(Duration::from_secs(5), s.seen.recv())
        .await
        .unwrap_or_else(|_| panic!("{scheme}: the backend kept streaming after the client {how}"));
    match seen {
        Some(Seen::Cancelled { sent, reason }) => {
            assert!(sent < 1000, "{scheme}: {sent}");
            assert_eq!(reason, h2::Reason::CANCEL, "{scheme}, client {how}");
        }
        other => panic!("{scheme}: client {how}, backend saw {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_server_streaming_calls_keep_their_trailers_over_h2c_and_tls() {
    let mut s = setup().await;
    for scheme in ["http", "https"] {
        let client = connect(&s, scheme).await.send;
        let r = call(&client, scheme, UNARY, "hello").await;
        assert_eq!(r.status, 200, "{scheme}: {r:?}\n{}", s.weir.log());
        assert_eq!(r.messages, ["echo: hello"], "{scheme}: {r:?}");
        assert_eq!(r.grpc_status(), Some("0"), "{scheme}: {r:?}");
        assert_eq!(r.trailers.get("grpc-message").map(|v| v.as_bytes()), Some(&b"fine"[..]));

        let r = call(&client, scheme, COUNT, "5").await;
        assert_eq!(r.messages, ["0", "1", "2", "3", "4"], "{scheme}: {r:?}");
        assert_eq!(r.grpc_status(), Some("0"), "{scheme}: {r:?}");
        assert_eq!(s.seen.recv().await, Some(Seen::Completed));

        // An error status travels in the trailers too.
        let r = call(&client, scheme, "/weir.test.Echo/Nope", "x").await;
        assert_eq!((r.status, r.grpc_status()), (200, Some("12")), "{scheme}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_client_stream_cancels_the_backend_stream() {
    let mut s = setup().await;
    for scheme in ["http", "https"] {
        let client = connect(&s, scheme).await.send;
        // 1000 messages at 20 ms each: the stream would run for 20 s if nobody cancelled it.
        let (parts, mut body, mut send) = start_call(&client, scheme, COUNT, "1000").await;
        assert_eq!(parts.status, 200, "{scheme}");
        assert_eq!(read_messages(&mut body, 3).await, ["0", "1", "2"], "{scheme}");
        // What a gRPC client does when its call is cancelled: RST_STREAM(CANCEL).
        send.send_reset(h2::Reason::CANCEL);
        drop(body);
        expect_cancelled(&mut s, scheme, "reset its stream").await;
        // The client's connection is still good for the next call.
        let r = call(&client, scheme, UNARY, "again").await;
        assert_eq!(r.messages, ["echo: again"], "{scheme}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_cancels_the_backend_stream() {
    let mut s = setup().await;
    for scheme in ["http", "https"] {
        let client = connect(&s, scheme).await;
        let (_, mut body, _send) = start_call(&client.send, scheme, COUNT, "1000").await;
        assert_eq!(read_messages(&mut body, 2).await, ["0", "1"], "{scheme}");
        // The client process dies: its socket closes with no RST_STREAM or GOAWAY.
        client.conn.abort();
        expect_cancelled(&mut s, scheme, "disconnected").await;
    }
}
