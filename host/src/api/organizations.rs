//! `/organizations`: the operator creates and deletes them, and renames any; an admin
//! renames its own; a user sees its own.
//!
//! An organization's name is the one field wasmhook keeps of it. A `PUT` or `PATCH` may
//! send back the whole object as read: the other keys of Rossum's organization are
//! read-only here and ignored, as DRF ignores read-only fields. `metadata` and
//! `ui_settings`, which Rossum lets a client write, are not kept: they are answered as
//! `{}`, and anything else sent is refused (400) rather than silently dropped.
//!
//! Deleting one deletes everything it owns in one transaction (`store::organizations`),
//! then the files of the module bytes no other organization holds. Any organization may be
//! deleted, the demo's too: `serve --demo` finds its admin by name, so the next start with
//! `--demo` makes a new demo organization rather than failing.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
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

/// An organization to create: its name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewOrganization {
    /// 1 to 200 characters, trimmed.
    name: String,
}

/// A `PUT` or `PATCH` of an organization: the name, when sent, replaces the stored one.
/// The rest of Rossum's keys are accepted so that a client may send back what it read.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct OrganizationChange {
    name: Option<String>,
    /// Not kept: only the empty object (or null) is accepted.
    metadata: Option<Value>,
    /// Not kept: only the empty object (or null) is accepted.
    ui_settings: Option<Value>,
    /// Read-only keys (id, url, users, workspaces, created_at, is_trial,
    /// organization_group, ...); ignored.
    #[serde(flatten)]
    #[schema(ignore)]
    _rest: Map<String, Value>,
}

/// Rossum's Organization. wasmhook keeps its name; the other keys answer what Rossum's
/// client reads.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OrganizationView {
    id: u64,
    url: String,
    name: String,
    /// Always empty: wasmhook has no workspaces.
    workspaces: Vec<String>,
    /// The URLs of its users.
    users: Vec<String>,
    organization_group: String,
    is_trial: bool,
    created_at: String,
    trial_expires_at: Option<String>,
    expires_at: Option<String>,
    oidc_provider: Option<String>,
    /// Always `{}`.
    ui_settings: Map<String, Value>,
    /// Always `{}`.
    metadata: Map<String, Value>,
}

impl OrganizationChange {
    /// The new name it asks for, checked; none when it sends none. Refuses `metadata` or
    /// `ui_settings` with content, which wasmhook does not keep.
    fn requested_name(&self) -> ApiResult<Option<String>> {
        for (field, value) in [
            ("metadata", &self.metadata),
            ("ui_settings", &self.ui_settings),
        ] {
            let empty = value
                .as_ref()
                .is_none_or(|value| value.as_object().is_some_and(|map| map.is_empty()));
            if !empty {
                return Err(ApiError::field(
                    field,
                    format!(
                        "wasmhook keeps no {field} of an organization; send {{}} or leave it out"
                    ),
                ));
            }
        }
        self.name.as_deref().map(checked_name).transpose()
    }
}

/// Why only the operator deletes an organization.
const OPERATOR_DELETES: &str = "Only the installation's operator deletes an organization \
    (with its users, hooks, modules, queues and run logs).";

