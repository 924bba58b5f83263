//! Calling hooks: `POST /hooks/{id}/test`, `POST /hooks/{id}/invoke` (with a token, or
//! signed by an outside platform with the hook's `config.secret`), and `POST /events`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, StatusCode};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::access::RequestId;
use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId};
use super::json::Json;
use super::logs::RunStatusView;
use super::{hooks, id_from, AppState};
use crate::dispatch::plan::subscribed;
use crate::dispatch::{DeliveryPhase, DispatchError, EventAnswer, EventProgress, EventRun};
use crate::model::hook::Hook;
use crate::model::{EventAction, EventFields, RESERVED_KEYS};
use crate::modules::ModuleError;

pub(crate) mod answers;
mod invoke;

use invoke::refuse_host_keys;
pub(super) use invoke::{__path_invoke, invoke};

/// The header an outside platform signs an invocation with.
pub const SIGNATURE_HEADER: &str = "x-rossum-signature-sha256";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TestBody {
    payload: Map<String, Value>,
    #[serde(default)]
    config: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    event: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    queue: Option<Value>,
    #[serde(default)]
    payload: Map<String, Value>,
}

/// Refuses a member running a hook whose token owner is an admin: the run would put an
/// admin's token in the hands of the member's call (the extension may echo it, and it can
/// write what the member may not). Admins, and hooks without a token owner or owned by a
/// member, run as asked.
async fn may_run(state: &AppState, caller: &Caller, hooks: &[&Hook]) -> ApiResult<()> {
    if caller.role() != Some(Role::Member) {
        return Ok(());
    }
    let owned: Vec<(u64, u64)> = hooks
        .iter()
        .filter_map(|hook| hook.spec.token_owner.map(|owner| (hook.id, owner)))
        .collect();
    if owned.is_empty() {
        return Ok(());
    }
    let owners: Vec<u64> = owned.iter().map(|(_, owner)| *owner).collect();
    let admins = state.store.users().admins_among(&owners).await?;
    match owned.iter().find(|(_, owner)| admins.contains(owner)) {
        Some((hook, _)) => Err(ApiError::ForbiddenBecause(format!(
            "Hook {hook} runs with a token of an admin (its token_owner); a member may not run it. \
             Ask an admin to run it, or to make its token_owner a member."
        ))),
        None => Ok(()),
    }
}

/// Maps why a hook could not run. `pending` is 409 for tests and 400 for invocations, as
/// Rossum answers.
fn not_run(error: DispatchError, pending: fn(String) -> ApiError) -> ApiError {
    match error {
        DispatchError::Module(ModuleError::Pending) => pending(
            "The hook's module is still being compiled (status: pending); retry in a few seconds."
                .into(),
        ),
        DispatchError::Module(ModuleError::Failed(reason)) => ApiError::non_field(format!(
            "The hook's module failed to load (status: failed): {reason}"
        )),
        DispatchError::Payload(payload) => ApiError::field("payload", payload.to_string()),
        backlog @ DispatchError::Backlog { .. } => ApiError::TooManyRequests {
            detail: backlog.to_string(),
            retry_after_s: 30,
        },
        other => ApiError::Internal(other.to_string()),
    }
}

fn event_of(event: &Value, action: &Value) -> ApiResult<EventAction> {
    let (Some(event), Some(action)) = (event.as_str(), action.as_str()) else {
        return Err(ApiError::field(
            "payload",
            "`event` and `action` are required strings",
        ));
    };
    EventAction::new(event, action).map_err(|error| ApiError::field("payload", error.to_string()))
}

/// The event's own keys: the payload without what the host sets.
fn event_keys(payload: &Map<String, Value>) -> EventFields {
    let mut keys = EventFields::default();
    for (key, value) in payload
        .iter()
        .filter(|(key, _)| !RESERVED_KEYS.contains(&key.as_str()))
    {
        keys.insert(key.clone(), value);
    }
    keys
}

/// The hook as `/test` runs it with another config: an admin's decision (another module
/// or allowed_hosts would run with the hook's real secrets and its owner's token), valid as
/// a whole, and naming only the organization's own module.
async fn with_override(
    state: &AppState,
    caller: &Caller,
    stored: &Hook,
    config: &Map<String, Value>,
) -> ApiResult<Hook> {
    let (organization_id, _) = caller.member()?;
    // Another module or allowed_hosts would run with the hook's real secrets (and its
    // owner's token) and could send them anywhere: an admin's decision.
    if caller.admin().is_err() {
        return Err(ApiError::ForbiddenBecause(
            "config: only an admin may test a hook with another config; \
             it would run with the hook's secrets"
                .into(),
        ));
    }
    let kind = stored.spec.with_config_override(config, &state.bounds)?;
    if let Some(module) = kind.module_id() {
        let owned = state
            .store
            .module(module)
            .await?
            .is_some_and(|m| m.organization_id == organization_id);
        if !owned {
            return Err(crate::model::hook::HookError::config(
                "module",
                format!("no module {module} in this organization"),
            )
            .into());
        }
    }
    let mut hook = stored.clone();
    hook.spec.kind = kind;
    Ok(hook)
}

