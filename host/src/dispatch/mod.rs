//! From an event to runs and their records: matching hooks, run_after order, limits, the
//! run log of each run and the writer that makes it durable.
//!
//! - this file: a call's payload and its run log, shared by the CLI, tests and benchmarks;
//! - [`dispatcher`]: running one hook (its attempts, module or webhook, token, secrets)
//!   for tests, invocations, schedules and events;
//! - [`plan`]: which hooks an event runs, in what order, and which are cancelled (pure);
//! - [`event`]: running an interactive event's plan with the dispatcher, once each; the
//!   budgets of bytes an answer about any event holds its responses within, and the fold;
//! - `deliveries`: a non-interactive event's deliveries, durable rows any replica claims
//!   (first attempts, retries, webhook polling, run_after successors, scheduled runs);
//! - [`limits`]: concurrent runs per organization and in all, and the [`RunPermit`] every
//!   run takes;
//! - [`webhook`]: calling a webhook hook, signed, with the async protocol;
//! - [`scheduler`]: scheduled hooks, one run per tick;
//! - `sideloads`: the `queues` sideload added to a payload;
//! - `reuse`: which warm instances a call of a hook with `config.reuse_instances` may use;
//! - [`sample`]: the payload a hook would receive, made up for testing
//!   (`generate_payload`), secrets and token redacted;
//! - [`writer`]: the batching run log writer, and recording a run.

mod deliveries;
pub mod dispatcher;
pub mod event;
pub mod limits;
pub mod plan;
mod reuse;
pub mod sample;
pub mod scheduler;
mod sideloads;
pub mod webhook;
pub mod writer;

pub use deliveries::{DeliveryPhase, EventProgress};
pub use dispatcher::{DispatchError, DispatchSettings, Dispatcher, DispatcherParts, RunResult};
pub use event::{EventAnswer, EventRun, ANSWERED_RESPONSE_BYTES};
pub use limits::RunPermit;

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::model::hook::HookType;
use crate::model::{
    format_rfc3339, now_rfc3339, payload_text, EventAction, EventFields, PayloadError,
    PayloadParts, RunLog, RunStatus,
};
use crate::runtime::{Invocation, Outcome, Redactor, RunReport, REDACTED};

/// What one call of one hook is made of, before its payload is assembled. Its `{:?}`
/// shows the secrets' keys only, and not the token: it holds both in clear.
#[derive(Clone)]
pub struct HookCall<'a> {
    /// The event and action the hook runs for: the payload's, the guest's request's and
    /// the run log's `event` and `action`.
    pub event: &'a EventAction,
    /// The hook to run: its URL is the payload's `hook`, its id the run log's `hook_id`.
    pub hook_id: u64,
    /// Its type, which its run log records.
    pub hook_type: HookType,
    /// The organization that owns the hook, handed to the guest in its request and kept
    /// in the run log.
    pub organization_id: u64,
    /// Base URL of the API (the hook's URL is derived from it).
    pub base_url: &'a str,
    /// The hook's settings as saved: the payload's `settings`.
    pub settings: &'a Map<String, Value>,
    /// The hook's secrets, opened: the payload's `secrets` in clear, which every run log
    /// redacts.
    pub secrets: &'a [(String, String)],
    /// Token minted for the hook's owner.
    pub token: Option<&'a str>,
    /// The event's own keys, their values as the JSON text they came as.
    pub body: &'a EventFields,
    /// The queue the event concerns, when there is one.
    pub queue_id: Option<u64>,
    /// The id of the HTTP request that started the run (its `X-Request-Id`), or of the
    /// schedule's tick: the payload's and the run log's `request_id`, shared by every run
    /// and attempt it started.
    pub request_id: &'a str,
    /// Whether the run log keeps the payload in its `request` (the hook's
    /// `config.payload_logging_enabled`; Rossum's default is not to, so that what the
    /// payload carries stays out of the logs).
    pub payload_logging: bool,
}

