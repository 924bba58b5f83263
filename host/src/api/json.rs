//! Request bodies read as the handlers take them, with Django REST Framework's errors: a
//! body that is not JSON by its content type is 415, unreadable JSON is 400 `{"detail":
//! "JSON parse error - ..."}`, JSON that is not an object is DRF's `Invalid data. Expected a
//! dictionary, but got list.`, and an object that does not fit the handler's type is 400
//! naming the field (`{"username": ["This field is required."]}`).
//!
//! The field comes as data: the body is handed to the type's `Deserialize` through
//! `Fielded`, whose errors ([`BodyError`]) record the key of every object they come out
//! of, and serde names a missing or unknown field itself. No message is read to find it.

use std::fmt;

use axum::extract::{FromRequest, Request};
use serde::de::Error as _;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use serde::Deserializer;
use serde_json::Value;

use super::error::ApiError;
use crate::model::FieldPath;

/// Like `axum::Json`, with the API's errors: 415 for a body that is not JSON by its
/// content type, 400 `JSON parse error - ...` for unreadable JSON, 400 naming the field for
/// an object that does not fit `T`, 413 over the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = content_type(request.headers());
        if !is_json(&content_type) {
            return Err(ApiError::UnsupportedMediaType(content_type));
        }
        let RawBody(bytes) = RawBody::from_request(request, state).await?;
        from_value(parse_json(&bytes)?).map(Json)
    }
}

/// The raw request body (for a signed call, whose signature covers the exact bytes), with
/// the API's error shape when it is too large or unreadable.
#[derive(Debug, Clone, Default)]
pub struct RawBody(pub axum::body::Bytes);

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(super::MAX_BODY_BYTES))
            }
            Err(rejection) => Err(ApiError::Parse(format!(
                "The request body could not be read - {}",
                rejection.body_text()
            ))),
        }
    }
}

/// The `Content-Type` of a request as sent (empty when none), as DRF's 415 quotes it.
pub fn content_type(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Whether a content type is JSON: `application/json` or `application/<name>+json`,
/// whatever its parameters (`; charset=utf-8`) and case.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON text, or DRF's 400 `{"detail": "JSON parse error - ..."}` saying where it breaks.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::Parse(format!("JSON parse error - {error}")))
}

/// A JSON value read as the body type `T`. It must be an object ([`not_an_object`]
/// otherwise); a value that does not fit is a 400 naming its field: one missing (`This
/// field is required.`), one `T` does not have (where `T` refuses unknown fields), or one
/// of the wrong kind.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(not_an_object(&value));
    }
    T::deserialize(Fielded(value)).map_err(ApiError::from)
}

/// DRF's answer to a body that is JSON but not an object: `{"non_field_errors": ["Invalid
/// data. Expected a dictionary, but got list."]}`, the kind named as Python names it.
pub fn not_an_object(value: &Value) -> ApiError {
    let kind = match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    ApiError::non_field(format!(
        "Invalid data. Expected a dictionary, but got {kind}."
    ))
}

/// Why a JSON body does not fit its type: what is wrong, and the keys down to the value it
/// is about (outermost first; none when it is about the body as a whole).
#[derive(Debug)]
pub struct BodyError {
    path: Vec<String>,
    message: String,
}

impl BodyError {
    /// The same error, one object further out: `key` is where the value sat.
    fn at_key(mut self, key: String) -> Self {
        self.path.insert(0, key);
        self
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BodyError {}

impl de::Error for BodyError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        BodyError {
            path: Vec::new(),
            message: message.to_string(),
        }
    }

    /// Names the kind of value found, never the value (it may be a password).
    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        BodyError::custom(format_args!(
            "must be {expected}, not {}",
            kind_of(&unexpected)
        ))
    }

    /// Says what is expected, without the value (it may be a password).
    fn invalid_value(_unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        BodyError::custom(format_args!("must be {expected}"))
    }

    /// DRF's words for a required field not sent.
    fn missing_field(field: &'static str) -> Self {
        BodyError {
            path: vec![field.to_owned()],
            message: "This field is required.".to_owned(),
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        BodyError {
            path: vec![field.to_owned()],
            message: format!("not a field here; the fields are: {}", expected.join(", ")),
        }
    }
}

impl From<BodyError> for ApiError {
    /// The first key of the path is DRF's field; the keys under it stay data too.
    fn from(error: BodyError) -> Self {
        let mut keys = error.path.into_iter();
        match keys.next() {
            None => ApiError::non_field(error.message),
            Some(field) => ApiError::invalid_at(
                keys.fold(FieldPath::new(field), |path, key| path.key(key)),
                error.message,
            ),
        }
    }
}

