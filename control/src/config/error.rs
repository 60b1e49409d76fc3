//! Errors in the static configuration; every variant names the option at fault.

/// Why the command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A word that is not an option (Traefik-style options take `--key=value`).
    #[error("unexpected argument `{arg}` (options are written `--key=value`)")]
    UnexpectedArgument {
        /// The argument as written.
        arg: String,
    },
    /// An option that needs a value got none.
    #[error("option --{key} needs a value")]
    MissingValue {
        /// The option as written.
        key: String,
    },
    /// An option's value does not parse.
    #[error("option --{key}: invalid value `{value}`: {reason}")]
    InvalidValue {
        /// The option as written.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entrypoint was configured without an address.
    #[error("entrypoint `{entrypoint}` has no address (set --entryPoints.{entrypoint}.address=[host]:port)")]
    MissingAddress {
        /// The entrypoint's name.
        entrypoint: String,
    },
    /// The configuration file cannot be read or parsed.
    #[error("configuration file {}: {reason}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No configuration source was given.
    #[error(
        "no configuration source: pass --manifests DIR, or enable a Kubernetes provider \
         (--providers.kubernetesCRD, --providers.kubernetesIngress)"
    )]
    NoSource,
}
