//! Small extractors the resource handlers share.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::error::ApiError;

/// The numeric id in an object's path (`/hooks/{id}`); anything else is 404, as for an
/// object that does not exist.
#[derive(Debug, Clone, Copy)]
pub struct ObjectId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for ObjectId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        id.parse().map(ObjectId).map_err(|_| ApiError::NotFound)
    }
}

/// An optional `?organization=` style filter that must be an id.
pub fn id_filter(name: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|text| {
        text.parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("{name}: `{text}` is not an id")))
    })
    .transpose()
}
