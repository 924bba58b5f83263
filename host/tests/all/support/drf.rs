//! Django REST Framework's error shapes as the tests read them: one error of a field
//! (`{"field": ["message"]}`), at a path inside a JSON field, a `{"detail": "..."}`, and
//! `Shape`, what an error body must be.

use serde_json::{json, Value};

/// DRF's body for one error of `field`: `{"field": ["message"]}`.
pub fn field_error(field: &str, message: &str) -> Value {
    let mut body = serde_json::Map::new();
    body.insert(field.to_owned(), json!([message]));
    Value::Object(body)
}

/// The message of a body that is exactly one error of `field` (`{"field": ["message"]}`);
/// none for any other shape.
pub fn field_message<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    let object = body.as_object().filter(|object| object.len() == 1)?;
    match object.get(field)?.as_array()?.as_slice() {
        [message] => message.as_str(),
        _ => None,
    }
}

/// The message of a body that is exactly one error at `path` as a test writes it
/// (`config.url`): the first segment is DRF's field, and the rest leads the message under
/// it (`{"config": ["url: ..."]}`); none for any other shape.
pub fn message_at<'a>(body: &'a Value, path: &str) -> Option<&'a str> {
    match path.split_once('.') {
        None => field_message(body, path),
        Some((field, keys)) => field_message(body, field)?
            .strip_prefix(keys)?
            .strip_prefix(": "),
    }
}

/// The detail of a body that is exactly `{"detail": "..."}`; none for any other shape.
pub fn detail_of(body: &Value) -> Option<&str> {
    let object = body.as_object().filter(|object| object.len() == 1)?;
    object.get("detail")?.as_str()
}

/// What an error body must be: one of DRF's shapes, its one message containing a fragment.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// `{"detail": "..."}`.
    Detail(&'static str),
    /// `{"field": ["..."]}`.
    Field(&'static str, &'static str),
    /// `{"non_field_errors": ["..."]}`.
    NonField(&'static str),
}

impl Shape {
    /// Whether `body` has exactly this shape and its message contains the fragment.
    pub fn fits(self, body: &Value) -> bool {
        let (message, fragment) = match self {
            Shape::Detail(fragment) => (detail_of(body), fragment),
            Shape::Field(field, fragment) => (field_message(body, field), fragment),
            Shape::NonField(fragment) => (field_message(body, "non_field_errors"), fragment),
        };
        message.is_some_and(|message| message.contains(fragment))
    }
}
