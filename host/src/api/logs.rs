//! `GET /hooks/logs`: run logs, newest first, with Rossum's filters. Like Rossum's, the
//! answer is `{"results": [...]}` with at most `page_size` (100) entries; narrow with
//! `start_before` to see older ones.

use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ValidationErrors};
use super::extract::{parse_id, Params};
use super::AppState;
use crate::model::{format_rfc3339, RunLog};
use crate::store::run_logs::RunLogFilter;

/// Entries per answer unless asked, and at most.
const MAX_PAGE_SIZE: u64 = 100;

/// A time bound, re-written in the stored form so that text comparison orders it.
fn parse_time(name: &str, text: &str) -> ApiResult<String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::field(
                name,
                format!("`{text}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"),
            )
        })?;
    Ok(format_rfc3339(at.into()))
}

/// The log levels a filter may name.
const LOG_LEVELS: [&str; 3] = ["INFO", "WARNING", "ERROR"];

/// The statuses a filter may name: the finished ones, and those of a run still going.
const STATUSES: [&str; 6] = [
    "completed",
    "failed",
    "timeout",
    "cancelled",
    "waiting",
    "running",
];

/// Each of `values` as an id, into `ids`; the first that is none is refused by `name`.
fn push_ids(ids: &mut Vec<u64>, name: &str, values: &[&str]) -> ApiResult<()> {
    for value in values {
        ids.push(parse_id(name, value)?);
    }
    Ok(())
}

/// Each of `values` as a log level (in any case), into `levels`.
fn push_log_levels(levels: &mut Vec<String>, values: &[&str]) -> ApiResult<()> {
    for value in values {
        let level = value.to_ascii_uppercase();
        if !LOG_LEVELS.contains(&level.as_str()) {
            return Err(ApiError::field(
                "log_level",
                format!("`{value}` is not one of INFO, WARNING, ERROR"),
            ));
        }
        levels.push(level);
    }
    Ok(())
}

/// Each of `values` as a run status, into `statuses`.
fn push_statuses(statuses: &mut Vec<String>, values: &[&str]) -> ApiResult<()> {
    for value in values {
        if !STATUSES.contains(value) {
            return Err(ApiError::field(
                "status",
                format!("`{value}` is not one of completed, failed, timeout, cancelled"),
            ));
        }
        statuses.push((*value).to_owned());
    }
    Ok(())
}

/// Each of `values` as an HTTP status code, into `codes`.
fn push_status_codes(codes: &mut Vec<u16>, values: &[&str]) -> ApiResult<()> {
    for value in values {
        codes.push(value.parse().map_err(|_| {
            ApiError::field("status_code", format!("`{value}` is not a status code"))
        })?);
    }
    Ok(())
}

/// A page size: a positive integer, and above the maximum the maximum, as for every list.
fn page_size(value: &str) -> ApiResult<u64> {
    match value.parse::<u64>() {
        Ok(size) if size >= 1 => Ok(size.min(MAX_PAGE_SIZE)),
        _ => Err(ApiError::field(
            "page_size",
            format!("`{value}` is not a positive integer"),
        )),
    }
}

/// The filter of the query's parameters (empty ones dropped by [`Params`]).
fn filter_from(pairs: Vec<(String, String)>) -> ApiResult<RunLogFilter> {
    let mut filter = RunLogFilter {
        limit: MAX_PAGE_SIZE,
        ..RunLogFilter::default()
    };
    for (name, value) in pairs {
        // Rossum's clients repeat a parameter or join values with commas; both work.
        let values: Vec<&str> = value.split(',').filter(|v| !v.is_empty()).collect();
        match name.as_str() {
            "hook" | "hook_id" => push_ids(&mut filter.hooks, &name, &values)?,
            "queue" => push_ids(&mut filter.queues, &name, &values)?,
            "annotation" => push_ids(&mut filter.annotations, &name, &values)?,
            "email" => push_ids(&mut filter.emails, &name, &values)?,
            "log_level" => push_log_levels(&mut filter.log_levels, &values)?,
            "status" => push_statuses(&mut filter.statuses, &values)?,
            "status_code" => push_status_codes(&mut filter.status_codes, &values)?,
            "request_id" => filter.request_id = Some(value),
            "timestamp_before" => filter.timestamp_before = Some(parse_time(&name, &value)?),
            "timestamp_after" => filter.timestamp_after = Some(parse_time(&name, &value)?),
            "start_before" => filter.start_before = Some(parse_time(&name, &value)?),
            "start_after" => filter.start_after = Some(parse_time(&name, &value)?),
            "end_before" => filter.end_before = Some(parse_time(&name, &value)?),
            "end_after" => filter.end_after = Some(parse_time(&name, &value)?),
            "search" => filter.search = Some(value),
            "page_size" => filter.limit = page_size(&value)?,
            // What is no filter of hook logs is ignored, as DRF ignores it (`ordering`,
            // `sideload`, `include_total` from Rossum's client among them).
            _ => {}
        }
    }
    Ok(filter)
}

