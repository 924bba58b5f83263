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
            ApiError::BadRequest(format!(
                "{name}: `{text}` is not an RFC 3339 time such as 2026-01-31T12:00:00Z"
            ))
        })?;
    Ok(format_rfc3339(at.into()))
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
            "hook" | "hook_id" => {
                for v in values {
                    filter.hooks.push(parse_id(&name, v)?);
                }
            }
            "queue" => {
                for v in values {
                    filter.queues.push(parse_id(&name, v)?);
                }
            }
            "annotation" => {
                for v in values {
                    filter.annotations.push(parse_id(&name, v)?);
                }
            }
            "email" => {
                for v in values {
                    filter.emails.push(parse_id(&name, v)?);
                }
            }
            "log_level" => {
                for v in values {
                    let level = v.to_ascii_uppercase();
                    if !["INFO", "WARNING", "ERROR"].contains(&level.as_str()) {
                        return Err(ApiError::BadRequest(format!(
                            "log_level: `{v}` is not one of INFO, WARNING, ERROR"
                        )));
                    }
                    filter.log_levels.push(level);
                }
            }
            "status" => {
                for v in values {
                    if ![
                        "completed",
                        "failed",
                        "timeout",
                        "cancelled",
                        "waiting",
                        "running",
                    ]
                    .contains(&v)
                    {
                        return Err(ApiError::BadRequest(format!(
                            "status: `{v}` is not one of completed, failed, timeout, cancelled"
                        )));
                    }
                    filter.statuses.push(v.to_owned());
                }
            }
            "status_code" => {
                for v in values {
                    filter.status_codes.push(v.parse().map_err(|_| {
                        ApiError::BadRequest(format!("status_code: `{v}` is not a status code"))
                    })?);
                }
            }
            "request_id" => filter.request_id = Some(value),
            "timestamp_before" => filter.timestamp_before = Some(parse_time(&name, &value)?),
            "timestamp_after" => filter.timestamp_after = Some(parse_time(&name, &value)?),
            "start_before" => filter.start_before = Some(parse_time(&name, &value)?),
            "start_after" => filter.start_after = Some(parse_time(&name, &value)?),
            "end_before" => filter.end_before = Some(parse_time(&name, &value)?),
            "end_after" => filter.end_after = Some(parse_time(&name, &value)?),
            "search" => filter.search = Some(value),
            "page_size" => {
                // Above the maximum: the maximum, as for every list.
                filter.limit = match value.parse::<u64>() {
                    Ok(size) if size >= 1 => size.min(MAX_PAGE_SIZE),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "page_size: `{value}` is not a positive integer"
                        )))
                    }
                }
            }
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
