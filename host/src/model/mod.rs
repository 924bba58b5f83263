//! Rossum's vocabulary: events, payloads and run logs, with their validation rules.
//!
//! Nothing here runs anything or stores anything; the runtime, the store and the API all
//! speak these types.

pub mod allow_list;
pub mod content;
pub mod event;
pub mod field;
pub mod fields;
pub mod group;
pub mod hook;
pub mod payload;
pub mod run_log;
pub mod sample;
pub mod schedule;

pub use event::{EventAction, EventError};
pub use field::FieldPath;
pub use fields::EventFields;
pub use payload::{
    assemble_payload, payload_text, reserved_key, PayloadError, PayloadParts, RESERVED_KEYS,
};
pub use run_log::{LogLevel, RunLog, RunStatus};

/// Now in Unix seconds: when tokens expire, stored as an integer.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// Now, as Rossum writes timestamps: RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    format_rfc3339(std::time::SystemTime::now())
}

/// A wall-clock instant as RFC 3339 in UTC, with microseconds.
pub fn format_rfc3339(at: std::time::SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    let micros = at.microsecond();
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    match at.format(format) {
        Ok(text) => format!("{text}.{micros:06}Z"),
        Err(_) => String::from("1970-01-01T00:00:00.000000Z"),
    }
}

/// The largest id an object can have: ids are SQLite rowids, signed 64-bit integers.
///
/// A larger number names no object, and would not even convert into a query parameter
/// (the 500 of issue 13), so every id read from a request (path, filter, reference, payload)
/// is checked against it where it is parsed: see [`id_in_range`].
pub const MAX_ID: u64 = i64::MAX.unsigned_abs();

/// `id` when it can name an object (at most [`MAX_ID`]); none when no object can have it.
pub fn id_in_range(id: u64) -> Option<u64> {
    (id <= MAX_ID).then_some(id)
}

/// The id in a reference to an object: a number, or its URL (`.../{collection}/{id}`); none
/// when it is neither, or a number no object can have (beyond [`MAX_ID`]).
pub fn id_from_reference(reference: &serde_json::Value, collection: &str) -> Option<u64> {
    let id = match reference {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => {
            let trimmed = text.trim_end_matches('/');
            if let Ok(id) = trimmed.parse() {
                return id_in_range(id);
            }
            let (path, id) = trimmed.rsplit_once('/')?;
            path.ends_with(&format!("/{collection}"))
                .then(|| id.parse().ok())
                .flatten()
        }
        _ => None,
    };
    id.and_then(id_in_range)
}

/// The URL of an object of the API, `{base}/api/v1/{collection}/{id}`: the one place it is
/// built, since Rossum's clients follow these URLs and payloads carry them.
pub fn object_url(base_url: &str, collection: &str, id: u64) -> String {
    format!("{}/{id}", collection_url(base_url, collection))
}

/// The URL of a collection of the API, `{base}/api/v1/{collection}`.
pub fn collection_url(base_url: &str, collection: &str) -> String {
    format!("{base_url}/api/v1/{collection}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_beyond_the_id_range_name_nothing() {
        assert_eq!(id_from_reference(&json!(MAX_ID), "queues"), Some(MAX_ID));
        assert_eq!(id_from_reference(&json!(MAX_ID + 1), "queues"), None);
        assert_eq!(id_from_reference(&json!(u64::MAX), "queues"), None);
        assert_eq!(
            id_from_reference(&json!("9223372036854775808"), "queues"),
            None
        );
        assert_eq!(
            id_from_reference(
                &json!("https://h.example/api/v1/queues/18446744073709551615"),
                "queues"
            ),
            None
        );
        assert_eq!(
            id_from_reference(&json!("https://h.example/api/v1/queues/7/"), "queues"),
            Some(7)
        );
    }
}
