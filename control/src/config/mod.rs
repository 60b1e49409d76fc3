//! Static configuration from the command line, Traefik style: dotted, case-insensitive keys
//! (`--entryPoints.web.address=:8000`) plus weir's own options (`--manifests DIR`). Parsing is
//! pure (the environment comes in as a value) so every form is unit-tested.

mod api;
mod entrypoint;
mod entrypoint_http;
mod entrypoint_options;
mod error;
mod help;
mod ingress_provider;
mod kube_provider;
mod observability;
mod source;
mod unsupported;
mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use api::{ApiConfig, ApiOptions, PingOptions};
pub use entrypoint::{
    parse_address, parse_address_transport, EntryPointConfig, Transport, UdpEntryPointConfig,
};
pub use entrypoint_http::{EntryPointHttp, EntryPointTls, Redirection};
pub use entrypoint_options::TransportOptions;
pub use error::ConfigError;
pub use ingress_provider::{IngressEndpoint, IngressProviderConfig, LabelSelector};
pub use kube_provider::{KubeConnection, KubeProvidersConfig};
pub use observability::{shutdown_wait, LogFormat, LogOptions, ObservabilityConfig};
pub use source::{ConfigSource, Sources};
pub use value::LogLevel;

use weir_proto::rule::Syntax;
use weir_proto::snapshot::ForwardedHeaders;

/// Options of the Kubernetes CRD provider that shape translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrdProviderConfig {
    /// `--providers.kubernetesCRD` was given.
    pub enabled: bool,
    /// Routes may reference Services in other namespaces.
    pub allow_cross_namespace: bool,
    /// A Service without endpoints still yields a (503-answering) load balancer.
    pub allow_empty_services: bool,
    /// ExternalName Services may be referenced.
    pub allow_external_name_services: bool,
    /// References balance to the ClusterIP unless they say `nativeLB: false`.
    pub native_lb_by_default: bool,
}

/// The complete static configuration of a `weir` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticConfig {
    /// TCP entrypoints, sorted by name; never empty unless UDP entrypoints are configured.
    pub entrypoints: Vec<EntryPointConfig>,
    /// UDP entrypoints (address `…/udp`), sorted by name.
    pub udp_entrypoints: Vec<UdpEntryPointConfig>,
    /// CRD provider options.
    pub crd: CrdProviderConfig,
    /// Kubernetes Ingress provider options (`--providers.kubernetesIngress.*`).
    pub ingress: IngressProviderConfig,
    /// `--core.defaultRuleSyntax`: syntax of rules whose router names none (default v3).
    pub default_rule_syntax: Syntax,
    /// `--log.level`, when given.
    pub log_level: Option<LogLevel>,
    /// Directory of manifests; empty when none was given (a Kubernetes provider is then the
    /// only source).
    pub manifests: PathBuf,
    /// How the Kubernetes providers reach the API server (`--providers.kubernetesCRD.endpoint`…).
    pub kube: KubeProvidersConfig,
    /// Control socket path.
    pub socket: PathBuf,
    /// Data plane binary.
    pub dataplane: PathBuf,
    /// Data plane worker count to pass on.
    pub workers: Option<usize>,
    /// Data plane CPU list to pass on.
    pub cpus: Option<String>,
    /// `--weir.maxConnectionsPerWorker`: the data plane's per-worker connection cap.
    pub max_connections_per_worker: Option<usize>,
    /// `--experimental.sockmap`: TCP passthrough moved by the in-kernel sockmap splice.
    pub experimental_sockmap: bool,
    /// `--experimental.udpFastPath`: established UDP flows forwarded by a TC program.
    pub experimental_udp_fast_path: bool,
    /// `--experimental.udpFastPath.interfaces`: where it is attached (comma-separated names).
    pub experimental_udp_fast_path_interfaces: Option<String>,
    /// `--metrics.*`, `--accessLog.*`, `--log.*` (besides the level).
    pub observability: ObservabilityConfig,
    /// `--api.*` and `--ping.*`.
    pub api: ApiConfig,
    /// Where the Traefik options were read from.
    pub source: ConfigSource,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run with this configuration; `warnings` are to be logged once logging is up.
    Run {
        /// The configuration.
        config: Box<StaticConfig>,
        /// Unknown options and similar, one message each.
        warnings: Vec<String>,
    },
    /// Print this help text.
    Help(String),
    /// Print the version.
    Version,
}

