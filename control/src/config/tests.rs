//! Table-driven tests of the command-line forms.

use super::*;

fn env() -> Environment {
    Environment { xdg_runtime_dir: None, euid: 1000, exe_dir: Some(PathBuf::from("/opt/weir/bin")) }
}

fn run(args: &[&str]) -> Result<(StaticConfig, Vec<String>), ConfigError> {
    match parse(args.iter().copied(), &env())? {
        Command::Run { config, warnings } => Ok((*config, warnings)),
        other => panic!("expected a run configuration, got {other:?}"),
    }
}

fn ep(name: &str, addr: &str) -> EntryPointConfig {
    EntryPointConfig {
        name: name.into(),
        address: addr.parse().expect("test address"),
        as_default: false,
        forwarded_headers: ForwardedHeaders::default(),
        http: Default::default(),
        proxy_protocol: None,
    }
}

#[test]
fn entrypoints() {
    let cases: Vec<(&str, Vec<&str>, Vec<EntryPointConfig>)> = vec![
        ("none gives implicit http on :80", vec![], vec![ep("http", "0.0.0.0:80")]),
        ("camel case key", vec!["--entryPoints.web.address=:8000"], vec![ep("web", "0.0.0.0:8000")]),
        ("lower case key", vec!["--entrypoints.web.address=:8000"], vec![ep("web", "0.0.0.0:8000")]),
        ("name keeps its case", vec!["--ENTRYPOINTS.Web.ADDRESS=:8000"], vec![ep("Web", "0.0.0.0:8000")]),
        (
            "sorted by name",
            vec!["--entryPoints.web.address=127.0.0.1:8000", "--entryPoints.admin.address=[::1]:9000/tcp"],
            vec![ep("admin", "[::1]:9000"), ep("web", "127.0.0.1:8000")],
        ),
        (
            "later value wins",
            vec!["--entryPoints.web.address=:1", "--entryPoints.web.address=:2"],
            vec![ep("web", "0.0.0.0:2")],
        ),
        (
            "asDefault bare and forwarded headers",
            vec![
                "--entryPoints.web.address=:80",
                "--entryPoints.web.asDefault",
                "--entryPoints.web.forwardedHeaders.trustedIPs=10.0.0.0/8,127.0.0.1",
                "--entrypoints.web.forwardedheaders.insecure=false",
            ],
            vec![EntryPointConfig {
                as_default: true,
                forwarded_headers: ForwardedHeaders {
                    insecure: false,
                    trusted_ips: vec!["10.0.0.0/8".into(), "127.0.0.1".into()],
                },
                ..ep("web", "0.0.0.0:80")
            }],
        ),
        (
            "proxy protocol trust (W6)",
            vec![
                "--entryPoints.tcp.address=:9000",
                "--entryPoints.tcp.proxyProtocol.trustedIPs=10.0.0.0/8",
                "--entrypoints.tcp.proxyprotocol.insecure",
            ],
            vec![EntryPointConfig {
                proxy_protocol: Some(ForwardedHeaders {
                    insecure: true,
                    trusted_ips: vec!["10.0.0.0/8".into()],
                }),
                ..ep("tcp", "0.0.0.0:9000")
            }],
        ),
    ];
    for (name, mut args, want) in cases {
        args.extend(["--manifests", "/m"]);
        let (config, warnings) = run(&args).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.entrypoints, want, "{name}");
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
    }
}

