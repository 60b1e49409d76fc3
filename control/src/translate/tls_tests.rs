//! Table-driven tests of the TLS pass: secrets, options, certificate names, SNI mapping and
//! Traefik's conflict fallback, each from manifests as a user writes them.

use std::path::Path;

use weir_proto::tls::{ClientAuthType, Curve, TlsVersion};

use super::*;
use crate::source::manifests::parse_file;
use crate::translate::{translate as translate_all, ServiceOptions, TranslateOptions};

const BACKEND: &str = "
apiVersion: v1
kind: Service
metadata: {name: app, namespace: apps}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: app-1, namespace: apps, labels: {kubernetes.io/service-name: app}}
addressType: IPv4
ports: [{port: 8080}]
endpoints: [{addresses: [10.0.0.1]}]
";

/// A self-signed certificate for `names` as (cert PEM, key PEM).
fn cert(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "Test CN");
    let c = params.self_signed(&key).expect("self-signed");
    (c.pem(), key.serialize_pem())
}

fn tls_secret(namespace: &str, name: &str, (crt, key): &(String, String)) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         type: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(crt),
        indent(key)
    )
}

fn ca_secret(namespace: &str, name: &str, key: &str, (crt, _): &(String, String)) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\nstringData:\n  {key}: |\n{}",
        indent(crt)
    )
}

fn route(name: &str, rule: &str, tls: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {{name: {name}, namespace: apps}}\n\
         spec:\n  entryPoints: [websecure]\n  tls: {tls}\n  routes:\n  - match: \"{rule}\"\n    \
         services: [{{name: app, port: 80}}]\n"
    )
}

fn translated(docs: &[String]) -> Translation {
    let mut problems = Vec::new();
    let mut store = ObjectStore::new();
    for text in std::iter::once(BACKEND.to_string()).chain(docs.iter().cloned()) {
        for o in parse_file(Path::new("test.yaml"), &text, &mut problems) {
            store.insert(o);
        }
    }
    assert!(problems.iter().all(|p| p.severity != Severity::Error), "fixture problems: {problems:?}");
    let options = TranslateOptions {
        entrypoints: vec!["web".into(), "websecure".into()],
        default_entrypoints: vec!["web".into(), "websecure".into()],
        services: ServiceOptions::default(),
        ..Default::default()
    };
    translate_all(&store, &options)
}

fn messages(t: &Translation, severity: Severity) -> Vec<String> {
    t.problems.iter().filter(|p| p.severity == severity).map(|p| p.message.clone()).collect()
}

#[test]
fn secrets_of_tls_routes() {
    let good = cert(&["a.test", "*.wild.test"]);
    let other = cert(&["b.test"]);
    let mismatched = (good.0.clone(), other.1.clone());
    type Case = (&'static str, Vec<String>, Option<&'static str>);
    let cases: Vec<Case> = vec![
        ("good secret", vec![tls_secret("apps", "s", &good), route("r", "Host(`a.test`)", "{secretName: s}")], None),
        ("no secret name: default certificate", vec![route("r", "Host(`a.test`)", "{}")], None),
        (
            "missing secret disables the router",
            vec![route("r", "Host(`a.test`)", "{secretName: nope}")],
            Some("secret apps/nope does not exist"),
        ),
        (
            "secret in another namespace is not looked at",
            vec![tls_secret("other", "s", &good), route("r", "Host(`a.test`)", "{secretName: s}")],
            Some("secret apps/s does not exist"),
        ),
        (
            "missing key",
            vec![
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: apps}\nstringData: {tls.crt: x}\n".into(),
                route("r", "Host(`a.test`)", "{secretName: s}"),
            ],
            Some("is missing the following TLS data entries: tls.key"),
        ),
        (
            "empty values",
            vec![
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: apps}\ndata: {tls.crt: '', tls.key: ''}\n"
                    .into(),
                route("r", "Host(`a.test`)", "{secretName: s}"),
            ],
            Some("contains the following empty TLS data entries: tls.crt, tls.key"),
        ),
        (
            "not PEM",
            vec![
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: apps}\nstringData: {tls.crt: junk, tls.key: junk}\n"
                    .into(),
                route("r", "Host(`a.test`)", "{secretName: s}"),
            ],
            Some("tls.crt holds no certificate"),
        ),
        (
            "key of another certificate",
            vec![tls_secret("apps", "s", &mismatched), route("r", "Host(`a.test`)", "{secretName: s}")],
            Some("tls.key does not match the certificate in tls.crt"),
        ),
    ];
    for (name, docs, want_error) in cases {
        let t = translated(&docs);
        let errors = messages(&t, Severity::Error);
        match want_error {
            None => {
                assert!(errors.is_empty(), "case {name}: {errors:?}");
                let router = t.routers.values().next().unwrap_or_else(|| panic!("case {name}: no router"));
                assert!(router.tls, "case {name}");
            }
            Some(fragment) => {
                assert!(t.routers.is_empty(), "case {name}: {:?}", t.routers.keys());
                assert!(errors.iter().any(|e| e.contains(fragment)), "case {name}: {errors:?}");
            }
        }
    }
}