/// `POST /hooks/{id}/test`: runs the hook (with another config, for an admin) on the
/// payload's event and keys, and answers its response, output and status.
/// What `/test` answers: the run's response and output.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TestAnswer {
    /// The hook's response (`messages`, `operations`, ...); null when it gave none.
    response: Option<Map<String, Value>>,
    /// The module's captured output.
    log: String,
    #[schema(value_type = RunStatusView)]
    status: crate::model::RunStatus,
    message: String,
    request_id: String,
}

/// An invocation whose hook gave no response (400): why, with the run's status.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct InvocationFailed {
    detail: String,
    #[schema(value_type = RunStatusView)]
    status: crate::model::RunStatus,
    request_id: String,
}

/// One hook's run for an event.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventRunView {
    /// The hook's URL.
    hook: String,
    /// How its run ended; null while a non-interactive event's delivery is not finished.
    #[schema(value_type = Option<RunStatusView>)]
    status: Option<crate::model::RunStatus>,
    /// Its run log's message (while unfinished, its last attempt's): its first 1,024
    /// characters; the run log keeps it whole.
    message: String,
    response: Option<Map<String, Value>>,
    request_id: String,
    /// A non-interactive event's delivery: `waiting` (for the hooks it runs after),
    /// `pending`, `running`, `retrying` (an attempt failed, the next is due later),
    /// `polling` (its webhook answered 202) or `finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    /// A non-interactive event's delivery: attempts begun.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u64>,
    /// A non-interactive event's delivery: the most attempts it may have (1 plus the
    /// hook's `retry_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_attempts: Option<u64>,
    /// A finished run whose response is left out of this answer (`response` null;
    /// present only when true): an answer holds 8 MiB of its event's responses at most, in
    /// plan order, and this one came past it. Its run log holds it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    response_omitted: bool,
}

/// What `POST /events` and `GET /events/{id}` answer: each run, and what the finished
/// runs' responses say together. A non-interactive event is recorded, and carries its id,
/// URL and state.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct EventAnswerView {
    /// A non-interactive event's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    /// A non-interactive event's URL, where its progress is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// A non-interactive event's state: `running` until every hook's delivery is
    /// finished, then `finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    /// When a non-interactive event was accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    /// When a non-interactive event's last delivery finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<String>,
    event: String,
    action: String,
    results: Vec<EventRunView>,
    /// How many finished runs did not complete.
    failed: usize,
    messages: Vec<Value>,
    operations: Vec<Value>,
    automation_blockers: Vec<Value>,
}

