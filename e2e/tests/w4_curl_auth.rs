//! W4 authentication middlewares driven by a real client (curl): BasicAuth with `-u` against
//! htpasswd users from a Secret (apr1 and SHA hashes made by `openssl passwd` and by hand),
//! DigestAuth with `--digest`, and ForwardAuth with `forwardBody` (the auth server decides on
//! the request body, which still reaches the backend; a body over `maxBodySize` is refused).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_e2e::{service_yaml, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

fn middleware(name: &str, spec: &str) -> String {
    format!("---\napiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: {name}, namespace: apps}}\nspec: {spec}\n")
}

/// One IngressRoute with a route per `(host, middlewares)` to the whoami service.
fn routes(routes: &[(&str, &[&str])]) -> String {
    let mut y = "---\napiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: auth, namespace: apps}\nspec:\n  entryPoints: [web]\n  routes:\n".to_string();
    for (host, mws) in routes {
        y.push_str(&format!("  - match: Host(`{host}`)\n    services: [{{name: whoami, port: 80}}]\n"));
        if !mws.is_empty() {
            y.push_str("    middlewares:\n");
            for m in mws.iter() {
                y.push_str(&format!("    - name: {m}\n"));
            }
        }
    }
    y
}

/// Runs curl against weir for `host` with `args`; returns (status, headers+body as printed by `-i`).
fn curl(weir: &Weir, host: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10", "-H", &format!("Host: {host}")])
        .args(args)
        .arg(format!("http://127.0.0.1:{}/", weir.port))
        .output()
        .expect("curl (apt package curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // With --digest curl prints the 401 challenge first, then the final answer: take the last.
    let status = text
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn openssl_apr1(password: &str) -> String {
    let out = Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
        .expect("openssl passwd (apt package openssl)");
    assert!(out.status.success(), "openssl passwd failed");
    String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
}

fn md5_hex(s: &str) -> String {
    let out = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("md5sum");
    String::from_utf8(out.stdout).expect("utf-8").split_whitespace().next().expect("digest").to_string()
}

fn start(files: &str) -> (Weir, Whoami) {
    let backend = Whoami::start("w");
    let svc = service_yaml("apps", "whoami", 80, "http", &[backend.addr]);
    let weir = Weir::start(&[("svc.yaml", &svc), ("auth.yaml", files)], &[]);
    weir.wait_for("ready.test", "/", READY, |r| r.status == 200);
    (weir, backend)
}

#[test]
fn basic_auth_with_curl() {
    // `{SHA}` + base64(sha1(password)), as `htpasswd -s` writes it.
    let sha = Command::new("sh")
        .args(["-c", "printf %s sha-pass | openssl dgst -sha1 -binary | openssl base64"])
        .output()
        .expect("openssl dgst");
    let sha = format!("{{SHA}}{}", String::from_utf8_lossy(&sha.stdout).trim());
    let users = format!("alice:{}\nbob:{sha}\n", openssl_apr1("wonderland"));
    let files = [
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: users, namespace: apps}}\nstringData:\n  users: |\n    {}\n",
            users.trim_end().replace('\n', "\n    ")
        ),
        middleware("basic", "{basicAuth: {secret: users, realm: staff, headerField: X-WebAuth-User}}"),
        routes(&[("basic.test", &["basic"]), ("ready.test", &[])]),
    ]
    .concat();
    let (weir, _backend) = start(&files);

    let (status, text) = curl(&weir, "basic.test", &[]);
    assert_eq!(status, 401, "{text}");
    assert!(text.to_ascii_lowercase().contains("www-authenticate: basic realm=\"staff\""), "{text}");
    let (status, text) = curl(&weir, "basic.test", &["-u", "alice:wrong"]);
    assert_eq!(status, 401, "{text}");
    let (status, text) = curl(&weir, "basic.test", &["-u", "alice:wonderland"]);
    assert_eq!(status, 200, "{text}");
    assert!(text.to_ascii_lowercase().contains("x-webauth-user: alice"), "{text}");
    let (status, text) = curl(&weir, "basic.test", &["-u", "bob:sha-pass"]);
    assert_eq!(status, 200, "{text}");
}

#[test]
fn digest_auth_with_curl() {
    let users = format!("carol:traefik:{}\n", md5_hex("carol:traefik:digest-pass"));
    let files = [
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: digest-users, namespace: apps}}\nstringData:\n  users: |\n    {}",
            users
        ),
        middleware("digest", "{digestAuth: {secret: digest-users}}"),
        routes(&[("digest.test", &["digest"]), ("ready.test", &[])]),
    ]
    .concat();
    let (weir, _backend) = start(&files);

    let (status, text) = curl(&weir, "digest.test", &[]);
    assert_eq!(status, 401, "{text}");
    assert!(text.to_ascii_lowercase().contains("www-authenticate: digest realm=\"traefik\""), "{text}");
    let (status, text) = curl(&weir, "digest.test", &["--digest", "-u", "carol:nope"]);
    assert_eq!(status, 401, "{text}");
    let (status, text) = curl(&weir, "digest.test", &["--digest", "-u", "carol:digest-pass"]);
    assert_eq!(status, 200, "{text}");
}

/// An auth server that records each request body and allows it when it contains "open sesame".
fn body_auth_server(seen: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind auth");
    let addr = listener.local_addr().expect("auth addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || answer(conn, &seen));
        }
    });
    addr
}

fn answer(conn: TcpStream, seen: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let allowed = body.contains("open sesame");
    seen.lock().expect("lock").push(body);
    let reply: &[u8] = if allowed {
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    } else {
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\nConnection: close\r\n\r\nno body"
    };
    let mut conn = conn;
    let _ = conn.write_all(reply);
}

#[test]
fn forward_auth_forward_body_with_curl() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let auth = body_auth_server(Arc::clone(&seen));
    let files = [
        middleware(
            "fa-body",
            &format!("{{forwardAuth: {{address: 'http://{auth}/check', forwardBody: true}}}}"),
        ),
        middleware(
            "fa-small",
            &format!(
                "{{forwardAuth: {{address: 'http://{auth}/check', forwardBody: true, maxBodySize: 16}}}}"
            ),
        ),
        routes(&[("body.test", &["fa-body"]), ("small.test", &["fa-small"]), ("ready.test", &[])]),
    ]
    .concat();
    let (weir, _backend) = start(&files);

    let (status, text) = curl(&weir, "body.test", &["-d", "please, open sesame"]);
    assert_eq!(status, 200, "{text}");
    // The backend (whoami) still received the body the auth server read.
    assert!(text.contains("please, open sesame"), "{text}");
    let (status, text) = curl(&weir, "body.test", &["-d", "let me in"]);
    assert_eq!(status, 403, "{text}");
    assert!(text.ends_with("no body"), "the auth server's answer is returned: {text}");
    let bodies = seen.lock().expect("lock").clone();
    assert!(bodies.iter().any(|b| b == "please, open sesame"), "{bodies:?}");
    assert!(bodies.iter().any(|b| b == "let me in"), "{bodies:?}");

    // Over maxBodySize: refused before the auth server is asked.
    let asked = seen.lock().expect("lock").len();
    let (status, text) =
        curl(&weir, "small.test", &["-d", "open sesame, and a body well over sixteen bytes"]);
    assert_eq!(status, 401, "{text}");
    assert_eq!(seen.lock().expect("lock").len(), asked, "the auth server was not asked");
    let (status, text) = curl(&weir, "small.test", &["-d", "open sesame"]);
    assert_eq!(status, 200, "{text}");
}
