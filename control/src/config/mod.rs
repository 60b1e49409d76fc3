//! Static configuration from the command line, Traefik style: dotted, case-insensitive keys
//! (`--entryPoints.web.address=:8000`) plus weir's own options (`--manifests DIR`). Parsing is
//! pure (the environment comes in as a value) so every form is unit-tested.

mod entrypoint;
mod entrypoint_http;
mod error;
mod help;
mod value;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use entrypoint::{parse_address, EntryPointConfig};
pub use entrypoint_http::{EntryPointHttp, EntryPointTls, Redirection};
pub use error::ConfigError;
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
    /// Entrypoints, sorted by name; never empty.
    pub entrypoints: Vec<EntryPointConfig>,
    /// CRD provider options.
    pub crd: CrdProviderConfig,
    /// `--core.defaultRuleSyntax`: syntax of rules whose router names none (default v3).
    pub default_rule_syntax: Syntax,
    /// `--log.level`, when given.
    pub log_level: Option<LogLevel>,
    /// Directory of manifests.
    pub manifests: PathBuf,
    /// Control socket path.
    pub socket: PathBuf,
    /// Data plane binary.
    pub dataplane: PathBuf,
    /// Data plane worker count to pass on.
    pub workers: Option<usize>,
    /// Data plane CPU list to pass on.
    pub cpus: Option<String>,
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
    as_default: bool,
    forwarded_headers: ForwardedHeaders,
    http: entrypoint_http::HttpDraft,
}

/// weir's own options that take a value and may be written `--key VALUE`.
const OWN_VALUE_OPTIONS: [&str; 5] = ["manifests", "socket", "dataplane", "workers", "cpus"];

/// Parses the arguments (without the program name).
pub fn parse<I, S>(args: I, env: &Environment) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into).peekable();
    let mut entrypoints: BTreeMap<String, EntryPointDraft> = BTreeMap::new();
    let mut crd = CrdProviderConfig::default();
    let mut default_rule_syntax = Syntax::V3;
    let mut log_level = None;
    let mut manifests = None;
    let mut socket = None;
    let mut dataplane = None;
    let mut workers = None;
    let mut cpus = None;
    let mut warnings = Vec::new();

    while let Some(arg) = args.next() {
        if arg == "-h" {
            return Ok(Command::Help(help::text(env)));
        }
        let Some(body) = arg.strip_prefix("--").filter(|b| !b.is_empty()) else {
            return Err(ConfigError::UnexpectedArgument { arg });
        };
        let (key, inline_value) = match body.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (body.to_string(), None),
        };
        let lower = key.to_ascii_lowercase();
        let value = match inline_value {
            Some(v) => v,
            None if OWN_VALUE_OPTIONS.contains(&lower.as_str()) => {
                match args.next_if(|a| !a.starts_with("--")) {
                    Some(v) => v,
                    None => return Err(ConfigError::MissingValue { key }),
                }
            }
            // Traefik: a bare key means `true` (and enables a section).
            None => "true".to_string(),
        };
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
            _ => match entrypoint_option(&key) {
                Some((name, option)) => {
                    let draft = entrypoints.entry(name.to_string()).or_default();
                    match option {
                        EntryPointOption::Address => {
                            draft.address = Some(entrypoint::parse_address(&value).map_err(invalid)?)
                        }
                        EntryPointOption::AsDefault => draft.as_default = boolean()?,
                        EntryPointOption::ForwardedInsecure => draft.forwarded_headers.insecure = boolean()?,
                        EntryPointOption::ForwardedTrustedIps => {
                            draft.forwarded_headers.trusted_ips =
                                entrypoint::parse_trusted_ips(&value).map_err(invalid)?
                        }
                        EntryPointOption::Http(k) => draft.http.set(k, &value).map_err(invalid)?,
                    }
                }
                None => {
                    warnings.push(format!("unknown option --{key} is ignored (weir does not support it yet)"))
                }
            },
        }
    }

    let manifests = manifests.ok_or(ConfigError::NoSource)?;
    let mut eps = Vec::with_capacity(entrypoints.len().max(1));
    for (name, draft) in entrypoints {
        let address =
            draft.address.ok_or_else(|| ConfigError::MissingAddress { entrypoint: name.clone() })?;
        eps.push(EntryPointConfig {
            name,
            address,
            as_default: draft.as_default,
            forwarded_headers: draft.forwarded_headers,
            http: draft.http.finish(),
        });
    }
    if eps.is_empty() {
        eps.push(EntryPointConfig::implicit_http());
    }
    let config = StaticConfig {
        entrypoints: eps,
        crd,
        default_rule_syntax,
        log_level,
        manifests,
        socket: socket.unwrap_or_else(|| env.default_socket()),
        dataplane: dataplane.unwrap_or_else(|| env.default_dataplane()),
        workers,
        cpus,
    };
    Ok(Command::Run { config: Box::new(config), warnings })
}

/// The entrypoint options weir supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryPointOption {
    Address,
    AsDefault,
    ForwardedInsecure,
    ForwardedTrustedIps,
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
        "forwardedheaders.insecure" => EntryPointOption::ForwardedInsecure,
        "forwardedheaders.trustedips" => EntryPointOption::ForwardedTrustedIps,
        other => EntryPointOption::Http(entrypoint_http::HttpKey::from_lower(other)?),
    };
    Some((name, option))
}

#[cfg(test)]
mod tests;
