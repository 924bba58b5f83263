//! A section's settings for the reference (`serve --help`, `docs/configuration.md`): key,
//! variable, default and doc comment, read from the section's JSON schema (schemars) and
//! its serialized default. Apart from the sections because it only describes them; the
//! server never reads it.

use super::{Connections, Database, Limits, Metrics, Network, Section};

/// One setting of a file section, for the reference.
#[derive(Debug, Clone)]
pub struct SectionSetting {
    /// Its key in the section.
    pub key: String,
    /// Its environment variable.
    pub variable: String,
    /// Its default, as the file would write it (`unset` for none).
    pub default: String,
    /// What it is for: its doc comment.
    pub about: String,
}

/// The settings of a section, in declaration order, with their defaults and doc comments.
pub fn section_settings(section: Section) -> Vec<SectionSetting> {
    let (defaults, schema) = match section {
        Section::Limits => (
            serde_json::to_value(Limits::default()),
            schemars::schema_for!(Limits),
        ),
        Section::Network => (
            serde_json::to_value(Network::default()),
            schemars::schema_for!(Network),
        ),
        Section::Connections => (
            serde_json::to_value(Connections::default()),
            schemars::schema_for!(Connections),
        ),
        Section::Metrics => (
            serde_json::to_value(Metrics::default()),
            schemars::schema_for!(Metrics),
        ),
        Section::Database => (
            serde_json::to_value(Database::default()),
            schemars::schema_for!(Database),
        ),
    };
    let defaults = defaults.unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(key, property)| {
            let about = property
                .get("description")
                .and_then(|text| text.as_str())
                .unwrap_or_default();
            let default = match defaults.get(key) {
                None | Some(serde_json::Value::Null) => "unset".to_owned(),
                Some(serde_json::Value::String(text)) => format!("\"{text}\""),
                Some(other) => other.to_string(),
            };
            SectionSetting {
                key: key.clone(),
                variable: section.variable(key),
                default,
                about: about.split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}
