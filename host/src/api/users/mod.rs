//! `/users` and `/auth/user`: the operator creates an organization's first admin; admins
//! create the rest, change them, deactivate them and delete them; a user reads and changes
//! its own names and email. Users have Rossum's shape: a role is given as wasmhook's
//! `role` or as Rossum's `groups` (`model::group`), and `GET /auth/user` answers the
//! caller's own user (Rossum's client reads it to find its organization).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
use super::groups::group_url;
use super::json::Json;
use super::pagination::{PageQuery, Paginated};
use super::throttle::LoginThrottle;
use super::{id_from, AppState};
use crate::accounts;
use crate::model::group::Group;
use crate::model::now_rfc3339;
use crate::store::users::{NewUser, User, UserDeletion, UserOrder};
use crate::store::Page;
use rights::{
    check_presentation, check_queues, may_change, may_delete, requested_change, requested_role,
};

mod rights;
#[cfg(test)]
mod tests;

/// The `ordering` values of the users list.
const ORDERINGS: &[(&str, UserOrder)] = &[("id", UserOrder::Id), ("username", UserOrder::Username)];

/// A user to create: wasmhook's fields and the ones Rossum's `create_new_user` sends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    username: String,
    /// Optional, as in Rossum (which invites the user by email instead): a user created
    /// without one cannot log in until an admin sets a password with `PATCH /users/{id}`.
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    role: Option<String>,
    /// Rossum's roles, by URL (`/groups/{id}`) or id: one group, agreeing with `role` when
    /// both are sent.
    #[serde(default)]
    groups: Option<Vec<Value>>,
    #[serde(default)]
    organization: Option<Value>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    /// Rossum's queue assignments. Every user sees every queue of its organization here, so
    /// they are checked to be queue references and not kept.
    #[serde(default)]
    queues: Option<Vec<Value>>,
    /// A new user is active; `false` is refused (deactivate it afterwards).
    #[serde(default)]
    is_active: Option<bool>,
}

/// A user as PUT or PATCH writes it; every field optional. The keys of Rossum's user that
/// are not written (id, url, date_joined, last_login, metadata, ...) are ignored, so that
/// a client may send back what it read.
#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct UserChangeBody {
    username: Option<String>,
    password: Option<String>,
    role: Option<String>,
    groups: Option<Vec<Value>>,
    organization: Option<Value>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    is_active: Option<bool>,
    queues: Option<Vec<Value>>,
    /// Read-only fields a client may send back; ignored.
    #[serde(flatten)]
    #[schema(ignore)]
    _rest: Map<String, Value>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserFilter {
    /// Only the users of this organization (an id).
    #[param(value_type = Option<u64>)]
    organization: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// Rossum's User. wasmhook keeps its names, email, activity and role; the other keys
/// answer what Rossum's client reads.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UserView {
    id: u64,
    url: String,
    username: String,
    first_name: String,
    last_name: String,
    email: String,
    date_joined: String,
    last_login: Option<String>,
    is_active: bool,
    email_verified: bool,
    organization: String,
    /// The URL of the group of its role.
    groups: Vec<String>,
    queues: Vec<String>,
    ui_settings: Map<String, Value>,
    metadata: Map<String, Value>,
    oidc_id: Option<String>,
    auth_type: &'static str,
    deleted: bool,
    /// `admin` or `member`.
    role: String,
}

/// Why the operator has no `/auth/user`.
const OPERATOR_IS_NO_USER: &str = "The operator's token belongs to no user of any \
    organization; /auth/user answers a user's own token.";