/// An organization's name as stored: trimmed, 1 to [`MAX_NAME_CHARS`] characters.
fn checked_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::field(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// An organization in Rossum's shape. wasmhook has no workspaces (`workspaces: []`), no
/// trials or expiry, and one organization group, the installation (see
/// [`super::placeholders`]).
fn render(state: &AppState, organization: &Organization) -> OrganizationView {
    let users: Vec<String> = organization
        .users
        .iter()
        .map(|id| state.url("users", *id))
        .collect();
    OrganizationView {
        id: organization.id,
        url: state.url("organizations", organization.id),
        name: organization.name.clone(),
        workspaces: Vec::new(),
        users,
        organization_group: super::placeholders::organization_group_url(state),
        is_trial: false,
        created_at: organization.created_at.clone(),
        trial_expires_at: None,
        expires_at: None,
        oidc_provider: None,
        ui_settings: Map::new(),
        metadata: Map::new(),
    }
}

/// `POST /organizations`: the operator creates an organization (its first admin is then
/// created with `POST /users`).
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations",
    request_body = NewOrganization,
    responses(
        (status = 201, description = "Created", body = OrganizationView),
        (status = 400, description = "The name is not valid", body = ValidationErrors),
        (status = 403, description = "Only the operator creates organizations", body = ErrorDetail),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewOrganization>,
) -> ApiResult<(StatusCode, axum::Json<OrganizationView>)> {
    if caller != Caller::Operator {
        return Err(ApiError::Forbidden);
    }
    let name = checked_name(&body.name)?;
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

#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations",
    params(PageQuery),
    responses(
        (status = 200, description = "The caller's organization (all of them for the operator); ordering: id, name", body = Paginated<OrganizationView>),
        (status = 400, description = "A parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<PageQuery>,
) -> ApiResult<axum::Json<Paginated<OrganizationView>>> {
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

#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(IdPath),
    responses(
        (status = 200, description = "The organization", body = OrganizationView),
        (status = 404, description = "No such organization, or another one", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<OrganizationView>> {
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

/// PUT and PATCH `/organizations/{id}`: renames it when `name` is sent. The operator
/// renames any organization and an admin its own; a member may not (403), nor an
/// extension's token, and another organization is not found (404).
#[utoipa::path(method(put, patch), path = "/api/v1/organizations/{id}", tag = "organizations",
    params(IdPath), request_body = OrganizationChange,
    responses(
        (status = 200, description = "Renamed (PUT and PATCH alike)", body = OrganizationView),
        (status = 400, description = "The name is not valid, or metadata or ui_settings has content", body = ValidationErrors),
        (status = 403, description = "Not an admin of it, nor the operator", body = ErrorDetail),
        (status = 404, description = "No such organization, or another one", body = ErrorDetail),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(body): Json<OrganizationChange>,
) -> ApiResult<axum::Json<OrganizationView>> {
    if !caller.can_see(id) {
        return Err(ApiError::NotFound);
    }
    if caller != Caller::Operator {
        caller.admin()?;
    }
    let organizations = state.store.organizations();
    let organization = match body.requested_name()? {
        Some(name) => organizations.rename(id, &name).await?,
        None => organizations.get(id).await?,
    }
    .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &organization)))
}

/// `DELETE /organizations/{id}`: the operator deletes an organization and everything it
/// owns, in one transaction, then the files of the module bytes no other organization
/// holds (as deleting a module does). Its users' tokens stop working at once. Anyone else
/// is refused (403; another organization is not found, 404).
#[utoipa::path(delete, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(IdPath),
    responses(
        (status = 204, description = "Deleted, with everything it owns"),
        (status = 403, description = "Only the operator deletes an organization", body = ErrorDetail),
        (status = 404, description = "No such organization, or another one", body = ErrorDetail),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<StatusCode> {
    if !caller.can_see(id) {
        return Err(ApiError::NotFound);
    }
    if caller != Caller::Operator {
        return Err(ApiError::ForbiddenBecause(OPERATOR_DELETES.into()));
    }
    let deleted = state
        .store
        .organizations()
        .delete(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    for sha256 in &deleted.unused_digests {
        state.library.forget(sha256).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_was_read_is_accepted_and_fields_not_kept_are_refused_with_content(
    ) -> Result<(), serde_json::Error> {
        let read: OrganizationChange = serde_json::from_value(json!({
            "id": 1,
            "url": "https://h.example/api/v1/organizations/1",
            "name": " Acme ",
            "workspaces": [],
            "users": ["https://h.example/api/v1/users/1"],
            "organization_group": "https://h.example/api/v1/organization_groups/1",
            "is_trial": false,
            "created_at": "2026-01-01T00:00:00.000000Z",
            "trial_expires_at": null,
            "metadata": {},
            "ui_settings": {},
        }))?;
        assert_eq!(read.requested_name().ok(), Some(Some("Acme".to_owned())));
        let nothing: OrganizationChange = serde_json::from_value(json!({"metadata": null}))?;
        assert_eq!(nothing.requested_name().ok(), Some(None));
        for refused in [
            json!({"metadata": {"region": "eu"}}),
            json!({"ui_settings": []}),
            json!({"name": "  "}),
            json!({"name": "x".repeat(MAX_NAME_CHARS + 1)}),
        ] {
            let change: OrganizationChange = serde_json::from_value(refused)?;
            assert!(change.requested_name().is_err());
        }
        Ok(())
    }
}
