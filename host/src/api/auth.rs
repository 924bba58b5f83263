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
        /// The user.
        id: u64,
        /// Its organization: everything the caller sees is scoped to it.
        organization_id: u64,
        /// What it may do there.
        role: Role,
    },
}

impl Caller {
    /// The caller's organization, if it is a user.
    pub fn organization(&self) -> Option<u64> {
        match self {
            Caller::Operator => None,
            Caller::User {
                organization_id, ..
            } => Some(*organization_id),
        }
    }

    /// The organization and user of an admin; anyone else may not change things.
    pub fn admin(&self) -> Result<(u64, u64), ApiError> {
        match self {
            Caller::User {
                id,
                organization_id,
                role: Role::Admin,
            } => Ok((*organization_id, *id)),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// The organization and user of a user of any role (the operator runs no hooks).
    pub fn member(&self) -> Result<(u64, u64), ApiError> {
        match self {
            Caller::User {
                id,
                organization_id,
                ..
            } => Ok((*organization_id, *id)),
            Caller::Operator => Err(ApiError::Forbidden),
        }
    }

    /// Whether the caller may see objects of `organization_id`.
    pub fn can_see(&self, organization_id: u64) -> bool {
        self.organization().is_none_or(|own| own == organization_id)
    }
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
        let token = bearer(&parts.headers)
            .ok_or(ApiError::Unauthorized)?
            .to_owned();
        let session = state
            .store
            .session(&token)
            .await?
            .filter(|session| session.valid_at(unix_now()))
            .ok_or(ApiError::Unauthorized)?;
        let caller = match (session.owner, session.user) {
            (Owner::Operator, _) => Some(Caller::Operator),
            (Owner::User(_), Some(user)) if user.is_active => {
                Role::parse(&user.role).map(|role| Caller::User {
                    id: user.id,
                    organization_id: user.organization_id,
                    role,
                })
            }
            (Owner::User(_), _) => None,
        };
        caller.ok_or(ApiError::Unauthorized)
    }
}

/// Now in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
