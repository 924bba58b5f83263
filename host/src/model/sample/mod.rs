//! A realistic event for testing a hook, as Rossum's `POST /hooks/{id}/generate_payload`
//! makes one: the request (`{event, action, annotation?, status?, previous_status?, email?,
//! upload?}`) and the event's own payload keys in Rossum's shapes (an annotation with its
//! content tree and its document, an upload's files and documents, an email's files,
//! headers and body). wasmhook stores no annotations, documents or emails, so their
//! contents are made up, with the ids the request names; the host's keys (request id,
//! settings, secrets, token) are added by whoever assembles the payload.

use serde_json::{json, Map, Value};

use super::event::{EventAction, EventError};
use super::hook::HookError;
use super::{id_from_reference, now_rfc3339, object_url};
use objects::{Sample, DOCUMENT_ID_DATAPOINT};

mod objects;

/// The statuses of Rossum's annotation lifecycle: what `status` and `previous_status` may
/// name.
pub const ANNOTATION_STATUSES: &[&str] = &[
    "created",
    "importing",
    "failed_import",
    "split",
    "to_review",
    "reviewing",
    "confirmed",
    "in_workflow",
    "rejected",
    "exporting",
    "exported",
    "failed_export",
    "postponed",
    "deleted",
    "purged",
];

/// The id given to a made-up object the request does not name.
const SAMPLE_ID: u64 = 1;

/// What a client asks a sample payload for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRequest {
    /// The event and action, one of Rossum's pairs.
    pub event: EventAction,
    /// The annotation of an annotation or upload event.
    pub annotation_id: u64,
    /// Its status (`to_review` unless asked).
    pub status: String,
    /// Its status before (`importing` unless asked), for `annotation_status`.
    pub previous_status: String,
    /// The email of an email event.
    pub email_id: u64,
    /// The upload of an upload event.
    pub upload_id: u64,
}

impl SampleRequest {
    /// The request in `body`: `event` and `action` must be one of Rossum's pairs (or
    /// `event` written `EVENT.ACTION`), the references URLs or ids of their kind, the
    /// statuses of the annotation lifecycle; each refusal names its field. Other keys are
    /// ignored, as DRF ignores them.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, HookError> {
        let Some(event) = text(body, "event")? else {
            return Err(HookError::new("event", "required"));
        };
        let (event, action) = match text(body, "action")? {
            Some(action) => (event, action),
            None => match event.split_once('.') {
                Some((name, action)) => (name.to_owned(), action.to_owned()),
                None => return Err(HookError::new("action", "required")),
            },
        };
        let event = EventAction::new(&event, &action).map_err(|error| {
            let field = match &error {
                EventError::UnknownAction { .. } => "action",
                EventError::Malformed(_) | EventError::UnknownEvent { .. } => "event",
            };
            HookError::new(field, error.to_string())
        })?;
        Ok(SampleRequest {
            event,
            annotation_id: reference(body, "annotation", "annotations")?,
            status: status(body, "status", "to_review")?,
            previous_status: status(body, "previous_status", "importing")?,
            email_id: reference(body, "email", "emails")?,
            upload_id: reference(body, "upload", "uploads")?,
        })
    }

    /// The event's own payload keys, with URLs under `base_url`, on `queue_id` (the hook's
    /// first queue; a made-up one when it has none). The invocation events have none.
    pub fn body(&self, base_url: &str, queue_id: Option<u64>) -> Map<String, Value> {
        let sample = Sample {
            base_url,
            queue: object_url(base_url, "queues", queue_id.unwrap_or(SAMPLE_ID)),
            request: self,
            now: now_rfc3339(),
        };
        // Only a user's change has changed datapoints (Rossum: never empty for `updated`).
        let updated: Vec<u64> = match self.event.action() {
            "updated" | "user_update" => vec![DOCUMENT_ID_DATAPOINT],
            _ => Vec::new(),
        };
        let body = match self.event.event() {
            "annotation_status" => json!({
                "annotation": sample.annotation(false),
                "document": sample.document(),
            }),
            "annotation_content" => json!({
                "annotation": sample.annotation(true),
                "document": sample.document(),
                "updated_datapoints": updated,
            }),
            "upload" => sample.upload(),
            "email" => sample.email(),
            _ => json!({}),
        };
        match body {
            Value::Object(body) => body,
            _ => Map::new(),
        }
    }
}

