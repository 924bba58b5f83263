//! `POST /hooks/{id}/invoke`: who invokes (a token, or a signature by the hook's secret),
//! the invocation's fields, and its answer.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{may_run, not_run, InvocationFailed, SIGNATURE_HEADER};
use crate::api::access::{OrganizationSlot, RequestId};
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult, ErrorDetail};
use crate::api::extract::{IdPath, ObjectId};
use crate::api::json::RawBody;
use crate::api::{hooks, AppState};
use crate::dispatch::RunResult;
use crate::model::hook::Hook;
use crate::model::{reserved_key, EventAction, EventFields};
use crate::sealing::HookSecrets;

/// Who invokes: a user by token, or an outside platform by signature.
pub(in crate::api) enum Invoker {
    Token(Caller),
    Signed(String),
}

impl FromRequestParts<AppState> for Invoker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if crate::api::auth::bearer(&parts.headers).is_none() {
            if let Some(signature) = parts.headers.get(SIGNATURE_HEADER) {
                let signature = signature.to_str().map_err(|_| ApiError::Unauthorized)?;
                return Ok(Invoker::Signed(signature.to_owned()));
            }
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(Invoker::Token)
    }
}

/// Checks `sha256=<lowercase hex HMAC-SHA256 of the body>` with the hook's secret, in
/// constant time.
fn signature_matches(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_digest) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    // Lowercase hex only, as Rossum sends it: one spelling per signature. (This looks at
    // the caller's text, not the secret, so it may return early.)
    if hex_digest.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return false;
    }
    let Ok(expected) = hex::decode(hex_digest) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The answer to an invocation: the hook's response, or 400 naming what went wrong.
fn invocation_answer(result: RunResult) -> Response {
    match result.response {
        Some(response) => (StatusCode::OK, axum::Json(Value::Object(response))).into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            axum::Json(InvocationFailed {
                detail: format!(
                    "The hook did not return a response ({}): {}",
                    result.status.as_str(),
                    result.message
                ),
                status: result.status,
                request_id: result.request_id,
            }),
        )
            .into_response(),
    }
}

/// The hook an invocation runs, with the invoker's right to run it: a member's token for a
/// hook it may see, or a signature by the hook's own secret.
async fn invoked_hook(
    state: &AppState,
    invoker: &Invoker,
    id: u64,
    body: &[u8],
    organization: &OrganizationSlot,
) -> ApiResult<Arc<Hook>> {
    Ok(match invoker {
        Invoker::Token(caller) => {
            let hook = hooks::visible(state, caller, id).await?;
            caller.member()?;
            may_run(state, caller, &[hook.as_ref()]).await?;
            hook
        }
        Invoker::Signed(signature) => {
            // Unknown hook, no secret, or a wrong signature: all the same 401.
            let hook = state.store.hook(id).await?.ok_or(ApiError::Unauthorized)?;
            let sealed = hook.sealed_secrets.as_deref();
            let secret =
                HookSecrets::open(&state.sealer, hook.organization_id, sealed)?.config_secret;
            match secret {
                Some(secret) if signature_matches(&secret, body, signature) => {
                    // The signature stands for the hook's organization, in the access line.
                    let _ = organization.0.set(hook.organization_id);
                    hook
                }
                _ => return Err(ApiError::Unauthorized),
            }
        }
    })
}

/// Refuses `keys` that set a key the host sets: the key is the field in error when the keys
/// are the body's own, or the message names it under `within` (the body's field that
/// holds them).
pub(super) fn refuse_host_keys<'k>(
    keys: impl IntoIterator<Item = &'k str>,
    within: Option<&str>,
) -> ApiResult<()> {
    match (reserved_key(keys), within) {
        (None, _) => Ok(()),
        (Some(key), None) => Err(ApiError::field(key, "set by the host and cannot be sent")),
        (Some(key), Some(field)) => Err(ApiError::field(
            field,
            format!("`{key}` is set by the host and cannot be sent"),
        )),
    }
}

/// An invocation's body: a JSON object (or nothing) without the keys the host sets, read
/// at its top level only (its values are spliced into the payload as they came).
fn invocation_fields(body: &[u8]) -> ApiResult<EventFields> {
    let fields = match EventFields::parse(body) {
        Ok(fields) => fields,
        // Not an object, or not JSON: said as parsing the whole body says it.
        Err(error) => {
            return Err(match serde_json::from_slice::<Value>(body) {
                Ok(other) if !other.is_object() => crate::api::json::not_an_object(&other),
                _ => ApiError::Parse(format!("JSON parse error - {error}")),
            })
        }
    };
    refuse_host_keys(fields.keys(), None)?;
    Ok(fields)
}

/// `POST /hooks/{id}/invoke`: runs the hook on `invocation.manual` with the body's keys,
/// for a member's token or a signature by the hook's secret, and answers its response.
#[utoipa::path(post, path = "/api/v1/hooks/{id}/invoke", tag = "hooks", params(IdPath),
    security(("Bearer" = []), ("Token" = []), ("Signature" = [])),
    request_body(content = Object, description = "The invocation's fields, a JSON object without host-set keys; with a signature, its HMAC is over these exact bytes"),
    responses(
        (status = 200, description = "The hook's response", body = Object),
        (status = 400, description = "The hook gave no response", body = InvocationFailed),
        (status = 401, description = "No valid token, or a signature that does not match", body = ErrorDetail),
        (status = 403, description = "Not allowed to run it", body = ErrorDetail),
        (status = 404, description = "No such hook in the caller's organization", body = ErrorDetail),
        (status = 429, description = "The organization's run slots or memory are in use", body = ErrorDetail,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub(in crate::api) async fn invoke(
    State(state): State<AppState>,
    ObjectId(id): ObjectId,
    invoker: Invoker,
    Extension(request_id): Extension<RequestId>,
    Extension(organization): Extension<OrganizationSlot>,
    RawBody(body): RawBody,
) -> ApiResult<Response> {
    let hook = invoked_hook(&state, &invoker, id, &body, &organization).await?;
    let fields = invocation_fields(&body)?;
    let event = EventAction::new("invocation", "manual")
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    if !hook.spec.subscribes_to(&event) {
        return Err(ApiError::non_field(
            "The hook does not subscribe to invocation.manual; add it to `events`.",
        ));
    }
    let permit = state
        .dispatcher
        .limits()
        .try_acquire_for(hook.organization_id, &[hook.as_ref()])?;
    let result = state
        .dispatcher
        .run(permit, &hook, &event, &fields, None, &request_id.0)
        .await
        .map_err(|error| not_run(error, ApiError::non_field))?;
    Ok(invocation_answer(result))
}
