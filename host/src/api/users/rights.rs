//! The rules of `/users` apart from the handlers: which role a request asks for (by
//! wasmhook's `role` or Rossum's `groups`), which names, email and queues are accepted, what
//! change a body asks, and who may make it or delete a user. Pure: no store, no async.

use serde_json::Value;

use super::UserChangeBody;
use crate::api::auth::{extension_may_not, Caller, Role};
use crate::api::error::{ApiError, ApiResult};
use crate::api::id_from;
use crate::model::group::{Group, GROUPS};
use crate::store::users::{User, UserChange};

/// The longest first or last name accepted (Rossum's, Django's).
const MAX_NAME_CHARS: usize = 150;
/// The longest email address accepted (Django's).
const MAX_EMAIL_CHARS: usize = 254;

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
pub(super) fn requested_role(
    role: Option<&str>,
    groups: Option<&[Value]>,
) -> ApiResult<Option<&'static str>> {
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
pub(super) fn check_queues(queues: Option<&[Value]>) -> ApiResult<()> {
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
pub(super) fn check_presentation(
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

/// Whether `caller` may delete `user`, whom it can see: the operator and the
/// organization's admins may, an admin not themself; a member or an extension's token
/// never.
pub(super) fn may_delete(caller: &Caller, user: &User) -> ApiResult<()> {
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
pub(super) fn requested_change(user: &User, body: &UserChangeBody) -> ApiResult<UserChange> {
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
pub(super) fn may_change(
    caller: &Caller,
    user: &User,
    change: &UserChange,
    password: bool,
) -> ApiResult<()> {
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
