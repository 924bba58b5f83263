//! `/hook_templates`, Rossum's extension store, and `POST /hooks/create`, which makes a hook
//! of a template in the caller's organization.
//!
//! The operator registers a template with its module: a multipart body with `template` (the
//! template's fields, JSON) and `file` (the module's bytes), prechecked and compiled as an
//! upload is. Those bytes are the installation's; an organization that makes a hook of the
//! template gets a module row of its own for them (the one it has with the same sha256, or
//! a new one counted against its module quotas), so that a hook still runs a module of its
//! own organization. Every caller may list and read the templates; only the operator
//! registers or deletes them.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
use super::hooks::HookView;
use super::json::Json;
use super::pagination::{list_page, PageQuery, Paginated};
use super::{hooks, id_from, modules, AppState};
use crate::model::hook::{self, parse_template};
use crate::model::now_rfc3339;
use crate::runtime::Digest;
use crate::store::modules::{Module, ModuleBytes, NewModule};
use crate::store::templates::{HookTemplate, TemplateOrder};

/// The `ordering` values of the templates list.
const ORDERINGS: &[(&str, TemplateOrder)] = &[
    ("id", TemplateOrder::Id),
    ("name", TemplateOrder::Name),
    ("order", TemplateOrder::Order),
];

/// A template in Rossum's HookTemplate shape, with the module it runs.
/// The module a template runs: its digest, size and kind (the bytes are the installation's).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TemplateModuleView {
    sha256: String,
    size: u64,
    /// `component` or `module`.
    kind: String,
}

/// A hook template, Rossum's HookTemplate with the module it runs.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TemplateView {
    id: u64,
    url: String,
    name: String,
    /// `function`, `webhook` or `job`.
    #[serde(rename = "type")]
    hook_type: &'static str,
    events: Vec<String>,
    sideload: Vec<String>,
    metadata: Map<String, Value>,
    config: Map<String, Value>,
    test: Map<String, Value>,
    description: Option<String>,
    /// Always `rossum_store`.
    extension_source: &'static str,
    settings: Map<String, Value>,
    settings_schema: Option<Value>,
    secrets_schema: Value,
    guide: Option<String>,
    read_more_url: Option<String>,
    extension_image_url: Option<String>,
    settings_description: Vec<Value>,
    store_description: Option<String>,
    external_url: Option<String>,
    use_token_owner: bool,
    /// `copy` or `request_access`.
    install_action: &'static str,
    token_lifetime_s: Option<u64>,
    order: i64,
    module: TemplateModuleView,
    created_at: String,
}

/// A registration: a multipart form of the template's fields and its module.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(super) struct TemplateRegistration {
    /// The template's fields, a JSON object (Rossum's HookTemplate fields).
    template: String,
    /// The module's bytes (or as the field `module`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// What `POST /hooks/create` reads: the template, and the creator's fields laid over the
/// template's (the others are the template's).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub(super) struct HookFromTemplate {
    /// The template's URL or id; required.
    hook_template: Value,
    name: Option<String>,
    events: Option<Vec<String>>,
    /// URLs or ids.
    queues: Option<Vec<Value>>,
    /// URLs or ids.
    run_after: Option<Vec<Value>>,
    /// A user's URL or id; required when the template's `use_token_owner` is true.
    token_owner: Option<Value>,
    settings: Option<Map<String, Value>>,
    /// Write-only.
    secrets: Option<Map<String, Value>>,
}

fn render(state: &AppState, template: &HookTemplate) -> TemplateView {
    let spec = &template.spec;
    TemplateView {
        id: template.id,
        url: state.url("hook_templates", template.id),
        name: spec.name.clone(),
        hook_type: spec.hook_type.as_str(),
        events: spec.events.clone(),
        sideload: spec.sideload.clone(),
        metadata: spec.metadata.clone(),
        config: spec.config.clone(),
        test: spec.test.clone(),
        description: spec.description.clone(),
        extension_source: "rossum_store",
        settings: spec.settings.clone(),
        settings_schema: spec.settings_schema.clone(),
        secrets_schema: spec.secrets_schema.clone(),
        guide: spec.guide.clone(),
        read_more_url: spec.read_more_url.clone(),
        extension_image_url: spec.extension_image_url.clone(),
        settings_description: spec.settings_description.clone(),
        store_description: spec.store_description.clone(),
        external_url: spec.external_url.clone(),
        use_token_owner: spec.use_token_owner,
        install_action: spec.install_action.as_str(),
        token_lifetime_s: spec.token_lifetime_s,
        order: spec.order,
        module: TemplateModuleView {
            sha256: template.module.sha256.clone(),
            size: template.module.size,
            kind: template.module.inspected.kind.clone(),
        },
        created_at: template.created_at.clone(),
    }
}