#[test]
fn options_and_defaults() {
    let (c, _) = run(&["--manifests=/m"]).expect("minimal");
    assert_eq!(c.manifests, PathBuf::from("/m"));
    assert_eq!(c.socket, PathBuf::from("/tmp/weir-1000/dataplane.sock"));
    assert_eq!(c.dataplane, PathBuf::from("/opt/weir/bin/weir-dataplane"));
    assert_eq!((c.workers, c.cpus, c.log_level), (None, None, None));
    assert_eq!(c.crd, CrdProviderConfig::default());
    assert_eq!(c.default_rule_syntax, Syntax::V3);

    let (c, _) = run(&[
        "--manifests",
        "/m",
        "--socket",
        "/run/s.sock",
        "--dataplane=/bin/dp",
        "--workers",
        "2",
        "--cpus=0-1",
        "--weir.maxConnectionsPerWorker",
        "5000",
        "--log.level=debug",
        "--providers.kubernetesCRD",
        "--providers.kubernetescrd.allowCrossNamespace=true",
        "--Providers.KubernetesCRD.AllowEmptyServices",
        "--experimental.sockmap",
        "--experimental.udpFastPath",
        "--experimental.udpFastPath.interfaces=lo,eth0",
    ])
    .expect("full");
    assert!(c.experimental_udp_fast_path);
    assert_eq!(c.experimental_udp_fast_path_interfaces.as_deref(), Some("lo,eth0"));
    assert!(c.experimental_sockmap, "--experimental.sockmap is weir's, not an unsupported Traefik option");
    assert_eq!(c.socket, PathBuf::from("/run/s.sock"));
    assert_eq!(c.dataplane, PathBuf::from("/bin/dp"));
    assert_eq!((c.workers, c.cpus.as_deref(), c.log_level), (Some(2), Some("0-1"), Some(LogLevel::Debug)));
    assert_eq!(c.max_connections_per_worker, Some(5000));
    assert_eq!(
        c.crd,
        CrdProviderConfig {
            enabled: true,
            allow_cross_namespace: true,
            allow_empty_services: true,
            ..CrdProviderConfig::default()
        }
    );

    let (c, warnings) = run(&["--manifests=/m", "--core.defaultRuleSyntax=v2"]).expect("v2 default");
    assert_eq!(c.default_rule_syntax, Syntax::V2);
    assert!(warnings.iter().any(|w| w.contains("deprecated")), "{warnings:?}");
    let (c, warnings) = run(&["--manifests=/m", "--core.defaultrulesyntax=v3"]).expect("v3 default");
    assert_eq!((c.default_rule_syntax, warnings.len()), (Syntax::V3, 0));

    let with_xdg = Environment { xdg_runtime_dir: Some("/run/user/1000".into()), ..env() };
    assert_eq!(with_xdg.default_socket(), PathBuf::from("/run/user/1000/weir/dataplane.sock"));
}

#[test]
fn unknown_options_warn_once_each() {
    let (c, warnings) = run(&[
        "--manifests=/m",
        "--entrypoints.web.address=:80",
        "--entryPoints.web.http3=true",
        "--frobnicate.level",
    ])
    .expect("parses");
    assert_eq!(c.entrypoints, vec![ep("web", "0.0.0.0:80")]);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("--entryPoints.web.http3"), "{warnings:?}");
    assert!(warnings[1].contains("--frobnicate.level"), "{warnings:?}");
}