/// What parsing needs from the process environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `$XDG_RUNTIME_DIR`, when set and non-empty.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// Effective uid.
    pub euid: u32,
    /// Directory of the running `weir` binary.
    pub exe_dir: Option<PathBuf>,
}

impl Environment {
    /// Reads the current process's environment.
    pub fn current() -> Environment {
        Environment {
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()).map(PathBuf::from),
            euid: rustix::process::geteuid().as_raw(),
            exe_dir: std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from)),
        }
    }

    /// `$XDG_RUNTIME_DIR/weir/dataplane.sock`, else `/tmp/weir-<euid>/dataplane.sock`.
    pub fn default_socket(&self) -> PathBuf {
        match &self.xdg_runtime_dir {
            Some(dir) => dir.join("weir").join("dataplane.sock"),
            None => PathBuf::from(format!("/tmp/weir-{}", self.euid)).join("dataplane.sock"),
        }
    }

    /// `weir-dataplane` beside the `weir` binary (or on `$PATH` when that is unknown).
    pub fn default_dataplane(&self) -> PathBuf {
        match &self.exe_dir {
            Some(dir) => dir.join("weir-dataplane"),
            None => PathBuf::from("weir-dataplane"),
        }
    }
}

/// Entrypoint options seen so far; checked once all arguments are read.
#[derive(Default)]
struct EntryPointDraft {
    address: Option<std::net::SocketAddr>,
    transport: Transport,
    udp_timeout: Option<std::time::Duration>,
    as_default: bool,
    forwarded_headers: ForwardedHeaders,
    http: entrypoint_http::HttpDraft,
    proxy_protocol: Option<ForwardedHeaders>,
}

/// weir's own options that take a value and may be written `--key VALUE` (or `--weir.key VALUE`).
const OWN_VALUE_OPTIONS: [&str; 6] =
    ["manifests", "socket", "dataplane", "workers", "cpus", "maxconnectionsperworker"];

/// Whether a (lower-case) key is one of weir's own options rather than Traefik's.
fn is_own(lower: &str) -> bool {
    lower.starts_with("weir.") || OWN_VALUE_OPTIONS.contains(&lower)
}

/// Parses the arguments (without the program name) alone: no environment variables, no
/// configuration file search (see [`parse_with`]).
pub fn parse<I, S>(args: I, env: &Environment) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    parse_with(args, env, &Sources::default())
}

/// The arguments as `(key, value)` pairs: `--key=value`, a bare `--key` (= `true`), or
/// `--key VALUE` for weir's own options and `--configFile`. `None` when help was asked for.
fn split_args(args: impl IntoIterator<Item = String>) -> Result<Option<Vec<source::Pair>>, ConfigError> {
    let mut args = args.into_iter().peekable();
    let mut pairs = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "-h" {
            return Ok(None);
        }
        let Some(body) = arg.strip_prefix("--").filter(|b| !b.is_empty()) else {
            return Err(ConfigError::UnexpectedArgument { arg });
        };
        let (key, inline_value) = match body.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let lower = key.to_ascii_lowercase();
        let bare = lower.strip_prefix("weir.").unwrap_or(&lower);
        let value = match inline_value {
            Some(v) => v,
            None if OWN_VALUE_OPTIONS.contains(&bare) || lower == "configfile" => {
                match args.next_if(|a| !a.starts_with("--")) {
                    Some(v) => v,
                    None => return Err(ConfigError::MissingValue { key }),
                }
            }
            // Traefik: a bare key means `true` (and enables a section).
            None => "true".to_string(),
        };
        pairs.push((key, value));
    }
    Ok(Some(pairs))
}

