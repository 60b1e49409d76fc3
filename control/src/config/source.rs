//! Where the static configuration comes from, as Traefik chooses it: a configuration file
//! (`--configFile`, else the first `traefik.{toml,yaml,yml}` in the search path) is used alone;
//! else the command-line flags; else the `TRAEFIK_*` environment variables. Each source becomes
//! the same list of `(dotted key, value)` pairs that one parser reads.
//!
//! weir's own options (`--manifests`, `--socket`, `--dataplane`, `--workers`, `--cpus` and the
//! `weir.*` section) are not Traefik's: they are taken from every source, flags last, so the
//! usual `weir --manifests DIR` keeps working beside a Traefik configuration file.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// One option: the dotted key as written (case kept) and its value as text.
pub type Pair = (String, String);

/// The process environment parsing reads besides the arguments (kept apart so it is testable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Environment variables whose name starts with `TRAEFIK_` (any case), in order.
    pub vars: Vec<(String, String)>,
    /// Directories searched, in order, for `traefik.toml`, `traefik.yaml`, `traefik.yml`.
    pub search_dirs: Vec<PathBuf>,
}

impl Sources {
    /// Reads the current process's environment: `TRAEFIK_*` variables and Traefik's search path
    /// `/etc/traefik/`, `$XDG_CONFIG_HOME/`, `$HOME/.config/`, `.`.
    pub fn current() -> Sources {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.to_ascii_uppercase().starts_with(ENV_PREFIX))
            .collect();
        let mut search_dirs = vec![PathBuf::from("/etc/traefik")];
        if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            search_dirs.push(PathBuf::from(xdg));
        }
        if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            search_dirs.push(PathBuf::from(home).join(".config"));
        }
        search_dirs.push(PathBuf::from("."));
        Sources { vars, search_dirs }
    }
}

/// Which source the Traefik options were read from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigSource {
    /// A configuration file.
    File(PathBuf),
    /// Command-line flags.
    Flags,
    /// `TRAEFIK_*` environment variables.
    Env,
    /// Nothing but weir's own options: Traefik's defaults.
    #[default]
    Defaults,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "file {}", p.display()),
            ConfigSource::Flags => f.write_str("flags"),
            ConfigSource::Env => f.write_str("environment variables"),
            ConfigSource::Defaults => f.write_str("defaults"),
        }
    }
}

const ENV_PREFIX: &str = "TRAEFIK_";

/// Top-level sections of Traefik's static configuration (plus weir's own). As Traefik does, only
/// `TRAEFIK_<SECTION>…` variables are read, so unrelated variables such as the
/// `TRAEFIK_PORT=tcp://…` Kubernetes injects for a Service named `traefik` are not options.
const ENV_SECTIONS: [&str; 20] = [
    "ENTRYPOINTS",
    "PROVIDERS",
    "API",
    "PING",
    "METRICS",
    "LOG",
    "ACCESSLOG",
    "TRACING",
    "CORE",
    "GLOBAL",
    "SERVERSTRANSPORT",
    "TCPSERVERSTRANSPORT",
    "HOSTRESOLVER",
    "CERTIFICATESRESOLVERS",
    "EXPERIMENTAL",
    "SPIFFE",
    "OCSP",
    "PILOT",
    "HUB",
    "WEIR",
];

/// `TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80` → `entrypoints.web.address`: Traefik lower-cases the
/// name and turns every `_` into a key separator.
pub fn env_pairs(vars: &[(String, String)]) -> Vec<Pair> {
    vars.iter()
        .filter_map(|(name, value)| {
            let upper = name.to_ascii_uppercase();
            let rest = upper.strip_prefix(ENV_PREFIX)?;
            let section = ENV_SECTIONS.iter().find(|s| {
                rest.strip_prefix(**s).is_some_and(|after| after.is_empty() || after.starts_with('_'))
            })?;
            let _ = section;
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase().replace('_', ".");
            Some((key, value.clone()))
        })
        .collect()
}

/// The configuration file to read: the one given, else the first in the search path.
pub fn find_file(given: Option<&str>, search_dirs: &[PathBuf]) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(given) = given.filter(|g| !g.trim().is_empty()) {
        let path = PathBuf::from(given);
        // Traefik silently falls back to the search path when the given file is missing; weir
        // refuses to start instead (running on other options than the ones asked for is wrong).
        if !path.is_file() {
            return Err(ConfigError::File { path, reason: "no such file".into() });
        }
        return Ok(Some(path));
    }
    for dir in search_dirs {
        for ext in ["toml", "yaml", "yml"] {
            let path = dir.join(format!("traefik.{ext}"));
            if path.is_file() {
                return Ok(Some(path));
            }
        }
    }
    Ok(None)
}

