//! `/users` and `/auth/user`: the operator creates an organization's first admin; admins
//! create the rest, change them, deactivate them and delete them; a user reads and changes
//! its own names and email. Users have Rossum's shape: a role is given as wasmhook's
//! `role` or as Rossum's `groups` (`model::group`), and `GET /auth/user` answers the
//! caller's own user (Rossum's client reads it to find its organization).

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::auth::{extension_may_not, Caller, Role};
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::extract::{IdPath, ObjectId, Params};
use super::groups::group_url;
use super::json::Json;
use super::pagination::{PageQuery, Paginated};
use super::{id_from, AppState};
use crate::accounts;
use crate::model::group::{Group, GROUPS};
use crate::model::now_rfc3339;
use crate::store::users::{NewUser, User, UserChange, UserDeletion, UserOrder};
use crate::store::Page;

/// The `ordering` values of the users list.
const ORDERINGS: &[(&str, UserOrder)] = &[("id", UserOrder::Id), ("username", UserOrder::Username)];

/// The longest first or last name accepted (Rossum's, Django's).
const MAX_NAME_CHARS: usize = 150;
/// The longest email address accepted (Django's).
const MAX_EMAIL_CHARS: usize = 254;

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

/// Why an admin may not change their own role or activity.
const ADMIN_OWN_ROLE: &str = "An admin cannot change their own role or deactivate \
    themselves (the organization could be left without an admin); another admin of the \
    organization or the operator can.";

/// Why an admin may not delete themself: the rule of [`ADMIN_OWN_ROLE`], for deletion.
const ADMIN_OWN_DELETION: &str = "An admin cannot delete themselves (the organization \
    could be left without an admin); another admin of the organization or the operator can.";

/// What a member may change of their own user.
const MEMBER_OWN_USER: &str = "A member changes their own first_name, last_name and email \
    only; their role, activity and password are changed by an admin of the organization.";

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
    ))]
pub(super) async fn create(
    State(state): State<AppState>,
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
        Some(password) => hash_password(password).await?,
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

/// The stored name of a role.
fn stored_role(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// The stored role a request asks for, from wasmhook's `role` or Rossum's `groups` (each a
/// group's URL or id); none when it sends neither, or no group. Both may be sent when they
/// agree. A user is in one group, so `groups` names one (or repeats it).
fn requested_role(role: Option<&str>, groups: Option<&[Value]>) -> ApiResult<Option<&'static str>> {
    let from_role = role
        .map(|name| {
            Role::parse(name).map(stored_role).ok_or_else(|| {
                ApiError::field("role", format!("`{name}` is not one of admin, member"))
            })
        })
        .transpose()?;
    let from_groups = match groups {
        None => None,
        Some(references) => group_role(references)?,
    };
    match (from_role, from_groups) {
        (Some(role), Some(group)) if role != group => Err(ApiError::field(
            "groups",
            format!(
                "the group sent stands for the role `{group}`, but role is `{role}`; \
             send one of them"
            ),
        )),
        (role, group) => Ok(role.or(group)),
    }
}

/// The stored role the groups `references` stand for: none for no group; refused when one
/// is not a group served here, or when they stand for more than one role.
fn group_role(references: &[Value]) -> ApiResult<Option<&'static str>> {
    let mut roles = references
        .iter()
        .map(|reference| {
            id_from(reference, "groups")
                .and_then(Group::by_id)
                .map(|group| group.role)
                .ok_or_else(|| {
                    let names: Vec<&str> = GROUPS.iter().map(|group| group.name).collect();
                    ApiError::field(
                        "groups",
                        format!(
                            "`{reference}` is not a group served here ({}: see /groups)",
                            names.join(", ")
                        ),
                    )
                })
        })
        .collect::<ApiResult<Vec<&'static str>>>()?;
    roles.sort_unstable();
    roles.dedup();
    match roles.as_slice() {
        [] => Ok(None),
        [role] => Ok(Some(*role)),
        _ => Err(ApiError::field(
            "groups",
            "a user is in one group here (admin or annotator), not several",
        )),
    }
}

