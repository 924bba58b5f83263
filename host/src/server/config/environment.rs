//! How a section's settings are read from the environment: `Section` names each section
//! and its variables' prefix, and `with_environment` replaces every setting whose variable
//! is set. Apart from the sections because it is one rule for all of them, driven by their
//! serialized form, so that no section lists its variables.

use serde::de::DeserializeOwned;
use serde::Serialize;

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
}

impl Section {
    /// Every section, in the order the reference lists them.
    pub const ALL: [Section; 4] = [
        Section::Limits,
        Section::Network,
        Section::Connections,
        Section::Metrics,
    ];

    /// The section's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Limits => "limits",
            Section::Network => "network",
            Section::Connections => "connections",
            Section::Metrics => "metrics",
        }
    }

    /// The environment variable of the section's setting `key`.
    pub fn variable(self, key: &str) -> String {
        let prefix = match self {
            Section::Metrics => "WASMHOOK_METRICS_",
            _ => "WASMHOOK_",
        };
        format!("{prefix}{}", key.to_ascii_uppercase())
    }
}

/// A section with every setting whose variable is set replaced by the variable's value.
///
/// The settings are the section's own keys (its serialized form), so that a setting added
/// to a section has its variable, its line in `serve --help` and in
/// `docs/configuration.md` without being listed anywhere else. A value is read as the
/// setting's type: a number, a yes-or-no (`true`/`false`, `1`/`0`, `yes`/`no`), or text
/// (an empty text unsets an optional setting).
pub(super) fn with_environment<T: Serialize + DeserializeOwned>(
    section: T,
    which: Section,
) -> anyhow::Result<T> {
    use serde_json::Value;
    let Value::Object(mut settings) = serde_json::to_value(section)? else {
        anyhow::bail!("the [{}] section is not a table", which.name());
    };
    let keys: Vec<String> = settings.keys().cloned().collect();
    for key in keys {
        let name = which.variable(&key);
        let Ok(text) = std::env::var(&name) else {
            continue;
        };
        let value = match &settings[&key] {
            Value::Bool(_) => Value::Bool(match text.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => anyhow::bail!("{name} must be true or false, not `{text}`"),
            }),
            Value::Number(_) => Value::Number(
                text.parse::<u64>()
                    .map_err(|_| {
                        anyhow::anyhow!("{name} must be a non-negative integer, not `{text}`")
                    })?
                    .into(),
            ),
            _ if text.is_empty() => Value::Null,
            _ => Value::String(text),
        };
        settings.insert(key, value);
        // Checked one at a time, so that the error names the variable.
        serde_json::from_value::<T>(Value::Object(settings.clone()))
            .map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
    }
    Ok(serde_json::from_value(Value::Object(settings))?)
}
