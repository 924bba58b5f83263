//! Objects Rossum's client requires a URL of, which wasmhook does not have: a queue's
//! `schema` and an organization's `organization_group`.
//!
//! `rossum-api`'s models demand both as strings (a null fails to parse), so each points at
//! a minimal resource that says what it is rather than at nothing:
//!
//! - `/schemas/{id}`: wasmhook extracts no data from documents, so a queue has no schema of
//!   its own. Each queue gets a placeholder schema whose id is the queue's, with no content
//!   (`content: []`), named as a placeholder; it is seen by whoever sees its queue (another
//!   organization's is 404, as its queue is).
//! - `/organization_groups/1`: Rossum groups organizations under one license; a wasmhook
//!   installation has no licenses, so every organization is in the one group, the
//!   installation, which is not a trial.

use axum::extract::State;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorDetail};
use super::extract::{IdPath, ObjectId};
use super::AppState;
use crate::store::queues::Queue;

/// The id of the one organization group: the installation.
const ORGANIZATION_GROUP_ID: u64 = 1;

/// The URL of a queue's placeholder schema (its id is the queue's).
pub(super) fn schema_url(state: &AppState, queue: &Queue) -> String {
    state.url("schemas", queue.id)
}

/// The URL of the organization group every organization is in.
pub(super) fn organization_group_url(state: &AppState) -> String {
    state.url("organization_groups", ORGANIZATION_GROUP_ID)
}

/// `GET /schemas/{id}`: the placeholder schema of queue `id`, in the shape of Rossum's
/// schema.
/// A queue's placeholder schema (wasmhook keeps no schemas): no content.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SchemaView {
    id: u64,
    url: String,
    name: String,
    queues: Vec<String>,
    /// Always empty.
    content: Vec<Value>,
    metadata: Map<String, Value>,
    modified_by: Option<String>,
    modified_at: String,
}

/// The one organization group, the installation.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OrganizationGroupView {
    id: u64,
    url: String,
    name: &'static str,
    is_trial: bool,
    is_production: bool,
    deployment_location: &'static str,
    modified_by: Option<String>,
    modified_at: Option<String>,
    features: Option<Map<String, Value>>,
    usage: Map<String, Value>,
}

#[utoipa::path(get, path = "/api/v1/schemas/{id}", tag = "queues", params(IdPath),
    responses(
        (status = 200, description = "The placeholder schema of queue `id`", body = SchemaView),
        (status = 404, description = "No such queue in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn schema(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<SchemaView>> {
    let queue = super::extract::visible(&caller, state.store.queues().get(id).await?)?;
    Ok(axum::Json(SchemaView {
        id: queue.id,
        url: schema_url(&state, &queue),
        name: format!("placeholder schema of queue {}", queue.name),
        queues: vec![state.url("queues", queue.id)],
        content: Vec::new(),
        metadata: Map::new(),
        modified_by: None,
        modified_at: queue.modified_at.clone(),
    }))
}

/// `GET /organization_groups/1`: the installation as Rossum's organization group; any
/// other id is 404.
#[utoipa::path(get, path = "/api/v1/organization_groups/{id}", tag = "organizations", params(IdPath),
    responses(
        (status = 200, description = "The installation's one organization group (id 1)", body = OrganizationGroupView),
        (status = 404, description = "Any other id", body = ErrorDetail),
    ))]
pub(super) async fn organization_group(
    State(state): State<AppState>,
    _caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<OrganizationGroupView>> {
    if id != ORGANIZATION_GROUP_ID {
        return Err(ApiError::NotFound);
    }
    Ok(axum::Json(OrganizationGroupView {
        id: ORGANIZATION_GROUP_ID,
        url: organization_group_url(&state),
        name: "wasmhook installation",
        is_trial: false,
        is_production: true,
        deployment_location: "self-hosted",
        modified_by: None,
        modified_at: None,
        features: None,
        usage: Map::new(),
    }))
}
