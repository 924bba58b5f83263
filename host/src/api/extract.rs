//! Small extractors the resource handlers share.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::auth::Caller;
use super::error::ApiError;
use crate::model::id_in_range;

/// The numeric id in an object's path (`/hooks/{id}`); anything else, a number beyond
/// [`MAX_ID`](crate::model::MAX_ID) included, is 404, as for an object that does not exist.
#[derive(Debug, Clone, Copy)]
pub struct ObjectId(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for ObjectId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        id.parse()
            .ok()
            .and_then(id_in_range)
            .map(ObjectId)
            .ok_or(ApiError::NotFound)
    }
}

/// The `{id}` of an object's path, as the OpenAPI document describes it ([`ObjectId`]
/// reads it).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct IdPath {
    /// The object's id; anything else (or an id no object has) is 404.
    #[param(minimum = 1)]
    id: u64,
}

/// Query parameters read as DRF reads them: an empty value is as if the parameter were
/// absent (Rossum's client sends `ordering=`, `sideload=` and `content.schema_id=` with
/// every list), and a parameter the type does not name is ignored. A query the type cannot
/// take (a parameter it reads once, sent twice) is a 400 `non_field_errors`.
#[derive(Debug, Clone)]
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let unreadable = |error: &dyn std::fmt::Display| {
            ApiError::non_field(format!("The query cannot be read: {error}."))
        };
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
                .map_err(|error| unreadable(&error))?;
        let given: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        let text = serde_urlencoded::to_string(&given).map_err(|error| unreadable(&error))?;
        serde_urlencoded::from_str(&text)
            .map(Params)
            .map_err(|error| unreadable(&error))
    }
}

/// An optional `?organization=` style filter that must be an id: a number no object can
/// have (beyond [`MAX_ID`](crate::model::MAX_ID)) is refused like any other non-id.
pub fn id_filter(name: &str, text: Option<&str>) -> Result<Option<u64>, ApiError> {
    text.map(|text| parse_id(name, text)).transpose()
}

/// An id in a query parameter: 400 naming the parameter (`{"queue": [...]}`) when it is
/// not a number, or is one no object can have (beyond [`MAX_ID`](crate::model::MAX_ID)).
pub fn parse_id(name: &str, text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .and_then(id_in_range)
        .ok_or_else(|| ApiError::field(name, format!("`{text}` is not an id")))
}

/// An object that belongs to one organization: only its users (and the operator) see it.
pub trait Owned {
    /// The organization it belongs to: the caller's must match ([`visible`]).
    fn organization_id(&self) -> u64;
}

impl Owned for crate::store::modules::Module {
    fn organization_id(&self) -> u64 {
        self.organization_id
    }
}

impl Owned for crate::store::queues::Queue {
    fn organization_id(&self) -> u64 {
        self.organization_id
    }
}

/// The object the store found, if the caller may see it: 404 when it does not exist or is
/// another organization's (the two are indistinguishable to the caller).
pub fn visible<T: Owned>(caller: &Caller, found: Option<T>) -> Result<T, ApiError> {
    found
        .filter(|object| caller.can_see(object.organization_id()))
        .ok_or(ApiError::NotFound)
}
