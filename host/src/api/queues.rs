//! `/queues`: where an organization's documents flow; hooks subscribe to them.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::{extension_may_not, Caller};
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
use super::json::Json;
use super::pagination::{list_page, PageQuery, Paginated};
use super::{id_from, AppState};
use crate::model::hook::{distinct_references, json_bytes, MAX_METADATA_BYTES, MAX_REFERENCES};
use crate::model::now_rfc3339;
use crate::store::queues::{Queue, QueueOrder, QueueWrite};

/// The `ordering` values of the queues list.
const ORDERINGS: &[(&str, QueueOrder)] = &[("id", QueueOrder::Id), ("name", QueueOrder::Name)];

/// A queue as written; every field optional so that PATCH can send any of them.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct QueueBody {
    name: Option<String>,
    metadata: Option<Map<String, Value>>,
    hooks: Option<Vec<Value>>,
    /// Accepted for Rossum's clients: the deprecated alias of `hooks`.
    webhooks: Option<Vec<Value>>,
    // Read-only fields a client may send back (`id`, `url`, ...) are ignored, as serde
    // ignores every field a type does not name.
}

/// Rossum's Queue. wasmhook keeps its name, metadata and hooks; the other keys answer
/// what Rossum's client reads.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct QueueView {
    id: u64,
    url: String,
    name: String,
    organization: String,
    workspace: Option<String>,
    connector: Option<String>,
    schema: String,
    inbox: Option<String>,
    /// Annotations per status: always 0.
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    counts: Map<String, Value>,
    /// The URLs of its hooks.
    hooks: Vec<String>,
    /// The same as `hooks`.
    webhooks: Vec<String>,
    users: Vec<String>,
    session_timeout: &'static str,
    rir_url: Option<String>,
    rir_params: Option<String>,
    dedicated_engine: Option<String>,
    generic_engine: Option<String>,
    engine: Option<String>,
    automation_enabled: bool,
    automation_level: &'static str,
    default_score_threshold: f64,
    locale: &'static str,
    settings: Map<String, Value>,
    use_confirmed_state: bool,
    document_lifetime: Option<String>,
    delete_after: Option<String>,
    status: &'static str,
    training_enabled: bool,
    metadata: Map<String, Value>,
    created_at: String,
    modified_at: String,
}

/// The annotation statuses Rossum counts a queue's documents by (its `counts`).
const ANNOTATION_STATUSES: &[&str] = &[
    "importing",
    "split",
    "failed_import",
    "to_review",
    "reviewing",
    "confirmed",
    "exporting",
    "postponed",
    "failed_export",
    "exported",
    "deleted",
    "purged",
    "rejected",
];

/// A queue in Rossum's shape. wasmhook holds no documents, workspaces, connectors, inboxes
/// or engines: those keys are null, `counts` is zero for every status, and `schema` is the
/// queue's placeholder schema (see [`super::placeholders`]), which Rossum's client requires.
/// The rest are Rossum's defaults for a queue that automates nothing.
fn render(state: &AppState, queue: &Queue) -> QueueView {
    let hooks: Vec<String> = queue
        .hooks
        .iter()
        .map(|id| state.url("hooks", *id))
        .collect();
    let counts: Map<String, Value> = ANNOTATION_STATUSES
        .iter()
        .map(|status| ((*status).to_owned(), Value::from(0)))
        .collect();
    QueueView {
        id: queue.id,
        url: state.url("queues", queue.id),
        name: queue.name.clone(),
        organization: state.url("organizations", queue.organization_id),
        workspace: None,
        connector: None,
        schema: super::placeholders::schema_url(state, queue),
        inbox: None,
        counts,
        webhooks: hooks.clone(),
        hooks,
        users: Vec::new(),
        session_timeout: "01:00:00",
        rir_url: None,
        rir_params: None,
        dedicated_engine: None,
        generic_engine: None,
        engine: None,
        automation_enabled: false,
        automation_level: "never",
        default_score_threshold: 0.8,
        locale: "en_GB",
        settings: Map::new(),
        use_confirmed_state: false,
        document_lifetime: None,
        delete_after: None,
        status: "active",
        training_enabled: false,
        metadata: queue.metadata.clone(),
        created_at: queue.created_at.clone(),
        modified_at: queue.modified_at.clone(),
    }
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    Ok(name.to_owned())
}

