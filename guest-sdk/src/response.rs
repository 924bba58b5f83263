//! Building the answer Rossum expects: messages, operations and automation blockers.

use serde::Serialize;
use serde_json::{Map, Value};

/// The answer to a hook call.
///
/// `messages` and `operations` are always present (Rossum reads them for every
/// annotation_content event); `automation_blockers` only when there are some. Other events
/// answer with other keys (`files` for upload.created...): add them with [`Response::with`].
///
/// ```
/// use wasmhook_sdk::Response;
/// let response = Response::new()
///     .error_at(101, "document_id is required")
///     .warning("check the totals")
///     .replace(103, wasmhook_sdk::json!({"content": {"value": "EUR"}}))
///     .automation_blocker_at(201, "needs a second look");
/// assert_eq!(
///     response.to_value(),
///     wasmhook_sdk::json!({
///         "messages": [
///             {"type": "error", "content": "document_id is required", "id": 101},
///             {"type": "warning", "content": "check the totals"}
///         ],
///         "operations": [{"op": "replace", "id": 103, "value": {"content": {"value": "EUR"}}}],
///         "automation_blockers": [{"content": "needs a second look", "id": 201}]
///     })
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Response {
    messages: Vec<Message>,
    operations: Vec<Operation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    automation_blockers: Vec<AutomationBlocker>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// Severity of a message shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// Blocks confirmation in the UI.
    Error,
    /// Shown, does not block.
    Warning,
    /// Shown as information only.
    Info,
}

/// A message on the document or on one datapoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Whether it blocks confirmation, warns or informs (`type` in the JSON).
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// The text shown.
    pub content: String,
    /// The datapoint it is about; none for the whole document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// A change to the annotation's data, in the format of Rossum's bulk update.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Operation {
    /// Replace a datapoint's attributes (`{"content": {"value": ...}}`, `hidden`, ...).
    Replace {
        /// The id of the datapoint to change.
        id: u64,
        /// The new attributes.
        value: Value,
    },
    /// Append rows (or one value) to a multivalue.
    Add {
        /// The id of the multivalue to append to.
        id: u64,
        /// The rows to append (an array), or the one value.
        value: Value,
    },
    /// Remove a child of a multivalue.
    Remove {
        /// The id of the child datapoint to remove.
        id: u64,
    },
}

/// A reason to stop automation, on the document or on one datapoint (initialize only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AutomationBlocker {
    /// Why automation stops, shown to the user.
    pub content: String,
    /// The datapoint; none for the whole annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

impl Response {
    /// An empty answer: no messages, no operations.
    pub fn new() -> Self {
        Response::default()
    }

    /// Adds a message, for code that builds a response in one expression.
    pub fn message(mut self, message: Message) -> Self {
        self.push_message(message);
        self
    }

    /// Adds a message, for code that builds a response in a loop.
    pub fn push_message(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// Adds an operation, for code that builds a response in a loop.
    pub fn push_operation(&mut self, operation: Operation) {
        self.operations.push(operation);
    }

    fn with_message(self, kind: MessageType, id: Option<u64>, content: impl Into<String>) -> Self {
        self.message(Message {
            kind,
            content: content.into(),
            id,
        })
    }

    /// Adds an error message on the document.
    pub fn error(self, content: impl Into<String>) -> Self {
        self.with_message(MessageType::Error, None, content)
    }

    /// Adds an error message on a datapoint.
    pub fn error_at(self, id: u64, content: impl Into<String>) -> Self {
        self.with_message(MessageType::Error, Some(id), content)
    }

    /// Adds a warning on the document.
    pub fn warning(self, content: impl Into<String>) -> Self {
        self.with_message(MessageType::Warning, None, content)
    }

    /// Adds a warning on a datapoint.
    pub fn warning_at(self, id: u64, content: impl Into<String>) -> Self {
        self.with_message(MessageType::Warning, Some(id), content)
    }

    /// Adds an informational message on the document.
    pub fn info(self, content: impl Into<String>) -> Self {
        self.with_message(MessageType::Info, None, content)
    }

    /// Adds an informational message on a datapoint.
    pub fn info_at(self, id: u64, content: impl Into<String>) -> Self {
        self.with_message(MessageType::Info, Some(id), content)
    }

    /// Replaces attributes of a datapoint.
    pub fn replace(mut self, id: u64, value: Value) -> Self {
        self.push_operation(Operation::Replace { id, value });
        self
    }

    /// Sets a datapoint's value: the common case of [`Response::replace`].
    pub fn set_value(self, id: u64, value: impl Into<String>) -> Self {
        let value: String = value.into();
        self.replace(id, serde_json::json!({"content": {"value": value}}))
    }

    /// Appends rows to a multivalue.
    pub fn add(mut self, multivalue_id: u64, rows: Value) -> Self {
        self.push_operation(Operation::Add {
            id: multivalue_id,
            value: rows,
        });
        self
    }

    /// Removes a child of a multivalue.
    pub fn remove(mut self, id: u64) -> Self {
        self.push_operation(Operation::Remove { id });
        self
    }

    /// Blocks automation of the whole annotation.
    pub fn automation_blocker(mut self, content: impl Into<String>) -> Self {
        self.automation_blockers.push(AutomationBlocker {
            content: content.into(),
            id: None,
        });
        self
    }

    /// Blocks automation because of one datapoint.
    pub fn automation_blocker_at(mut self, id: u64, content: impl Into<String>) -> Self {
        self.automation_blockers.push(AutomationBlocker {
            content: content.into(),
            id: Some(id),
        });
        self
    }

    /// Adds another key of the response (e.g. `files` for upload.created).
    pub fn with(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// The response as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The response as JSON text, as the host receives it.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}
