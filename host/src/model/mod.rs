//! Rossum's vocabulary: events, payloads and run logs, with their validation rules.
//!
//! Nothing here runs anything or stores anything; the runtime, the store and the API all
//! speak these types.

pub mod content;
pub mod event;
pub mod hook;
pub mod payload;
pub mod run_log;
pub mod schedule;

pub use event::{EventAction, EventError};
pub use payload::{assemble_payload, PayloadError, PayloadParts, RESERVED_KEYS};
pub use run_log::{LogLevel, RunLog, RunStatus};

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

/// The id in a reference to an object: a number, or its URL (`.../{collection}/{id}`).
pub fn id_from_reference(reference: &serde_json::Value, collection: &str) -> Option<u64> {
    match reference {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => {
            let trimmed = text.trim_end_matches('/');
            if let Ok(id) = trimmed.parse() {
                return Some(id);
            }
            let (path, id) = trimmed.rsplit_once('/')?;
            path.ends_with(&format!("/{collection}"))
                .then(|| id.parse().ok())
                .flatten()
        }
        _ => None,
    }
}
