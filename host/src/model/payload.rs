//! Assembling a hook payload in Rossum's shape.
//!
//! The order of keys follows Rossum's: request_id, timestamp, hook, action, event,
//! rossum_authorization_token (when there is a token), base_url, settings, secrets, then the
//! event's own keys (annotation, document, ...) and any sideloads.

use serde_json::{Map, Value};

use super::event::EventAction;
use super::fields::EventFields;

/// Keys the host sets; the event's own keys may not use them.
pub const RESERVED_KEYS: &[&str] = &[
    "request_id",
    "timestamp",
    "hook",
    "action",
    "event",
    "rossum_authorization_token",
    "base_url",
    "settings",
    "secrets",
];

/// The first of `keys` that the host sets ([`RESERVED_KEYS`]), if any: the one rule by
/// which an event's keys, an invocation's body and an assembled payload refuse them.
pub fn reserved_key<'k>(keys: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    keys.into_iter().find(|key| RESERVED_KEYS.contains(key))
}

/// Everything a payload is made of.
#[derive(Clone, Debug)]
pub struct PayloadParts<'a> {
    /// Unique id of the call.
    pub request_id: &'a str,
    /// When the event happened (RFC 3339, UTC).
    pub timestamp: &'a str,
    /// The hook's API URL, the payload's `hook`, which the extension may read (or PATCH
    /// its settings at) with its token.
    pub hook_url: &'a str,
    /// The event and action the hook is called for: the payload's `event` and `action`.
    pub event: &'a EventAction,
    /// Token minted for the hook's owner.
    pub token: Option<&'a str>,
    /// The installation's public base URL (no `/api/v1`), the payload's `base_url`: where
    /// the extension calls the API back with its token.
    pub base_url: &'a str,
    /// The hook's settings as saved: the payload's `settings`.
    pub settings: &'a Map<String, Value>,
    /// The hook's secrets, opened: the payload's `secrets` in clear, which every run log
    /// redacts.
    pub secrets: &'a [(String, String)],
    /// The event's own keys, their values as the JSON text they came as.
    pub body: &'a EventFields,
}

/// Why a payload could not be assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The event's keys tried to set a key the host sets.
    #[error("the payload key `{0}` is set by the host and cannot come from the event")]
    ReservedKey(String),
    /// The payload could not be written as JSON text (a map of JSON values always can).
    #[error("the payload cannot be written as JSON: {0}")]
    Json(String),
}

/// The payload as the JSON text a hook receives, written from its parts without
/// assembling it first: the object [`assemble_payload`] gives, the event's values written
/// as the text they came as. So it parses to that object, and differs from writing it only
/// within those values: their spaces, escapes and number spellings as sent, and a key
/// given twice inside one of them given twice (where the object keeps the last), as the
/// caller sent them to the hook. It saves a copy of the event's keys per call.
pub fn payload_text(parts: &PayloadParts<'_>) -> Result<String, PayloadError> {
    if let Some(key) = reserved_key(parts.body.keys()) {
        return Err(PayloadError::ReservedKey(key.to_owned()));
    }
    serde_json::to_string(parts).map_err(|error| PayloadError::Json(error.to_string()))
}

/// The payload's keys in Rossum's order: the one place they are written, for
/// [`payload_text`] and [`assemble_payload`], each of which refuses the event's reserved
/// keys first, so no key is written twice.
impl serde::Serialize for PayloadParts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // As a map, as `assemble_payload` makes it, so that a name given twice is written
        // once (the last value, at the first place); a hook has a few secrets at most.
        let secrets: Map<String, Value> = self
            .secrets
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("request_id", self.request_id)?;
        map.serialize_entry("timestamp", self.timestamp)?;
        map.serialize_entry("hook", self.hook_url)?;
        map.serialize_entry("action", self.event.action())?;
        map.serialize_entry("event", self.event.event())?;
        if let Some(token) = self.token {
            map.serialize_entry("rossum_authorization_token", token)?;
        }
        map.serialize_entry("base_url", self.base_url)?;
        map.serialize_entry("settings", self.settings)?;
        map.serialize_entry("secrets", &secrets)?;
        // Each value's text as it came: written as is, not parsed and written again.
        for (key, value) in self.body.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// The payload object a hook receives.
