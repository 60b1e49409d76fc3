//! W4 end to end: PassTLSClientCert. curl presents a client certificate (TLSOption
//! `clientAuth`) and whoami echoes what weir added: `X-Forwarded-Tls-Client-Cert` (the PEM
//! body, as Traefik sends it) and `X-Forwarded-Tls-Client-Cert-Info` (the selected fields,
//! URL-escaped). Without a certificate the headers are absent, even when the client forges them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use weir_e2e::{service_yaml, TempDir, Weir, Whoami};

const READY: Duration = Duration::from_secs(20);

struct Pem {
    cert: String,
    key: String,
}

fn indent(s: &str, by: usize) -> String {
    s.lines().map(|l| format!("{}{l}\n", " ".repeat(by))).collect()
}

fn ca(cn: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, Pem) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let cert = params.self_signed(&key).expect("CA cert");
    let pem = Pem { cert: cert.pem(), key: key.serialize_pem() };
    (rcgen::Issuer::new(params, key), pem)
}

fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    dn: &[(rcgen::DnType, &str)],
    names: &[&str],
) -> Pem {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    for (t, v) in dn {
        params.distinguished_name.push(t.clone(), *v);
    }
    params.not_after = rcgen::date_time_ymd(2031, 1, 1);
    let cert = params.signed_by(&key, issuer).expect("signed leaf");
    Pem { cert: cert.pem(), key: key.serialize_pem() }
}

fn file(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write file");
    p
}

/// `curl -v` to `https://pass.test/`, with the client certificate when given and extra
/// request headers; returns (status, body).
fn curl(port: u16, ca: &Path, cert: Option<(&Path, &Path)>, headers: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"]).arg(ca);
    cmd.arg("--resolve").arg(format!("pass.test:{port}:127.0.0.1"));
    if let Some((crt, key)) = cert {
        cmd.arg("--cert").arg(crt).arg("--key").arg(key);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.args(["-w", "\n%{http_code}"]).arg(format!("https://pass.test:{port}/"));
    let out = cmd.output().expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn echoed(body: &str, name: &str) -> Option<String> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    body.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
}

#[test]
fn client_certificate_reaches_the_backend_as_traefik_headers() {
    let be = Whoami::start("app");
    let (server_ca, server_ca_pem) = ca("server CA");
    let server = leaf(&server_ca, &[(rcgen::DnType::CommonName, "pass.test")], &["pass.test"]);
    let (client_ca, client_ca_pem) = ca("pass CA");
    let client = leaf(
        &client_ca,
        &[
            (rcgen::DnType::CountryName, "FR"),
            (rcgen::DnType::OrganizationName, "Weir"),
            (rcgen::DnType::CommonName, "client one"),
        ],
        &["client.test"],
    );
    let docs = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: server, namespace: default}}\ntype: kubernetes.io/tls\n\
         stringData:\n  tls.crt: |\n{}  tls.key: |\n{}---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: clients, namespace: default}}\nstringData:\n  ca.crt: |\n{}---\n\
         apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {{name: mtls, namespace: default}}\n\
         spec: {{clientAuth: {{secretNames: [clients], clientAuthType: VerifyClientCertIfGiven}}}}\n---\n\
         apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata: {{name: pass, namespace: default}}\n\
         spec: {{passTLSClientCert: {{pem: true, info: {{notAfter: true, sans: true, \
         subject: {{country: true, organization: true, commonName: true}}, issuer: {{commonName: true}}}}}}}}\n---\n\
         apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: pass, namespace: default}}\n\
         spec:\n  entryPoints: [web]\n  tls: {{secretName: server, options: {{name: mtls}}}}\n  routes:\n\
         \x20 - match: Host(`pass.test`)\n    middlewares: [{{name: pass}}]\n    services: [{{name: app, port: 80}}]\n",
        indent(&server.cert, 4),
        indent(&server.key, 4),
        indent(&client_ca_pem.cert, 4),
    );
    let svc = service_yaml("default", "app", 80, "http", &[be.addr]);
    let weir = Weir::start(&[("app.yaml", &svc), ("docs.yaml", &docs)], &[]);
    let scratch = TempDir::new();
    let ca_file = file(&scratch, "ca.pem", &server_ca_pem.cert);
    let (crt, key) = (file(&scratch, "c.crt", &client.cert), file(&scratch, "c.key", &client.key));

    let deadline = std::time::Instant::now() + READY;
    let (status, body) = loop {
        let r = curl(weir.port, &ca_file, Some((&crt, &key)), &[]);
        if r.0 == 200 || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 200, "{body}\n{}", weir.log());

    // Traefik: the PEM without its BEGIN/END lines and newlines, not escaped.
    let want_pem: String = client.cert.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(echoed(&body, "X-Forwarded-Tls-Client-Cert").as_deref(), Some(want_pem.as_str()), "{body}");
    // 2031-01-01T00:00:00Z.
    let na = 1_924_992_000u64;
    let want_info = format!(
        "Subject%3D%22C%3DFR%2CO%3DWeir%2CCN%3Dclient+one%22%3BIssuer%3D%22CN%3Dpass+CA%22%3BNA%3D%22{na}%22%3BSAN%3D%22client.test%22"
    );
    assert_eq!(
        echoed(&body, "X-Forwarded-Tls-Client-Cert-Info").as_deref(),
        Some(want_info.as_str()),
        "{body}"
    );

    // Without a client certificate nothing is added, and forged copies are dropped.
    let (status, body) = curl(
        weir.port,
        &ca_file,
        None,
        &["X-Forwarded-Tls-Client-Cert: forged", "X-Forwarded-Tls-Client-Cert-Info: forged"],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body, "X-Forwarded-Tls-Client-Cert"), None, "{body}");
    assert_eq!(echoed(&body, "X-Forwarded-Tls-Client-Cert-Info"), None, "{body}");
}