/// A string field, none when absent or null.
fn text(body: &Map<String, Value>, key: &str) -> Result<Option<String>, HookError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(HookError::new(key, "must be a string")),
    }
}

/// The id of a reference to an object of `collection` (its URL or id), or the sample id.
fn reference(body: &Map<String, Value>, key: &str, collection: &str) -> Result<u64, HookError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(SAMPLE_ID),
        Some(value) => id_from_reference(value, collection)
            .ok_or_else(|| HookError::new(key, format!("expected a URL of {collection} or an id"))),
    }
}

/// An annotation status, `default` unless sent.
fn status(body: &Map<String, Value>, key: &str, default: &str) -> Result<String, HookError> {
    match text(body, key)? {
        None => Ok(default.to_owned()),
        Some(status) if ANNOTATION_STATUSES.contains(&status.as_str()) => Ok(status),
        Some(status) => Err(HookError::new(
            key,
            format!(
                "`{status}` is not an annotation status; one of: {}",
                ANNOTATION_STATUSES.join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(value: Value) -> Result<SampleRequest, HookError> {
        match value {
            Value::Object(body) => SampleRequest::parse(&body),
            _ => Err(HookError::new("body", "not an object")),
        }
    }

    #[test]
    fn bad_values_are_refused_naming_their_field() {
        for (sent, field) in [
            (json!({}), "event"),
            (json!({"event": "annotation_content"}), "action"),
            (json!({"event": "annotation", "action": "changed"}), "event"),
            (json!({"event": "upload", "action": "deleted"}), "action"),
            (json!({"event": 7, "action": "created"}), "event"),
            (
                json!({"event": "annotation_status", "action": "changed", "status": "lost"}),
                "status",
            ),
            (
                json!({"event": "annotation_status", "action": "changed", "previous_status": "x"}),
                "previous_status",
            ),
            (
                json!({"event": "annotation_status", "action": "changed", "annotation": "https://h.example/api/v1/queues/3"}),
                "annotation",
            ),
        ] {
            let refused = request(sent.clone()).err().map(|error| error.field);
            assert_eq!(refused, Some(crate::model::FieldPath::new(field)), "{sent}");
        }
    }

    #[test]
    fn an_annotation_content_event_carries_a_content_tree_and_its_document() -> Result<(), HookError>
    {
        let asked = request(json!({
            "event": "annotation_content.updated",
            "annotation": "https://h.example/api/v1/annotations/314",
            "status": "reviewing",
        }))?;
        let body = asked.body("https://h.example", Some(5));
        assert_eq!(body["annotation"]["id"], 314);
        assert_eq!(body["annotation"]["status"], "reviewing");
        assert_eq!(
            body["annotation"]["queue"],
            "https://h.example/api/v1/queues/5"
        );
        assert_eq!(
            body["annotation"]["content"][0]["children"][0]["content"]["normalized_value"],
            "INV-2026-0042"
        );
        assert_eq!(body["document"]["id"], 314);
        assert_eq!(body["updated_datapoints"], json!([DOCUMENT_ID_DATAPOINT]));
        Ok(())
    }

    #[test]
    fn each_event_has_rossums_keys() -> Result<(), HookError> {
        let keys = |event: &str, action: &str| -> Result<Vec<String>, HookError> {
            let asked = request(json!({"event": event, "action": action}))?;
            Ok(asked
                .body("https://h.example", None)
                .keys()
                .cloned()
                .collect())
        };
        assert_eq!(
            keys("annotation_status", "changed")?,
            ["annotation", "document"]
        );
        assert_eq!(
            keys("upload", "created")?,
            ["files", "documents", "metadata", "email", "upload"]
        );
        assert_eq!(
            keys("email", "received")?,
            ["files", "headers", "body", "email", "queue"]
        );
        assert!(keys("invocation", "scheduled")?.is_empty());
        let changed = request(json!({"event": "annotation_status", "action": "changed"}))?
            .body("https://h.example", None);
        assert_eq!(changed["annotation"]["previous_status"], "importing");
        assert_eq!(changed["annotation"]["status"], "to_review");
        assert!(changed["annotation"]["content"].is_string());
        Ok(())
    }
}
