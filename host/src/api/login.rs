//! `/auth/login` and `/auth/logout`, as Rossum has them: a username and password (JSON or
//! form) for `{"key": token}`; logout deletes the token used.
//!
//! Logins are throttled per username and per peer address ([`super::throttle`]) before the
//! password is looked at, with the same answers for unknown usernames as for known ones.
//! The operator's token cannot be logged out: it comes from the server's configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap};
use axum::Extension;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{bearer, Caller};
use super::error::{ApiError, ApiResult, ErrorDetail, ValidationErrors};
use super::json::{from_value, parse_json, RawBody};
use super::throttle::LoginThrottle;
use super::AppState;
use crate::accounts;
use crate::tokens::{self, Grant};

/// How long a login token is valid: 162 hours, as Rossum's.
pub const LOGIN_TOKEN_LIFETIME_S: i64 = 162 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
pub(super) struct Credentials {
    username: String,
    password: String,
}

/// The username and password, from a form or (whatever else the content type says) JSON,
/// with DRF's errors: `JSON parse error - ...`, or the missing field named
/// (`{"password": ["This field is required."]}`).
fn parse_credentials(headers: &HeaderMap, body: &[u8]) -> Result<Credentials, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let fields = if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|error| ApiError::Parse(format!("Form parse error - {error}")))?;
        Value::Object(
            pairs
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect(),
        )
    } else {
        parse_json(body)?
    };
    from_value(fields)
}

/// A login's answer: the token, Rossum's `key` (sent back as `Authorization: Bearer <key>`
/// or `Token <key>`).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct LoginAnswer {
    /// The token.
    key: String,
    /// Always null.
    domain: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "authentication", security(()),
    request_body(description = "JSON or a form", content(
        (Credentials = "application/json"),
        (Credentials = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Logged in: a token valid for 162 hours", body = LoginAnswer),
        (status = 400, description = "Wrong credentials (non_field_errors), or a field is missing", body = ValidationErrors),
        (status = 429, description = "Too many failed logins: retry after Retry-After", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(super) async fn login(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    // The connection's address, when the server inserts it (none: throttled by username only).
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<axum::Json<LoginAnswer>> {
    let credentials = parse_credentials(&headers, &body)?;
    // Before the database and argon2: a refused guess costs the server next to nothing.
    let peer = peer.map(|Extension(ConnectInfo(address))| address.ip());
    // A place to check the password first (waiting a little for one): an attempt refused
    // for want of a place is not counted against the username or the address.
    let place = throttle.verification().await?;
    let attempt = throttle.admit(&credentials.username, peer, Instant::now())?;
    let user = state
        .store
        .users()
        .by_username(&credentials.username)
        .await?
        .filter(|user| user.is_active);
    // Verify against a real hash even for unknown users and users without a password, so
    // timing does not tell which usernames exist; such a user is refused whatever the
    // dummy hash says.
    let user = user.filter(|user| user.password_hash != accounts::UNUSABLE_PASSWORD);
    let hash = user
        .as_ref()
        .map(|user| user.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_owned());
    let password = credentials.password;
    let verified = tokio::task::spawn_blocking(move || {
        let _place = place;
        accounts::verify_password(&password, &hash)
    })
    .await
    .map_err(|error| ApiError::Internal(error.to_string()))?;
    let user = user.filter(|_| verified).ok_or(ApiError::BadCredentials)?;
    throttle.succeeded(&attempt);
    let grant = Grant::User {
        user_id: user.id,
        lifetime_s: LOGIN_TOKEN_LIFETIME_S,
    };
    let token = tokens::mint(&state.store, grant).await?;
    // Rossum's `last_login`. A failure to note it does not refuse a good login.
    if let Err(error) = state
        .store
        .users()
        .record_login(user.id, &crate::model::now_rfc3339())
        .await
    {
        tracing::warn!("could not record the login of user {}: {error}", user.id);
    }
    Ok(axum::Json(LoginAnswer {
        key: token,
        domain: None,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "authentication",
    responses(
        (status = 200, description = "The token is deleted", body = ErrorDetail,
            example = json!({"detail": "Successfully logged out."})),
        (status = 403, description = "The operator's token cannot be logged out", body = ErrorDetail),
    ))]
pub(super) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<axum::Json<ErrorDetail>> {
    if matches!(caller, Caller::Operator) {
        // Deleting it would lock the operator out until a restart: nothing else gives
        // the operator a token.
        return Err(ApiError::ForbiddenBecause(OPERATOR_LOGOUT.into()));
    }
    let token = bearer(&headers).ok_or(ApiError::Unauthorized)?;
    state.store.tokens().delete(token).await?;
    Ok(axum::Json(ErrorDetail {
        detail: "Successfully logged out.".into(),
    }))
}

/// Why the operator's logout is refused, and what to do instead.
const OPERATOR_LOGOUT: &str = "The operator's token cannot be logged out: it is set with \
    WASMHOOK_OPERATOR_TOKEN (or generated at the first start) and is replaced by restarting \
    the server with a new WASMHOOK_OPERATOR_TOKEN, or with `wasmhook operator rotate-token` \
    while the server is stopped.";

/// An argon2 hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3yBvJ8Pb0QZT3v4Zl1uZl0k8u6Nn3mD4uQm4wZr3kSo";
