//! From a call to its record: the run log of one run.
//!
//! Later this part also matches events to hooks and orders them by `run_after`; for now it
//! holds what the CLI and the server share: turning a runtime report into a [`RunLog`].

use serde_json::{Map, Value};

use crate::model::{
    assemble_payload, format_rfc3339, now_rfc3339, EventAction, PayloadError, PayloadParts, RunLog,
    RunStatus,
};
use crate::runtime::{Invocation, Outcome, Redactor, RunReport};

/// What one call of one hook is made of, before its payload is assembled.
#[derive(Debug, Clone)]
pub struct HookCall<'a> {
    /// What happened.
    pub event: &'a EventAction,
    /// The hook to run.
    pub hook_id: u64,
    /// Its organization.
    pub organization_id: u64,
    /// Base URL of the API (the hook's URL is derived from it).
    pub base_url: &'a str,
    /// The hook's settings.
    pub settings: &'a Map<String, Value>,
    /// The hook's secrets.
    pub secrets: &'a [(String, String)],
    /// Token minted for the hook's owner.
    pub token: Option<&'a str>,
    /// The event's own keys.
    pub body: &'a Map<String, Value>,
}

/// A call ready for the runtime: its invocation, and what its run log will need.
#[derive(Debug, Clone)]
pub struct PreparedCall {
    /// What the runtime delivers to the guest.
    pub invocation: Invocation,
    /// The payload as sent.
    pub payload: Map<String, Value>,
    event: EventAction,
    settings: Map<String, Value>,
    redactor: Redactor,
}

impl PreparedCall {
    /// Assembles the payload in Rossum's shape, with a fresh request id and timestamp.
    pub fn new(call: &HookCall<'_>) -> Result<Self, PayloadError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let timestamp = now_rfc3339();
        let hook_url = format!("{}/api/v1/hooks/{}", call.base_url, call.hook_id);
        let payload = assemble_payload(&PayloadParts {
            request_id: &request_id,
            timestamp: &timestamp,
            hook_url: &hook_url,
            event: call.event,
            token: call.token,
            base_url: call.base_url,
            settings: call.settings,
            secrets: call.secrets,
            body: call.body,
        })?;
        let invocation = Invocation {
            request_id,
            timestamp,
            hook_id: call.hook_id,
            organization_id: call.organization_id,
            event: call.event.event().to_owned(),
            action: call.event.action().to_owned(),
            payload: Value::Object(payload.clone()).to_string(),
            settings: Value::Object(call.settings.clone()).to_string(),
            secrets: call.secrets.to_vec(),
            authorization_token: call.token.map(str::to_owned),
            base_url: call.base_url.to_owned(),
        };
        let redactor = invocation.redactor();
        Ok(PreparedCall {
            invocation,
            payload,
            event: call.event.clone(),
            settings: call.settings.clone(),
            redactor,
        })
    }

    /// The run log of this call once the runtime has reported, every secret redacted.
    pub fn run_log(&self, report: &RunReport) -> RunLog {
        run_log(self, report)
    }
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
fn run_log(context: &PreparedCall, report: &RunReport) -> RunLog {
    let status = run_status(&report.outcome);
    let (message, response) = match &report.outcome {
        Outcome::Completed { response } => (
            response_messages(response),
            Some(
                context
                    .redactor
                    .redact_json(&Value::Object(response.clone())),
            ),
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
        request_id: context.invocation.request_id.clone(),
        timestamp: context.invocation.timestamp.clone(),
        event: context.event.event().to_owned(),
        action: context.event.action().to_owned(),
        organization_id: context.invocation.organization_id,
        hook_id: context.invocation.hook_id,
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