#[utoipa::path(post, path = "/api/v1/hooks/{id}/test", tag = "hooks", params(IdPath),
    request_body = TestBody,
    responses(
        (status = 200, description = "The run's answer", body = TestAnswer),
        (status = 400, description = "The payload or config is not valid, or the module failed to load", body = ValidationErrors),
        (status = 403, description = "Not allowed to run it", body = ErrorDetail),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
        (status = 409, description = "Its module is still compiling", body = ErrorDetail),
        (status = 429, description = "The organization's run slots or memory are in use", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn test(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<TestBody>,
) -> ApiResult<axum::Json<TestAnswer>> {
    let stored = hooks::visible(&state, &caller, id).await?;
    let (organization_id, _) = caller.member()?;
    may_run(&state, &caller, &[stored.as_ref()]).await?;
    let event = event_of(
        body.payload.get("event").unwrap_or(&Value::Null),
        body.payload.get("action").unwrap_or(&Value::Null),
    )?;
    let overridden = match &body.config {
        Some(config) => Some(with_override(&state, &caller, &stored, config).await?),
        None => None,
    };
    let hook = overridden.as_ref().unwrap_or(&stored);
    let permit = state
        .dispatcher
        .limits()
        .try_acquire_for(organization_id, &[hook])?;
    let result = state
        .dispatcher
        .run(
            permit,
            hook,
            &event,
            &event_keys(&body.payload),
            None,
            &request_id.0,
        )
        .await
        .map_err(|error| not_run(error, ApiError::Conflict))?;
    Ok(axum::Json(TestAnswer {
        response: result.response,
        log: result.output,
        status: result.status,
        message: result.message,
        request_id: result.request_id,
    }))
}

/// The queue an event names, which must be the caller's organization's; none when it
/// names none.
async fn event_queue(
    state: &AppState,
    organization_id: u64,
    queue: Option<&Value>,
) -> ApiResult<Option<u64>> {
    Ok(match queue {
        None | Some(Value::Null) => None,
        Some(reference) => {
            let id = id_from(reference, "queues")
                .ok_or_else(|| ApiError::field("queue", "expected a queue URL"))?;
            let owned = state.store.queues().owned(organization_id, &[id]).await?;
            if owned.is_empty() {
                return Err(ApiError::field(
                    "queue",
                    format!("no queue {id} in this organization"),
                ));
            }
            Some(id)
        }
    })
}

/// The event a body names: `event` and `action`, or `event` as `EVENT.ACTION`.
fn named_event(body: &EventBody) -> ApiResult<(String, String, EventAction)> {
    let (event_name, action) = match (&body.action, body.event.split_once('.')) {
        (Some(action), _) => (body.event.clone(), action.clone()),
        (None, Some((event, action))) => (event.to_owned(), action.to_owned()),
        (None, None) => {
            return Err(ApiError::field(
                "action",
                "required (or send `event` as EVENT.ACTION)",
            ))
        }
    };
    let event = EventAction::new(&event_name, &action)
        .map_err(|error| ApiError::field("event", error.to_string()))?;
    Ok((event_name, action, event))
}

/// The answer to an interactive event: each run, and what their responses say together.
/// The runs are as `Dispatcher::run_event` kept them (their responses within
/// `dispatch::ANSWERED_RESPONSE_BYTES`, each left out marked, their messages cut), and are
/// moved into the answer: only the fold's lists are copies.
fn render_event(
    state: &AppState,
    event_name: &str,
    action: &str,
    runs: Vec<EventRun>,
) -> EventAnswerView {
    let folded = EventAnswer::fold(&runs);
    let results: Vec<EventRunView> = runs
        .into_iter()
        .map(|run| EventRunView {
            hook: state.url("hooks", run.hook_id),
            status: Some(run.status),
            message: run.message,
            response: run.response,
            request_id: run.request_id,
            state: None,
            attempts: None,
            max_attempts: None,
            response_omitted: run.response_omitted,
        })
        .collect();
    EventAnswerView {
        id: None,
        url: None,
        state: None,
        created_at: None,
        finished_at: None,
        event: event_name.to_owned(),
        action: action.to_owned(),
        results,
        failed: folded.failed,
        messages: folded.messages,
        operations: folded.operations,
        automation_blockers: folded.automation_blockers,
    }
}

/// The answer about a non-interactive event: each delivery where it is, and what the
/// finished ones' responses say together. The responses are those the store read within
/// the answer's budget (`dispatch::ANSWERED_RESPONSE_BYTES`); a delivery whose response
/// was left out says so, and the fold is of those read.
fn render_progress(state: &AppState, progress: &EventProgress) -> EventAnswerView {
    let event = &progress.event;
    let phases: Vec<DeliveryPhase> = progress.deliveries.iter().map(DeliveryPhase::of).collect();
    // The finished deliveries' responses, each parsed once: folded, then answered.
    let responses: Vec<Option<Map<String, Value>>> = progress
        .deliveries
        .iter()
        .zip(&phases)
        .map(|(delivery, phase)| {
            let text = delivery
                .response
                .as_deref()
                .filter(|_| *phase == DeliveryPhase::Finished)?;
            match serde_json::from_str(text) {
                Ok(Value::Object(response)) => Some(response),
                _ => None,
            }
        })
        .collect();
    let folded = EventAnswer::fold_ended(
        progress
            .deliveries
            .iter()
            .zip(&phases)
            .zip(&responses)
            .filter(|((_, phase), _)| **phase == DeliveryPhase::Finished)
            .filter_map(|((delivery, _), response)| Some((delivery.status?, response.as_ref()))),
    );
    let results = progress
        .deliveries
        .iter()
        .zip(phases)
        .zip(responses)
        .map(|((delivery, phase), response)| {
            let finished = phase == DeliveryPhase::Finished;
            EventRunView {
                hook: state.url("hooks", delivery.hook_id),
                status: delivery.status.filter(|_| finished),
                message: delivery.message.clone().unwrap_or_default(),
                response,
                request_id: event.request_id.clone(),
                state: Some(phase.as_str()),
                attempts: Some(delivery.attempt),
                max_attempts: Some(delivery.max_attempts),
                response_omitted: finished && delivery.response_omitted,
            }
        })
        .collect();
    EventAnswerView {
        id: Some(event.id),
        url: Some(state.url("events", event.id)),
        state: Some(if progress.finished() {
            "finished"
        } else {
            "running"
        }),
        created_at: Some(event.created_at.clone()),
        finished_at: event.finished_at.clone(),
        event: event.event.clone(),
        action: event.action.clone(),
        results,
        failed: folded.failed,
        messages: folded.messages,
        operations: folded.operations,
        automation_blockers: folded.automation_blockers,
    }
}

/// `POST /events`: runs the organization's hooks that subscribe to the event (on its queue,
/// when it names one), in run_after order. An interactive event's hooks run once each and
/// it is answered with every run. A non-interactive event is recorded with a delivery per
/// hook and its first attempts made at once: answered 200 when they finished every
/// delivery, else 202 with the event's URL (`Location`), where its retries, polling and
/// later hooks are seen as any replica completes them.
#[utoipa::path(post, path = "/api/v1/events", tag = "hooks", request_body = EventBody,
    responses(
        (status = 200, description = "Each run, and their folded answer", body = EventAnswerView),
        (status = 202, description = "A non-interactive event with deliveries still to finish (retries, polling, later hooks): its progress so far; poll its URL", body = EventAnswerView,
            headers(("Location" = String, description = "The event's URL"))),
        (status = 400, description = "The event or payload is not valid", body = ValidationErrors),
        (status = 403, description = "Not allowed to run these hooks", body = ErrorDetail),
        (status = 409, description = "A module is still compiling", body = ErrorDetail),
        (status = 429, description = "The organization's run slots or memory are in use, or its deliveries not yet finished are at their bound", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn event(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<EventBody>,
) -> ApiResult<Response> {
    let (organization_id, _) = caller.member()?;
    let (event_name, action, event) = named_event(&body)?;
    let queue_id = event_queue(&state, organization_id, body.queue.as_ref()).await?;
    refuse_host_keys(body.payload.keys().map(String::as_str), Some("payload"))?;
    let fields = EventFields::from_map(&body.payload);
    let hooks = state.store.organization_hooks(organization_id).await?;
    let matching = subscribed(&hooks, &event, queue_id);
    may_run(&state, &caller, &matching).await?;
    let permit = state
        .dispatcher
        .limits()
        .try_acquire_for(organization_id, &matching)?;
    if event.is_interactive() {
        let runs = state
            .dispatcher
            .run_event(permit, &hooks, &event, queue_id, &fields, &request_id.0)
            .await
            .map_err(|error| not_run(error, ApiError::Conflict))?;
        let answer = render_event(&state, &event_name, &action, runs);
        return Ok(axum::Json(answer).into_response());
    }
    let progress = state
        .dispatcher
        .deliver_event(permit, &hooks, &event, queue_id, &fields, &request_id.0)
        .await
        .map_err(|error| not_run(error, ApiError::Conflict))?;
    let Some(progress) = progress else {
        // No hook runs for it: nothing to record.
        let answer = render_event(&state, &event_name, &action, Vec::new());
        return Ok(axum::Json(answer).into_response());
    };
    let answer = render_progress(&state, &progress);
    if progress.finished() {
        return Ok(axum::Json(answer).into_response());
    }
    let location = answer.url.clone().unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(answer),
    )
        .into_response())
}

/// `GET /events/{id}`: a non-interactive event of the caller's organization, each hook's
/// delivery where it is (attempts, retries, polling), and what the finished ones' responses
/// say together.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "hooks", params(IdPath),
    responses(
        (status = 200, description = "The event and its deliveries", body = EventAnswerView),
        (status = 404, description = "No such event in the caller's organization", body = ErrorDetail),
        (status = 429, description = "Another answer about an event of the organization is being made, or the server's are all taken", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn show_event(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<Response> {
    let (organization_id, _) = caller.member()?;
    // Held until the answer is bytes: its parsed responses are what the turns bound.
    let _turn = state.event_answers.take(organization_id).await?;
    let progress = state
        .dispatcher
        .event_progress(id, Some(organization_id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let view = render_progress(&state, &progress);
    drop(progress);
    let body = serde_json::to_vec(&view)
        .map_err(|error| ApiError::Internal(format!("cannot write an event's answer: {error}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
