//! `parse_draft`: a hook as a client wrote it, checked field by field (the field named in
//! every error) and typed, before the store checks what needs the database.

use serde_json::{Map, Value};

use super::super::event::{EventAction, EVENTS};
use super::super::field::FieldPath;
use super::super::id_from_reference;
use super::config::parse_config;
use super::kind::HookType;
use super::schemas::{
    check_secrets_schema, default_secrets_schema, validate_secrets, validate_settings,
};
use super::{
    json_bytes, Change, HookBounds, HookDocument, HookDraft, HookError, HookSpec,
    MAX_METADATA_BYTES, MAX_NAME_CHARS, MAX_TOKEN_LIFETIME_S, SIDELOADS,
};

/// Fields a client may send back from a GET that are not its to set; they are ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "url",
    "organization",
    "status",
    "created_at",
    "created_by",
    "modified_at",
    "modified_by",
    "hook_template",
    "secrets_keys",
];

/// Validates a hook as written (a whole object: for PATCH, the stored hook with the sent
/// fields laid over it).
pub fn parse_draft(
    input: &Map<String, Value>,
    bounds: &HookBounds,
) -> Result<HookDraft, HookError> {
    let known = [
        "name",
        "type",
        "active",
        "queues",
        "run_after",
        "events",
        "sideload",
        "metadata",
        "config",
        "settings",
        "settings_schema",
        "secrets",
        "secrets_schema",
        "test",
        "description",
        "guide",
        "read_more_url",
        "extension_image_url",
        "extension_source",
        "token_owner",
        "token_lifetime_s",
    ];
    if let Some(key) = input
        .keys()
        .find(|key| !known.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()))
    {
        return Err(HookError::new(key.as_str(), "not a field of a hook"));
    }
    let field = |name: &str| input.get(name).filter(|value| !value.is_null());

    let name = match field("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        Some(Value::String(_)) | None => return Err(HookError::new("name", "required")),
        Some(_) => return Err(HookError::new("name", "must be a string")),
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(HookError::new(
            "name",
            format!("at most {MAX_NAME_CHARS} characters"),
        ));
    }
    let hook_type = match field("type") {
        None => HookType::Function,
        Some(Value::String(text)) => HookType::parse(text).ok_or_else(|| not_a_type(text))?,
        Some(other) => return Err(not_a_type(&plain(other))),
    };
    let active = boolean(input, "active", true)?;
    let queues = references(input, "queues", "queues")?;
    let run_after = references(input, "run_after", "hooks")?;
    let events = events(input)?;
    let sideload = string_list(input, "sideload")?;
    if let Some(unknown) = sideload
        .iter()
        .find(|name| !SIDELOADS.contains(&name.as_str()))
    {
        return Err(HookError::new(
            "sideload",
            format!(
                "`{unknown}` cannot be sideloaded; one of: {}",
                SIDELOADS.join(", ")
            ),
        ));
    }
    let metadata = object(input, "metadata")?;
    at_most_bytes("metadata", &metadata, MAX_METADATA_BYTES)?;
    let (kind, config_secret) = parse_config(input, hook_type, bounds)?;
    let settings = object(input, "settings")?;
    at_most_bytes("settings", &settings, MAX_SETTINGS_BYTES)?;
    let settings_schema = match field("settings_schema") {
        None => None,
        Some(schema @ Value::Object(_)) => Some(schema.clone()),
        Some(_) => {
            return Err(HookError::new(
                "settings_schema",
                "must be an object or null",
            ))
        }
    };
    if let Some(schema) = &settings_schema {
        validate_settings(schema, &settings)?;
    }
    let secrets_schema = match field("secrets_schema") {
        None => default_secrets_schema(),
        Some(schema) => schema.clone(),
    };
    check_secrets_schema(&secrets_schema)?;
    let secrets = match input.get("secrets") {
        None => Change::Keep,
        Some(Value::Null) => Change::Remove,
        Some(Value::Object(values)) => {
            let mut pairs = Vec::with_capacity(values.len());
            for (key, value) in values {
                match value {
                    Value::String(text) => pairs.push((key.clone(), text.clone())),
                    _ => {
                        return Err(HookError::at(
                            FieldPath::new("secrets").key(key.as_str()),
                            "must be a string",
                        ))
                    }
                }
            }
            let bytes: usize = pairs
                .iter()
                .map(|(key, value)| key.len() + value.len())
                .sum();
            if bytes > MAX_SECRETS_BYTES {
                return Err(HookError::new(
                    "secrets",
                    format!("at most {MAX_SECRETS_BYTES} bytes of keys and values"),
                ));
            }
            validate_secrets(&secrets_schema, &pairs)?;
            Change::Set(pairs)
        }
        Some(_) => return Err(HookError::new("secrets", "must be an object of strings")),
    };
    let test = object(input, "test")?;
    at_most_bytes("test", &test, MAX_SETTINGS_BYTES)?;
    let description = optional_string(input, "description")?;
    let guide = optional_string(input, "guide")?;
    let read_more_url = optional_string(input, "read_more_url")?;
    let extension_image_url = optional_string(input, "extension_image_url")?;
    for (name, text, limit) in [
        ("description", &description, MAX_TEXT_BYTES),
        ("guide", &guide, MAX_TEXT_BYTES),
        ("read_more_url", &read_more_url, MAX_TEXT_BYTES),
        // A `data:` URL of the image itself is tens of kilobytes.
        (
            "extension_image_url",
            &extension_image_url,
            MAX_SETTINGS_BYTES,
        ),
    ] {
        if text.as_ref().is_some_and(|text| text.len() > limit) {
            return Err(HookError::new(name, format!("at most {limit} bytes")));
        }
    }
    let extension_source = match field("extension_source") {
        None => "custom".to_owned(),
        Some(Value::String(source)) if source == "custom" || source == "rossum_store" => {
            source.clone()
        }
        Some(other) => {
            return Err(HookError::new(
                "extension_source",
                format!("`{}` is not one of custom, rossum_store", plain(other)),
            ))
        }
    };
    let token_owner =
        match field("token_owner") {
            None => None,
            Some(reference) => Some(id_from_reference(reference, "users").ok_or_else(|| {
                HookError::new("token_owner", "expected a user URL, an id or null")
            })?),
        };
    let token_lifetime_s = match field("token_lifetime_s") {
        None => None,
        Some(value) => match value.as_u64() {
            Some(seconds) if seconds <= MAX_TOKEN_LIFETIME_S => Some(seconds),
            _ => {
                return Err(HookError::new(
                    "token_lifetime_s",
                    format!("must be an integer from 0 to {MAX_TOKEN_LIFETIME_S}, or null"),
                ))
            }
        },
    };
    Ok(HookDraft {
        spec: HookSpec {
            name,
            kind,
            active,
            queues,
            run_after,
            token_owner,
            document: HookDocument {
                events,
                sideload,
                metadata,
                settings,
                settings_schema,
                secrets_schema,
                test,
                description,
                guide,
                read_more_url,
                extension_image_url,
                extension_source,
                token_lifetime_s,
            },
        },
        secrets,
        config_secret,
    })
}

