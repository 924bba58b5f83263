//! An event's own keys (`annotation`, `document`, an invocation's fields), kept as the JSON
//! text each value came as.
//!
//! A payload is JSON text written once and parsed again by the guest; the host reads only a
//! few of the event's values (the annotation's id, the email's, the content a predecessor's
//! operations change). Parsing the whole body into a `serde_json::Value` tree and writing
//! it back out was a sixth of the server's CPU per invocation (BENCHMARKS.md, the profile
//! under `wrk`): here the body is parsed at its top level only, each value checked as JSON
//! and kept as its text (`serde_json::value::RawValue`), and the payload splices that text
//! in. What the host reads it parses from that one value.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// How deep a value may nest, as `serde_json` allows when it parses a `Value` (127 levels,
/// the event's object being the first): a deeper one is refused here as it was there, so
/// that no payload is made that the host could not parse back for its run log.
pub const MAX_VALUE_DEPTH: usize = 126;

/// The keys an event brings to a payload, in the order they came, each value the JSON text
/// it came as. A key given twice keeps its first place and its last value, as a parsed
/// `serde_json::Map` does.
#[derive(Clone, Debug, Default)]
pub struct EventFields(IndexMap<String, Box<RawValue>>);

/// Why a body is not an event's keys.
#[derive(Debug, thiserror::Error)]
pub enum FieldsError {
    /// Not JSON, or not an object: serde_json's own message.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A value nests deeper than [`MAX_VALUE_DEPTH`].
    #[error("the value of `{0}` nests deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep(String),
}

impl EventFields {
    /// A body's keys: a JSON object, or nothing at all (only whitespace), which has none.
    pub fn parse(body: &[u8]) -> Result<Self, FieldsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(EventFields::default());
        }
        let fields: EventFields = serde_json::from_slice(body)?;
        if let Some((key, _)) = fields
            .0
            .iter()
            .find(|(_, value)| !nests_within(value.get(), MAX_VALUE_DEPTH))
        {
            return Err(FieldsError::TooDeep(key.clone()));
        }
        Ok(fields)
    }

    /// The keys of an object already parsed (a stored event's, a test's payload).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        EventFields(
            map.iter()
                .map(|(key, value)| (key.clone(), raw(value)))
                .collect(),
        )
    }

    /// The keys as an object, each value parsed: for what reads or changes values (a
    /// predecessor's operations, the sample payload).
    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(key, value)| (key.clone(), parsed(value)))
            .collect()
    }

    /// The value of `key`, as the JSON text it came as.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.get(key).map(AsRef::as_ref)
    }

    /// The value of `key`, parsed.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.0.get(key).map(|value| parsed(value))
    }

    /// Whether the event has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key` to `value` (at its place when it has one, else last).
    pub fn insert(&mut self, key: String, value: &Value) {
        self.0.insert(key, raw(value));
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys and their values' text, in order: what a payload writes.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_ref()))
    }

    /// The keys as one JSON object's text (a stored event's body).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

impl From<&Map<String, Value>> for EventFields {
    fn from(map: &Map<String, Value>) -> Self {
        EventFields::from_map(map)
    }
}

/// A parsed value as JSON text. Writing a `Value` cannot fail (its keys are strings and its
/// numbers finite), so the `null` is never used.
fn raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A value's text parsed. It was checked as JSON when it was read, so it parses; were it
/// not to, `null` stands for it.
fn parsed(value: &RawValue) -> Value {
    serde_json::from_str(value.get()).unwrap_or(Value::Null)
}

/// Whether the JSON `text` (already checked) nests no deeper than `limit` arrays and
/// objects: a walk over its bytes that skips strings, as `serde_json`'s skipping of a raw
/// value keeps no count.
fn nests_within(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

impl Serialize for EventFields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EventFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;

        impl<'de> Visitor<'de> for Keys {
            type Value = EventFields;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventFields, A::Error> {
                let mut fields = IndexMap::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.insert(key, value);
                }
                Ok(EventFields(fields))
            }
        }

        deserializer.deserialize_map(Keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_text_and_keys_their_order() -> Result<(), FieldsError> {
        let body = br#"{"b": {"x": [1, 2.50, "\u00e9"]}, "a": 1, "b": [true]}"#;
        let fields = EventFields::parse(body)?;
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(fields.get("b").map(RawValue::get), Some("[true]"));
        assert_eq!(fields.get("a").map(RawValue::get), Some("1"));
        // The same keys, order and values as a parsed map.
        let parsed: Map<String, Value> = serde_json::from_slice(body)?;
        assert_eq!(fields.to_map(), parsed);
        assert_eq!(fields.to_json(), r#"{"b":[true],"a":1}"#);
        Ok(())
    }

    #[test]
    fn a_body_that_is_not_an_object_or_not_json_is_refused() {
        for body in [
            &b"[1]"[..],
            b"\"text\"",
            b"{\"a\": }",
            b"{\"a\": 1} x",
            b"null",
        ] {
            assert!(
                matches!(EventFields::parse(body), Err(FieldsError::Json(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for body in [&b""[..], b"  \n", b"{}"] {
            assert!(EventFields::parse(body).is_ok_and(|fields| fields.is_empty()));
        }
    }

    #[test]
    fn nesting_is_bounded_as_serde_json_bounds_it() {
        let nested = |levels: usize| {
            format!(
                r#"{{"deep": {}"\"[{{"{}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        // 126 levels under the object: 127 in all, serde_json's limit.
        let within = nested(MAX_VALUE_DEPTH);
        assert!(EventFields::parse(within.as_bytes()).is_ok());
        assert!(serde_json::from_str::<Value>(&within).is_ok());
        let beyond = nested(MAX_VALUE_DEPTH + 1);
        assert!(matches!(
            EventFields::parse(beyond.as_bytes()),
            Err(FieldsError::TooDeep(key)) if key == "deep"
        ));
        assert!(serde_json::from_str::<Value>(&beyond).is_err());
    }

    #[test]
    fn a_value_set_takes_the_place_of_the_one_it_replaces() {
        let mut fields = EventFields::from_map(
            serde_json::json!({"a": 1, "b": {"c": null}})
                .as_object()
                .unwrap_or(&Map::new()),
        );
        fields.insert("a".into(), &serde_json::json!([2]));
        fields.insert("z".into(), &Value::Bool(false));
        assert_eq!(fields.to_json(), r#"{"a":[2],"b":{"c":null},"z":false}"#);
        assert_eq!(fields.value("b"), Some(serde_json::json!({"c": null})));
        assert!(fields.contains_key("z") && !fields.contains_key("c"));
    }
}
