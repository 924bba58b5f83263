//! How a section's settings are read from the environment: `Section` names each section
//! and its variables' prefix, and `with_environment` replaces every setting whose variable
//! is set. Apart from the sections because it is one rule for all of them, driven by their
//! serialized form, so that no section lists its variables.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ConfigError;

/// Where the settings' variables are read: the process's environment when serving
/// ([`process_variable`]), a table of their own in the unit tests, since the process's
/// environment is one for every test running at once.
pub(super) type Variables<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's variable `name`, if it is set (and is text).
pub(super) fn process_variable(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A section of the configuration: its name in the file and its variables' prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[limits]`, `WASMHOOK_<NAME>`.
    Limits,
    /// `[network]`, `WASMHOOK_<NAME>`.
    Network,
    /// `[connections]`, `WASMHOOK_<NAME>`.
    Connections,
    /// `[metrics]`, `WASMHOOK_METRICS_<NAME>`.
    Metrics,
    /// `[database]`, `WASMHOOK_DATABASE_<NAME>`.
    Database,
}

impl Section {
    /// Every section, in the order the reference lists them.
    pub const ALL: [Section; 5] = [
        Section::Limits,
        Section::Network,
        Section::Connections,
        Section::Metrics,
        Section::Database,
    ];

    /// The section's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Limits => "limits",
            Section::Network => "network",
            Section::Connections => "connections",
            Section::Metrics => "metrics",
            Section::Database => "database",
        }
    }

    /// The environment variable of the section's setting `key`.
    pub fn variable(self, key: &str) -> String {
        let prefix = match self {
            Section::Metrics => "WASMHOOK_METRICS_",
            Section::Database => "WASMHOOK_DATABASE_",
            _ => "WASMHOOK_",
        };
        format!("{prefix}{}", key.to_ascii_uppercase())
    }
}

/// A section with every setting whose variable (in `variables`) is set replaced by the
/// variable's value.
///
/// The settings are the section's own keys (its serialized form), so that a setting added
/// to a section has its variable, its line in `serve --help` and in
/// `docs/configuration.md` without being listed anywhere else. A value is read as the
/// setting's type: a number, a yes-or-no (`true`/`false`, `1`/`0`, `yes`/`no`), or text
/// (an empty text unsets an optional setting).
pub(super) fn with_environment<T: Serialize + DeserializeOwned>(
    section: T,
    which: Section,
    variables: Variables<'_>,
) -> Result<T, ConfigError> {
    use serde_json::Value;
    let not_settings = |reason: String| ConfigError::Section {
        section: which.name(),
        reason,
    };
    let Value::Object(mut settings) =
        serde_json::to_value(section).map_err(|error| not_settings(error.to_string()))?
    else {
        return Err(not_settings("it is not a table".into()));
    };
    let keys: Vec<String> = settings.keys().cloned().collect();
    for key in keys {
        let name = which.variable(&key);
        let Some(text) = variables(name.as_str()) else {
            continue;
        };
        let value = match &settings[&key] {
            Value::Bool(_) => match yes_or_no(&text) {
                Some(yes) => Value::Bool(yes),
                None => {
                    return Err(ConfigError::VariableKind {
                        variable: name,
                        expected: "true or false",
                        text,
                    })
                }
            },
            Value::Number(_) => match text.parse::<u64>() {
                Ok(number) => Value::Number(number.into()),
                Err(_) => {
                    return Err(ConfigError::VariableKind {
                        variable: name,
                        expected: "a non-negative integer",
                        text,
                    })
                }
            },
            _ if text.is_empty() => Value::Null,
            _ => Value::String(text),
        };
        settings.insert(key, value);
        // Checked one at a time, so that the error names the variable.
        if let Err(error) = serde_json::from_value::<T>(Value::Object(settings.clone())) {
            return Err(ConfigError::VariableValue {
                variable: name,
                reason: error.to_string(),
            });
        }
    }
    serde_json::from_value(Value::Object(settings)).map_err(|error| not_settings(error.to_string()))
}

/// A yes-or-no variable's meaning: `1`, `true`, `yes`; `0`, `false`, `no` or empty; none
/// for any other text.
fn yes_or_no(text: &str) -> Option<bool> {
    match text {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" | "" => Some(false),
        _ => None,
    }
}