/// A run log in Rossum's HookRunData shape: `request` and `response` as JSON text, or null
/// (`request` when the hook does not keep its payload).
/// How a run ended (or that it is still going).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(super) enum RunStatusView {
    Completed,
    Failed,
    Timeout,
    Cancelled,
}

/// A run log's severity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code)]
pub(super) enum LogLevelView {
    Info,
    Warning,
    Error,
}

/// One run of one hook for one event, Rossum's HookRunData.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RunLogView {
    uuid: String,
    /// The call's request id (shared by retries of the same call).
    request_id: String,
    /// When the event happened.
    timestamp: String,
    event: String,
    action: String,
    organization_id: u64,
    hook_id: u64,
    /// `function`, `webhook` or `job`.
    hook_type: String,
    queue_id: Option<u64>,
    annotation_id: Option<u64>,
    email_id: Option<u64>,
    #[schema(value_type = RunStatusView)]
    status: crate::model::RunStatus,
    #[schema(value_type = LogLevelView)]
    log_level: crate::model::LogLevel,
    /// A webhook's HTTP status; null for functions.
    status_code: Option<u16>,
    message: String,
    /// The payload sent, as JSON text; null unless the hook's
    /// `config.payload_logging_enabled` is true. Secrets and token redacted.
    request: Option<String>,
    /// The response received, as JSON text (redacted).
    response: Option<String>,
    /// A module's captured output; absent for webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    /// The hook's settings at the time of the run.
    settings: Value,
    start: String,
    end: String,
    /// Wall time of the run in milliseconds.
    duration_ms: f64,
}

/// The run logs' answer: `{"results": [...]}`, newest first, no pagination (Rossum's).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct RunLogs {
    results: Vec<RunLogView>,
}

/// The filters of `GET /hooks/logs`, as the OpenAPI document describes them ([`filter_from`]
/// reads them); each takes a comma-separated list where it names ids, levels, statuses or
/// codes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct LogFilter {
    /// Hook ids (also as `hook_id`).
    hook: Option<String>,
    /// Hook ids (the same as `hook`).
    hook_id: Option<String>,
    /// Queue ids.
    queue: Option<String>,
    /// Annotation ids.
    annotation: Option<String>,
    /// Email ids.
    email: Option<String>,
    /// `INFO`, `WARNING`, `ERROR` (any case).
    log_level: Option<String>,
    /// `completed`, `failed`, `timeout`, `cancelled`, `waiting`, `running`.
    status: Option<String>,
    /// HTTP status codes.
    status_code: Option<String>,
    /// One call's request id.
    request_id: Option<String>,
    /// RFC 3339 times.
    #[param(format = DateTime)]
    timestamp_before: Option<String>,
    #[param(format = DateTime)]
    timestamp_after: Option<String>,
    #[param(format = DateTime)]
    start_before: Option<String>,
    #[param(format = DateTime)]
    start_after: Option<String>,
    #[param(format = DateTime)]
    end_before: Option<String>,
    #[param(format = DateTime)]
    end_after: Option<String>,
    /// Text searched in the message and output.
    search: Option<String>,
    /// At most this many entries (100 unless asked, and at most).
    #[param(value_type = Option<u64>, minimum = 1)]
    page_size: Option<String>,
}

fn render(log: &RunLog) -> RunLogView {
    RunLogView {
        uuid: log.uuid.clone(),
        request_id: log.request_id.clone(),
        timestamp: log.timestamp.clone(),
        event: log.event.clone(),
        action: log.action.clone(),
        organization_id: log.organization_id,
        hook_id: log.hook_id,
        hook_type: log.hook_type.clone(),
        queue_id: log.queue_id,
        annotation_id: log.annotation_id,
        email_id: log.email_id,
        status: log.status,
        log_level: log.log_level,
        status_code: log.status_code,
        message: log.message.clone(),
        request: log.request.as_ref().map(Value::to_string),
        response: log.response.as_ref().map(Value::to_string),
        output: log.output.clone(),
        settings: log.settings.clone(),
        start: log.start.clone(),
        end: log.end.clone(),
        duration_ms: log.duration_ms,
    }
}

#[utoipa::path(get, path = "/api/v1/hooks/logs", tag = "hooks", params(LogFilter),
    responses(
        (status = 200, description = "The organization's run logs, newest first", body = RunLogs),
        (status = 400, description = "A filter is not valid (ValidationErrors), or the read ran past `log_query_ms` (ErrorDetail: narrow the filter)", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(pairs): Params<Vec<(String, String)>>,
) -> ApiResult<axum::Json<RunLogs>> {
    let mut filter = filter_from(pairs)?;
    filter.organization = caller.organization();
    let logs = state
        .store
        .run_logs()
        .query(filter, state.log_query_deadline)
        .await?;
    Ok(axum::Json(RunLogs {
        results: logs.iter().map(render).collect(),
    }))
}
