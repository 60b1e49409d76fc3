//! W5 end to end: TLS termination on the entrypoint with SNI-selected certificates (exact,
//! wildcard, the self-signed default), TLSOption (sniStrict, versions, client certificates,
//! conflicting options), certificates rotated on disk without restarts, TLS and cleartext
//! routers kept apart, and HTTP/2 over TLS (ALPN) and in clear text (prior knowledge), with
//! real clients: curl, openssl s_client, nghttp, and a rustls client that shows the
//! certificate the server chose.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_e2e::upgrade_echo::{upgrade_request, EchoUpgrade};
use weir_e2e::{service_yaml, TempDir, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

/// A certificate and its key, PEM.
#[derive(Clone)]
struct Pem {
    cert: String,
    key: String,
    der: Vec<u8>,
}

/// A CA that signs leaf certificates.
struct Ca {
    pem: Pem,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Ca {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).expect("CA cert");
        let pem = Pem { cert: cert.pem(), key: key.serialize_pem(), der: cert.der().to_vec() };
        Ca { pem, issuer: rcgen::Issuer::new(params, key) }
    }

    /// A leaf for `names` (server) or a client certificate (no names).
    fn leaf(&self, cn: &str, names: &[&str]) -> Pem {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        Pem { cert: cert.pem(), key: key.serialize_pem(), der: cert.der().to_vec() }
    }
}

fn indent(s: &str, by: usize) -> String {
    s.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

/// A `kubernetes.io/tls` Secret with PEM in `stringData`.
fn tls_secret(name: &str, pem: &Pem) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&pem.cert, 4),
        indent(&pem.key, 4)
    )
}

/// A CA bundle Secret (key `ca.crt`).
fn ca_secret(name: &str, ca: &Pem) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\nstringData:\n  ca.crt: |\n{}",
        indent(&ca.cert, 4)
    )
}

/// An IngressRoute on `web` with one route to the `app` service; `tls` is YAML or empty.
fn route(name: &str, rule: &str, tls: &str) -> String {
    let tls = if tls.is_empty() { String::new() } else { format!("  tls: {tls}\n") };
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: default}}\n\
         spec:\n  entryPoints: [web]\n{tls}  routes:\n  - match: \"{rule}\"\n    services: [{{name: app, port: 80}}]\n"
    )
}

fn tls_option(name: &str, spec: &str) -> String {
    format!("apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {{name: {name}, namespace: default}}\nspec: {spec}\n")
}

/// Starts weir with `docs` plus the `app` backend and a cleartext `ready.test` route, and waits
/// until it serves.
fn start(be: &Whoami, docs: &[String], extra: &[&str]) -> Weir {
    let mut files = vec![
        ("app.yaml".to_string(), service_yaml("default", "app", 80, "http", &[be.addr])),
        ("ready.yaml".to_string(), route("ready", "Host(`ready.test`)", "")),
    ];
    for (i, d) in docs.iter().enumerate() {
        files.push((format!("doc{i}.yaml"), d.clone()));
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = Weir::start(&files, extra);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
    weir
}

/// The output of a client run.
#[derive(Debug)]
struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes a file into a scratch directory and returns its path.
fn file(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write file");
    p
}

/// `curl https://<host>:<port><path>` through 127.0.0.1, trusting `ca`; prints status code
/// and HTTP version last.
fn curl_https(port: u16, host: &str, path: &str, ca: &Path, extra: &[&str]) -> Run {
    run(Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .args(["-w", "\n%{http_code} %{http_version}"])
        .arg(format!("https://{host}:{port}{path}")))
}

/// The last line of a curl run made by [`curl_https`]: `(status, version)`.
fn status_line(r: &Run) -> (u16, String) {
    let last = r.stdout.lines().last().unwrap_or("");
    let (code, version) = last.split_once(' ').unwrap_or(("0", ""));
    (code.parse().unwrap_or(0), version.to_string())
}

/// `openssl s_client` against the entrypoint; returns its output (handshake details).
fn s_client(port: u16, servername: Option<&str>, extra: &[&str]) -> Run {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}")]);
    match servername {
        Some(n) => cmd.args(["-servername", n]),
        None => cmd.arg("-noservername"),
    };
    cmd.args(extra).stdin(std::process::Stdio::null());
    run(&mut cmd)
}

