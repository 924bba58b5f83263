//! The one error type of the HTTP layer, and its rendering in Django REST Framework's
//! shapes, which Rossum's API has and its clients read:
//!
//! - a request that breaks a rule (400): `{"field": ["message"]}` for a field's error,
//!   `{"non_field_errors": ["message"]}` for the request as a whole ([`Invalid`]);
//! - everything else: `{"detail": "message"}` with its status, worded as DRF words it where
//!   DRF has the case (401, 403, 404, 405, 415, 429, and the 400 of an unreadable body).
//!
//! The field of a validation error is data ([`FieldPath`]), carried from where the rule was
//! checked; nothing here reads a message to find it. Server-side failures (5xx) answer a
//! generic message; their cause goes to the server log.

use std::fmt;

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde_json::{Map, Value};

use crate::accounts::AccountError;
use crate::model::FieldPath;
use crate::store::StoreError;

/// DRF's key for the errors that are about no one field.
pub const NON_FIELD_ERRORS: &str = "non_field_errors";

/// The body of every error but a validation error: `{"detail": "message"}`, worded as
/// DRF words it (the OpenAPI document's `ErrorDetail`; [`ApiError::body`] renders it).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"detail": "Not found."}))]
pub struct ErrorDetail {
    /// What went wrong, for a person.
    pub detail: String,
}

/// The body of a validation error (400), DRF's: each field that breaks a rule with its
/// messages, `{"field": ["message"]}`, or `{"non_field_errors": ["message"]}` for the
/// request as a whole. A key inside a JSON field leads the message under the field
/// (`{"config": ["timeout_s: ..."]}`). The OpenAPI document's `ValidationErrors`;
/// [`Invalid::body`] renders it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"name": ["This field is required."]}))]
pub struct ValidationErrors(pub std::collections::BTreeMap<String, Vec<String>>);

/// A rule a request broke, as DRF's `ValidationError` carries it: the field it is about
/// (none: the request as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field, and the keys inside it for a JSON field; none for `non_field_errors`.
    pub field: Option<FieldPath>,
    /// What is wrong, for a person; never a secret value.
    pub message: String,
}

impl Invalid {
    /// DRF's body for the error. A field's error is `{"field": ["message"]}`. Inside a JSON
    /// field (a hook's `config`, `secrets`, a test's `payload`) the keys lead the message
    /// under the field, `{"config": ["timeout_s: must be ..."]}`: a DRF serializer's
    /// `JSONField` reports its validators' errors as a list under the field, not as nested
    /// serializer errors. No field: `{"non_field_errors": ["message"]}`.
    pub fn body(&self) -> Value {
        let (key, message) = match &self.field {
            None => (NON_FIELD_ERRORS.to_owned(), self.message.clone()),
            Some(path) if path.keys().is_empty() => (path.field().to_owned(), self.message.clone()),
            Some(path) => (
                path.field().to_owned(),
                format!("{}: {}", path.keys().join("."), self.message),
            ),
        };
        let mut body = Map::new();
        body.insert(key, Value::Array(vec![Value::String(message)]));
        Value::Object(body)
    }
}

impl fmt::Display for Invalid {
    /// `field: message` (the path written with dots), or the message alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request breaks a rule of one of its fields, or of the whole (400), rendered in
    /// DRF's validation shape.
    #[error("{0}")]
    Invalid(Invalid),
    /// The body cannot be read as its content type says (400 `{"detail": ...}`), DRF's
    /// `ParseError` (`JSON parse error - ...`).
    #[error("{0}")]
    Parse(String),
    /// No credentials at all (401), worded as DRF's `NotAuthenticated`.
    #[error("Authentication credentials were not provided.")]
    NotAuthenticated,
    /// Credentials that are not valid (401), worded as DRF's token authentication.
    #[error("Invalid token.")]
    Unauthorized,
    /// Login failed (400 `{"non_field_errors": [...]}`), as DRF's `AuthTokenSerializer`
    /// answers a bad login.
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
    /// The body's content type is not one the route reads (415); the content type as sent,
    /// worded as DRF's `UnsupportedMediaType`.
    #[error("Unsupported media type \"{0}\" in request.")]
    UnsupportedMediaType(String),
    /// The body is larger than the limit (413).
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive within the seconds its route allows (408).
    #[error("the request body did not arrive within {0} seconds")]
    RequestTimeout(u64),
    /// A read that may scan ran past its deadline (400 `{"detail": ...}`): the request is
    /// valid, but asks for more than the server scans for one answer; a narrower one is
    /// answered.
    #[error(
        "the read ran for {} ms without finishing; narrow the filter (start_after, hook, queue, request_id) and ask again",
        .0.as_millis()
    )]
    TooBroad(std::time::Duration),
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
    #[error("Request was throttled. Expected available in {}.", in_seconds(.retry_after_s))]
    Throttled {
        /// Seconds until a login may be tried again.
        retry_after_s: u64,
    },
    /// Something on the server failed (500); the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

/// A wait as DRF words it: `1 second`, `5 seconds`.
fn in_seconds(seconds: &u64) -> String {
    if *seconds == 1 {
        "1 second".to_owned()
    } else {
        format!("{seconds} seconds")
    }
}

