//! Probes for load balancers and orchestrators, unauthenticated and cheap: `GET /healthz`
//! (the process answers), `GET /readyz` (it should be sent traffic: the database answers
//! with the schema this build expects, and it is not draining for a shutdown), and `GET
//! /api/v1/version` (what is running).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::AppState;

/// How long `/readyz` waits for the database.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Alive: answered by any process that can answer at all.
pub(super) async fn healthz() -> axum::Json<Value> {
    axum::Json(json!({"status": "alive"}))
}

/// Ready, or 503 with the reason.
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Value>) {
    let not_ready = |detail: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not ready", "detail": detail})),
        )
    };
    if state.draining.load(Ordering::Relaxed) {
        return not_ready("shutting down: finishing the requests in flight");
    }
    // A probe must answer quickly even when the database is busy: a second without an
    // answer is an answer.
    match tokio::time::timeout(READY_WITHIN, state.store.is_ready()).await {
        Ok(Ok(true)) => (StatusCode::OK, axum::Json(json!({"status": "ready"}))),
        Ok(Ok(false)) => not_ready("the database's schema is older than this build's"),
        Ok(Err(error)) => {
            tracing::warn!("readiness: the database does not answer: {error}");
            not_ready("the database does not answer")
        }
        Err(_) => not_ready("the database did not answer within a second"),
    }
}

/// The server's version, the commit it was built from and the wasmtime it runs.
pub(super) async fn version() -> axum::Json<Value> {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("WASMHOOK_GIT_COMMIT"),
        "wasmtime": env!("WASMHOOK_WASMTIME_VERSION"),
    }))
}

/// The metrics, for the operator's scraper: on the API's listener it takes the operator's
/// token (`Authorization: Bearer ...`), since per-organization series are not for anyone
/// who can reach the port; on the metrics listener of its own (`[metrics] listen`) it
/// takes none.
pub(super) async fn metrics(caller: super::auth::Caller) -> super::error::ApiResult<Response> {
    if caller != super::auth::Caller::Operator {
        return Err(super::error::ApiError::Forbidden);
    }
    exposition()
}

/// The exposition, unauthenticated: the route of the metrics listener.
pub(super) async fn open_metrics() -> super::error::ApiResult<Response> {
    exposition()
}

/// The exposition; 404 when metrics are off.
fn exposition() -> super::error::ApiResult<Response> {
    if crate::metrics::metrics().is_none() {
        return Err(super::error::ApiError::NotFound);
    }
    Ok((
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(),
    )
        .into_response())
}
