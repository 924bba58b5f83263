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

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{ObjectId, Params};
use super::json::Json;
use super::pagination::{list_page, PageQuery, Paginated};
use super::{hooks, id_from, modules, AppState};
use crate::model::hook::{self, parse_template};
use crate::model::now_rfc3339;
use crate::store::modules::Module;
use crate::store::templates::{HookTemplate, TemplateOrder};

/// The `ordering` values of the templates list.
const ORDERINGS: &[(&str, TemplateOrder)] = &[
    ("id", TemplateOrder::Id),
    ("name", TemplateOrder::Name),
    ("order", TemplateOrder::Order),
];

/// A template in Rossum's HookTemplate shape, with the module it runs.
fn render(state: &AppState, template: &HookTemplate) -> Value {
    let spec = &template.spec;
    json!({
        "id": template.id,
        "url": state.url("hook_templates", template.id),
        "name": spec.name,
        "type": spec.hook_type.as_str(),
        "events": spec.events,
        "sideload": spec.sideload,
        "metadata": spec.metadata,
        "config": spec.config,
        "test": spec.test,
        "description": spec.description,
        "extension_source": "rossum_store",
        "settings": spec.settings,
        "settings_schema": spec.settings_schema,
        "secrets_schema": spec.secrets_schema,
        "guide": spec.guide,
        "read_more_url": spec.read_more_url,
        "extension_image_url": spec.extension_image_url,
        "settings_description": spec.settings_description,
        "store_description": spec.store_description,
        "external_url": spec.external_url,
        "use_token_owner": spec.use_token_owner,
        "install_action": spec.install_action.as_str(),
        "token_lifetime_s": spec.token_lifetime_s,
        "order": spec.order,
        "module": {
            "sha256": template.module.sha256,
            "size": template.module.size,
            "kind": template.module.inspected.kind,
        },
        "created_at": template.created_at,
    })
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
pub(super) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(query): Params<PageQuery>,
) -> ApiResult<axum::Json<Paginated>> {
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
pub(super) async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<Value>> {
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
pub(super) async fn register(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    operator(&caller)?;
    let (fields, bytes) = read_registration(&state, request).await?;
    let spec = parse_template(&fields, &state.bounds)?;
    let module = state
        .library
        .add_template_module(bytes)
        .await
        .map_err(modules::refused)?;
    let template = state
        .store
        .hook_templates()
        .create(spec, module, &now_rfc3339())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(render(&state, &template))))
}

/// `DELETE /hook_templates/{id}` (the operator). Hooks made from it keep running their
/// organization's module; its file goes once nothing uses the bytes.
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
        state.library.forget(&deleted.sha256);
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
        .create(
            organization_id,
            &template.spec.name,
            sha256,
            template.module.size,
            Some(&template.module.inspected),
            &now_rfc3339(),
        )
        .await?)
}

/// `POST /hooks/create` (an admin): a hook of a template in the caller's organization, as
/// Rossum's store makes one (`{hook_template, name?, events?, queues?, run_after?,
/// token_owner?, settings?, secrets?}`); 201 with the hook.
pub(super) async fn create_hook(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
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
