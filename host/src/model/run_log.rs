//! The record of one run, with the fields of Rossum's HookRunData.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a run ended, in Rossum's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The hook answered.
    Completed,
    /// The hook failed (an error, a trap, a bad response, a memory limit).
    Failed,
    /// The hook ran past its time limit.
    Timeout,
    /// The hook was not run because a hook it runs after failed.
    Cancelled,
}

impl RunStatus {
    /// The log level Rossum shows for this status.
    pub fn log_level(self) -> LogLevel {
        match self {
            RunStatus::Completed => LogLevel::Info,
            RunStatus::Failed | RunStatus::Timeout => LogLevel::Error,
            RunStatus::Cancelled => LogLevel::Warning,
        }
    }

    /// Its name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `name` (as [`RunStatus::as_str`] spells it), for a stored one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Timeout,
            RunStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == name)
    }
}

/// Severity of a run log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    /// A successful run.
    Info,
    /// A run that did not happen as asked, without being an error.
    Warning,
    /// A failed run.
    Error,
}

impl LogLevel {
    /// Its name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

/// One run of one hook for one event. Secret values are already redacted in every field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunLog {
    /// Unique id of this run log entry.
    pub uuid: String,
    /// The call's request id (shared by retries of the same call).
    pub request_id: String,
    /// When the event happened.
    pub timestamp: String,
    /// The event's name, e.g. `annotation_content`.
    pub event: String,
    /// The event's action, e.g. `initialize`.
    pub action: String,
    /// The organization that owns the hook.
    pub organization_id: u64,
    /// The hook that ran (or was cancelled); kept after the hook is deleted.
    pub hook_id: u64,
    /// The hook's type: `function`, `webhook` or `job`.
    pub hook_type: String,
    /// The queue of the document, when there is one.
    pub queue_id: Option<u64>,
    /// The id of the payload's `annotation`, when it has one, for the logs to be found by
    /// annotation.
    pub annotation_id: Option<u64>,
    /// The id the payload's `email` reference names, when it has one, for the logs to be
    /// found by email.
    pub email_id: Option<u64>,
    /// How the run ended.
    pub status: RunStatus,
    /// Severity for the log view.
    pub log_level: LogLevel,
    /// HTTP status for webhooks; none for functions.
    pub status_code: Option<u16>,
    /// The response's messages joined, or what went wrong.
    pub message: String,
    /// The payload sent, kept only when the hook's `config.payload_logging_enabled` is
    /// true (Rossum's default leaves it out of the log), its secrets and token redacted;
    /// none otherwise.
    pub request: Option<Value>,
    /// The response received (redacted), when there was one.
    pub response: Option<Value>,
    /// Captured stdout, stderr and log lines of a module; never present for webhooks, as
    /// in Rossum's HookRunData.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The hook's settings at the time of the run.
    pub settings: Value,
    /// When the run started and ended.
    pub start: String,
    /// See `start`.
    pub end: String,
    /// Wall time of the run in milliseconds.
    pub duration_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_names() {
        for status in [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Timeout,
            RunStatus::Cancelled,
        ] {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(status.as_str().into())
            );
            let level = status.log_level();
            assert_eq!(
                serde_json::to_value(level).ok(),
                Some(level.as_str().into())
            );
        }
    }
}