impl ApiError {
    /// 400: the top-level field `field` breaks a rule (`{"field": ["message"]}`).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::invalid_at(FieldPath::new(field), message)
    }

    /// 400: the value at `path` breaks a rule (a key inside a JSON field is named in the
    /// message, under the field).
    pub fn invalid_at(path: FieldPath, message: impl Into<String>) -> Self {
        ApiError::Invalid(Invalid {
            field: Some(path),
            message: message.into(),
        })
    }

    /// 400: the request as a whole breaks a rule (`{"non_field_errors": ["message"]}`).
    pub fn non_field(message: impl Into<String>) -> Self {
        ApiError::Invalid(Invalid {
            field: None,
            message: message.into(),
        })
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_)
            | ApiError::Parse(_)
            | ApiError::BadCredentials
            | ApiError::TooBroad(_) => StatusCode::BAD_REQUEST,
            ApiError::NotAuthenticated | ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::ForbiddenBecause(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } | ApiError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body, in DRF's shape for this kind of error.
    fn body(&self) -> Value {
        match self {
            ApiError::Invalid(invalid) => invalid.body(),
            ApiError::BadCredentials => Invalid {
                field: None,
                message: self.to_string(),
            }
            .body(),
            ApiError::Internal(cause) => {
                tracing::error!("request failed: {cause}");
                detail("A server error occurred.")
            }
            other => detail(&other.to_string()),
        }
    }
}

/// `{"detail": message}`, through the type the OpenAPI document describes.
fn detail(message: &str) -> Value {
    serde_json::to_value(ErrorDetail {
        detail: message.to_owned(),
    })
    .unwrap_or(Value::Null)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::Throttled { retry_after_s }
            | ApiError::TooManyRequests { retry_after_s, .. } => {
                headers.insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(*retry_after_s),
                );
            }
            ApiError::PayloadTooLarge(_) | ApiError::RequestTimeout(_) => {
                // The body may be partly unread: the connection cannot carry another request.
                headers.insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            ApiError::NotAuthenticated | ApiError::Unauthorized => {
                headers.insert("www-authenticate", http::HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict { field, message } => ApiError::field(field, message),
            StoreError::Deadline(limit) => ApiError::TooBroad(limit),
            StoreError::Quota(reason) => ApiError::Conflict(reason),
            StoreError::Queued => ApiError::TooManyRequests {
                detail: "the organization's run-log reads before this one are still running; retry when they are answered".into(),
                retry_after_s: 1,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<crate::model::hook::HookError> for ApiError {
    fn from(error: crate::model::hook::HookError) -> Self {
        ApiError::invalid_at(error.field, error.message)
    }
}

impl From<AccountError> for ApiError {
    /// The field is the variant's: a username or a password the rules refuse.
    fn from(error: AccountError) -> Self {
        let message = error.to_string();
        match error {
            AccountError::BadUsername => ApiError::field("username", message),
            AccountError::ShortPassword => ApiError::field("password", message),
            AccountError::Hash(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<crate::store::hooks::SaveError> for ApiError {
    fn from(error: crate::store::hooks::SaveError) -> Self {
        match error {
            crate::store::hooks::SaveError::Invalid(invalid) => invalid.into(),
            quota @ crate::store::hooks::SaveError::Quota { .. } => {
                ApiError::Conflict(quota.to_string())
            }
            crate::store::hooks::SaveError::Store(store) => store.into(),
        }
    }
}

impl From<crate::store::queues::QueueSaveError> for ApiError {
    fn from(error: crate::store::queues::QueueSaveError) -> Self {
        match error {
            crate::store::queues::QueueSaveError::ForeignHook(hook) => {
                ApiError::field("hooks", format!("no hook {hook} in this organization"))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{ApiError, Invalid};
    use crate::model::FieldPath;

    fn body(error: &ApiError) -> serde_json::Value {
        error.body()
    }

    #[test]
    fn validation_errors_have_drfs_shape() {
        assert_eq!(
            body(&ApiError::field("name", "required")),
            json!({"name": ["required"]})
        );
        assert_eq!(
            body(&ApiError::non_field("no")),
            json!({"non_field_errors": ["no"]})
        );
        let nested = FieldPath::new("config").key("schedule").key("cron");
        assert_eq!(
            body(&ApiError::invalid_at(nested, "not five fields")),
            json!({"config": ["schedule.cron: not five fields"]})
        );
        assert_eq!(
            body(&ApiError::BadCredentials),
            json!({"non_field_errors": ["Unable to log in with provided credentials."]})
        );
        let invalid = Invalid {
            field: Some(FieldPath::new("secrets").key("a.b")),
            message: "must be a string".into(),
        };
        assert_eq!(invalid.to_string(), "secrets.a.b: must be a string");
        assert_eq!(
            invalid.body(),
            json!({"secrets": ["a.b: must be a string"]})
        );
    }

    #[test]
    fn other_errors_have_a_detail_worded_as_drfs() {
        assert_eq!(body(&ApiError::NotFound), json!({"detail": "Not found."}));
        assert_eq!(
            body(&ApiError::Throttled { retry_after_s: 1 }),
            json!({"detail": "Request was throttled. Expected available in 1 second."})
        );
        assert_eq!(
            body(&ApiError::Throttled { retry_after_s: 5 }),
            json!({"detail": "Request was throttled. Expected available in 5 seconds."})
        );
        assert_eq!(
            body(&ApiError::UnsupportedMediaType("text/plain".into())),
            json!({"detail": "Unsupported media type \"text/plain\" in request."})
        );
        assert_eq!(
            body(&ApiError::Internal("the disk is on fire".into())),
            json!({"detail": "A server error occurred."})
        );
    }
}