/// Refuses `queues` that are not queue references (they are otherwise not kept: every
/// user sees every queue of its organization).
fn check_queues(queues: Option<&[Value]>) -> ApiResult<()> {
    for reference in queues.unwrap_or_default() {
        if id_from(reference, "queues").is_none() {
            return Err(ApiError::field(
                "queues",
                format!("`{reference}` is not a queue URL"),
            ));
        }
    }
    Ok(())
}

/// Refuses names longer than Rossum's and an email that is not an address.
fn check_presentation(
    first_name: Option<&str>,
    last_name: Option<&str>,
    email: Option<&str>,
) -> ApiResult<()> {
    for (field, value) in [("first_name", first_name), ("last_name", last_name)] {
        if value.is_some_and(|value| value.chars().count() > MAX_NAME_CHARS) {
            return Err(ApiError::field(
                field,
                format!("at most {MAX_NAME_CHARS} characters"),
            ));
        }
    }
    if let Some(email) = email.filter(|email| !email.is_empty()) {
        let plausible = email.chars().count() <= MAX_EMAIL_CHARS
            && !email.chars().any(char::is_whitespace)
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !plausible {
            return Err(ApiError::field(
                "email",
                format!("not an email address of at most {MAX_EMAIL_CHARS} characters"),
            ));
        }
    }
    Ok(())
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
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ObjectId(id): ObjectId,
    Json(mut body): Json<UserChangeBody>,
) -> ApiResult<axum::Json<UserView>> {
    let user = visible_user(&state, &caller, id).await?;
    let mut change = requested_change(&user, &body)?;
    may_change(&caller, &user, &change, body.password.is_some())?;
    if let Some(password) = body.password.take() {
        change.password_hash = Some(hash_password(password).await?);
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

/// Whether `caller` may delete `user`, whom it can see: the operator and the
/// organization's admins may, an admin not themself; a member or an extension's token
/// never.
fn may_delete(caller: &Caller, user: &User) -> ApiResult<()> {
    match *caller {
        Caller::Operator => Ok(()),
        Caller::Extension { .. } => Err(extension_may_not("delete users")),
        Caller::User {
            role: Role::Member, ..
        } => Err(ApiError::Forbidden),
        Caller::User {
            id,
            role: Role::Admin,
            ..
        } => {
            if id == user.id {
                Err(ApiError::ForbiddenBecause(ADMIN_OWN_DELETION.into()))
            } else {
                Ok(())
            }
        }
    }
}

/// The change a body asks of `user` (its password not yet hashed): a role or activity is
/// a change only when it differs from the stored one, so a client may send back what it
/// read. A username or organization other than the user's is refused.
fn requested_change(user: &User, body: &UserChangeBody) -> ApiResult<UserChange> {
    if body
        .username
        .as_ref()
        .is_some_and(|username| *username != user.username)
    {
        return Err(ApiError::field(
            "username",
            "cannot be changed; create a new user instead",
        ));
    }
    if let Some(reference) = &body.organization {
        if id_from(reference, "organizations") != Some(user.organization_id) {
            return Err(ApiError::field(
                "organization",
                "a user cannot move to another organization",
            ));
        }
    }
    if body.groups.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::field(
            "groups",
            "a user is in one group (admin or annotator: see /groups)",
        ));
    }
    let role = requested_role(body.role.as_deref(), body.groups.as_deref())?;
    check_queues(body.queues.as_deref())?;
    check_presentation(
        body.first_name.as_deref(),
        body.last_name.as_deref(),
        body.email.as_deref(),
    )?;
    Ok(UserChange {
        first_name: body.first_name.clone(),
        last_name: body.last_name.clone(),
        email: body.email.clone(),
        role: role
            .filter(|role| *role != user.role.as_str())
            .map(str::to_owned),
        is_active: body.is_active.filter(|active| *active != user.is_active),
        password_hash: None,
    })
}

