//! An event's own keys (`annotation`, `document`, an invocation's fields), kept as the JSON
//! text each value came as.
//!
//! A payload is JSON text written once and parsed again by the guest; the host reads only a
//! few of the event's values (the annotation's id, the email's, the content a predecessor's
//! operations change). Parsing the whole body into a `serde_json::Value` tree and writing
//! it back out was a sixth of the server's CPU per invocation (BENCHMARKS.md, the profile
//! under `wrk`): here the body is parsed at its top level only, each value walked once as
//! serde_json parses a `Value` (strings decoded, numbers read, nesting counted) but built
//! into nothing, and kept as its text (`serde_json::value::RawValue`); the payload splices
//! that text in. What the host reads it parses from that one value. So a body is refused
//! exactly when parsing it into a `Value` would fail, and every payload made parses back.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor,
};
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

impl EventFields {
    /// A body's keys: a JSON object, or nothing at all (only whitespace), which has none.
    /// Refused (serde_json's error) when it is not an object, or a value would not parse
    /// into a `Value` (a lone surrogate, a number out of range, nesting deeper than
    /// [`MAX_VALUE_DEPTH`]).
    pub fn parse(body: &[u8]) -> Result<Self, serde_json::Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(EventFields::default());
        }
        serde_json::from_slice(body)
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

/// One JSON value walked as serde_json parses a `Value`, within `depth` arrays and objects
/// of the event's value, kept as nothing: what makes a raw value one that parses back.
#[derive(Clone, Copy)]
struct Checked {
    depth: usize,
}

impl Checked {
    /// Whether `text` (one JSON value) parses into a `Value` nested within the bound.
    fn check(text: &str) -> Result<(), serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        Checked { depth: 0 }.deserialize(&mut deserializer)?;
        deserializer.end()
    }

    /// The values inside an array or object at this depth, if they may be that deep.
    fn inner<E: serde::de::Error>(self) -> Result<Checked, E> {
        let depth = self.depth + 1;
        if depth > MAX_VALUE_DEPTH {
            return Err(E::custom(format_args!(
                "a value nests deeper than {MAX_VALUE_DEPTH} levels"
            )));
        }
        Ok(Checked { depth })
    }
}

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while items.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let inner = self.inner()?;
        while entries.next_key_seed(inner)?.is_some() {
            entries.next_value_seed(inner)?;
        }
        Ok(())
    }
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
                    Checked::check(value.get()).map_err(|error| {
                        A::Error::custom(format_args!("the value of `{key}`: {error}"))
                    })?;
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
    fn values_keep_their_text_and_keys_their_order() -> Result<(), serde_json::Error> {
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
                EventFields::parse(body).is_err(),
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
        let refused = EventFields::parse(beyond.as_bytes()).map(|_| ());
        assert!(
            refused
                .as_ref()
                .is_err_and(|error| error.to_string().contains("`deep`")),
            "{refused:?}"
        );
        assert!(serde_json::from_str::<Value>(&beyond).is_err());
    }

    /// What skipping a raw value lets through and parsing a `Value` does not: refused.
    #[test]
    fn a_value_that_would_not_parse_into_a_value_is_refused() {
        for body in [
            r#"{"a": "\ud800"}"#,
            r#"{"a": {"b": [1e400]}}"#,
            r#"{"a": "\x"}"#,
            r#"{"a": {"\ud800": 1}}"#,
        ] {
            assert!(serde_json::from_str::<Value>(body).is_err(), "{body}");
            assert!(EventFields::parse(body.as_bytes()).is_err(), "{body}");
        }
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