/// Reads a YAML or TOML configuration file (by extension; `.toml` is TOML, anything else YAML)
/// into flattened pairs.
pub fn file_pairs(path: &Path) -> Result<Vec<Pair>, ConfigError> {
    let err = |reason: String| ConfigError::File { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let is_toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    let tree = if is_toml { parse_toml(&text) } else { parse_yaml(&text) }.map_err(err)?;
    let mut out = Vec::new();
    match tree {
        Tree::Map(entries) => {
            for (k, v) in entries {
                flatten(&k, v, &mut out);
            }
        }
        Tree::Null => {}
        _ => return Err(err("the top level must be a mapping of sections".into())),
    }
    Ok(out)
}

/// A configuration document, whatever its syntax.
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    /// An empty value (`ping:` in YAML).
    Null,
    /// A scalar as text.
    Scalar(String),
    /// A list.
    List(Vec<Tree>),
    /// A mapping, in document order.
    Map(Vec<(String, Tree)>),
}

fn parse_yaml(text: &str) -> Result<Tree, String> {
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    yaml_tree(value)
}

fn yaml_tree(value: serde_yaml_ng::Value) -> Result<Tree, String> {
    use serde_yaml_ng::Value;
    Ok(match value {
        Value::Null => Tree::Null,
        Value::Bool(b) => Tree::Scalar(b.to_string()),
        Value::Number(n) => Tree::Scalar(n.to_string()),
        Value::String(s) => Tree::Scalar(s),
        Value::Sequence(items) => Tree::List(items.into_iter().map(yaml_tree).collect::<Result<_, _>>()?),
        Value::Mapping(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                entries.push((key, yaml_tree(v)?));
            }
            Tree::Map(entries)
        }
        Value::Tagged(tagged) => yaml_tree(tagged.value)?,
    })
}

fn parse_toml(text: &str) -> Result<Tree, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    Ok(toml_tree(toml::Value::Table(table)))
}

fn toml_tree(value: toml::Value) -> Tree {
    use toml::Value;
    match value {
        Value::String(s) => Tree::Scalar(s),
        Value::Integer(i) => Tree::Scalar(i.to_string()),
        Value::Float(f) => Tree::Scalar(f.to_string()),
        Value::Boolean(b) => Tree::Scalar(b.to_string()),
        Value::Datetime(d) => Tree::Scalar(d.to_string()),
        Value::Array(items) => Tree::List(items.into_iter().map(toml_tree).collect()),
        Value::Table(t) => Tree::Map(t.into_iter().map(|(k, v)| (k, toml_tree(v))).collect()),
    }
}

