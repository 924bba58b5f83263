//! `GET /hooks/logs`: run logs, newest first, with Rossum's filters. Like Rossum's, the
//! answer is `{"results": [...]}` with at most `page_size` (100) entries; narrow with
//! `start_before` to see older ones.

use axum::extract::State;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
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
fn render(log: &RunLog) -> Value {
    let mut value = serde_json::to_value(log).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "request".into(),
            log.request
                .as_ref()
                .map_or(Value::Null, |request| Value::String(request.to_string())),
        );
        object.insert(
            "response".into(),
            log.response
                .as_ref()
                .map_or(Value::Null, |response| Value::String(response.to_string())),
        );
    }
    value
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(pairs): Params<Vec<(String, String)>>,
) -> ApiResult<axum::Json<Value>> {
    let mut filter = filter_from(pairs)?;
    filter.organization = caller.organization();
    let logs = state.store.run_logs().query(filter).await?;
    let results: Vec<Value> = logs.iter().map(render).collect();
    Ok(axum::Json(json!({ "results": results })))
}
