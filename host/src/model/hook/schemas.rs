//! The JSON Schemas a hook carries: `settings_schema` checks `settings`, `secrets_schema`
//! checks secret values (and must, as Rossum requires, say what extra keys may hold).

use serde_json::{Map, Value};

use super::HookError;

/// Rossum's default secrets schema: any keys, string values.
pub fn default_secrets_schema() -> Value {
    serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}})
}

/// Checks `settings` against its JSON Schema.
pub fn validate_settings(schema: &Value, settings: &Map<String, Value>) -> Result<(), HookError> {
    let validator = jsonschema::validator_for(schema).map_err(|error| {
        HookError::new(
            "settings_schema",
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    let instance = Value::Object(settings.clone());
    if let Some(error) = validator.iter_errors(&instance).next() {
        let at = error.instance_path().to_string();
        let place = if at.is_empty() {
            String::new()
        } else {
            format!(" (at {at})")
        };
        return Err(HookError::new(
            "settings",
            format!("does not match settings_schema: {error}{place}"),
        ));
    }
    Ok(())
}

/// Checks a secrets schema: a valid JSON Schema that sets `additionalProperties`, to
/// `false` or to a schema, as Rossum requires.
pub fn check_secrets_schema(schema: &Value) -> Result<(), HookError> {
    let Some(object) = schema.as_object() else {
        return Err(HookError::new("secrets_schema", "must be an object"));
    };
    match object.get("additionalProperties") {
        Some(Value::Bool(false) | Value::Object(_)) => {}
        _ => {
            return Err(HookError::new(
                "secrets_schema",
                "must set `additionalProperties`, to false or to a schema such as {\"type\": \"string\"}",
            ))
        }
    }
    jsonschema::validator_for(schema).map_err(|error| {
        HookError::new(
            "secrets_schema",
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    Ok(())
}

/// Checks secret values against the secrets schema. The message names the place and the
/// rule, never the value.
pub fn validate_secrets(schema: &Value, secrets: &[(String, String)]) -> Result<(), HookError> {
    let validator = jsonschema::validator_for(schema).map_err(|error| {
        HookError::new(
            "secrets_schema",
            format!("not a valid JSON Schema: {error}"),
        )
    })?;
    let instance = Value::Object(
        secrets
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect(),
    );
    if let Some(error) = validator.iter_errors(&instance).next() {
        let at = error.instance_path().to_string();
        let place = if at.is_empty() {
            "the secrets".to_owned()
        } else {
            at
        };
        return Err(HookError::new(
            "secrets",
            format!("{place} does not match secrets_schema ({})", error.masked()),
        ));
    }
    Ok(())
}