fn not_a_type(text: &str) -> HookError {
    HookError::new(
        "type",
        format!("`{text}` is not one of function, webhook, job"),
    )
}

/// A JSON value shown in a message, strings without quotes.
pub(super) fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn boolean(input: &Map<String, Value>, key: &str, default: bool) -> Result<bool, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(HookError::new(key, "must be true or false")),
    }
}

fn object(input: &Map<String, Value>, key: &str) -> Result<Map<String, Value>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(HookError::new(key, "must be an object")),
    }
}

fn optional_string(input: &Map<String, Value>, key: &str) -> Result<Option<String>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(HookError::new(key, "must be a string or null")),
    }
}

fn string_list(input: &Map<String, Value>, key: &str) -> Result<Vec<String>, HookError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                _ => Err(HookError::new(key, "must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(HookError::new(key, "must be a list of strings")),
    }
}

fn references(
    input: &Map<String, Value>,
    key: &str,
    collection: &str,
) -> Result<Vec<u64>, HookError> {
    let items = match input.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(HookError::new(
                key,
                format!("must be a list of {collection} URLs"),
            ))
        }
    };
    distinct_references(
        items,
        || {
            HookError::new(
                key,
                format!("may name at most {MAX_REFERENCES} {collection}"),
            )
        },
        |item| {
            id_from_reference(item, collection).ok_or_else(|| {
                HookError::new(
                    key,
                    format!("`{}` is not a URL of {collection}", plain(item)),
                )
            })
        },
    )
}

/// The most objects a list of references (a hook's `queues` and `run_after`, a queue's
/// `hooks`) may name, repeats included: each is a row to check and write in the save's
/// transaction, which holds the database (SQLite's one connection) for every organization
/// meanwhile.
pub const MAX_REFERENCES: usize = 1000;

/// The ids a list of references names, each once, in the order first named: refused with
/// `too_many` past [`MAX_REFERENCES`] items before any is read, and with `id_of`'s error at
/// the first that names nothing. The one reading of every such list, whatever its errors
/// are worded as.
pub fn distinct_references<T, E>(
    items: &[T],
    too_many: impl FnOnce() -> E,
    mut id_of: impl FnMut(&T) -> Result<u64, E>,
) -> Result<Vec<u64>, E> {
    if items.len() > MAX_REFERENCES {
        return Err(too_many());
    }
    let mut ids = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    for item in items {
        let id = id_of(item)?;
        if seen.insert(id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

fn events(input: &Map<String, Value>) -> Result<Vec<String>, HookError> {
    let names = string_list(input, "events")?;
    let mut events: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let known = match name.split_once('.') {
            Some((event, action)) => EventAction::new(event, action).map(|_| ()),
            None if EVENTS.iter().any(|(event, _)| *event == name) => Ok(()),
            None => EventAction::new(&name, "").map(|_| ()),
        };
        if let Err(error) = known {
            return Err(HookError::new("events", error.to_string()));
        }
        if !events.contains(&name) {
            events.push(name);
        }
    }
    Ok(events)
}

/// Whether a sent `config.module` (an id or a URL) names `module`.
pub fn module_reference_is(reference: &Value, module: Option<u64>) -> bool {
    module.is_some() && id_from_reference(reference, "modules") == module
}

/// Bytes of JSON a hook's `settings` (and its `test` input) may take. The settings go into
/// every payload and every run log, and 500 hooks of an organization are cached and read
/// together: a configuration, not a data store.
pub const MAX_SETTINGS_BYTES: usize = 256 * 1024;

/// Bytes of a hook's texts (`description`, `guide`, `read_more_url`).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Bytes of a hook's secrets, keys and values together: sealed and opened on every run.
pub const MAX_SECRETS_BYTES: usize = 64 * 1024;

/// Refuses `value` (the field `name`) past `limit` bytes of JSON.
fn at_most_bytes(
    name: &'static str,
    value: &Map<String, Value>,
    limit: usize,
) -> Result<(), HookError> {
    if json_bytes(value) > limit {
        return Err(HookError::new(
            name,
            format!("at most {limit} bytes of JSON"),
        ));
    }
    Ok(())
}
