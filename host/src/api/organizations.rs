//! `/organizations`: the operator creates them; a user sees its own.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::ObjectId;
use super::json::Json;
use super::pagination::{PageQuery, Paginated};
use super::AppState;
use crate::model::now_rfc3339;
use crate::store::organizations::{self, Organization};

/// The longest name accepted.
const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrganization {
    name: String,
}

fn render(state: &AppState, organization: &Organization) -> Value {
    json!({
        "id": organization.id,
        "url": state.url("organizations", organization.id),
        "name": organization.name,
        "users": format!("{}?organization={}", state.list_url("users"), organization.id),
        "created_at": organization.created_at,
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewOrganization>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    if caller != Caller::Operator {
        return Err(ApiError::Forbidden);
    }
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "name: must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let created_at = now_rfc3339();
    let organization = state
        .store
        .run(move |connection| organizations::create(connection, &name, &created_at))
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(render(&state, &organization)),
    ))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<PageQuery>,
) -> ApiResult<axum::Json<Paginated>> {
    let request = query.validate()?;
    let only = caller.organization();
    let page = state
        .store
        .run(move |connection| organizations::list(connection, only, request.window()))
        .await?;
    let list_url = state.list_url("organizations");
    Ok(axum::Json(Paginated::new(&page, request, &list_url, |o| {
        render(&state, o)
    })))
}

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<Value>> {
    if !caller.can_see(id) {
        return Err(ApiError::NotFound);
    }
    let organization = state
        .store
        .run(move |connection| organizations::get(connection, id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &organization)))
}