/// Whether `caller` may make `change` (and set a password, when `password`) to `user`,
/// whom it can see: the operator and admins may (an admin not their own role or
/// activity); a member only their own names and email; an extension's token never.
fn may_change(caller: &Caller, user: &User, change: &UserChange, password: bool) -> ApiResult<()> {
    let role_or_activity = change.role.is_some() || change.is_active.is_some();
    match *caller {
        Caller::Operator => Ok(()),
        Caller::Extension { .. } => Err(extension_may_not("change users")),
        Caller::User {
            id,
            role: Role::Admin,
            ..
        } => {
            if id == user.id && role_or_activity {
                Err(ApiError::ForbiddenBecause(ADMIN_OWN_ROLE.into()))
            } else {
                Ok(())
            }
        }
        Caller::User {
            id,
            role: Role::Member,
            ..
        } => {
            if id != user.id {
                Err(ApiError::Forbidden)
            } else if role_or_activity || password {
                Err(ApiError::ForbiddenBecause(MEMBER_OWN_USER.into()))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_role_is_asked_by_role_or_by_groups_and_both_must_agree() -> ApiResult<()> {
        let admin = json!("https://h.example/api/v1/groups/1");
        let annotator = json!(2);
        assert_eq!(requested_role(None, None)?, None);
        assert_eq!(requested_role(None, Some(&[]))?, None);
        assert_eq!(requested_role(Some("admin"), None)?, Some("admin"));
        assert_eq!(
            requested_role(None, Some(std::slice::from_ref(&admin)))?,
            Some("admin")
        );
        assert_eq!(
            requested_role(
                Some("member"),
                Some(&[annotator.clone(), annotator.clone()])
            )?,
            Some("member")
        );
        assert!(requested_role(Some("admin"), Some(std::slice::from_ref(&annotator))).is_err());
        assert!(requested_role(None, Some(&[admin, annotator])).is_err());
        assert!(requested_role(None, Some(&[json!(7)])).is_err());
        assert!(requested_role(Some("owner"), None).is_err());
        Ok(())
    }

    #[test]
    fn admins_change_and_delete_users_and_members_only_rename_themselves() {
        let ann = User {
            id: 2,
            organization_id: 1,
            username: "ann".into(),
            password_hash: String::new(),
            role: "member".into(),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
            is_active: true,
            date_joined: String::new(),
            last_login: None,
        };
        let rename = UserChange {
            first_name: Some("Anna".into()),
            ..UserChange::default()
        };
        let raise = UserChange {
            role: Some("admin".into()),
            ..UserChange::default()
        };
        let deactivate = UserChange {
            is_active: Some(false),
            ..UserChange::default()
        };
        let admin = Caller::User {
            id: 1,
            organization_id: 1,
            role: Role::Admin,
        };
        let herself = Caller::User {
            id: 2,
            organization_id: 1,
            role: Role::Member,
        };
        let colleague = Caller::User {
            id: 3,
            organization_id: 1,
            role: Role::Member,
        };
        let extension = Caller::Extension {
            user: 1,
            organization_id: 1,
            role: Role::Admin,
            hook_id: 4,
        };
        assert!(may_change(&Caller::Operator, &ann, &raise, true).is_ok());
        assert!(may_change(&admin, &ann, &raise, true).is_ok());
        assert!(may_change(&admin, &ann, &deactivate, false).is_ok());
        assert!(may_change(&herself, &ann, &rename, false).is_ok());
        assert!(may_change(&herself, &ann, &raise, false).is_err());
        assert!(may_change(&herself, &ann, &deactivate, false).is_err());
        assert!(may_change(&herself, &ann, &rename, true).is_err());
        assert!(may_change(&colleague, &ann, &rename, false).is_err());
        assert!(may_change(&extension, &ann, &rename, false).is_err());
        // Deletion: the operator and admins; a member not even themself.
        assert!(may_delete(&Caller::Operator, &ann).is_ok());
        assert!(may_delete(&admin, &ann).is_ok());
        assert!(may_delete(&herself, &ann).is_err());
        assert!(may_delete(&colleague, &ann).is_err());
        assert!(may_delete(&extension, &ann).is_err());

        let boss = User {
            id: 1,
            role: "admin".into(),
            ..ann
        };
        let lower = UserChange {
            role: Some("member".into()),
            ..UserChange::default()
        };
        assert!(may_change(&admin, &boss, &rename, true).is_ok());
        assert!(may_change(&admin, &boss, &lower, false).is_err());
        assert!(may_change(&admin, &boss, &deactivate, false).is_err());

        // An admin does not delete themself; the operator may.
        assert!(may_delete(&admin, &boss).is_err());
        assert!(may_delete(&Caller::Operator, &boss).is_ok());
    }
}
