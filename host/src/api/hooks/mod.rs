//! `/hooks`: Rossum's Hook object: list with its filters, create, show, PUT, PATCH,
//! DELETE, the names of its secrets, a copy of it (`duplicate`) and a sample of its payload
//! (`generate_payload`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::access::RequestId;
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{id_filter, IdPath, ObjectId, Params};
use super::json::Json;
use super::pagination::{PageQuery, Paginated};
use super::AppState;
use crate::dispatch::sample;
use crate::model::hook::{self, Change, DuplicateRequest, Hook, HookDraft, HookKind};
use crate::model::now_rfc3339;
use crate::model::sample::SampleRequest;
use crate::sealing::HookSecrets;
use crate::store::hooks::{HookListFilter, HookOrder, SaveContext};
use crate::store::modules::ModuleStatus;

mod views;

pub(super) use views::HookView;
use views::{render, DuplicateBody, GeneratePayloadBody, HookWrite};

/// The `ordering` values of the hooks list.
const ORDERINGS: &[(&str, HookOrder)] = &[
    ("id", HookOrder::Id),
    ("name", HookOrder::Name),
    ("type", HookOrder::Type),
    ("active", HookOrder::Active),
    ("events", HookOrder::Events),
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct HookFilter {
    /// Only the hook of this id.
    #[param(value_type = Option<u64>)]
    id: Option<String>,
    /// Only hooks of this name.
    name: Option<String>,
    /// Only hooks of this type: `function`, `webhook` or `job`.
    #[serde(rename = "type")]
    hook_type: Option<String>,
    /// Only hooks on this queue (an id).
    #[param(value_type = Option<u64>)]
    queue: Option<String>,
    /// Only active (`true`) or inactive (`false`) hooks.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
    /// Only hooks of this `extension_source` (`custom`, `rossum_store`).
    extension_source: Option<String>,
    /// Only hooks subscribed to one of these events, comma-separated (`annotation_content.initialize,...`).
    events: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The status of each module of an organization, for hooks' `status`.
async fn module_statuses(
    state: &AppState,
    organization: Option<u64>,
) -> ApiResult<HashMap<u64, ModuleStatus>> {
    Ok(state.store.modules().statuses(organization).await?)
}

/// A hook the caller may see.
/// A hook the caller may see (another organization's is 404, as a missing one is).
pub(super) async fn visible(state: &AppState, caller: &Caller, id: u64) -> ApiResult<Arc<Hook>> {
    state
        .store
        .hook(id)
        .await?
        .filter(|hook| caller.can_see(hook.organization_id))
        .ok_or(ApiError::NotFound)
}

/// A hook as answered: rendered with its module's status.
pub(super) async fn answer(state: &AppState, hook: &Hook) -> ApiResult<HookView> {
    let statuses = module_statuses(state, Some(hook.organization_id)).await?;
    let status = hook
        .spec
        .kind
        .module_id()
        .and_then(|id| statuses.get(&id).copied());
    Ok(render(state, hook, status))
}

fn flag(name: &str, text: &str) -> ApiResult<bool> {
    match text {
        "true" | "True" | "1" => Ok(true),
        "false" | "False" | "0" => Ok(false),
        _ => Err(ApiError::field(
            name,
            format!("`{text}` is not true or false"),
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/hooks", tag = "hooks", params(HookFilter, PageQuery),
    responses(
        (status = 200, description = "The organization's hooks (ordering: id, name, type, active, events)", body = Paginated<HookView>),
        (status = 400, description = "A filter or parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(filter): Params<HookFilter>,
) -> ApiResult<axum::Json<Paginated<HookView>>> {
    let request = filter.page.validate()?;
    let id = id_filter("id", filter.id.as_deref())?;
    let queue = id_filter("queue", filter.queue.as_deref())?;
    let active = filter
        .active
        .as_deref()
        .map(|text| flag("active", text))
        .transpose()?;
    let window = filter.page.validate_ordered(ORDERINGS)?.window();
    let only = caller.organization();
    let wanted = HookListFilter {
        organization: only,
        id,
        name: filter.name,
        hook_type: filter.hook_type,
        queue,
        active,
        extension_source: filter.extension_source,
        events: filter
            .events
            .as_deref()
            .map(|events| events.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    let page = state.store.hooks().list(&wanted, window).await?;
    let statuses = module_statuses(&state, only).await?;
    let list_url = state.list_url("hooks");
    // The links carry page and page_size only, not the ordering (as they always have for
    // hooks): `request` is the page request without it.
    Ok(axum::Json(Paginated::new(
        &page,
        request,
        &list_url,
        |hook| {
            render(
                &state,
                hook,
                hook.spec
                    .kind
                    .module_id()
                    .and_then(|id| statuses.get(&id).copied()),
            )
        },
    )))
}

/// Validates `input`, merges write-only values with what is stored, and saves: an update of
/// `existing`, or a new hook (made from template `hook_template`, if any).
pub(super) async fn save(
    state: &AppState,
    (organization_id, author): (u64, u64),
    input: &Map<String, Value>,
    existing: Option<&Hook>,
    hook_template: Option<u64>,
) -> ApiResult<Hook> {
    let fixed;
    let input = match existing.filter(|hook| hook.spec.kind.is_private()) {
        Some(hook) => {
            fixed = private_input(hook, input)?;
            &fixed
        }
        None => input,
    };
    // On the blocking pool: its JSON Schemas' validation is bounded by the sizes of the
    // schema and the settings (`model::hook::schemas`), but may still take a while over
    // large ones, which no async worker, serving every tenant's requests, is to wait for.
    let (owned, bounds) = (input.clone(), state.bounds);
    let mut draft: HookDraft =
        tokio::task::spawn_blocking(move || hook::parse_draft(&owned, &bounds))
            .await
            .map_err(|error| {
                ApiError::Internal(format!("validating the hook failed: {error}"))
            })??;
    // A whole hook sent without its `secrets_schema` (Rossum's SDK model has none) keeps
    // the stored one, as it keeps the stored secrets, rather than the default's.
    if let (Some(hook), Change::Keep, None) =
        (existing, &draft.secrets, input.get("secrets_schema"))
    {
        draft.spec.document.secrets_schema = hook.spec.document.secrets_schema.clone();
    }
    let mut secrets = match existing {
        Some(hook) => {
            let sealed = hook.sealed_secrets.as_deref();
            HookSecrets::open(&state.sealer, hook.organization_id, sealed)?
        }
        None => HookSecrets::default(),
    };
    match &draft.secrets {
        Change::Keep => {
            // The stored secrets are not checked against a schema the request brings: its
            // answer would tell the requester something of values no answer may show (a
            // `pattern` per request, a character at a time). A new schema comes with the
            // secrets, which are checked against it as any secrets sent are.
            let changed = existing.is_some_and(|hook| {
                hook.spec.document.secrets_schema != draft.spec.document.secrets_schema
            });
            if changed && !secrets.secrets.is_empty() {
                return Err(ApiError::field(
                    "secrets",
                    "a new secrets_schema needs the secrets sent again with it",
                ));
            }
        }
        Change::Set(values) => secrets.secrets = values.clone(),
        Change::Remove => secrets.secrets.clear(),
    }
    match &draft.config_secret {
        Change::Keep => {}
        Change::Set(secret) => secrets.config_secret = Some(secret.clone()),
        Change::Remove => secrets.config_secret = None,
    }
    let sealed = secrets.seal(&state.sealer, organization_id)?;
    let keys: Vec<String> = secrets.secrets.iter().map(|(key, _)| key.clone()).collect();
    let hook_id = existing.map(|hook| hook.id);
    let now = now_rfc3339();
    let context = SaveContext {
        organization_id,
        hook_id,
        sealed_secrets: sealed,
        secrets_keys: keys,
        author: Some(author),
        now,
        hook_template,
        hooks_limit: state.quotas.hooks,
    };
    Ok(state.store.hooks().save(draft, context).await?)
}

/// A private hook's write as it may be saved: `private` stays true, the hidden URL or
/// module is kept when not sent and may not be changed, and the secret may not be changed.
fn private_input(hook: &Hook, input: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let refuse = |key: &str, why: &str| {
        ApiError::from(hook::HookError::config(
            key,
            format!("{why} on a private hook"),
        ))
    };
    let mut input = input.clone();
    let Some(Value::Object(config)) = input.get_mut("config") else {
        return Ok(input);
    };
    if config.get("private") == Some(&Value::Bool(false)) {
        return Err(refuse("private", "cannot be switched back to false"));
    }
    config.insert("private".into(), Value::Bool(true));
    if config.contains_key("secret") {
        return Err(refuse("secret", "cannot be changed"));
    }
    let (key, stored) = match &hook.spec.kind {
        HookKind::Webhook(webhook) => ("url", Value::from(webhook.url.as_str())),
        HookKind::Function(function) | HookKind::Job(function) => {
            ("module", Value::from(function.module_id))
        }
    };
    match config.get(key) {
        None | Some(Value::Null) => {
            config.insert(key.into(), stored);
        }
        Some(sent)
            if key == "module" && hook::module_reference_is(sent, hook.spec.kind.module_id()) => {}
        Some(sent) if *sent == stored => {}
        Some(_) => return Err(refuse(key, "cannot be changed")),
    }
    Ok(input)
}

#[utoipa::path(post, path = "/api/v1/hooks", tag = "hooks", request_body = HookWrite,
    responses(
        (status = 201, description = "Created", body = HookView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 409, description = "The organization is at its hook quota", body = ErrorDetail),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<(StatusCode, axum::Json<HookView>)> {
    let hook = save(&state, caller.admin()?, &body, None, None).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(answer(&state, &hook).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/hooks/{id}", tag = "hooks", params(IdPath),
    responses(
        (status = 200, description = "The hook", body = HookView),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<HookView>> {
    let hook = visible(&state, &caller, id).await?;
    Ok(axum::Json(answer(&state, &hook).await?))
}

/// PUT: the whole hook as sent (write-only values kept when not sent).
#[utoipa::path(put, path = "/api/v1/hooks/{id}", tag = "hooks", params(IdPath),
    request_body = HookWrite,
    responses(
        (status = 200, description = "Replaced", body = HookView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<axum::Json<HookView>> {
    let existing = visible(&state, &caller, id).await?;
    let hook = save(
        &state,
        caller.admin()?,
        &body,
        Some(existing.as_ref()),
        None,
    )
    .await?;
    Ok(axum::Json(answer(&state, &hook).await?))
}

/// PATCH: the fields sent laid over the stored hook.
#[utoipa::path(patch, path = "/api/v1/hooks/{id}", tag = "hooks", params(IdPath),
    request_body(content = HookWrite, description = "The fields to change, laid over the stored hook"),
    responses(
        (status = 200, description = "Updated", body = HookView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not allowed to change these fields", body = ErrorDetail),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<axum::Json<HookView>> {
    let existing = visible(&state, &caller, id).await?;
    let writer = caller.hook_writer(id, body.keys().map(String::as_str))?;
    let mut input = existing.spec.as_input();
    input.extend(body);
    let hook = save(&state, writer, &input, Some(existing.as_ref()), None).await?;
    Ok(axum::Json(answer(&state, &hook).await?))
}

#[utoipa::path(delete, path = "/api/v1/hooks/{id}", tag = "hooks", params(IdPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<StatusCode> {
    visible(&state, &caller, id).await?;
    caller.admin()?;
    state.store.hooks().delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The names of a hook's secrets; values never leave the server.
#[utoipa::path(get, path = "/api/v1/hooks/{id}/secrets_keys", tag = "hooks", params(IdPath),
    responses(
        (status = 200, description = "The names of its secrets", body = Vec<String>),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn secrets_keys(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<Vec<String>>> {
    let hook = visible(&state, &caller, id).await?;
    Ok(axum::Json(hook.secrets_keys.clone()))
}

/// `POST /hooks/{id}/duplicate`: a copy in the hook's own organization, as Rossum makes it
/// (inactive, on no queue; `secrets` and the run_after chain only when asked), 201 with
/// the copy.
#[utoipa::path(post, path = "/api/v1/hooks/{id}/duplicate", tag = "hooks", params(IdPath),
    request_body = DuplicateBody,
    responses(
        (status = 201, description = "The copy", body = HookView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
        (status = 409, description = "The organization is at its hook quota", body = ErrorDetail),
    ))]
pub(super) async fn duplicate(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<(StatusCode, axum::Json<HookView>)> {
    let original = visible(&state, &caller, id).await?;
    let (organization_id, author) = caller.admin()?;
    let request = DuplicateRequest::parse(&body)?;
    let sealed = original.sealed_secrets.as_deref();
    let secrets = HookSecrets::open(&state.sealer, original.organization_id, sealed)?
        .copied(request.copy_secrets);
    let context = SaveContext {
        organization_id,
        hook_id: None,
        sealed_secrets: secrets.seal(&state.sealer, organization_id)?,
        secrets_keys: secrets.keys(),
        author: Some(author),
        now: now_rfc3339(),
        hook_template: original.hook_template,
        hooks_limit: state.quotas.hooks,
    };
    let draft = HookDraft {
        spec: original.spec.duplicated(&request),
        secrets: Change::Keep,
        config_secret: Change::Keep,
    };
    let copy = state
        .store
        .hooks()
        .duplicate(draft, context, original.id, request.copy_dependencies)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(answer(&state, &copy).await?),
    ))
}

/// `POST /hooks/{id}/generate_payload`: the payload the hook would receive for the event
/// asked (`{event, action, annotation?, status?, previous_status?, email?, upload?}`), made
/// up for testing, with its secrets and token written `[redacted...]`.
#[utoipa::path(post, path = "/api/v1/hooks/{id}/generate_payload", tag = "hooks", params(IdPath),
    request_body = GeneratePayloadBody,
    responses(
        (status = 200, description = "The payload the hook would receive (made up; secrets and token redacted)", body = Object),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn generate_payload(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Extension(request_id): Extension<RequestId>,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<axum::Json<Value>> {
    let hook = visible(&state, &caller, id).await?;
    let request = SampleRequest::parse(&body)?;
    let payload = sample::generate_payload(
        &state.store,
        &state.base_url,
        &hook,
        &request,
        &request_id.0,
    )
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(axum::Json(Value::Object(payload)))
}