/// A user in Rossum's shape, with wasmhook's `role` besides its `groups`. Keys Rossum has
/// and wasmhook does not keep are answered empty: a user sees every queue of its
/// organization (`queues: []` assigns none), and there are no UI settings, metadata,
/// single sign-on or email verification.
fn render(state: &AppState, user: &User) -> UserView {
    let groups: Vec<String> = Group::of_role(&user.role)
        .map(|group| group_url(state, &group))
        .into_iter()
        .collect();
    UserView {
        id: user.id,
        url: state.url("users", user.id),
        username: user.username.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        email: user.email.clone(),
        date_joined: user.date_joined.clone(),
        last_login: user.last_login.clone(),
        is_active: user.is_active,
        email_verified: false,
        organization: state.url("organizations", user.organization_id),
        groups,
        queues: Vec::new(),
        ui_settings: Map::new(),
        metadata: Map::new(),
        oidc_id: None,
        auth_type: "password",
        deleted: false,
        role: user.role.clone(),
    }
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserBody,
    responses(
        (status = 201, description = "Created (without a password: unusable until one is set)", body = UserView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not an admin, nor the operator", body = ErrorDetail),
        (status = 429, description = "Another password of the organization is being hashed, or the server's password work is busy", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    caller: Caller,
    Json(body): Json<NewUserBody>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let requested = match &body.organization {
        None => None,
        Some(reference) => Some(id_from(reference, "organizations").ok_or_else(|| {
            ApiError::field("organization", "expected an organization URL or id")
        })?),
    };
    let organization_id = new_user_organization(caller, requested)?;
    let role = requested_role(body.role.as_deref(), body.groups.as_deref())?.unwrap_or("member");
    if body.is_active == Some(false) {
        return Err(ApiError::field(
            "is_active",
            "a new user is active; deactivate it afterwards with PATCH /users/{id}",
        ));
    }
    check_queues(body.queues.as_deref())?;
    check_presentation(
        Some(body.first_name.as_str()),
        Some(body.last_name.as_str()),
        Some(body.email.as_str()),
    )?;
    accounts::validate_username(&body.username)?;
    let password_hash = match body.password.clone() {
        Some(password) => hash_password(&throttle, organization_id, password).await?,
        None => accounts::UNUSABLE_PASSWORD.to_owned(),
    };
    let created_at = now_rfc3339();
    let new_user = NewUser {
        organization_id,
        username: &body.username,
        password_hash: &password_hash,
        role,
        first_name: &body.first_name,
        last_name: &body.last_name,
        email: &body.email,
    };
    let user = state
        .store
        .users()
        .create(&new_user, &created_at)
        .await?
        .ok_or_else(|| ApiError::field("organization", "no such organization"))?;
    Ok((StatusCode::CREATED, axum::Json(render(&state, &user))))
}

/// The organization a new user joins: the operator names one; an admin creates users of
/// their own only; members and extensions' tokens create none.
fn new_user_organization(caller: Caller, requested: Option<u64>) -> ApiResult<u64> {
    match caller {
        Caller::Operator => requested.ok_or_else(|| {
            ApiError::field("organization", "required when the operator creates a user")
        }),
        Caller::User {
            role: Role::Admin,
            organization_id,
            ..
        } => match requested {
            Some(other) if other != organization_id => Err(ApiError::field(
                "organization",
                "admins create users of their own organization only",
            )),
            _ => Ok(organization_id),
        },
        Caller::User {
            role: Role::Member, ..
        } => Err(ApiError::Forbidden),
        Caller::Extension { .. } => Err(ApiError::ForbiddenBecause(
            "This token was minted for a hook's run; an extension's token may not create users."
                .into(),
        )),
    }
}

/// Hashes a new password of a user of `organization_id` off the async threads (argon2
/// takes tens of milliseconds); a password the rules refuse is the client's error, on
/// `password`. One at a time per organization, in one of the places the logins' password
/// checks take turns at ([`LoginThrottle::password_write`]): each hash holds about 19 MiB
/// and a core, and an admin's requests at once must neither add up to the machine's
/// memory nor keep every organization's logins waiting (429 with `Retry-After`).
async fn hash_password(
    throttle: &LoginThrottle,
    organization_id: u64,
    password: String,
) -> ApiResult<String> {
    let places = throttle.password_write(organization_id).await?;
    Ok(tokio::task::spawn_blocking(move || {
        let _places = places;
        accounts::hash_password(&password)
    })
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))??)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserFilter, PageQuery),
    responses(
        (status = 200, description = "The organization's users (ordering: id, username)", body = Paginated<UserView>),
        (status = 400, description = "A filter or parameter is not valid", body = ValidationErrors),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(filter): Params<UserFilter>,
) -> ApiResult<axum::Json<Paginated<UserView>>> {
    let request = filter.page.validate_ordered(ORDERINGS)?;
    let asked = super::extract::id_filter("organization", filter.organization.as_deref())?;
    let organization = match (caller.organization(), asked) {
        (Some(own), Some(asked)) if own != asked => None,
        (Some(own), _) => Some(Some(own)),
        (None, asked) => Some(asked),
    };
    let page = match organization {
        // Another organization's users: an empty list, as for any filter matching nothing.
        None => Page {
            rows: Vec::new(),
            total: 0,
        },
        Some(organization) => {
            state
                .store
                .users()
                .list(organization, request.window())
                .await?
        }
    };
    let list_url = state.list_url("users");
    Ok(axum::Json(Paginated::new(&page, request, &list_url, |u| {
        render(&state, u)
    })))
}

/// User `id` if the caller may see it: 404 when it does not exist or is another
/// organization's (the two are indistinguishable to the caller).
async fn visible_user(state: &AppState, caller: &Caller, id: u64) -> ApiResult<User> {
    state
        .store
        .users()
        .get(id)
        .await?
        .filter(|user| caller.can_see(user.organization_id))
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(IdPath),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user in the caller's organization", body = ErrorDetail),
    ))]
pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<UserView>> {
    let user = visible_user(&state, &caller, id).await?;
    Ok(axum::Json(render(&state, &user)))
}

/// `GET /auth/user`: the caller's own user (for an extension's token, its token owner).
/// The operator is no user, and is told so.
#[utoipa::path(get, path = "/api/v1/auth/user", tag = "authentication",
    responses(
        (status = 200, description = "The user the token belongs to", body = UserView),
        (status = 403, description = "The operator's token belongs to no user", body = ErrorDetail),
    ))]
pub(super) async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<UserView>> {
    let id = match caller {
        Caller::User { id, .. } => id,
        Caller::Extension { user, .. } => user,
        Caller::Operator => return Err(ApiError::ForbiddenBecause(OPERATOR_IS_NO_USER.into())),
    };
    let user = state
        .store
        .users()
        .get(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &user)))
}

/// PUT and PATCH `/users/{id}`: the fields sent replace the stored ones. The operator and
/// the organization's admins change any of its users (an admin not their own role or
/// activity); a member changes their own names and email; an extension's token changes no
/// user. A user deactivated (`is_active: false`) can no longer log in, and every token it
/// had stops working.
#[utoipa::path(method(put, patch), path = "/api/v1/users/{id}", tag = "users", params(IdPath),
    request_body = UserChangeBody,
    responses(
        (status = 200, description = "Updated: the fields sent (PUT and PATCH alike)", body = UserView),
        (status = 400, description = "A field is not valid", body = ValidationErrors),
        (status = 403, description = "Not allowed to change these fields", body = ErrorDetail),
        (status = 404, description = "No such user in the caller's organization", body = ErrorDetail),
        (status = 429, description = "Another password of the organization is being hashed, or the server's password work is busy", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(mut body): Json<UserChangeBody>,
) -> ApiResult<axum::Json<UserView>> {
    let user = visible_user(&state, &caller, id).await?;
    let mut change = requested_change(&user, &body)?;
    may_change(&caller, &user, &change, body.password.is_some())?;
    if let Some(password) = body.password.take() {
        change.password_hash =
            Some(hash_password(&throttle, user.organization_id, password).await?);
    }
    let user = state
        .store
        .users()
        .update(id, change)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &user)))
}

/// `DELETE /users/{id}`: the operator or an admin of the user's organization deletes it,
/// with every token it had (they stop working at once); it can no longer log in, and it is
/// not found. An admin does not delete themself (as they do not deactivate themself: the
/// organization could be left without an admin); members and extensions' tokens delete no
/// one. A user that hooks run as (their `token_owner`) is not deleted: 409 naming the
/// hooks, to be given another token owner (or none) first, as a module a hook uses is not
/// deleted either.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(IdPath),
    responses(
        (status = 204, description = "Deleted, with its tokens"),
        (status = 403, description = "Not allowed to delete this user", body = ErrorDetail),
        (status = 404, description = "No such user in the caller's organization", body = ErrorDetail),
        (status = 409, description = "Hooks name it token_owner", body = ErrorDetail),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<StatusCode> {
    let user = visible_user(&state, &caller, id).await?;
    may_delete(&caller, &user)?;
    let deletion = state
        .store
        .users()
        .delete(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match deletion {
        UserDeletion::Deleted => Ok(StatusCode::NO_CONTENT),
        UserDeletion::TokenOwner(hooks) => {
            let urls: Vec<String> = hooks.iter().map(|id| state.url("hooks", *id)).collect();
            Err(ApiError::Conflict(format!(
                "the user is the token_owner of hooks {}; give them another token_owner \
                 (or none) first",
                urls.join(", ")
            )))
        }
    }
}
