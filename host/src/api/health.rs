//! Probes for load balancers and orchestrators, unauthenticated and cheap: `GET /healthz`
//! (the process answers), `GET /readyz` (it should be sent traffic: the database answers
//! with the schema this build expects, and it is not draining for a shutdown), and `GET
//! /api/v1/version` (what is running).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// How long `/readyz` waits for the database.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// A probe's answer: `alive`, `ready` or `not ready` with the reason.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Probe {
    /// `alive`, `ready` or `not ready`.
    status: &'static str,
    /// Why not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

/// What is running.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Version {
    /// wasmhook's version.
    version: &'static str,
    /// The commit it was built from.
    git_commit: &'static str,
    /// The wasmtime it runs.
    wasmtime: &'static str,
}

fn probe(status: &'static str, detail: Option<&'static str>) -> axum::Json<Probe> {
    axum::Json(Probe { status, detail })
}

/// Alive: answered by any process that can answer at all.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers", body = Probe)))]
pub(super) async fn healthz() -> axum::Json<Probe> {
    probe("alive", None)
}

/// Ready, or 503 with the reason.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready for traffic", body = Probe),
        (status = 503, description = "Not ready: draining, or the database does not answer", body = Probe),
    ))]
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Probe>) {
    let not_ready = |detail: &'static str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            probe("not ready", Some(detail)),
        )
    };
    if state.draining.load(Ordering::Relaxed) {
        return not_ready("shutting down: finishing the requests in flight");
    }
    // A probe must answer quickly even when the database is busy: a second without an
    // answer is an answer.
    match tokio::time::timeout(READY_WITHIN, state.store.is_ready()).await {
        Ok(Ok(true)) => (StatusCode::OK, probe("ready", None)),
        Ok(Ok(false)) => not_ready("the database's schema is older than this build's"),
        Ok(Err(error)) => {
            tracing::warn!("readiness: the database does not answer: {error}");
            not_ready("the database does not answer")
        }
        Err(_) => not_ready("the database did not answer within a second"),
    }
}

/// The server's version, the commit it was built from and the wasmtime it runs.
#[utoipa::path(get, path = "/api/v1/version", tag = "operations", security(()),
    responses((status = 200, description = "What is running", body = Version)))]
pub(super) async fn version() -> axum::Json<Version> {
    axum::Json(Version {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: env!("WASMHOOK_GIT_COMMIT"),
        wasmtime: env!("WASMHOOK_WASMTIME_VERSION"),
    })
}

/// The metrics, for the operator's scraper: on the API's listener it takes the operator's
/// token (`Authorization: Bearer ...`), since per-organization series are not for anyone
/// who can reach the port; on the metrics listener of its own (`[metrics] listen`) it
/// takes none.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "The Prometheus exposition (text format)", body = String,
            content_type = "application/openmetrics-text"),
        (status = 403, description = "Not the operator", body = super::error::ErrorDetail),
        (status = 404, description = "Metrics are disabled", body = super::error::ErrorDetail),
    ))]
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