/// Parses the arguments, reading the Traefik options from one source as Traefik does: the
/// configuration file (given by `--configFile` or found in the search path), else the flags,
/// else the `TRAEFIK_*` environment variables. weir's own options are read from all of them.
pub fn parse_with<I, S>(args: I, env: &Environment, sources: &Sources) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let Some(flags) = split_args(args.into_iter().map(Into::into))? else {
        return Ok(Command::Help(help::text(env)));
    };
    // Help and version win over any error in the configuration sources.
    for (key, _) in &flags {
        match key.to_ascii_lowercase().as_str() {
            "help" => return Ok(Command::Help(help::text(env))),
            "version" => return Ok(Command::Version),
            _ => {}
        }
    }
    let mut warnings = Vec::new();
    let given_file =
        flags.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case("configfile")).map(|(_, v)| v.clone());
    let (own_flags, traefik_flags): (Vec<_>, Vec<_>) = flags
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("configfile"))
        .partition(|(k, _)| is_own(&k.to_ascii_lowercase()));
    let (own_env, traefik_env): (Vec<_>, Vec<_>) =
        source::env_pairs(&sources.vars).into_iter().partition(|(k, _)| is_own(k));
    let (config_source, chosen) = if let Some(path) =
        source::find_file(given_file.as_deref(), &sources.search_dirs)?
    {
        let pairs = source::file_pairs(&path)?;
        if !traefik_flags.is_empty() {
            let keys: Vec<String> = traefik_flags.iter().map(|(k, _)| format!("--{k}")).collect();
            warnings.push(format!(
                "options {} are ignored: the static configuration is read from {} alone (as Traefik, sources are not merged)",
                keys.join(" "),
                path.display()
            ));
        }
        (ConfigSource::File(path), pairs)
    } else if !traefik_flags.is_empty() {
        (ConfigSource::Flags, traefik_flags)
    } else if !traefik_env.is_empty() {
        (ConfigSource::Env, traefik_env.clone())
    } else {
        (ConfigSource::Defaults, Vec::new())
    };
    if !matches!(config_source, ConfigSource::Env) && !traefik_env.is_empty() {
        let names: Vec<String> = traefik_env.iter().map(|(k, _)| k.clone()).collect();
        warnings.push(format!(
            "TRAEFIK_* environment variables ({}) are ignored: the static configuration is read from {config_source} (as Traefik, sources are not merged)",
            names.join(", ")
        ));
    }
    let pairs = own_env.into_iter().chain(chosen).chain(own_flags);

    let mut entrypoints: BTreeMap<String, EntryPointDraft> = BTreeMap::new();
    let mut crd = CrdProviderConfig::default();
    let mut ingress = IngressProviderConfig::default();
    let mut kube = KubeProvidersConfig::default();
    let mut default_rule_syntax = Syntax::V3;
    let mut log_level = None;
    let mut manifests = None;
    let mut socket = None;
    let mut dataplane = None;
    let mut workers = None;
    let mut cpus = None;
    let mut max_connections_per_worker = None;
    let mut experimental_sockmap = false;
    let mut experimental_udp_fast_path = false;
    let mut experimental_udp_fast_path_interfaces = None;
    let mut observability = ObservabilityConfig::default();
    let mut api = ApiConfig::default();

    for (key, value) in pairs {
        // `--weir.workers` is `--workers`: weir's own section.
        let key = match key.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("weir.") => key[5..].to_string(),
            _ => key,
        };
        let lower = key.to_ascii_lowercase();
        let invalid =
            |reason: String| ConfigError::InvalidValue { key: key.clone(), value: value.clone(), reason };
        let boolean = || value::parse_bool(&value).map_err(invalid);

        match lower.as_str() {
            "help" => return Ok(Command::Help(help::text(env))),
            "version" => return Ok(Command::Version),
            "manifests" => manifests = Some(PathBuf::from(&value)),
            "socket" => socket = Some(PathBuf::from(&value)),
            "dataplane" => dataplane = Some(PathBuf::from(&value)),
            "workers" => workers = Some(value::parse_workers(&value).map_err(invalid)?),
            "cpus" => cpus = Some(value::parse_cpus(&value).map_err(invalid)?),
            "maxconnectionsperworker" => {
                max_connections_per_worker = Some(value::parse_workers(&value).map_err(invalid)?)
            }
            "experimental.sockmap" => experimental_sockmap = boolean()?,
            "experimental.udpfastpath" => experimental_udp_fast_path = boolean()?,
            "experimental.udpfastpath.interfaces" => {
                if !value.split(',').any(|n| !n.trim().is_empty()) {
                    return Err(invalid("no interface name".into()));
                }
                experimental_udp_fast_path_interfaces = Some(value.clone());
            }
            "log.level" => log_level = Some(value.parse::<LogLevel>().map_err(invalid)?),
            "core.defaultrulesyntax" => {
                default_rule_syntax = value::parse_rule_syntax(&value).map_err(invalid)?;
                if default_rule_syntax == Syntax::V2 {
                    // Traefik logs the same deprecation at startup.
                    warnings
                        .push("v2 rule syntax (--core.defaultRuleSyntax=v2) is deprecated; use v3".into());
                }
            }
            "providers.kubernetescrd" => crd.enabled = boolean()?,
            "providers.kubernetescrd.allowcrossnamespace" => {
                crd.enabled = true;
                crd.allow_cross_namespace = boolean()?;
            }
            "providers.kubernetescrd.allowemptyservices" => {
                crd.enabled = true;
                crd.allow_empty_services = boolean()?;
            }
            "providers.kubernetescrd.allowexternalnameservices" => {
                crd.enabled = true;
                crd.allow_external_name_services = boolean()?;
            }
            "providers.kubernetescrd.nativelbbydefault" => {
                crd.enabled = true;
                crd.native_lb_by_default = boolean()?;
            }
            // Connection/watch keys of both Kubernetes providers (the Ingress provider's fall
            // through to its own arm below as well).
            k if k.starts_with("providers.kubernetes")
                && kube_provider::set(&mut kube, &mut crd, k, &value).map_err(invalid)? => {}
            k if k.starts_with("providers.kubernetesingress")
                && ingress_provider::set(&mut ingress, k, &value).map_err(invalid)? => {}
            // Traefik counts and logs its internal services only when asked; weir never does.
            "accesslog.addinternals" | "metrics.addinternals" => {
                if boolean()? {
                    warnings.push(format!(
                        "option {key} is ignored: weir never counts or logs its internal services (API, dashboard, ping, metrics)"
                    ));
                }
            }
            _ if ApiConfig::owns(&lower) => warnings.extend(api.set(&lower, &value).map_err(invalid)?),
            _ if ObservabilityConfig::owns(&lower) => {
                observability.set(&key, &lower, &value).map_err(invalid)?
            }
            _ => match entrypoint_option(&key) {
                Some((name, option)) => {
                    let draft = entrypoints.entry(name.to_string()).or_default();
                    match option {
                        EntryPointOption::Address => {
                            let (address, transport) =
                                entrypoint::parse_address_transport(&value).map_err(invalid)?;
                            draft.address = Some(address);
                            draft.transport = transport;
                        }
                        EntryPointOption::UdpTimeout => {
                            draft.udp_timeout = Some(value::parse_positive_duration(&value).map_err(invalid)?)
                        }
                        EntryPointOption::AsDefault => draft.as_default = boolean()?,
                        // Every worker has its own SO_REUSEPORT listener: always on.
                        EntryPointOption::ReusePort => {
                            if !boolean()? {
                                warnings.push(format!(
                                    "option {key}=false is ignored: weir always listens with SO_REUSEPORT (one socket per worker)"
                                ));
                            }
                        }
                        EntryPointOption::ForwardedInsecure => draft.forwarded_headers.insecure = boolean()?,
                        EntryPointOption::ForwardedTrustedIps => {
                            draft.forwarded_headers.trusted_ips =
                                entrypoint::parse_trusted_ips(&value).map_err(invalid)?
                        }
                        EntryPointOption::Http(k) => draft.http.set(k, &value).map_err(invalid)?,
                        EntryPointOption::ProxyInsecure => {
                            draft.proxy_protocol.get_or_insert_with(Default::default).insecure = boolean()?
                        }
                        EntryPointOption::ProxyTrustedIps => {
                            draft.proxy_protocol.get_or_insert_with(Default::default).trusted_ips =
                                entrypoint::parse_trusted_ips(&value).map_err(invalid)?
                        }
                    }
                }
                None => warnings.push(unsupported::warning(&key, config_source == ConfigSource::Flags)),
            },
        }
    }

    // A Kubernetes provider alone is a source (the API server); with a manifests directory it
    // reads that directory unless told where the API server is.
    let manifests = match manifests {
        Some(m) => m,
        None if crd.enabled || ingress.enabled => PathBuf::new(),
        None => return Err(ConfigError::NoSource),
    };
    let mut eps = Vec::with_capacity(entrypoints.len().max(1));
    let mut udp_eps = Vec::new();
    for (name, draft) in entrypoints {
        let address =
            draft.address.ok_or_else(|| ConfigError::MissingAddress { entrypoint: name.clone() })?;
        if draft.transport == Transport::Udp {
            // Traefik: HTTP and TCP options of a UDP entrypoint have no effect.
            let timeout = draft
                .udp_timeout
                .unwrap_or(std::time::Duration::from_millis(weir_proto::udp::DEFAULT_UDP_TIMEOUT_MS));
            udp_eps.push(UdpEntryPointConfig { name, address, timeout });
            continue;
        }
        eps.push(EntryPointConfig {
            name,
            address,
            as_default: draft.as_default,
            forwarded_headers: draft.forwarded_headers,
            http: draft.http.finish(),
            proxy_protocol: draft.proxy_protocol,
        });
    }
    if eps.is_empty() && udp_eps.is_empty() {
        eps.push(EntryPointConfig::implicit_http());
    }
    // Traefik: the `traefik` entrypoint (:8080) is created when the internal services need it.
    let metrics_on_traefik = observability
        .metrics
        .as_ref()
        .is_some_and(|m| !m.manual_routing && m.entry_point == weir_proto::api::INTERNAL_ENTRYPOINT);
    if api.needs_internal_entrypoint(metrics_on_traefik)
        && !eps.iter().any(|e| e.name == weir_proto::api::INTERNAL_ENTRYPOINT)
    {
        eps.push(EntryPointConfig::implicit_traefik());
        eps.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let config = StaticConfig {
        entrypoints: eps,
        udp_entrypoints: udp_eps,
        crd,
        ingress,
        default_rule_syntax,
        log_level,
        manifests,
        kube,
        socket: socket.unwrap_or_else(|| env.default_socket()),
        dataplane: dataplane.unwrap_or_else(|| env.default_dataplane()),
        workers,
        cpus,
        max_connections_per_worker,
        experimental_sockmap,
        experimental_udp_fast_path,
        experimental_udp_fast_path_interfaces,
        observability,
        api,
        source: config_source,
    };
    for ep in &config.entrypoints {
        if let Some(resolver) = ep.http.tls.as_ref().and_then(|t| t.cert_resolver.as_deref()) {
            warnings.push(format!(
                "entrypoint {}: option http.tls.certResolver={resolver} is ignored: ACME is not supported; certificates come from Kubernetes TLS Secrets",
                ep.name
            ));
        }
        for option in ep.http.transport.not_honoured() {
            warnings
                .push(format!("entrypoint {}: option {option} is read but not honoured by weir", ep.name));
        }
    }
    Ok(Command::Run { config: Box::new(config), warnings })
}