/// The operator, or 403 saying who may.
fn operator(caller: &Caller) -> ApiResult<()> {
    match caller {
        Caller::Operator => Ok(()),
        _ => Err(ApiError::ForbiddenBecause(
            "Only the installation's operator registers and deletes hook templates.".into(),
        )),
    }
}

/// `GET /hook_templates`: every registered template, in Rossum's list shape, to any
/// caller (Rossum's client lists them with `list_hook_templates`).
#[utoipa::path(get, path = "/api/v1/hook_templates", tag = "hook templates", params(PageQuery),
    responses(
        (status = 200, description = "Every registered template", body = Paginated<TemplateView>),
        (status = 400, description = "A parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(query): Params<PageQuery>,
) -> ApiResult<axum::Json<Paginated<TemplateView>>> {
    let store = &state.store;
    list_page(
        &state,
        "hook_templates",
        &query,
        ORDERINGS,
        move |window| async move { store.hook_templates().list(window).await },
        |template| render(&state, template),
    )
    .await
}

/// `GET /hook_templates/{id}`: one template, to any caller.
#[utoipa::path(get, path = "/api/v1/hook_templates/{id}", tag = "hook templates", params(IdPath),
    responses(
        (status = 200, description = "The template", body = TemplateView),
        (status = 404, description = "No such template", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<TemplateView>> {
    let template = state
        .store
        .hook_templates()
        .get(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &template)))
}

/// The failure to read a registration's multipart body.
fn unreadable(error: &axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(modules::MAX_UPLOAD_BYTES)
    } else {
        ApiError::Parse(format!(
            "Multipart form parse error - {}",
            error.body_text()
        ))
    }
}

/// A registration's parts, each sent once: `template` (the fields, a JSON object) and
/// `file` (or `module`: the module's bytes).
async fn read_registration(
    state: &AppState,
    request: Request,
) -> ApiResult<(Map<String, Value>, bytes::Bytes)> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| {
            ApiError::non_field(format!(
                "send multipart/form-data with `template` (JSON) and `file` (the module): {}",
                rejection.body_text()
            ))
        })?;
    let mut template: Option<Map<String, Value>> = None;
    let mut file: Option<bytes::Bytes> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| unreadable(&error))?
    {
        let name = field.name().map(str::to_owned);
        match name.as_deref() {
            Some("template") if template.is_none() => {
                let text = field.text().await.map_err(|error| unreadable(&error))?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(fields)) => template = Some(fields),
                    _ => return Err(ApiError::field("template", "must be a JSON object")),
                }
            }
            Some("file" | "module") if file.is_none() => {
                file = Some(field.bytes().await.map_err(|error| unreadable(&error))?);
            }
            Some(other) => {
                return Err(ApiError::field(
                    other,
                    "not expected; send `template` once and `file` once",
                ))
            }
            None => {}
        }
    }
    match (template, file) {
        (Some(template), Some(file)) => Ok((template, file)),
        (None, _) => Err(ApiError::field(
            "template",
            "required (a multipart field holding the template's JSON)",
        )),
        (_, None) => Err(ApiError::field(
            "file",
            "required (a multipart field holding the module)",
        )),
    }
}

/// `POST /hook_templates` (the operator): a template and its module; 201 with the template.
#[utoipa::path(post, path = "/api/v1/hook_templates", tag = "hook templates",
    request_body(content = TemplateRegistration, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Registered", body = TemplateView),
        (status = 400, description = "A field or the module is not valid", body = ValidationErrors),
        (status = 403, description = "Only the operator registers templates", body = ErrorDetail),
        (status = 413, description = "Larger than the module limit", body = ErrorDetail),
        (status = 415, description = "Not a multipart form", body = ErrorDetail),
    ))]