pub fn assemble_payload(parts: &PayloadParts<'_>) -> Result<Map<String, Value>, PayloadError> {
    if let Some(key) = reserved_key(parts.body.keys()) {
        return Err(PayloadError::ReservedKey(key.to_owned()));
    }
    // The keys and their order are written once, by the `Serialize` of `PayloadParts`.
    match serde_json::to_value(parts) {
        Ok(Value::Object(payload)) => Ok(payload),
        Ok(other) => Err(PayloadError::Json(format!("not an object: {other}"))),
        Err(error) => Err(PayloadError::Json(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(
        event: &'a EventAction,
        body: &'a EventFields,
        settings: &'a Map<String, Value>,
        secrets: &'a [(String, String)],
    ) -> PayloadParts<'a> {
        PayloadParts {
            request_id: "r-1",
            timestamp: "2026-01-01T00:00:00.000000Z",
            hook_url: "http://localhost/api/v1/hooks/1",
            event,
            token: None,
            base_url: "http://localhost",
            settings,
            secrets,
            body,
        }
    }

    #[test]
    fn keys_come_in_rossums_order_then_the_event_keys() -> Result<(), Box<dyn std::error::Error>> {
        let event = EventAction::new("annotation_content", "initialize")?;
        let mut body = EventFields::default();
        body.insert("annotation".into(), &serde_json::json!({"id": 1}));
        let secrets = vec![("api_key".to_owned(), "v".to_owned())];
        let settings = Map::new();
        let payload = assemble_payload(&parts(&event, &body, &settings, &secrets))?;
        let keys: Vec<&str> = payload.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "request_id",
                "timestamp",
                "hook",
                "action",
                "event",
                "base_url",
                "settings",
                "secrets",
                "annotation"
            ]
        );
        assert_eq!(payload["secrets"], serde_json::json!({"api_key": "v"}));
        Ok(())
    }

    #[test]
    fn event_keys_cannot_overwrite_host_keys() -> Result<(), Box<dyn std::error::Error>> {
        let event = EventAction::new("upload", "created")?;
        let mut body = EventFields::default();
        body.insert("secrets".into(), &serde_json::json!({}));
        let settings = Map::new();
        let result = assemble_payload(&parts(&event, &body, &settings, &[]));
        assert_eq!(result, Err(PayloadError::ReservedKey("secrets".into())));
        Ok(())
    }

    #[test]
    fn the_text_is_the_assembled_payload_written() -> Result<(), Box<dyn std::error::Error>> {
        let event = EventAction::new("annotation_content", "initialize")?;
        // As an invocation's body comes: its values' text kept, spaces and escapes included.
        let body = EventFields::parse(
            br#"{"annotation": {"id": 1, "content": [{"a": "\"x\u00e9\""}]}, "document": {"id": 2}}"#,
        )?;
        let secrets = vec![
            ("api_key".to_owned(), "v".to_owned()),
            ("other".to_owned(), "w\n".to_owned()),
            ("api_key".to_owned(), "given twice".to_owned()),
        ];
        let settings = serde_json::json!({"b": 1, "a": [true, null]});
        let settings = settings.as_object().cloned().unwrap_or_default();
        let mut with_token = parts(&event, &body, &settings, &secrets);
        with_token.token = Some("token-value");
        for parts in [parts(&event, &body, &settings, &secrets), with_token] {
            // The same payload as assembling it: the text parses to the assembled object.
            let text: Value = serde_json::from_str(&payload_text(&parts)?)?;
            assert_eq!(text, Value::Object(assemble_payload(&parts)?));
            assert!(
                payload_text(&parts)?.contains(r#""content": [{"a": "\"x\u00e9\""}]"#),
                "the event's values are written as they came"
            );
        }
        let mut body = body;
        body.insert("hook".into(), &serde_json::json!("mine"));
        assert_eq!(
            payload_text(&parts(&event, &body, &settings, &secrets)),
            Err(PayloadError::ReservedKey("hook".into()))
        );
        Ok(())
    }

    #[test]
    fn a_host_key_is_named() {
        let mut fields = Map::new();
        fields.insert("annotation".into(), serde_json::json!({}));
        assert_eq!(reserved_key(fields.keys().map(String::as_str)), None);
        fields.insert("timestamp".into(), serde_json::json!("now"));
        assert_eq!(
            reserved_key(fields.keys().map(String::as_str)),
            Some("timestamp")
        );
    }
}
