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
    let validator = validator("settings_schema", schema)?;
    let instance = Value::Object(settings.clone());
    // The first error only: `iter_errors` would collect every one before the first.
    if let Err(error) = validator.validate(&instance) {
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
    validator("secrets_schema", schema)?;
    Ok(())
}

/// Checks secret values against the secrets schema. The message names the place and the
/// rule, never the value.
pub fn validate_secrets(schema: &Value, secrets: &[(String, String)]) -> Result<(), HookError> {
    let validator = validator("secrets_schema", schema)?;
    let instance = Value::Object(
        secrets
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect(),
    );
    if let Err(error) = validator.validate(&instance) {
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

/// Bytes of a hook's schema as JSON text: a settings form's schema is a few kilobytes.
pub const MAX_SCHEMA_BYTES: usize = 32 * 1024;

/// Keywords a hook's schema may not use, anywhere in it. A reference (`$ref` and its
/// dynamic kinds) applies a schema where it is named, and one named twice by each of forty
/// definitions applies 2^40 nodes to every value; one named again inside itself, across
/// the value's parts, multiplies as deep as the value is. The `unevaluated*` keywords
/// compile and run every branch around them again, level by level. Without them, a
/// validation applies each node of the schema at most once to each part of the value, so
/// its time is bounded by the two sizes together.
const REFUSED_KEYWORDS: [&str; 5] = [
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "unevaluatedProperties",
    "unevaluatedItems",
];

/// A validator for a hook's schema, once it is of a shape whose validation is bounded
/// ([`check_shape`]); its patterns compiled by the `regex` engine, whose matching time is
/// linear, not by one that backtracks.
fn validator(field: &'static str, schema: &Value) -> Result<jsonschema::Validator, HookError> {
    check_shape(field, schema)?;
    jsonschema::options()
        .with_pattern_options(jsonschema::PatternOptions::regex())
        .build(schema)
        .map_err(|error| HookError::new(field, format!("not a valid JSON Schema: {error}")))
}

/// Refuses a schema whose validation could cost far more than its size and the value's:
/// over [`MAX_SCHEMA_BYTES`], or using one of [`REFUSED_KEYWORDS`] (even as a property's
/// name: the check reads every key).
fn check_shape(field: &'static str, schema: &Value) -> Result<(), HookError> {
    if super::json_bytes(schema) > MAX_SCHEMA_BYTES {
        return Err(HookError::new(
            field,
            format!("at most {MAX_SCHEMA_BYTES} bytes of JSON"),
        ));
    }
    // With a stack of its own, as deep as the schema (serde_json bounds it at 128).
    let mut stack = vec![schema];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                if let Some(keyword) = map
                    .keys()
                    .find(|key| REFUSED_KEYWORDS.contains(&key.as_str()))
                {
                    return Err(HookError::new(
                        field,
                        format!(
                            "`{keyword}` is not supported in a hook's schema: its validation \
                             could take without bound; write the schema out in full"
                        ),
                    ));
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(schema: &Value) -> String {
        match check_shape("settings_schema", schema) {
            Ok(()) => panic!("{schema} was accepted"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn references_and_unevaluated_keywords_are_refused_wherever_they_are() {
        // Each definition applies the one before twice: 2^40 nodes to every value.
        let mut defs = Map::new();
        defs.insert("a0".into(), json!({"type": "string"}));
        for n in 1..=40 {
            let before = format!("#/$defs/a{}", n - 1);
            defs.insert(
                format!("a{n}"),
                json!({"allOf": [{"$ref": before}, {"$ref": before}]}),
            );
        }
        let fan_out = json!({"$defs": defs, "$ref": "#/$defs/a40"});
        assert!(refused(&fan_out).contains("`$ref` is not supported"));
        assert!(
            refused(&json!({"properties": {"a": {"items": [{"$ref": "#"}]}}})).contains("`$ref`")
        );
        assert!(
            refused(&json!({"allOf": [{"unevaluatedProperties": false}]}))
                .contains("unevaluatedProperties")
        );
        assert!(refused(&json!({"$dynamicRef": "#x"})).contains("$dynamicRef"));
        assert!(refused(&json!({"description": "x".repeat(MAX_SCHEMA_BYTES)})).contains("bytes"));
    }

    #[test]
    fn a_schema_written_out_validates_and_a_backtracking_pattern_is_not_one() {
        let schema = json!({
            "$id": "https://example.com/settings", "type": "object",
            "properties": {
                "region": {"type": "string", "enum": ["eu", "us"]},
                "rows": {"type": "array", "items": {"type": "object",
                    "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}}}}
            },
            "required": ["region"]
        });
        let good = json!({"region": "eu", "rows": [{"code": "ABC"}]});
        assert!(validate_settings(&schema, good.as_object().expect("an object")).is_ok());
        let bad = json!({"region": "eu", "rows": [{"code": "abc"}]});
        assert!(validate_settings(&schema, bad.as_object().expect("an object")).is_err());
        // A look-around needs a backtracking engine: not one a hook's schema gets.
        let lookaround = json!({"type": "string", "pattern": "^(?=a)a$"});
        assert!(validator("settings_schema", &lookaround).is_err());
    }
}