pub(super) async fn register(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<TemplateView>)> {
    // The body is read before the caller's rights are checked: answering 403 with the
    // body unread closes the connection under a client still sending it, which then sees a
    // reset rather than its answer. It is bounded as every upload is, and only an
    // authenticated caller gets this far.
    let read = read_registration(&state, request).await;
    operator(&caller)?;
    let (fields, bytes) = read?;
    let spec = parse_template(&fields, &state.bounds)?;
    let stored = state.library.bytes_to_store(&bytes);
    let (library, store) = (Arc::clone(&state.library), state.store.clone());
    // On a task of its own, so that a client hanging up does not drop the bytes' lock
    // while the row's commit still runs. The lock is held from before the compile (a
    // registration is the operator's, and rare) to the row's commit, as an upload holds
    // it from its file's write: a deletion of the same bytes then finds this row or comes
    // before the file is written.
    let registered = tokio::spawn(async move {
        let sha256 = Digest::of(&bytes).to_string();
        let _held = library.hold_bytes(&sha256).await;
        let module = library
            .add_template_module(bytes)
            .await
            .map_err(modules::refused)?;
        let template = store
            .hook_templates()
            .create(spec, module, &now_rfc3339(), stored)
            .await?;
        Ok::<_, ApiError>(template)
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the registration's task ended: {error}")))?;
    let template = registered?;
    Ok((StatusCode::CREATED, axum::Json(render(&state, &template))))
}

/// `DELETE /hook_templates/{id}` (the operator). Hooks made from it keep running their
/// organization's module; its file goes once nothing uses the bytes.
#[utoipa::path(delete, path = "/api/v1/hook_templates/{id}", tag = "hook templates", params(IdPath),
    responses(
        (status = 204, description = "Deleted; hooks made from it keep running"),
        (status = 403, description = "Only the operator deletes templates", body = ErrorDetail),
        (status = 404, description = "No such template", body = ErrorDetail),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<StatusCode> {
    operator(&caller)?;
    let deleted = state
        .store
        .hook_templates()
        .delete(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if deleted.last_copy {
        state.library.forget(&deleted.sha256).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The template a `POST /hooks/create` names in `hook_template` (its URL or id).
async fn requested_template(
    state: &AppState,
    body: &Map<String, Value>,
) -> ApiResult<HookTemplate> {
    let reference = body
        .get("hook_template")
        .filter(|value| !value.is_null())
        .ok_or_else(|| hook::HookError::new("hook_template", "required: a hook template URL"))?;
    let id = id_from(reference, "hook_templates").ok_or_else(|| {
        hook::HookError::new("hook_template", "expected a hook template URL or id")
    })?;
    Ok(state
        .store
        .hook_templates()
        .get(id)
        .await?
        .ok_or_else(|| hook::HookError::new("hook_template", format!("no hook template {id}")))?)
}

/// The organization's module for the template's bytes: the one it has, or a new one
/// (ready: the bytes compiled when the template was registered) within its quotas.
async fn adopted_module(
    state: &AppState,
    organization_id: u64,
    template: &HookTemplate,
) -> ApiResult<Module> {
    let rows = state.store.modules();
    let sha256 = &template.module.sha256;
    if let Some(module) = rows.by_digest(organization_id, sha256).await? {
        return Ok(module);
    }
    modules::within_quotas(state, organization_id, template.module.size).await?;
    Ok(rows
        .create(NewModule {
            organization_id,
            name: &template.spec.name,
            sha256,
            size: template.module.size,
            inspected: Some(&template.module.inspected),
            created_at: &now_rfc3339(),
            // The template's registration stored them, and the template holds them.
            bytes: ModuleBytes::Template,
            quota: state.quotas.of_modules(),
        })
        .await?)
}

/// `POST /hooks/create` (an admin): a hook of a template in the caller's organization, as
/// Rossum's store makes one (`{hook_template, name?, events?, queues?, run_after?,
/// token_owner?, settings?, secrets?}`); 201 with the hook.
#[utoipa::path(post, path = "/api/v1/hooks/create", tag = "hooks", request_body = HookFromTemplate,
    responses(
        (status = 201, description = "The hook made from the template", body = HookView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not an admin", body = ErrorDetail),
        (status = 409, description = "The organization is at its module or hook quota", body = ErrorDetail),
    ))]
pub(super) async fn create_hook(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<(StatusCode, axum::Json<HookView>)> {
    let (organization_id, author) = caller.admin()?;
    let template = requested_template(&state, &body).await?;
    // Refused before a module row is made for it.
    hook::parse_draft(&template.spec.hook_input(&body, 0)?, &state.bounds)?;
    let module = adopted_module(&state, organization_id, &template).await?;
    let input = template.spec.hook_input(&body, module.id)?;
    let hook = hooks::save(
        &state,
        (organization_id, author),
        &input,
        None,
        Some(template.id),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(hooks::answer(&state, &hook).await?),
    ))
}