/// Nested maps become dotted keys; an empty section (`ping: {}`, `[ping]`, `ping:`) enables it
/// (`ping=true`, like a bare `--ping`); a list of scalars becomes a comma list (as the flag form
/// takes it); a list of mappings becomes indexed keys (`domains[0].main`), as Traefik's flags.
pub fn flatten(key: &str, tree: Tree, out: &mut Vec<Pair>) {
    match tree {
        Tree::Null => out.push((key.to_string(), "true".into())),
        Tree::Scalar(s) => out.push((key.to_string(), s)),
        Tree::Map(entries) if entries.is_empty() => out.push((key.to_string(), "true".into())),
        Tree::Map(entries) => {
            for (k, v) in entries {
                flatten(&format!("{key}.{k}"), v, out);
            }
        }
        Tree::List(items) => {
            if items.iter().all(|i| matches!(i, Tree::Scalar(_))) {
                let joined: Vec<String> = items
                    .into_iter()
                    .filter_map(|i| if let Tree::Scalar(s) = i { Some(s) } else { None })
                    .collect();
                out.push((key.to_string(), joined.join(",")));
            } else {
                for (i, item) in items.into_iter().enumerate() {
                    flatten(&format!("{key}[{i}]"), item, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_with, Command, Environment, StaticConfig};

    fn env() -> Environment {
        Environment { xdg_runtime_dir: None, euid: 1000, exe_dir: None }
    }

    fn run(args: &[&str], sources: &Sources) -> Result<(StaticConfig, Vec<String>), ConfigError> {
        match parse_with(args.iter().copied(), &env(), sources)? {
            Command::Run { config, warnings } => Ok((*config, warnings)),
            other => panic!("expected a run configuration, got {other:?}"),
        }
    }

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn env_names() {
        let got = env_pairs(&vars(&[
            ("TRAEFIK_ENTRYPOINTS_WEB_ADDRESS", ":80"),
            ("traefik_log_level", "DEBUG"),
            ("TRAEFIK_PORT", "tcp://10.0.0.1:80"),
            ("TRAEFIK_LOGX", "1"),
            ("TRAEFIK_PING", "true"),
            ("TRAEFIK_WEIR_WORKERS", "2"),
        ]));
        let want = vec![
            ("entrypoints.web.address".to_string(), ":80".to_string()),
            ("log.level".into(), "DEBUG".into()),
            ("ping".into(), "true".into()),
            ("weir.workers".into(), "2".into()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn flattening() {
        let yaml = "entryPoints:\n  web:\n    address: ':8000'\n    forwardedHeaders:\n      trustedIPs: [10.0.0.0/8, 127.0.0.1]\n    http:\n      tls:\n        domains:\n          - main: a.example\n            sans: [b.example, c.example]\nping: {}\naccessLog:\nweir:\n  workers: 2\n";
        let toml = "[entryPoints.web]\naddress = \":8000\"\n[entryPoints.web.forwardedHeaders]\ntrustedIPs = [\"10.0.0.0/8\", \"127.0.0.1\"]\n[[entryPoints.web.http.tls.domains]]\nmain = \"a.example\"\nsans = [\"b.example\", \"c.example\"]\n[ping]\n[accessLog]\n[weir]\nworkers = 2\n";
        let want: Vec<Pair> = [
            ("entryPoints.web.address", ":8000"),
            ("entryPoints.web.forwardedHeaders.trustedIPs", "10.0.0.0/8,127.0.0.1"),
            ("entryPoints.web.http.tls.domains[0].main", "a.example"),
            ("entryPoints.web.http.tls.domains[0].sans", "b.example,c.example"),
            ("ping", "true"),
            ("accessLog", "true"),
            ("weir.workers", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        for (file, text) in [("traefik.yml", yaml), ("traefik.toml", toml)] {
            let path = dir.path().join(file);
            std::fs::write(&path, text).expect("write");
            let mut got = file_pairs(&path).expect("parses");
            let mut want = want.clone();
            // TOML tables are sorted by key; compare as sets.
            got.sort();
            want.sort();
            assert_eq!(got, want, "{file}");
        }
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "entryPoints: [").expect("write");
        assert!(matches!(file_pairs(&bad), Err(ConfigError::File { .. })));
    }

    #[test]
    fn one_source_as_traefik() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("traefik.yaml");
        std::fs::write(
            &file,
            "entryPoints:\n  fromfile:\n    address: ':7001'\nweir:\n  manifests: /from-file\n",
        )
        .expect("write");
        let envs = vars(&[("TRAEFIK_ENTRYPOINTS_FROMENV_ADDRESS", ":7003")]);
        let searched = Sources { vars: envs.clone(), search_dirs: vec![dir.path().to_path_buf()] };
        let names = |c: &StaticConfig| c.entrypoints.iter().map(|e| e.name.clone()).collect::<Vec<_>>();

        // A file found in the search path wins over flags and env (both warned about).
        let (c, w) = run(&["--entryPoints.fromflag.address=:7002"], &searched).expect("file");
        assert_eq!(names(&c), vec!["fromfile"]);
        assert_eq!(c.source, ConfigSource::File(file.clone()));
        assert_eq!(c.manifests, PathBuf::from("/from-file"));
        assert_eq!(w.len(), 2, "{w:?}");
        // weir's own flags still apply beside the file.
        let (c, _) = run(&["--manifests=/m"], &searched).expect("file and own flag");
        assert_eq!(c.manifests, PathBuf::from("/m"));

        let no_file = Sources { vars: envs, search_dirs: vec![] };
        let (c, _) =
            run(&["--manifests=/m", "--entryPoints.fromflag.address=:7002"], &no_file).expect("flags");
        assert_eq!((names(&c), c.source.clone()), (vec!["fromflag".to_string()], ConfigSource::Flags));
        let (c, w) = run(&["--manifests", "/m"], &no_file).expect("env");
        assert_eq!((names(&c), c.source.clone()), (vec!["fromenv".to_string()], ConfigSource::Env));
        assert!(w.is_empty(), "{w:?}");

        // --configFile names the file (space or `=` form); a missing one is an error.
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "[entryPoints.fromtoml]\naddress = \":7004\"\n[weir]\nmanifests = \"/t\"\n")
            .expect("write");
        let given = other.to_str().expect("utf-8 path");
        let inline = format!("--configfile={given}");
        for args in [vec!["--configFile", given], vec![inline.as_str()]] {
            let (c, _) = run(&args, &no_file).expect("given file");
            assert_eq!(names(&c), vec!["fromtoml"]);
        }
        assert!(matches!(
            run(&["--configFile=/nonexistent/traefik.yml"], &no_file),
            Err(ConfigError::File { .. })
        ));
        // `--weir.*` is the prefix form of weir's own options.
        let (c, _) =
            run(&["--weir.manifests=/w", "--weir.workers", "3"], &Sources::default()).expect("weir prefix");
        assert_eq!((c.manifests, c.workers), (PathBuf::from("/w"), Some(3)));
    }
}
