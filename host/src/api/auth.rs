//! Who is calling: the `Authorization: Bearer <token>` (or `Token <token>`) header resolved to
//! the operator or to a user of one organization.

use axum::extract::FromRequestParts;
use http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::store::tokens::Owner;

/// A user's role in its organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Manages everything of its organization.
    Admin,
    /// Reads, tests and invokes.
    Member,
}

impl Role {
    /// The role from its stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The installation's operator: manages organizations and their first admins.
    Operator,
    /// A user of one organization.
    User {
        /// The user's id: handlers record it as the author of what the user saves.
        id: u64,
        /// Its organization: everything the caller sees is scoped to it.
        organization_id: u64,
        /// What it may do there.
        role: Role,
    },
    /// An extension during (and shortly after) a run, with the token minted for its hook's
    /// `token_owner`. It acts for the extension, not for the person: it reads what its
    /// organization holds, writes queues (when its owner may) and its own hook's settings,
    /// and nothing else. It cannot manage users or modules, change any hook's owner,
    /// lifetime, config or secrets, or run hooks (which would mint it a fresh token), so a
    /// token that leaks out of a run is worth no more than the run itself.
    Extension {
        /// The token's owner (the hook's `token_owner`), whose role bounds the extension's.
        user: u64,
        /// The owner's organization.
        organization_id: u64,
        /// The owner's role, which bounds what the extension may write.
        role: Role,
        /// The hook the token was minted for.
        hook_id: u64,
    },
}

impl Caller {
    /// The caller's organization, if it is a user or an extension.
    pub fn organization(&self) -> Option<u64> {
        match self {
            Caller::Operator => None,
            Caller::User {
                organization_id, ..
            }
            | Caller::Extension {
                organization_id, ..
            } => Some(*organization_id),
        }
    }

    /// The organization and user of an admin with its own session; anyone else may not
    /// change things.
    pub fn admin(&self) -> Result<(u64, u64), ApiError> {
        match self {
            Caller::User {
                id,
                organization_id,
                role: Role::Admin,
            } => Ok((*organization_id, *id)),
            Caller::Extension { .. } => Err(extension_may_not("do this")),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// The organization and user of a user of any role, with its own session (the
    /// operator runs no hooks, and an extension's token may not run hooks: each run would
    /// mint it a fresh token).
    pub fn member(&self) -> Result<(u64, u64), ApiError> {
        match self {
            Caller::User {
                id,
                organization_id,
                ..
            } => Ok((*organization_id, *id)),
            Caller::Extension { .. } => Err(extension_may_not("run hooks")),
            Caller::Operator => Err(ApiError::Forbidden),
        }
    }

    /// The organization and user that writes a queue: an admin, or an extension whose
    /// token owner is one (queues are what an extension updates in Rossum).
    pub fn queue_writer(&self) -> Result<(u64, u64), ApiError> {
        match self {
            Caller::Extension {
                user,
                organization_id,
                role: Role::Admin,
                ..
            } => Ok((*organization_id, *user)),
            _ => self.admin(),
        }
    }

    /// The organization and user that writes `fields` of hook `hook_id`: an admin, or the
    /// hook's own extension changing nothing but `settings` (when its token owner may write
    /// hooks at all).
    pub fn hook_writer<'a>(
        &self,
        hook_id: u64,
        mut fields: impl Iterator<Item = &'a str>,
    ) -> Result<(u64, u64), ApiError> {
        match self {
            Caller::Extension {
                user,
                organization_id,
                role: Role::Admin,
                hook_id: own,
            } if *own == hook_id => match fields.find(|field| *field != "settings") {
                None => Ok((*organization_id, *user)),
                Some(field) => Err(extension_may_not(&format!(
                    "change `{field}`; it may change its own hook's `settings` only"
                ))),
            },
            _ => self.admin(),
        }
    }

    /// The role of the person behind the caller, if any.
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Operator => None,
            Caller::User { role, .. } | Caller::Extension { role, .. } => Some(*role),
        }
    }

    /// Whether the caller may see objects of `organization_id`.
    pub fn can_see(&self, organization_id: u64) -> bool {
        self.organization().is_none_or(|own| own == organization_id)
    }
}

/// The refusal of something an extension's token may not do, saying why.
pub(super) fn extension_may_not(what: &str) -> ApiError {
    ApiError::ForbiddenBecause(format!(
        "This token was minted for a hook's run; an extension's token may not {what}."
    ))
}

/// The raw token of a request, from `Authorization: Bearer X` or `Token X`.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let header = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // No token at all is DRF's `NotAuthenticated`; a token that names no valid session,
        // its `AuthenticationFailed` ("Invalid token.").
        let token = bearer(&parts.headers)
            .ok_or(ApiError::NotAuthenticated)?
            .to_owned();
        let session = state
            .store
            .session(&token)
            .await?
            .filter(|session| session.valid_at(crate::model::unix_now()))
            .ok_or(ApiError::Unauthorized)?;
        let caller = match (&session.owner, &session.user) {
            (Owner::Operator, _) => Some(Caller::Operator),
            (Owner::User(_), Some(user)) if user.is_active => {
                Role::parse(&user.role).map(|role| match session.hook_id {
                    None => Caller::User {
                        id: user.id,
                        organization_id: user.organization_id,
                        role,
                    },
                    Some(hook_id) => Caller::Extension {
                        user: user.id,
                        organization_id: user.organization_id,
                        role,
                        hook_id,
                    },
                })
            }
            (Owner::User(_), _) => None,
        };
        let caller = caller.ok_or(ApiError::Unauthorized)?;
        if let (Some(organization), Some(slot)) = (
            caller.organization(),
            parts.extensions.get::<super::access::OrganizationSlot>(),
        ) {
            let _ = slot.0.set(organization);
        }
        Ok(caller)
    }
}
