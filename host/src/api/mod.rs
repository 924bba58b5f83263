//! The HTTP API under `/api/v1`, wire-compatible with Rossum's: axum routes, auth, JSON
//! shapes, pagination, errors. Handlers parse, authorize, call the part that knows, and
//! shape the answer; they hold no business rules.
//!
//! One module per resource; [`router`] assembles them and applies the body limit.

pub mod auth;
pub mod error;
pub mod json;
mod login;
mod organizations;
pub mod pagination;
mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::store::Store;

/// The largest request body accepted (modules have their own, larger bound).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug)]
pub struct App {
    /// The database.
    pub store: Store,
    /// The public base URL of this installation (no trailing slash), for object URLs.
    pub base_url: String,
}

/// The shared state of the router.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// The URL of an object: `{base}/api/v1/{collection}/{id}`.
    pub fn url(&self, collection: &str, id: u64) -> String {
        format!("{}/api/v1/{collection}/{id}", self.base_url)
    }

    /// The URL of a collection.
    pub fn list_url(&self, collection: &str) -> String {
        format!("{}/api/v1/{collection}", self.base_url)
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(login::login))
        .route("/auth/logout", post(login::logout))
        .route(
            "/organizations",
            get(organizations::list).post(organizations::create),
        )
        .route("/organizations/{id}", get(organizations::show))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{id}", get(users::show))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound
}

/// Parses an id from a path segment or an object URL (`.../organizations/3`).
pub fn id_from(reference: &serde_json::Value, collection: &str) -> Option<u64> {
    match reference {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => {
            let trimmed = text.trim_end_matches('/');
            let (path, id) = trimmed.rsplit_once('/')?;
            path.ends_with(&format!("/{collection}"))
                .then(|| id.parse().ok())
                .flatten()
        }
        _ => None,
    }
}