impl std::fmt::Debug for HookCall<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.secrets.iter().map(|(key, _)| key.as_str()).collect();
        formatter
            .debug_struct("HookCall")
            .field("event", &self.event)
            .field("hook_id", &self.hook_id)
            .field("hook_type", &self.hook_type)
            .field("organization_id", &self.organization_id)
            .field("secrets", &keys)
            .field("token", &self.token.map(|_| "[redacted]"))
            .field("queue_id", &self.queue_id)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// A call ready for the runtime: its invocation, and what its run log will need.
#[derive(Debug, Clone)]
pub struct PreparedCall {
    /// What the runtime delivers to the guest; its `payload` is the payload's JSON text as
    /// sent, secrets and token in clear, which is also a webhook's body. Its run log keeps
    /// it redacted.
    pub invocation: Invocation,
    /// The annotation the event is about, which its run log is filed under.
    annotation_id: Option<u64>,
    /// The email the event is about, likewise.
    email_id: Option<u64>,
    event: EventAction,
    hook_type: HookType,
    settings: Map<String, Value>,
    redactor: Redactor,
    queue_id: Option<u64>,
    payload_logging: bool,
}

impl PreparedCall {
    /// Assembles the payload in Rossum's shape, with the call's request id and a fresh
    /// timestamp.
    pub fn new(call: &HookCall<'_>) -> Result<Self, PayloadError> {
        let request_id = call.request_id.to_owned();
        let timestamp = now_rfc3339();
        let hook_url = crate::model::object_url(call.base_url, "hooks", call.hook_id);
        // Written straight from its parts: the text is all a module's call needs, and a
        // webhook sends it as its body.
        let payload = payload_text(&PayloadParts {
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
            payload,
            settings: serde_json::to_string(call.settings)
                .map_err(|error| PayloadError::Json(error.to_string()))?,
            request_id,
            timestamp,
            hook_id: call.hook_id,
            organization_id: call.organization_id,
            event: call.event.event().to_owned(),
            action: call.event.action().to_owned(),
            secrets: call.secrets.to_vec(),
            authorization_token: call.token.map(str::to_owned),
            base_url: call.base_url.to_owned(),
        };
        let redactor = invocation.redactor();
        Ok(PreparedCall {
            invocation,
            annotation_id: annotation_id(call.body),
            email_id: email_id(call.body),
            event: call.event.clone(),
            hook_type: call.hook_type,
            settings: call.settings.clone(),
            redactor,
            queue_id: call.queue_id,
            payload_logging: call.payload_logging,
        })
    }

    /// The run log of this call once the runtime has reported, every secret redacted.
    pub fn run_log(&self, report: &RunReport) -> RunLog {
        let status = run_status(&report.outcome);
        let (message, response) = match &report.outcome {
            Outcome::Completed { response } => (response_messages(response), Some(response)),
            other => (other.message(), None),
        };
        self.log(Ending {
            status,
            status_code: None,
            message,
            response,
            output: Some(report.output.clone()),
            started_at: report.started_at,
            duration: report.duration,
        })
    }

    /// The run log of a webhook call: its status code, no `output` (webhooks have none).
    pub fn webhook_log(&self, delivery: &webhook::Delivery) -> RunLog {
        let (status, message, response) = match &delivery.outcome {
            webhook::DeliveryOutcome::Completed(response) => (
                RunStatus::Completed,
                response_messages(response),
                Some(response),
            ),
            webhook::DeliveryOutcome::Failed(reason) => (RunStatus::Failed, reason.clone(), None),
            webhook::DeliveryOutcome::Timeout(limit) => (
                RunStatus::Timeout,
                format!("the webhook did not answer within {} s", limit.as_secs()),
                None,
            ),
        };
        self.log(Ending {
            status,
            status_code: delivery.status_code,
            message,
            response,
            output: None,
            started_at: delivery.started_at,
            duration: delivery.duration,
        })
    }

    /// The run log of this call when it was not run: a hook it runs after failed.
    pub fn cancelled_log(&self, reason: &str) -> RunLog {
        self.unrun_log(RunStatus::Cancelled, reason)
    }

    /// The run log of an attempt that ended without an outcome of its own: it failed for
    /// `reason` (the replica running it stopped before recording it, say).
    pub fn failed_log(&self, reason: &str) -> RunLog {
        self.unrun_log(RunStatus::Failed, reason)
    }

    /// The run log of a call that did not run (or whose run left no outcome), ended now.
    fn unrun_log(&self, status: RunStatus, reason: &str) -> RunLog {
        self.log(Ending {
            status,
            status_code: None,
            message: reason.to_owned(),
            response: None,
            output: None,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
        })
    }

    /// The run log of this call ending as `ending` says, every secret redacted; the payload
    /// only when the hook keeps it. Borrows the call, which a retry makes again from: only
    /// what the log keeps is copied (the payload only when the hook keeps it).
    fn log(&self, ending: Ending<'_>) -> RunLog {
        let redactor = &self.redactor;
        // Read back from the text sent (the payload is kept only where the hook asks).
        let request = if self.payload_logging {
            serde_json::from_str(&self.invocation.payload)
                .ok()
                .map(|payload| logged_request(payload, redactor))
        } else {
            None
        };
        RunLog {
            uuid: run_log_uuid(),
            request_id: self.invocation.request_id.clone(),
            timestamp: self.invocation.timestamp.clone(),
            event: self.event.event().to_owned(),
            action: self.event.action().to_owned(),
            organization_id: self.invocation.organization_id,
            hook_id: self.invocation.hook_id,
            hook_type: self.hook_type.as_str().to_owned(),
            queue_id: self.queue_id,
            annotation_id: self.annotation_id,
            email_id: self.email_id,
            status: ending.status,
            log_level: ending.status.log_level(),
            status_code: ending.status_code,
            message: redactor.redact(&ending.message),
            request,
            response: ending
                .response
                .map(|response| redactor.redact_json(Value::Object(response.clone()))),
            output: ending.output,
            settings: redactor.redact_json(Value::Object(self.settings.clone())),
            start: format_rfc3339(ending.started_at),
            end: format_rfc3339(ending.started_at + ending.duration),
            duration_ms: ending.duration.as_secs_f64() * 1000.0,
        }
    }

    /// The redactor of this call (its secret values and token).
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// The id of the annotation an event's keys are about (its `annotation` object), read from
/// that one value without parsing the rest (its content, which may be most of the body).
fn annotation_id(body: &EventFields) -> Option<u64> {
    /// An object's last `id` (as a parsed object keeps it), its other values skipped
    /// unread; anything but an object has none.
    struct LastId;

    impl<'de> serde::de::Visitor<'de> for LastId {
        type Value = Option<u64>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("an object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut entries: A,
        ) -> Result<Option<u64>, A::Error> {
            let mut id = None;
            while let Some(key) = entries.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "id" {
                    id = entries.next_value::<Value>()?.as_u64();
                } else {
                    entries.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(id)
        }
    }

    let annotation = body.get("annotation")?;
    let mut deserializer = serde_json::Deserializer::from_str(annotation.get());
    serde::Deserializer::deserialize_map(&mut deserializer, LastId).ok()?
}

/// The id of the email an event's keys are about (its `email`, an object or a URL).
fn email_id(body: &EventFields) -> Option<u64> {
    body.value("email")
        .and_then(|email| crate::model::id_from_reference(&email, "emails"))
}

/// A fresh run log's `uuid`: version 7, whose leading bits are the time, so that the rows of
/// one batch land side by side at the right edge of the `uuid` index instead of on a random
/// page each (a version 4 id dirtied one index page per row, each written to the WAL at the
/// commit and again at the checkpoint). It is as unique, and says no more than the log's
/// own `start`.
fn run_log_uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The payload as a run log keeps it: the values under `secrets` and the
/// `rossum_authorization_token` written as [`REDACTED`] whatever their length (the
/// redactor passes over values too short to search for), then every secret value and the
/// token redacted wherever else they occur.
fn logged_request(mut payload: Map<String, Value>, redactor: &Redactor) -> Value {
    if let Some(Value::Object(secrets)) = payload.get_mut("secrets") {
        for value in secrets.values_mut() {
            *value = Value::String(REDACTED.to_owned());
        }
    }
    if let Some(token) = payload.get_mut("rossum_authorization_token") {
        *token = Value::String(REDACTED.to_owned());
    }
    redactor.redact_json(Value::Object(payload))
}

/// The run status of a runtime outcome.
pub fn run_status(outcome: &Outcome) -> RunStatus {
    match outcome {
        Outcome::Completed { .. } => RunStatus::Completed,
        Outcome::Timeout { .. } => RunStatus::Timeout,
        Outcome::Failed(_) | Outcome::MemoryLimitExceeded { .. } => RunStatus::Failed,
    }
}

/// How one call ended, for its run log.
struct Ending<'a> {
    status: RunStatus,
    status_code: Option<u16>,
    message: String,
    response: Option<&'a Map<String, Value>>,
    output: Option<String>,
    started_at: SystemTime,
    duration: Duration,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A call carrying a short secret and a token, its run log kept or not.
    fn logged(payload_logging: bool) -> Result<RunLog, PayloadError> {
        let event = EventAction::new("annotation_content", "initialize")
            .map_err(|error| PayloadError::Json(error.to_string()))?;
        let settings = Map::new();
        let secrets = vec![
            ("pin".to_owned(), "12".to_owned()),
            ("api_key".to_owned(), "long-secret-value".to_owned()),
        ];
        let mut body = EventFields::default();
        body.insert(
            "note".into(),
            &Value::String("echoes long-secret-value".into()),
        );
        let prepared = PreparedCall::new(&HookCall {
            event: &event,
            hook_id: 1,
            hook_type: HookType::Function,
            organization_id: 1,
            base_url: "http://localhost",
            settings: &settings,
            secrets: &secrets,
            token: Some("minted-token-value"),
            body: &body,
            queue_id: None,
            request_id: "r-1",
            payload_logging,
        })?;
        Ok(prepared.cancelled_log("not run"))
    }

    #[test]
    fn the_annotation_is_the_last_id_of_an_annotation_object() {
        let id =
            |body: &str| annotation_id(&EventFields::parse(body.as_bytes()).unwrap_or_default());
        assert_eq!(
            id(r#"{"annotation": {"content": [{"id": 9}], "id": 42}}"#),
            Some(42)
        );
        assert_eq!(id(r#"{"annotation": {"id": 1, "id": 2}}"#), Some(2));
        assert_eq!(id(r#"{"annotation": [4242]}"#), None);
        assert_eq!(id(r#"{"annotation": {"id": "42"}}"#), None);
        assert_eq!(id(r#"{"document": {"id": 42}}"#), None);
    }

    #[test]
    fn the_payload_stays_out_of_the_run_log_unless_the_hook_keeps_it() -> Result<(), PayloadError> {
        assert_eq!(logged(false)?.request, None);
        let kept = logged(true)?
            .request
            .ok_or_else(|| PayloadError::Json("no request kept".into()))?;
        assert_eq!(kept["secrets"]["pin"], REDACTED);
        assert_eq!(kept["secrets"]["api_key"], REDACTED);
        assert_eq!(kept["rossum_authorization_token"], REDACTED);
        assert_eq!(kept["note"], "echoes [redacted...]");
        let text = kept.to_string();
        assert!(!text.contains("long-secret-value") && !text.contains("minted-token-value"));
        Ok(())
    }
}