#[test]
fn errors_name_the_option() {
    let cases: Vec<(&str, Vec<&str>, ConfigError)> = vec![
        ("no source", vec![], ConfigError::NoSource),
        ("crd provider disabled", vec!["--providers.kubernetescrd=false"], ConfigError::NoSource),
        (
            "positional",
            vec!["--manifests=/m", "serve"],
            ConfigError::UnexpectedArgument { arg: "serve".into() },
        ),
        ("missing own value", vec!["--manifests"], ConfigError::MissingValue { key: "manifests".into() }),
        (
            "own value must not be an option",
            vec!["--socket", "--manifests=/m"],
            ConfigError::MissingValue { key: "socket".into() },
        ),
        (
            "udp timeout zero",
            vec!["--manifests=/m", "--entryPoints.dns.address=:53/udp", "--entryPoints.dns.udp.timeout=0s"],
            ConfigError::InvalidValue {
                key: "entryPoints.dns.udp.timeout".into(),
                value: "0s".into(),
                reason: "must be greater than zero".into(),
            },
        ),
        (
            "bad bool",
            vec!["--manifests=/m", "--providers.kubernetesCRD.allowEmptyServices=yes"],
            ConfigError::InvalidValue {
                key: "providers.kubernetesCRD.allowEmptyServices".into(),
                value: "yes".into(),
                reason: "expected true or false".into(),
            },
        ),
        (
            "bare log level",
            vec!["--manifests=/m", "--log.level"],
            ConfigError::InvalidValue {
                key: "log.level".into(),
                value: "true".into(),
                reason: "expected one of TRACE, DEBUG, INFO, WARN, ERROR".into(),
            },
        ),
        (
            "unknown default rule syntax",
            vec!["--manifests=/m", "--core.defaultRuleSyntax=V2"],
            ConfigError::InvalidValue {
                key: "core.defaultRuleSyntax".into(),
                value: "V2".into(),
                reason: "expected v2 or v3".into(),
            },
        ),
        (
            "entrypoint without address",
            vec!["--manifests=/m", "--entryPoints.web.address=:80", "--entryPoints.Web.asDefault"],
            ConfigError::MissingAddress { entrypoint: "Web".into() },
        ),
        (
            "zero workers",
            vec!["--manifests=/m", "--workers=0"],
            ConfigError::InvalidValue {
                key: "workers".into(),
                value: "0".into(),
                reason: "must be at least 1".into(),
            },
        ),
    ];
    for (name, args, want) in cases {
        assert_eq!(run(&args).map(|_| ()), Err(want), "{name}");
    }
}

#[test]
fn help_and_version() {
    for args in [&["--help"][..], &["-h"], &["--manifests=/m", "--HELP"]] {
        match parse(args.iter().copied(), &env()) {
            Ok(Command::Help(text)) => {
                assert!(text.contains("--entryPoints.<name>.address"), "{text}");
                assert!(text.contains("/tmp/weir-1000/dataplane.sock"), "{text}");
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert_eq!(parse(["--version"], &env()), Ok(Command::Version));
}

#[test]
fn udp_entrypoints() {
    use std::time::Duration;
    let udp = |name: &str, addr: &str, ms: u64| UdpEntryPointConfig {
        name: name.into(),
        address: addr.parse().expect("test address"),
        timeout: Duration::from_millis(ms),
    };
    type Case = (&'static str, Vec<&'static str>, Vec<&'static str>, Vec<UdpEntryPointConfig>);
    let cases: Vec<Case> = vec![
        (
            "udp alone: no implicit http",
            vec!["--entryPoints.dns.address=:5353/udp"],
            vec![],
            vec![udp("dns", "0.0.0.0:5353", 3_000)],
        ),
        (
            "tcp and udp share a port",
            vec!["--entryPoints.dnstcp.address=:53", "--entryPoints.dns.address=127.0.0.1:53/UDP"],
            vec!["dnstcp"],
            vec![udp("dns", "127.0.0.1:53", 3_000)],
        ),
        (
            "timeout in Go syntax, before the address",
            vec!["--entryPoints.dns.udp.timeout=1500ms", "--entryPoints.dns.address=:53/udp"],
            vec![],
            vec![udp("dns", "0.0.0.0:53", 1_500)],
        ),
        (
            "timeout in integer seconds",
            vec!["--entryPoints.dns.address=:53/udp", "--entryPoints.dns.udp.timeout=10"],
            vec![],
            vec![udp("dns", "0.0.0.0:53", 10_000)],
        ),
        (
            "udp.timeout on a tcp entrypoint is ignored",
            vec!["--entryPoints.web.address=:80", "--entryPoints.web.udp.timeout=1s"],
            vec!["web"],
            vec![],
        ),
    ];
    for (name, args, tcp, want) in cases {
        let mut all = vec!["--manifests=/m"];
        all.extend(args);
        let (config, _) = run(&all).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tcp_names: Vec<&str> = config.entrypoints.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(tcp_names, tcp, "{name}");
        assert_eq!(config.udp_entrypoints, want, "{name}");
    }
}