#[test]
fn certificate_names_and_store() {
    let a = cert(&["A.test", "*.wild.test", "10.1.2.3"]);
    let same_names = cert(&["a.test", "*.wild.test", "10.1.2.3"]);
    let d = cert(&["default.test"]);
    let t = translated(&[
        tls_secret("apps", "a", &a),
        tls_secret("apps", "b", &same_names),
        tls_secret("apps", "d", &d),
        route("r1", "Host(`a.test`)", "{secretName: b}"),
        route("r2", "Host(`x.test`)", "{secretName: a}"),
        "apiVersion: traefik.io/v1alpha1\nkind: TLSStore\nmetadata: {name: default, namespace: apps}\n\
         spec: {defaultCertificate: {secretName: d}, certificates: [{secretName: missing}]}\n"
            .into(),
    ]);
    // Sorted by <ns>/<secret>; the second certificate with the same names is skipped.
    assert_eq!(
        t.tls.certificates.len(),
        1,
        "{:?}",
        t.tls.certificates.iter().map(|c| &c.source).collect::<Vec<_>>()
    );
    assert_eq!(t.tls.certificates[0].source, "apps/a");
    assert_eq!(t.tls.certificates[0].names, ["test cn", "a.test", "*.wild.test", "10.1.2.3"]);
    assert_eq!(t.tls.default_certificate.as_ref().map(|c| c.source.as_str()), Some("apps/d"));
    let errors = messages(&t, Severity::Error);
    assert!(
        errors.iter().any(|e| e.contains("certificate skipped: secret apps/missing does not exist")),
        "{errors:?}"
    );
    assert_eq!(t.routers.len(), 2);
}

#[test]
fn cert_resolver_is_reported_and_served() {
    let t = translated(&[route("r", "Host(`a.test`)", "{certResolver: le}")]);
    assert_eq!(t.routers.len(), 1);
    let warnings = messages(&t, Severity::Warning);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("ACME is not supported; serving the matching or default certificate")),
        "{warnings:?}"
    );
}

fn option_doc(name: &str, spec: &str) -> String {
    format!("apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {{name: {name}, namespace: apps}}\nspec: {spec}\n")
}

#[test]
fn options() {
    let ca = cert(&["ca.test"]);
    type Check = fn(&TlsOption) -> bool;
    type Case = (&'static str, Vec<String>, Option<&'static str>, Check);
    let cases: Vec<Case> = vec![
        ("empty spec is the default", vec![option_doc("o", "{}")], None, |o| {
            o.min_version == TlsVersion::Tls12
                && o.max_version == TlsVersion::Tls13
                && o.alpn_protocols == ["h2", "http/1.1"]
                && o.cipher_suites.is_none()
        }),
        ("versions", vec![option_doc("o", "{minVersion: VersionTLS13}")], None, |o| {
            o.min_version == TlsVersion::Tls13
        }),
        ("legacy minimum is raised", vec![option_doc("o", "{minVersion: VersionTLS10}")], None, |o| {
            o.min_version == TlsVersion::Tls12
        }),
        (
            "legacy maximum breaks the option",
            vec![option_doc("o", "{maxVersion: VersionTLS11}")],
            Some("maxVersion VersionTLS11"),
            |_| true,
        ),
        ("unknown version names are ignored", vec![option_doc("o", "{minVersion: TLS13}")], None, |o| {
            o.min_version == TlsVersion::Tls12
        }),
        (
            "min above max",
            vec![option_doc("o", "{minVersion: VersionTLS13, maxVersion: VersionTLS12}")],
            Some("minVersion is above maxVersion"),
            |_| true,
        ),
        (
            "cipher suites",
            vec![option_doc(
                "o",
                "{cipherSuites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA, TLS_AES_128_GCM_SHA256]}",
            )],
            None,
            |o| o.cipher_suites.as_ref().is_some_and(|s| s.len() == 1),
        ),
        ("unknown cipher suite", vec![option_doc("o", "{cipherSuites: [NOPE]}")], Some("invalid CipherSuite: NOPE"), |_| true),
        (
            "curves",
            vec![option_doc("o", "{curvePreferences: [CurveP521, secp384r1, X25519]}")],
            None,
            |o| o.curves.as_deref() == Some(&[Curve::P384, Curve::X25519][..]),
        ),
        (
            "unknown curve",
            vec![option_doc("o", "{curvePreferences: [P999]}")],
            Some("invalid CurveID in curvePreferences: P999"),
            |_| true,
        ),
        ("alpn without acme", vec![option_doc("o", "{alpnProtocols: [http/1.1, acme-tls/1]}")], None, |o| {
            o.alpn_protocols == ["http/1.1"]
        }),
        (
            "CAs default to RequireAndVerifyClientCert",
            vec![ca_secret("apps", "ca", "ca.crt", &ca), option_doc("o", "{clientAuth: {secretNames: [ca]}}")],
            None,
            |o| o.client_auth == ClientAuthType::RequireAndVerifyClientCert && o.client_cas_pem.len() == 1,
        ),
        (
            "tls.ca key and explicit type",
            vec![
                ca_secret("apps", "ca", "tls.ca", &ca),
                option_doc("o", "{clientAuth: {secretNames: [ca], clientAuthType: VerifyClientCertIfGiven}}"),
            ],
            None,
            |o| o.client_auth == ClientAuthType::VerifyClientCertIfGiven,
        ),
        (
            "verification without CAs",
            vec![option_doc("o", "{clientAuth: {clientAuthType: RequireAndVerifyClientCert}}")],
            Some("invalid clientAuthType: RequireAndVerifyClientCert, CAFiles is required"),
            |_| true,
        ),
        ("request without CAs", vec![option_doc("o", "{clientAuth: {clientAuthType: RequireAnyClientCert}}")], None, |o| {
            o.client_auth == ClientAuthType::RequireAnyClientCert
        }),
        ("sni strict", vec![option_doc("o", "{sniStrict: true}")], None, |o| o.sni_strict),
    ];
    for (name, mut docs, broken, check) in cases {
        docs.push(route("r", "Host(`a.test`)", "{options: {name: o}}"));
        let t = translated(&docs);
        let option = t
            .tls
            .options
            .iter()
            .find(|o| o.name == "apps-o")
            .unwrap_or_else(|| panic!("case {name}: no option"));
        match broken {
            None => {
                assert_eq!(option.broken, None, "case {name}");
                assert!(check(option), "case {name}: {option:?}");
                assert_eq!(t.routers.len(), 1, "case {name}");
            }
            Some(fragment) => {
                let reason = option.broken.clone().unwrap_or_default();
                assert!(reason.contains(fragment), "case {name}: {reason:?}");
                // The router is disabled and its host refuses handshakes (mapped to the broken option).
                assert!(t.routers.is_empty(), "case {name}");
                let ep = &t.tls.entrypoints[0];
                assert_eq!(ep.hosts[0].option, "apps-o", "case {name}");
            }
        }
    }
}

