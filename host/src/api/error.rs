//! The one error type of the HTTP layer, and its mapping to status codes.
//!
//! Every failure becomes `{"detail": "..."}` with the right status, as Rossum answers.
//! Server-side failures (5xx) answer a generic message; their cause goes to the server log.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;

use crate::store::StoreError;

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a rule (400).
    #[error("{0}")]
    BadRequest(String),
    /// No valid credentials (401).
    #[error("Invalid token.")]
    Unauthorized,
    /// Login failed (400, as Rossum answers a bad login).
    #[error("Unable to log in with provided credentials.")]
    BadCredentials,
    /// Authenticated, but not allowed (403).
    #[error("You do not have permission to perform this action.")]
    Forbidden,
    /// Authenticated, but not allowed, for a reason the caller can act on (403).
    #[error("{0}")]
    ForbiddenBecause(String),
    /// No such object, or not one the caller may see (404).
    #[error("Not found.")]
    NotFound,
    /// The route does not take this method (405, with `Allow`); worded as DRF's.
    #[error("Method \"{0}\" not allowed.")]
    MethodNotAllowed(http::Method),
    /// The body is larger than the limit (413).
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Conflicts with the state (409).
    #[error("{0}")]
    Conflict(String),
    /// The organization is at one of its limits (429, with `Retry-After`).
    #[error("{detail}")]
    TooManyRequests {
        /// What is at its limit, and what to do.
        detail: String,
        /// Seconds after which a retry may succeed.
        retry_after_s: u64,
    },
    /// Too many failed logins for this username or from this address (429, with
    /// `Retry-After` in whole seconds); worded as DRF's throttle answers.
    #[error("Request was throttled. Expected available in {retry_after_s} seconds.")]
    Throttled {
        /// Seconds until a login may be tried again.
        retry_after_s: u64,
    },
    /// Something on the server failed (500); the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadCredentials => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } | ApiError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = match &self {
            ApiError::Internal(cause) => {
                tracing::error!("request failed: {cause}");
                "A server error occurred.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response =
            (self.status(), Json(serde_json::json!({ "detail": detail }))).into_response();
        if self.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = match &self {
                ApiError::Throttled { retry_after_s }
                | ApiError::TooManyRequests { retry_after_s, .. } => {
                    http::HeaderValue::from(*retry_after_s)
                }
                _ => http::HeaderValue::from_static("1"),
            };
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after);
        }
        if self.status() == StatusCode::PAYLOAD_TOO_LARGE {
            // The body may be partly unread: the connection cannot carry another request.
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => ApiError::BadRequest(message),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::model::hook::HookError> for ApiError {
    fn from(error: crate::model::hook::HookError) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

impl From<crate::store::hooks::SaveError> for ApiError {
    fn from(error: crate::store::hooks::SaveError) -> Self {
        match error {
            crate::store::hooks::SaveError::Invalid(invalid) => invalid.into(),
            crate::store::hooks::SaveError::Store(store) => store.into(),
        }
    }
}

impl From<crate::store::queues::QueueSaveError> for ApiError {
    fn from(error: crate::store::queues::QueueSaveError) -> Self {
        match error {
            crate::store::queues::QueueSaveError::ForeignHook(hook) => {
                ApiError::BadRequest(format!("hooks: no hook {hook} in this organization"))
            }
            crate::store::queues::QueueSaveError::Store(store) => store.into(),
        }
    }
}

impl From<super::throttle::Throttled> for ApiError {
    fn from(throttled: super::throttle::Throttled) -> Self {
        ApiError::Throttled {
            retry_after_s: throttled.retry_after_s(),
        }
    }
}

impl From<crate::dispatch::limits::Busy> for ApiError {
    fn from(busy: crate::dispatch::limits::Busy) -> Self {
        ApiError::TooManyRequests {
            detail: busy.to_string(),
            retry_after_s: 1,
        }
    }
}

impl From<crate::sealing::SealingError> for ApiError {
    fn from(error: crate::sealing::SealingError) -> Self {
        // Never the secret: the error carries none, and the detail is logged generic.
        ApiError::Internal(error.to_string())
    }
}

impl From<crate::modules::gate::CompileRefused> for ApiError {
    fn from(refused: crate::modules::gate::CompileRefused) -> Self {
        ApiError::TooManyRequests {
            detail: refused.to_string(),
            retry_after_s: refused.retry_after_s(),
        }
    }
}

/// What a handler returns: its error is answered in Rossum's shape (`{"detail": ...}` with
/// its status).
pub type ApiResult<T> = Result<T, ApiError>;
