//! `/users`: the operator creates an organization's first admin; admins create the rest.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{ObjectId, Params};
use super::json::Json;
use super::pagination::{PageQuery, Paginated};
use super::{id_from, AppState};
use crate::accounts;
use crate::model::now_rfc3339;
use crate::store::users::{NewUser, User, UserOrder};
use crate::store::Page;

/// The `ordering` values of the users list.
const ORDERINGS: &[(&str, UserOrder)] = &[("id", UserOrder::Id), ("username", UserOrder::Username)];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUserBody {
    username: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    organization: Option<Value>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct UserFilter {
    organization: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

fn render(state: &AppState, user: &User) -> Value {
    json!({
        "id": user.id,
        "url": state.url("users", user.id),
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "organization": state.url("organizations", user.organization_id),
        "role": user.role,
    })
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewUserBody>,
) -> ApiResult<(StatusCode, axum::Json<Value>)> {
    let requested = match &body.organization {
        None => None,
        Some(reference) => Some(id_from(reference, "organizations").ok_or_else(|| {
            ApiError::field("organization", "expected an organization URL or id")
        })?),
    };
    let organization_id = new_user_organization(caller, requested)?;
    let role = body.role.as_deref().unwrap_or("member").to_owned();
    if Role::parse(&role).is_none() {
        return Err(ApiError::field(
            "role",
            format!("`{role}` is not one of admin, member"),
        ));
    }
    accounts::validate_username(&body.username)?;
    let password_hash = hash_password(body.password.clone()).await?;
    let created_at = now_rfc3339();
    let new_user = NewUser {
        organization_id,
        username: &body.username,
        password_hash: &password_hash,
        role: &role,
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

/// Hashes a new password off the async threads (argon2 takes tens of milliseconds); a
/// password the rules refuse is the client's error, on `password`.
async fn hash_password(password: String) -> ApiResult<String> {
    Ok(
        tokio::task::spawn_blocking(move || accounts::hash_password(&password))
            .await
            .map_err(|error| ApiError::Internal(error.to_string()))??,
    )
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(filter): Params<UserFilter>,
) -> ApiResult<axum::Json<Paginated>> {
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

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
) -> ApiResult<axum::Json<Value>> {
    let user = state
        .store
        .users()
        .get(id)
        .await?
        .filter(|user| caller.can_see(user.organization_id))
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(render(&state, &user)))
}