#[test]
fn option_references() {
    type Case = (&'static str, &'static str, Vec<String>, Result<&'static str, &'static str>);
    let cases: Vec<Case> = vec![
        ("absent", "{}", vec![], Ok("default")),
        ("same namespace", "{options: {name: o}}", vec![option_doc("o", "{}")], Ok("apps-o")),
        ("named default", "{options: {name: default, namespace: elsewhere}}", vec![], Ok("default")),
        (
            "cross namespace refused",
            "{options: {name: o, namespace: other}}",
            vec![],
            Err("reference from namespace apps is not allowed"),
        ),
        ("unknown", "{options: {name: nope}}", vec![], Err("unknown TLS options: apps-nope")),
    ];
    for (name, tls, docs, want) in cases {
        let mut docs = docs;
        docs.push(route("r", "Host(`a.test`)", tls));
        let t = translated(&docs);
        match want {
            Ok(option) => {
                assert_eq!(t.routers.len(), 1, "case {name}: {:?}", t.problems);
                let expecting: Vec<&str> = t
                    .tls
                    .entrypoints
                    .iter()
                    .flat_map(|e| e.routers.iter().map(|r| r.option.as_str()))
                    .collect();
                if option == "default" {
                    assert!(expecting.is_empty(), "case {name}: {expecting:?}");
                } else {
                    assert_eq!(expecting, [option], "case {name}");
                }
            }
            Err(fragment) => {
                assert!(t.routers.is_empty(), "case {name}");
                let errors = messages(&t, Severity::Error);
                assert!(errors.iter().any(|e| e.contains(fragment)), "case {name}: {errors:?}");
            }
        }
    }
}

#[test]
fn conflicting_options_on_one_host_fall_back_to_default() {
    let t = translated(&[
        option_doc("strict", "{minVersion: VersionTLS13}"),
        option_doc("other", "{}"),
        route("a", "Host(`same.test`) && Path(`/a`)", "{options: {name: strict}}"),
        route("b", "Host(`same.test`) && Path(`/b`)", "{options: {name: other}}"),
        route("c", "Host(`alone.test`)", "{options: {name: strict}}"),
        route("d", "PathPrefix(`/nohost`)", "{options: {name: strict}}"),
    ]);
    let ep = t.tls.entrypoints.iter().find(|e| e.entrypoint == "websecure").expect("websecure");
    let hosts: Vec<(&str, &str)> = ep.hosts.iter().map(|h| (h.host.as_str(), h.option.as_str())).collect();
    assert_eq!(hosts, [("alone.test", "apps-strict"), ("same.test", "default")]);
    let expecting: Vec<&str> = ep.routers.iter().map(|r| r.option.as_str()).collect();
    assert_eq!(expecting, ["apps-strict"]);
    // The conflicting routers are served under their `<ep>-conflicted-` names, with `default`.
    let conflicted = t.routers.keys().filter(|n| n.starts_with("websecure-conflicted-")).count();
    assert_eq!(conflicted, 3, "{:?}", t.routers.keys());
    assert_eq!(t.routers.len(), 4);
    let warnings = messages(&t, Severity::Warning);
    assert!(
        warnings.iter().any(|w| w.contains("host same.test is served by multiple routers")),
        "{warnings:?}"
    );
}