/// The subject line openssl prints for the server certificate.
fn subject(r: &Run) -> String {
    r.stdout.lines().find(|l| l.starts_with("subject=")).unwrap_or("").to_string()
}

/// Whether an openssl run completed a handshake.
fn handshake_done(r: &Run) -> bool {
    r.stdout.contains("-----BEGIN CERTIFICATE-----") && !r.stdout.contains("Cipher is (NONE)")
}

// ---- A rustls client that records the certificate it was shown. ----

#[derive(Debug)]
struct Recorder {
    seen: Mutex<Vec<u8>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().expect("lock") = end_entity.to_vec();
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A keep-alive HTTP/1.1 connection over TLS.
struct TlsConn {
    reader: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
    /// The server's certificate (DER).
    cert: Vec<u8>,
}

impl TlsConn {
    fn open(port: u16, sni: &str) -> std::io::Result<TlsConn> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            algorithms: provider.signature_verification_algorithms,
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?;
        let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        let cert = recorder.seen.lock().expect("lock").clone();
        Ok(TlsConn { reader: BufReader::new(stream), cert })
    }

    /// GET on this connection: `(status, body)`.
    fn get(&mut self, host: &str, path: &str) -> std::io::Result<(u16, String)> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: weir-e2e\r\n\r\n");
        self.reader.get_mut().write_all(req.as_bytes())?;
        self.reader.get_mut().flush()?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            if line.trim_end().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

// ---- Tests ----

#[test]
fn sni_selects_the_exact_then_wildcard_then_default_certificate() {
    let be = Whoami::start("app");
    let ca = Ca::new("weir test CA");
    let exact = ca.leaf("a.test", &["a.test"]);
    let wild = ca.leaf("wildcard", &["*.w.test"]);
    let weir = start(
        &be,
        &[
            tls_secret("exact", &exact),
            tls_secret("wild", &wild),
            route("a", "Host(`a.test`) || Host(`x.w.test`) || Host(`unknown.test`)", "{secretName: exact}"),
            route("w", "Host(`y.w.test`)", "{secretName: wild}"),
        ],
        &[],
    );
    let scratch = TempDir::new();
    let ca_file = file(&scratch, "ca.pem", &ca.pem.cert);
    for host in ["a.test", "x.w.test", "y.w.test"] {
        let r = curl_https(weir.port, host, "/", &ca_file, &[]);
        assert_eq!(status_line(&r).0, 200, "{host}: {r:?}");
        assert!(
            r.stdout.contains("X-Forwarded-Proto: https") || r.stdout.contains("x-forwarded-proto: https"),
            "{r:?}"
        );
    }
    // The certificate is chosen by SNI, not by router: x.w.test gets the wildcard.
    let x = TlsConn::open(weir.port, "x.w.test").expect("x.w.test");
    assert_eq!(x.cert, wild.der);
    let a = TlsConn::open(weir.port, "a.test").expect("a.test");
    assert_eq!(a.cert, exact.der);
    // No certificate for the name: the generated default, which the CA did not sign.
    let unknown = s_client(weir.port, Some("unknown.test"), &[]);
    assert_eq!(subject(&unknown), "subject=CN = TRAEFIK DEFAULT CERT", "{unknown:?}");
    let r = curl_https(weir.port, "unknown.test", "/", &ca_file, &[]);
    assert_eq!(r.code, Some(60), "certificate problem expected: {r:?}");
    let r = curl_https(weir.port, "unknown.test", "/", &ca_file, &["-k"]);
    assert_eq!(status_line(&r).0, 200, "{r:?}");
}

#[test]
fn default_store_certificate_replaces_the_generated_one() {
    let be = Whoami::start("app");
    let ca = Ca::new("weir test CA");
    let fallback = ca.leaf("fallback.test", &["fallback.test"]);
    let weir = start(
        &be,
        &[
            tls_secret("fallback", &fallback),
            "apiVersion: traefik.io/v1alpha1\nkind: TLSStore\nmetadata: {name: default, namespace: default}\n\
             spec: {defaultCertificate: {secretName: fallback}}\n"
                .into(),
            route("any", "PathPrefix(`/`)", "{}"),
        ],
        &[],
    );
    let conn = TlsConn::open(weir.port, "whatever.test").expect("handshake");
    assert_eq!(conn.cert, fallback.der);
}

#[test]
fn sni_strict_refuses_unknown_and_absent_names() {
    let be = Whoami::start("app");
    let ca = Ca::new("weir test CA");
    let known = ca.leaf("known.test", &["known.test"]);
    let weir = start(
        &be,
        &[
            tls_secret("known", &known),
            tls_option("default", "{sniStrict: true}"),
            route("k", "Host(`known.test`) || Host(`other.test`)", "{secretName: known}"),
        ],
        &[],
    );
    let scratch = TempDir::new();
    let ca_file = file(&scratch, "ca.pem", &ca.pem.cert);
    assert_eq!(status_line(&curl_https(weir.port, "known.test", "/", &ca_file, &[])).0, 200);
    let r = curl_https(weir.port, "other.test", "/", &ca_file, &["-k"]);
    assert!(!r.ok && status_line(&r).0 == 0, "unknown SNI must fail the handshake: {r:?}");
    let r = s_client(weir.port, None, &[]);
    assert!(!handshake_done(&r), "no SNI must fail the handshake: {r:?}");
}

#[test]
fn min_and_max_versions_are_honoured() {
    let be = Whoami::start("app");
    let weir = start(
        &be,
        &[
            tls_option("only13", "{minVersion: VersionTLS13}"),
            tls_option("only12", "{maxVersion: VersionTLS12}"),
            route("v13", "Host(`v13.test`)", "{options: {name: only13}}"),
            route("v12", "Host(`v12.test`)", "{options: {name: only12}}"),
        ],
        &[],
    );
    let cases = [
        ("1.2 client, min 1.3", "v13.test", "-tls1_2", false),
        ("1.3 client, min 1.3", "v13.test", "-tls1_3", true),
        ("1.3 client, max 1.2", "v12.test", "-tls1_3", false),
        ("1.2 client, max 1.2", "v12.test", "-tls1_2", true),
        ("1.2 client, default option", "ready.test", "-tls1_2", true),
    ];
    for (name, host, flag, want) in cases {
        let r = s_client(weir.port, Some(host), &[flag]);
        assert_eq!(handshake_done(&r), want, "case {name}: {}\n{}", r.stdout, r.stderr);
    }
    // curl limited to TLS 1.2 cannot reach the TLS 1.3-only host.
    let r = run(Command::new("curl")
        .args(["-sk", "--tls-max", "1.2", "--resolve"])
        .arg(format!("v13.test:{}:127.0.0.1", weir.port))
        .arg(format!("https://v13.test:{}/", weir.port)));
    assert_eq!(r.code, Some(35), "{r:?}");
}

#[test]
fn client_certificates_are_required_and_verified() {
    let be = Whoami::start("app");
    let ca = Ca::new("weir test CA");
    let clients = Ca::new("client CA");
    let server = ca.leaf("mtls.test", &["mtls.test"]);
    let good = clients.leaf("good client", &[]);
    let stranger = Ca::new("other CA").leaf("stranger", &[]);
    let weir = start(
        &be,
        &[
            tls_secret("server", &server),
            ca_secret("clients", &clients.pem),
            tls_option(
                "mtls",
                "{clientAuth: {secretNames: [clients], clientAuthType: RequireAndVerifyClientCert}}",
            ),
            route("m", "Host(`mtls.test`)", "{secretName: server, options: {name: mtls}}"),
        ],
        &[],
    );
    let scratch = TempDir::new();
    let ca_file = file(&scratch, "ca.pem", &ca.pem.cert);
    let (good_crt, good_key) =
        (file(&scratch, "good.crt", &good.cert), file(&scratch, "good.key", &good.key));
    let (bad_crt, bad_key) =
        (file(&scratch, "bad.crt", &stranger.cert), file(&scratch, "bad.key", &stranger.key));
    let with_cert = |crt: &Path, key: &Path| {
        let args = ["--cert", crt.to_str().expect("utf-8"), "--key", key.to_str().expect("utf-8")];
        curl_https(weir.port, "mtls.test", "/", &ca_file, &args)
    };
    let r = with_cert(&good_crt, &good_key);
    assert_eq!(status_line(&r).0, 200, "{r:?}");
    let r = curl_https(weir.port, "mtls.test", "/", &ca_file, &[]);
    assert!(!r.ok && status_line(&r).0 == 0, "no client certificate must be refused: {r:?}");
    let r = with_cert(&bad_crt, &bad_key);
    assert!(!r.ok && status_line(&r).0 == 0, "a certificate from another CA must be refused: {r:?}");
}

#[test]
fn rotated_secret_reaches_the_next_handshake_and_open_connections_continue() {
    let be = Whoami::start("app");
    let ca = Ca::new("weir test CA");
    let before = ca.leaf("rotate.test", &["rotate.test"]);
    let after = ca.leaf("rotate.test", &["rotate.test"]);
    let weir = start(
        &be,
        &[tls_secret("rot", &before), route("r", "Host(`rotate.test`)", "{secretName: rot}")],
        &[],
    );
    let mut open = TlsConn::open(weir.port, "rotate.test").expect("first connection");
    assert_eq!(open.cert, before.der);
    assert_eq!(open.get("rotate.test", "/").expect("first request").0, 200);

    let t = Instant::now();
    weir.write_manifest("doc0.yaml", &tls_secret("rot", &after));
    loop {
        let fresh = TlsConn::open(weir.port, "rotate.test").expect("new connection");
        if fresh.cert == after.der {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "rotated certificate not served within 1 s\n{}",
            weir.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("rotated certificate served after {:?}", t.elapsed());
    // The connection opened before keeps working (listeners were not reopened).
    for _ in 0..3 {
        assert_eq!(open.get("rotate.test", "/").expect("request on the old connection").0, 200);
    }
}

#[test]
fn tls_and_cleartext_routers_never_mix() {
    let be = Whoami::start("app");
    let weir = start(
        &be,
        &[route("secure", "Host(`secure.test`)", "{}"), route("plain", "Host(`plain.test`)", "")],
        &[],
    );
    let mut secure = TlsConn::open(weir.port, "secure.test").expect("tls");
    assert_eq!(secure.get("secure.test", "/").expect("tls to tls router").0, 200);
    assert_eq!(secure.get("plain.test", "/").expect("tls to cleartext router").0, 404);
    assert_eq!(weir.get("plain.test", "/").expect("cleartext to cleartext router").status, 200);
    let r = weir.get("secure.test", "/").expect("cleartext to tls router");
    assert_eq!((r.status, r.text()), (404, "404 page not found\n".to_string()));
}

#[test]
fn options_differing_between_sni_and_host_answer_421() {
    let be = Whoami::start("app");
    let weir = start(
        &be,
        &[
            tls_option("strict", "{minVersion: VersionTLS12}"),
            route("a", "Host(`a.test`)", "{options: {name: strict}}"),
            route("b", "Host(`b.test`)", "{}"),
        ],
        &[],
    );
    // SNI a.test picks `default-strict`; router b expects `default`.
    let mut conn = TlsConn::open(weir.port, "a.test").expect("tls");
    assert_eq!(conn.get("a.test", "/").expect("same host").0, 200);
    let (status, body) = conn.get("b.test", "/").expect("other host");
    assert_eq!((status, body.as_str()), (421, "Misdirected Request\n"));
    let mut conn = TlsConn::open(weir.port, "b.test").expect("tls");
    assert_eq!(conn.get("b.test", "/").expect("b").0, 200);
}

#[test]
fn broken_tls_options_refuse_their_hosts_only() {
    let be = Whoami::start("app");
    let weir = start(
        &be,
        &[
            tls_option("bad", "{cipherSuites: [TLS_NOT_A_SUITE]}"),
            route("bad", "Host(`bad.test`)", "{options: {name: bad}}"),
            route("good", "Host(`good.test`)", "{}"),
        ],
        &[],
    );
    let r = s_client(weir.port, Some("bad.test"), &[]);
    assert!(!handshake_done(&r), "{r:?}");
    let mut good = TlsConn::open(weir.port, "good.test").expect("good");
    assert_eq!(good.get("good.test", "/").expect("good").0, 200);
    assert!(weir.log().contains("invalid CipherSuite: TLS_NOT_A_SUITE"), "{}", weir.log());
}

#[test]
fn missing_secret_disables_only_its_router() {
    let be = Whoami::start("app");
    let weir = start(
        &be,
        &[route("gone", "Host(`gone.test`)", "{secretName: nope}"), route("fine", "Host(`fine.test`)", "{}")],
        &[],
    );
    let mut conn = TlsConn::open(weir.port, "fine.test").expect("tls");
    assert_eq!(conn.get("fine.test", "/").expect("fine").0, 200);
    assert_eq!(conn.get("gone.test", "/").expect("gone").0, 404);
    assert!(weir.log().contains("secret default/nope does not exist"), "{}", weir.log());
}

#[test]
fn http2_over_tls_and_in_clear_text() {
    let be = Whoami::start("app");
    let weir = start(
        &be,
        &[route("s", "Host(`h2.test`)", "{}")],
        &["--entryPoints.web.http2.maxConcurrentStreams=7"],
    );
    let r = run(Command::new("curl")
        .args(["-sSk", "--http2", "-w", "\n%{http_code} %{http_version}", "--resolve"])
        .arg(format!("h2.test:{}:127.0.0.1", weir.port))
        .arg(format!("https://h2.test:{}/", weir.port)));
    assert_eq!(status_line(&r), (200, "2".to_string()), "{r:?}");
    let r = run(Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_code} %{http_version}",
            "-H",
            "Host: ready.test",
        ])
        .arg(format!("http://127.0.0.1:{}/", weir.port)));
    assert_eq!(status_line(&r), (200, "2".to_string()), "{r:?}");
    // HTTP/1.1 clients still get HTTP/1.1 on the same entrypoint.
    let r = run(Command::new("curl")
        .args(["-sS", "--http1.1", "-w", "\n%{http_code} %{http_version}", "-H", "Host: ready.test"])
        .arg(format!("http://127.0.0.1:{}/", weir.port)));
    assert_eq!(status_line(&r), (200, "1.1".to_string()), "{r:?}");
    // The entrypoint's stream limit is announced in SETTINGS.
    let r = run(Command::new("nghttp")
        .args(["-v", "-H", ":authority: ready.test"])
        .arg(format!("http://127.0.0.1:{}/", weir.port)));
    assert!(r.stdout.contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7"), "{}", r.stdout);
    // Many concurrent streams over both (within the limit of 7).
    let r = run(Command::new("h2load")
        .args(["-n", "200", "-c", "2", "-m", "5", "-H", ":authority: ready.test"])
        .arg(format!("http://127.0.0.1:{}/", weir.port)));
    assert!(r.stdout.contains("200 succeeded"), "{}", r.stdout);
    let r = run(Command::new("h2load")
        .args(["-n", "200", "-c", "2", "-m", "5"])
        .arg(format!("--connect-to=127.0.0.1:{}", weir.port))
        .arg(format!("https://h2.test:{}/", weir.port)));
    assert!(
        r.stdout.contains("200 succeeded") && r.stdout.contains("Application protocol: h2"),
        "{}",
        r.stdout
    );
}

/// An IngressRoute on the `websecure` entrypoint, without `tls`.
fn websecure_route(name: &str, rule: &str) -> String {
    route(name, rule, "").replace("entryPoints: [web]", "entryPoints: [websecure]")
}

#[test]
fn entrypoint_redirection_and_entrypoint_tls() {
    let be = Whoami::start("app");
    let secure_port = weir_e2e::free_port();
    let secure_flag = format!("--entryPoints.websecure.address=127.0.0.1:{secure_port}");
    let files = [
        ("app.yaml".to_string(), service_yaml("default", "app", 80, "http", &[be.addr])),
        ("r.yaml".to_string(), websecure_route("s", "Host(`a.test`)")),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = Weir::start(
        &files,
        &[
            &secure_flag,
            "--entryPoints.web.http.redirections.entryPoint.to=websecure",
            "--entryPoints.websecure.http.tls=true",
        ],
    );
    let r = weir.wait_for("a.test", "/some/path?x=1", READY, |r| r.status == 301);
    assert_eq!(r.header("location"), Some(format!("https://a.test:{secure_port}/some/path?x=1").as_str()));
    // Non-GET methods keep their method: 308.
    let mut c = weir_e2e::Conn::open(weir.port).expect("connect");
    let r = c
        .raw("POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        .expect("post");
    assert_eq!(r.status, 308, "{r:?}");
    // Every router of `websecure` is a TLS router there.
    let mut tls = TlsConn::open(secure_port, "a.test").expect("tls");
    assert_eq!(tls.get("a.test", "/").expect("tls request").0, 200);
    let plain = weir_e2e::get(secure_port, "a.test", "/").expect("cleartext request");
    assert_eq!(plain.status, 404);
}

#[test]
fn temporary_redirection_to_a_port() {
    let be = Whoami::start("app");
    let files = [("app.yaml".to_string(), service_yaml("default", "app", 80, "http", &[be.addr]))];
    let files: Vec<(&str, &str)> = files.iter().map(|(n, b)| (n.as_str(), b.as_str())).collect();
    let weir = Weir::start(
        &files,
        &[
            "--entryPoints.web.http.redirections.entryPoint.to=:443",
            "--entryPoints.web.http.redirections.entryPoint.permanent=false",
        ],
    );
    let r = weir.wait_for("b.test", "/x", READY, |r| r.status == 302);
    // Port 443 is https's default: Traefik leaves it out.
    assert_eq!(r.header("location"), Some("https://b.test/x"));
    let mut c = weir_e2e::Conn::open(weir.port).expect("connect");
    let r = c.raw("DELETE /x HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n").expect("delete");
    assert_eq!(r.status, 307, "{r:?}");
}

/// `nghttpd` serving `dir` in clear-text HTTP/2 with gRPC-style trailers, killed on drop.
struct H2cBackend {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl H2cBackend {
    fn start() -> H2cBackend {
        let dir = TempDir::new();
        std::fs::write(dir.join("svc"), "\0\0\0\0\x05hello").expect("write body");
        let port = weir_e2e::free_port();
        let child = Command::new("nghttpd")
            .args(["--no-tls", "-d"])
            .arg(&dir.0)
            .args(["--trailer", "grpc-status: 0", "--trailer", "grpc-message: fine"])
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nghttpd (package nghttp2-server)");
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed() < READY, "nghttpd did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        H2cBackend { child, port, _dir: dir }
    }
}

impl Drop for H2cBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn grpc_trailers_reach_the_client_over_h2_and_h2c() {
    let be = Whoami::start("app");
    let grpc = H2cBackend::start();
    let backend: std::net::SocketAddr = format!("127.0.0.1:{}", grpc.port).parse().expect("addr");
    let svc = service_yaml("default", "grpc", 80, "grpc", &[backend]);
    let route = |name: &str, tls: &str| {
        let tls = if tls.is_empty() { String::new() } else { format!("  tls: {tls}\n") };
        format!(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  entryPoints: [web]\n{tls}  routes:\n  - match: \"Host(`grpc.test`)\"\n    \
             services: [{{name: grpc, port: 80, scheme: h2c}}]\n"
        )
    };
    let weir = start(&be, &[svc, route("clear", ""), route("secure", "{}")], &[]);
    for url in [format!("http://127.0.0.1:{}/svc", weir.port), format!("https://127.0.0.1:{}/svc", weir.port)]
    {
        let r = run(Command::new("nghttp")
            .args([
                "-v",
                "-H",
                ":authority: grpc.test",
                "-H",
                "te: trailers",
                "-H",
                "content-type: application/grpc",
            ])
            .arg(&url));
        assert!(r.ok, "{url}: {r:?}");
        // The trailers arrive in a HEADERS frame after the DATA, as the backend sent them.
        let data = r.stdout.find("recv DATA frame").unwrap_or_else(|| panic!("{url}: no DATA\n{}", r.stdout));
        let trailer =
            r.stdout.rfind("grpc-status: 0").unwrap_or_else(|| panic!("{url}: no trailer\n{}", r.stdout));
        assert!(trailer > data, "{url}: grpc-status is not a trailer\n{}", r.stdout);
        assert!(r.stdout.contains("grpc-message: fine"), "{}", r.stdout);
    }
}

/// Bytes go both ways through a switched connection.
fn echo<S: Read + Write>(conn: &mut BufReader<S>, message: &[u8]) {
    conn.get_mut().write_all(message).expect("send");
    conn.get_mut().flush().expect("flush");
    let mut back = vec![0; message.len()];
    conn.read_exact(&mut back).expect("echo");
    assert_eq!(back, message);
}

#[test]
fn websocket_upgrades_pass_through_both_ways() {
    let be = Whoami::start("app");
    let ws = EchoUpgrade::start();
    let files = [
        service_yaml("default", "ws", 80, "http", &[ws.addr]),
        route("ws", "Host(`ws.test`)", "").replace("name: app", "name: ws"),
        route("wss", "Host(`wss.test`)", "{}").replace("name: app", "name: ws"),
    ];
    let weir = start(&be, &files, &[]);

    // Clear text: 101, the server's upgrade headers, bytes both ways, close both ways.
    let tcp = TcpStream::connect(("127.0.0.1", weir.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut conn = BufReader::new(tcp);
    let head = upgrade_request(&mut conn, "ws.test");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket") && head.contains("sec-websocket-accept:"), "{head}");
    let seen = ws.heads.recv_timeout(Duration::from_secs(5)).expect("backend saw the request");
    let seen = seen.to_ascii_lowercase();
    assert!(seen.contains("upgrade: websocket") && seen.contains("connection: upgrade"), "{seen}");
    assert!(seen.contains("x-forwarded-proto: ws\r\n"), "{seen}");
    for message in [&b"hello"[..], &[0x81, 0x05, b'h', b'e', b'l', b'l', b'o'], &vec![7u8; 100_000]] {
        echo(&mut conn, message);
    }
    conn.get_ref().shutdown(std::net::Shutdown::Write).expect("half close");
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).expect("the server side closes too");
    assert!(rest.is_empty(), "{rest:?}");

    // Over TLS: wss.
    let mut tls = TlsConn::open(weir.port, "wss.test").expect("tls");
    let head = upgrade_request(&mut tls.reader, "wss.test");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    let seen =
        ws.heads.recv_timeout(Duration::from_secs(5)).expect("backend saw the request").to_ascii_lowercase();
    assert!(seen.contains("x-forwarded-proto: wss\r\n"), "{seen}");
    echo(&mut tls.reader, b"over tls");

    // A request without Upgrade is an ordinary request; the backend's refusal reaches the client.
    let r = weir.get("ws.test", "/chat").expect("plain request");
    assert_eq!((r.status, r.text()), (400, "no".to_string()));
}
