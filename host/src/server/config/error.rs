//! Why the configuration was refused: one typed error naming the file, the variable or the
//! setting at fault, so that an operator reads what to fix and a caller (or a test) can
//! tell one refusal from another without reading its text.

use std::path::PathBuf;

/// Why the server's configuration could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given by `--config` could not be read.
    #[error("cannot read the configuration file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the configuration's form: a syntax error, an unknown
    /// section or key, or a value of the wrong type. toml's error shows the line, so it
    /// names the key.
    #[error("invalid configuration file {}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// toml's reason, with the line at fault.
        #[source]
        source: toml::de::Error,
    },
    /// A variable's text is not of its setting's kind.
    #[error("{variable} must be {expected}, not `{text}`")]
    VariableKind {
        /// The variable, `WASMHOOK_<NAME>`.
        variable: String,
        /// What its setting takes: `true or false`, `a non-negative integer`.
        expected: &'static str,
        /// What it was set to.
        text: String,
    },
    /// A variable's text is of its setting's kind but not a value the setting takes (an
    /// address that is not one).
    #[error("{variable}: {reason}")]
    VariableValue {
        /// The variable, `WASMHOOK_<NAME>`.
        variable: String,
        /// Why the value was refused.
        reason: String,
    },
    /// A setting is below the least value it may have.
    #[error("{key} must be at least {minimum}{why}")]
    TooSmall {
        /// The setting, as the file names it (its variable is `WASMHOOK_<KEY>`).
        key: &'static str,
        /// The least value it may have.
        minimum: u64,
        /// What a smaller value would do, when that says more (` (0 would refuse every
        /// upload)`), or nothing.
        why: &'static str,
    },
    /// A setting is above the most it may be.
    #[error("{key} must be at most {maximum}")]
    TooLarge {
        /// The setting, as the file names it (its variable is `WASMHOOK_<KEY>`).
        key: &'static str,
        /// The most it may be.
        maximum: u64,
    },
    /// The database URL (`--database`, `WASMHOOK_DATABASE_URL`, `[database] url`) is not
    /// one the server can use; the reason never holds the URL's password.
    #[error("database URL: {0}")]
    Database(String),
    /// `WASMHOOK_OPERATOR_TOKEN` is too short to be a secret.
    #[error("WASMHOOK_OPERATOR_TOKEN must be at least 16 characters")]
    ShortOperatorToken,
    /// A section could not be written as its settings (never for the sections' types).
    #[error("the [{section}] section cannot be read as settings: {reason}")]
    Section {
        /// The section's name in the file.
        section: &'static str,
        /// Why.
        reason: String,
    },
}

/// Refuses `value` of setting `key` when it is below `minimum`, saying `why` after the
/// rule (or nothing, when `why` is empty).
pub(super) fn at_least<T: TryInto<u64>>(
    key: &'static str,
    value: T,
    minimum: u64,
    why: &'static str,
) -> Result<(), ConfigError> {
    // A value too large for u64 is not below anything.
    if value.try_into().unwrap_or(u64::MAX) < minimum {
        return Err(ConfigError::TooSmall { key, minimum, why });
    }
    Ok(())
}

/// Refuses `value` of setting `key` when it is above `maximum`.
pub(super) fn at_most(key: &'static str, value: u64, maximum: u64) -> Result<(), ConfigError> {
    if value > maximum {
        return Err(ConfigError::TooLarge { key, maximum });
    }
    Ok(())
}
