//! From a call to its record: the run log of one run.
//!
//! Later this part also matches events to hooks and orders them by `run_after`; for now it
//! holds what the CLI and the server share: turning a runtime report into a [`RunLog`].

use serde_json::{Map, Value};

use crate::model::{format_rfc3339, EventAction, RunLog, RunStatus};
use crate::runtime::{Outcome, Redactor, RunReport};

/// What a run log needs beyond the runtime's report.
#[derive(Debug)]
pub struct RunContext<'a> {
    /// The call's request id.
    pub request_id: &'a str,
    /// When the event happened.
    pub timestamp: &'a str,
    /// What happened.
    pub event: &'a EventAction,
    /// The owning organization.
    pub organization_id: u64,
    /// The hook that ran.
    pub hook_id: u64,
    /// The payload as sent (not yet redacted).
    pub payload: &'a Map<String, Value>,
    /// The hook's settings.
    pub settings: &'a Map<String, Value>,
    /// Secret values and the token of the call.
    pub redactor: &'a Redactor,
}

/// The run status of a runtime outcome.
pub fn run_status(outcome: &Outcome) -> RunStatus {
    match outcome {
        Outcome::Completed { .. } => RunStatus::Completed,
        Outcome::Timeout { .. } => RunStatus::Timeout,
        Outcome::Failed(_) | Outcome::MemoryLimitExceeded { .. } => RunStatus::Failed,
    }
}

/// The run log of one finished call, with every secret value redacted.
pub fn run_log(context: &RunContext<'_>, report: &RunReport) -> RunLog {
    let status = run_status(&report.outcome);
    let (message, response) = match &report.outcome {
        Outcome::Completed { response } => (
            response_messages(response),
            Some(context.redactor.redact_json(&Value::Object(response.clone()))),
        ),
        other => (other.message(), None),
    };
    let end = report.started_at + report.duration;
    let annotation_id = context
        .payload
        .get("annotation")
        .and_then(|annotation| annotation.get("id"))
        .and_then(Value::as_u64);
    RunLog {
        uuid: uuid::Uuid::new_v4().to_string(),
        request_id: context.request_id.to_owned(),
        timestamp: context.timestamp.to_owned(),
        event: context.event.event().to_owned(),
        action: context.event.action().to_owned(),
        organization_id: context.organization_id,
        hook_id: context.hook_id,
        hook_type: "function".to_owned(),
        queue_id: None,
        annotation_id,
        email_id: None,
        status,
        log_level: status.log_level(),
        status_code: None,
        message: context.redactor.redact(&message),
        request: context
            .redactor
            .redact_json(&Value::Object(context.payload.clone())),
        response,
        output: Some(report.output.clone()),
        settings: context
            .redactor
            .redact_json(&Value::Object(context.settings.clone())),
        start: format_rfc3339(report.started_at),
        end: format_rfc3339(end),
        duration_ms: report.duration.as_secs_f64() * 1000.0,
    }
}

/// Rossum's run log `message` for a completed call: the contents of the response's messages.
fn response_messages(response: &Map<String, Value>) -> String {
    response
        .get("messages")
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .filter_map(|message| message.get("content").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
