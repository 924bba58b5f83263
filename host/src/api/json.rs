//! A JSON body extractor whose rejections have the API's error shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// Like `axum::Json`, but a malformed body answers 400 `{"detail": ...}` naming the problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = match axum::Json::<Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge(super::MAX_BODY_BYTES));
            }
            Err(rejection) => {
                return Err(ApiError::BadRequest(match rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        "expected a JSON body with `Content-Type: application/json`".to_owned()
                    }
                    other => other.body_text(),
                }))
            }
        };
        // serde would read an array into a struct by position; the API takes objects only.
        if !value.is_object() {
            return Err(ApiError::BadRequest("expected a JSON object".to_owned()));
        }
        T::deserialize(value)
            .map(Json)
            .map_err(|error| ApiError::BadRequest(format!("invalid body: {error}")))
    }
}

/// The raw request body (for a signed call, whose signature covers the exact bytes), with
/// the API's error shape when it is too large or unreadable.
#[derive(Debug, Clone, Default)]
pub struct RawBody(pub axum::body::Bytes);

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(RawBody(bytes)),
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(super::MAX_BODY_BYTES))
            }
            Err(rejection) => Err(ApiError::BadRequest(rejection.body_text())),
        }
    }
}