fn check_metadata(metadata: &Map<String, Value>) -> ApiResult<()> {
    if json_bytes(metadata) > MAX_METADATA_BYTES {
        return Err(ApiError::field(
            "metadata",
            format!("at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

/// The hooks a queue write names, once each. `current`: the queue's hooks before the
/// write (none for a new queue). A queue's hooks are each of those hooks' `queues`: an
/// extension, which may change only its own hook's settings, changes no other hook's
/// subscriptions this way either, though it may send the list it read back unchanged.
fn hook_ids(caller: &Caller, body: &QueueBody, current: &[u64]) -> ApiResult<Option<Vec<u64>>> {
    let Some(references) = body.hooks.as_ref().or(body.webhooks.as_ref()) else {
        return Ok(None);
    };
    let ids = parsed_hook_ids(references)?;
    if matches!(caller, Caller::Extension { .. }) {
        let asked: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
        let held: std::collections::BTreeSet<u64> = current.iter().copied().collect();
        if asked != held {
            return Err(extension_may_not("change which hooks a queue runs"));
        }
    }
    Ok(Some(ids))
}

/// The hook references of a queue write as ids, once each.
fn parsed_hook_ids(references: &[Value]) -> ApiResult<Vec<u64>> {
    // Each is a query and a row in the save's transaction: bounded as a hook's own lists
    // are, and each hook once.
    distinct_references(
        references,
        || ApiError::field("hooks", format!("may name at most {MAX_REFERENCES} hooks")),
        |reference| {
            id_from(reference, "hooks")
                .ok_or_else(|| ApiError::field("hooks", format!("`{reference}` is not a hook URL")))
        },
    )
}

#[utoipa::path(post, path = "/api/v1/queues", tag = "queues", request_body = QueueBody,
    responses(
        (status = 201, description = "Created", body = QueueView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not allowed to write queues", body = ErrorDetail),
        (status = 409, description = "The organization is at its queue quota", body = ErrorDetail),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<QueueBody>,
) -> ApiResult<(StatusCode, axum::Json<QueueView>)> {
    let (organization_id, _) = caller.queue_writer()?;
    let name = check_name(
        body.name
            .as_deref()
            .ok_or_else(|| ApiError::field("name", "This field is required."))?,
    )?;
    let metadata = body.metadata.clone().unwrap_or_default();
    check_metadata(&metadata)?;
    let hooks = hook_ids(&caller, &body, &[])?.unwrap_or_default();
    let write = QueueWrite {
        name,
        metadata,
        hooks: Some(hooks),
    };
    let queue = state
        .store
        .queues()
        .create(organization_id, write, &now_rfc3339(), state.quotas.queues)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, axum::Json(render(&state, &queue))))
}

#[utoipa::path(get, path = "/api/v1/queues", tag = "queues", params(PageQuery),
    responses(
        (status = 200, description = "The organization's queues (ordering: id, name)", body = Paginated<QueueView>),
        (status = 400, description = "A parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<PageQuery>,
) -> ApiResult<axum::Json<Paginated<QueueView>>> {
    let only = caller.organization();
    let store = &state.store;
    list_page(
        &state,
        "queues",
        &query,
        ORDERINGS,
        move |window| async move { store.queues().list(only, window).await },
        |row| render(&state, row),
    )
    .await
}

async fn visible(state: &AppState, caller: &Caller, id: u64) -> ApiResult<Queue> {
    super::extract::visible(caller, state.store.queues().get(id).await?)
}

#[utoipa::path(get, path = "/api/v1/queues/{id}", tag = "queues", params(IdPath),
    responses(
        (status = 200, description = "The queue", body = QueueView),
        (status = 404, description = "No such queue in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<QueueView>> {
    let queue = visible(&state, &caller, id).await?;
    Ok(axum::Json(render(&state, &queue)))
}

/// PUT and PATCH: the fields sent replace the stored ones.
#[utoipa::path(method(put, patch), path = "/api/v1/queues/{id}", tag = "queues",
    params(IdPath), request_body = QueueBody,
    responses(
        (status = 200, description = "Updated: the fields sent (PUT and PATCH alike)", body = QueueView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not allowed to write queues", body = ErrorDetail),
        (status = 404, description = "No such queue in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(body): Json<QueueBody>,
) -> ApiResult<axum::Json<QueueView>> {
    let queue = visible(&state, &caller, id).await?;
    let (organization_id, _) = caller.queue_writer()?;
    let name = match &body.name {
        Some(name) => check_name(name)?,
        None => queue.name.clone(),
    };
    let metadata = body.metadata.clone().unwrap_or(queue.metadata.clone());
    check_metadata(&metadata)?;
    let write = QueueWrite {
        name,
        metadata,
        hooks: hook_ids(&caller, &body, &queue.hooks)?,
    };
    let queue = state
        .store
        .queues()
        .update(organization_id, id, write, &now_rfc3339())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &queue)))
}

#[utoipa::path(delete, path = "/api/v1/queues/{id}", tag = "queues", params(IdPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 404, description = "No such queue in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<StatusCode> {
    visible(&state, &caller, id).await?;
    caller.admin()?;
    state.store.queues().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