/// The kind of a JSON value, for a message that must not quote the value.
fn kind_of(unexpected: &Unexpected<'_>) -> &'static str {
    match unexpected {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "a list",
        Unexpected::Map => "an object",
        _ => "another kind of value",
    }
}

/// A JSON value handed to a body type's `Deserialize`: what `serde_json::Value` does as a
/// deserializer, but with [`BodyError`] as its error, so that an error knows the keys of
/// the objects it comes out of.
struct Fielded(Value);

impl<'de> Deserializer<'de> for Fielded {
    type Error = BodyError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BodyError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(value) => visitor.visit_bool(value),
            Value::Number(number) => match (number.as_u64(), number.as_i64(), number.as_f64()) {
                (Some(value), _, _) => visitor.visit_u64(value),
                (None, Some(value), _) => visitor.visit_i64(value),
                (None, None, Some(value)) => visitor.visit_f64(value),
                (None, None, None) => Err(BodyError::custom("a number beyond every range")),
            },
            Value::String(text) => visitor.visit_string(text),
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(entries) => visitor.visit_map(Entries {
                entries: entries.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BodyError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(Fielded(value)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BodyError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BodyError> {
        match self.0 {
            Value::String(variant) => visitor
                .visit_enum(
                    <String as IntoDeserializer<'de, BodyError>>::into_deserializer(variant),
                ),
            other => Fielded(other).deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// The entries of a JSON object; an error in a value is given the value's key.
struct Entries {
    entries: serde_json::map::IntoIter,
    /// The entry whose key was read and whose value is next.
    value: Option<(String, Value)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = BodyError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BodyError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        // An unknown field's error names the key itself (`unknown_field`).
        let read = seed.deserialize(
            <String as IntoDeserializer<'de, BodyError>>::into_deserializer(key.clone()),
        )?;
        self.value = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, BodyError> {
        let Some((key, value)) = self.value.take() else {
            return Err(BodyError::custom("a value was asked for before its key"));
        };
        seed.deserialize(Fielded(value))
            .map_err(|error| error.at_key(key))
    }
}

/// The items of a JSON array; an error in an item is the array's field's.
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = BodyError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BodyError> {
        self.0
            .next()
            .map(|item| seed.deserialize(Fielded(item)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{json, Map, Value};

    use super::{from_value, ApiError};

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        username: String,
        password: String,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        payload: Map<String, Value>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        level: u64,
    }

    /// The DRF body the error renders, or the value read.
    fn answer(body: Value) -> Result<String, Value> {
        match from_value::<Login>(body) {
            Ok(login) => Ok(login.username),
            Err(ApiError::Invalid(invalid)) => Err(invalid.body()),
            Err(other) => Err(json!({"other": other.to_string()})),
        }
    }

    #[test]
    fn a_body_that_does_not_fit_names_its_field() {
        let ok = answer(json!({"username": "ann", "password": "long enough", "note": null}));
        assert_eq!(ok, Ok("ann".to_owned()));
        assert_eq!(
            answer(json!({"username": "ann"})),
            Err(json!({"password": ["This field is required."]}))
        );
        assert_eq!(
            answer(json!({"username": "ann", "password": 12_345_678})),
            Err(json!({"password": ["must be a string, not a number"]})),
            "the value is not quoted"
        );
        let unknown = answer(json!({"username": "a", "password": "b", "colour": "red"}));
        assert!(
            unknown
                .as_ref()
                .err()
                .and_then(|body| body["colour"][0].as_str())
                .is_some_and(|message| message.starts_with("not a field here")),
            "{unknown:?}"
        );
        assert_eq!(
            answer(json!({"username": "a", "password": "b", "payload": [1]})),
            Err(json!({"payload": ["must be a map, not a list"]}))
        );
        assert_eq!(
            answer(json!({"username": "a", "password": "b", "inner": {"level": "high"}})),
            Err(json!({"inner": ["level: must be u64, not a string"]}))
        );
        assert_eq!(
            answer(json!({"username": "a", "password": "b", "inner": {}})),
            Err(json!({"inner": ["level: This field is required."]}))
        );
        assert_eq!(
            answer(json!([1])),
            Err(
                json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
            )
        );
    }

    #[test]
    fn json_is_known_by_its_content_type() {
        assert!(super::is_json("application/json"));
        assert!(super::is_json("Application/JSON; charset=utf-8"));
        assert!(super::is_json("application/vnd.api+json"));
        assert!(!super::is_json(""));
        assert!(!super::is_json("text/plain"));
        assert!(!super::is_json("application/x-www-form-urlencoded"));
    }
}
