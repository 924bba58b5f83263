//! The HTTP API under `/api/v1`, wire-compatible with Rossum's: axum routes, auth, JSON
//! shapes, pagination, errors. Handlers parse, authorize, call the part that knows, and
//! shape the answer; they hold no business rules.
//!
//! One module per resource; [`router`] assembles them and applies the body limit.

pub mod access;
pub mod auth;
mod calls;
mod docs;
pub mod error;
mod extract;
mod groups;
mod health;
mod hooks;
pub mod json;
mod login;
mod logs;
mod modules;
pub mod openapi;
mod organizations;
pub mod pagination;
mod placeholders;
mod queues;
mod templates;
mod throttle;
mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::dispatch::Dispatcher;
use crate::model::hook::HookBounds;
use crate::modules::ModuleLibrary;
use crate::sealing::Sealer;
use crate::store::Store;

/// The largest request body accepted (modules have their own, larger bound).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// What every handler can reach.
#[derive(Debug)]
pub struct App {
    /// The store: handlers read and write only through its facades, never with SQL.
    pub store: Store,
    /// The public base URL of this installation (no trailing slash), for object URLs.
    pub base_url: String,
    /// Runs hooks.
    pub dispatcher: Arc<Dispatcher>,
    /// Seals a hook's secrets when it is saved, and opens them to check a signed
    /// invocation (the dispatcher opens them for runs with the same key).
    pub sealer: Sealer,
    /// Uploaded modules.
    pub library: Arc<ModuleLibrary>,
    /// What a hook's config may ask for.
    pub bounds: HookBounds,
    /// Per-organization quotas.
    pub quotas: Quotas,
    /// How long a run-log read may take (`log_query_ms`) before it is stopped.
    pub log_query_deadline: std::time::Duration,
    /// Set when a shutdown has begun: `/readyz` answers 503 from then on, so a load
    /// balancer stops sending requests while those in flight finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// Turns for answers about an event, which hold megabytes of parsed responses each
    /// (`calls::answers`).
    pub(crate) event_answers: calls::answers::AnswerTurns,
}

/// What one organization may hold.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    /// How many modules it may hold (`modules_per_organization`); an upload beyond gets
    /// 409.
    pub modules: u64,
    /// Module bytes, all together.
    pub module_bytes: u64,
    /// How many hooks it may hold (`hooks_per_organization`); a new one beyond gets 409.
    pub hooks: u64,
    /// How many queues it may hold (`queues_per_organization`); a new one beyond gets 409.
    pub queues: u64,
}

impl Quotas {
    /// The module quotas, as the store checks them in a new module's transaction.
    pub fn of_modules(&self) -> crate::store::modules::ModuleQuota {
        crate::store::modules::ModuleQuota {
            count: self.modules,
            bytes: self.module_bytes,
        }
    }
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
        crate::model::object_url(&self.base_url, collection, id)
    }

    /// The URL of a collection, `{base}/api/v1/{collection}`: what pagination links and
    /// filtered lists are built on.
    pub fn list_url(&self, collection: &str) -> String {
        crate::model::collection_url(&self.base_url, collection)
    }
}

/// The metrics listener's router (`[metrics] listen`): `GET /metrics`, unauthenticated,
/// and nothing else.
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(health::open_metrics))
        .fallback(not_found)
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    // One throttle for the server's life: the router is built once, at start. Its places
    // for password work are shared by logins and by the user writes that hash a password.
    let throttle = Extension(Arc::new(throttle::LoginThrottle::default()));
    let api = Router::new()
        .route("/auth/login", post(login::login).layer(throttle.clone()))
        .route("/auth/logout", post(login::logout))
        .route("/auth/user", get(users::me))
        .route(
            "/organizations",
            get(organizations::list).post(organizations::create),
        )
        .route(
            "/organizations/{id}",
            get(organizations::show)
                .put(organizations::update)
                .patch(organizations::update)
                .delete(organizations::delete),
        )
        .route(
            "/users",
            get(users::list).post(users::create).layer(throttle.clone()),
        )
        .route(
            "/users/{id}",
            get(users::show)
                .put(users::update)
                .patch(users::update)
                .delete(users::delete)
                .layer(throttle),
        )
        .route("/groups", get(groups::list))
        .route("/groups/{id}", get(groups::show))
        .route("/schemas/{id}", get(placeholders::schema))
        .route(
            "/organization_groups/{id}",
            get(placeholders::organization_group),
        )
        .route("/queues", get(queues::list).post(queues::create))
        .route(
            "/queues/{id}",
            get(queues::show)
                .put(queues::update)
                .patch(queues::update)
                .delete(queues::delete),
        )
        .route(
            "/modules",
            get(modules::list)
                .post(modules::upload)
                .layer(DefaultBodyLimit::max(modules::MAX_UPLOAD_BYTES)),
        )
        .route("/modules/{id}", get(modules::show).delete(modules::delete))
        .route("/hooks", get(hooks::list).post(hooks::create))
        .route("/hooks/logs", get(logs::list))
        .route("/hooks/create", post(templates::create_hook))
        .route(
            "/hook_templates",
            get(templates::list)
                .post(templates::register)
                .layer(DefaultBodyLimit::max(modules::MAX_UPLOAD_BYTES)),
        )
        .route(
            "/hook_templates/{id}",
            get(templates::show).delete(templates::delete),
        )
        .route(
            "/hooks/{id}",
            get(hooks::show)
                .put(hooks::replace)
                .patch(hooks::patch)
                .delete(hooks::delete),
        )
        .route("/hooks/{id}/secrets_keys", get(hooks::secrets_keys))
        .route("/hooks/{id}/duplicate", post(hooks::duplicate))
        .route(
            "/hooks/{id}/generate_payload",
            post(hooks::generate_payload),
        )
        .route("/hooks/{id}/test", post(calls::test))
        .route("/hooks/{id}/invoke", post(calls::invoke))
        .route("/events", post(calls::event))
        .route("/events/{id}", get(calls::show_event))
        .route("/version", get(health::version))
        .route("/openapi.json", get(openapi::document))
        .route_layer(axum::middleware::from_fn(access::note_route))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/docs", get(docs::page))
        .route("/api/docs/redoc.standalone.js", get(docs::script))
        .route_layer(axum::middleware::from_fn(access::note_route))
        .method_not_allowed_fallback(method_not_allowed)
        .nest("/api/v1", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The places of module uploads under way, for the server's life (`modules.rs`).
        .layer(Extension(Arc::new(modules::UploadPlaces::default())))
        .layer(axum::middleware::from_fn(consistent_reads))
        .layer(axum::middleware::from_fn(access::access_log))
        .with_state(state)
}

/// Holds a request's cached reads to what every replica committed before it began
/// ([`crate::store::reads_since`]): a change answered through one replica is what the next
/// request through another one sees.
async fn consistent_reads(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    crate::store::reads_since(std::time::Instant::now(), next.run(request)).await
}

async fn not_found() -> error::ApiError {
    error::ApiError::NotFound
}

/// A route asked with a method it does not take: DRF's 405 with a JSON body (axum adds
/// `Allow`).
async fn method_not_allowed(method: http::Method) -> error::ApiError {
    error::ApiError::MethodNotAllowed(method)
}

pub use crate::model::id_from_reference as id_from;
