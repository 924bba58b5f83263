//! `/organizations`: the operator creates them; a user sees its own.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ObjectId, Params};
use super::json::Json;
use super::pagination::{list_page, PageQuery, Paginated};
use super::AppState;
use crate::model::now_rfc3339;
use crate::store::organizations::{Organization, OrganizationOrder};

/// The `ordering` values of the organizations list.
const ORDERINGS: &[(&str, OrganizationOrder)] = &[
    ("id", OrganizationOrder::Id),
    ("name", OrganizationOrder::Name),
];

/// The longest name accepted.
const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrganization {
    name: String,
}

/// An organization in Rossum's shape. wasmhook has no workspaces (`workspaces: []`), no
/// trials or expiry, and one organization group, the installation (see
/// [`super::placeholders`]).
fn render(state: &AppState, organization: &Organization) -> Value {
    let users: Vec<String> = organization
        .users
        .iter()
        .map(|id| state.url("users", *id))
        .collect();
    json!({
        "id": organization.id,
        "url": state.url("organizations", organization.id),
        "name": organization.name,
        "workspaces": [],
        "users": users,
        "organization_group": super::placeholders::organization_group_url(state),
        "is_trial": false,
        "created_at": organization.created_at,
        "trial_expires_at": null,
        "expires_at": null,
        "oidc_provider": null,
        "ui_settings": {},
        "metadata": {},
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
        .organizations()
        .create(&name, &created_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(render(&state, &organization)),
    ))
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<PageQuery>,
) -> ApiResult<axum::Json<Paginated>> {
    let only = caller.organization();
    let store = &state.store;
    list_page(
        &state,
        "organizations",
        &query,
        ORDERINGS,
        move |window| async move { store.organizations().list(only, window).await },
        |row| render(&state, row),
    )
    .await
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
        .organizations()
        .get(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &organization)))
}