/// The entrypoint options weir supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryPointOption {
    Address,
    AsDefault,
    ReusePort,
    ForwardedInsecure,
    ForwardedTrustedIps,
    UdpTimeout,
    ProxyInsecure,
    ProxyTrustedIps,
    Http(entrypoint_http::HttpKey),
}

/// Splits `entryPoints.<name>.<option>` into the name (case kept) and a supported option.
fn entrypoint_option(key: &str) -> Option<(&str, EntryPointOption)> {
    let mut parts = key.splitn(3, '.');
    let (section, name, option) = (parts.next()?, parts.next()?, parts.next()?);
    if !section.eq_ignore_ascii_case("entrypoints") || name.is_empty() {
        return None;
    }
    let option = match option.to_ascii_lowercase().as_str() {
        "address" => EntryPointOption::Address,
        "asdefault" => EntryPointOption::AsDefault,
        "reuseport" => EntryPointOption::ReusePort,
        "forwardedheaders.insecure" => EntryPointOption::ForwardedInsecure,
        "forwardedheaders.trustedips" => EntryPointOption::ForwardedTrustedIps,
        "udp.timeout" => EntryPointOption::UdpTimeout,
        "proxyprotocol.insecure" => EntryPointOption::ProxyInsecure,
        "proxyprotocol.trustedips" => EntryPointOption::ProxyTrustedIps,
        other => EntryPointOption::Http(entrypoint_http::HttpKey::from_lower(other)?),
    };
    Some((name, option))
}

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod tests;
