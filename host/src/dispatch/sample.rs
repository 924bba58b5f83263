//! The payload a hook would receive for an event, made up for testing (Rossum's
//! `POST /hooks/{id}/generate_payload`): the event's sample keys
//! ([`SampleRequest::body`]), the sideloads the hook asks for, and the host's keys in
//! Rossum's order, assembled as a run assembles them. Secret values and the token are never
//! in it: each secret's value, and the token when the hook has a token owner, are written
//! `[redacted...]`, as a run log writes them, and no token is minted.

use serde_json::{Map, Value};

use super::sideloads::with_sideloads;
use super::DispatchError;
use crate::model::hook::Hook;
use crate::model::sample::SampleRequest;
use crate::model::{assemble_payload, now_rfc3339, object_url, EventFields, PayloadParts};
use crate::runtime::REDACTED;
use crate::store::Store;

/// The payload `hook` would receive for the event `request` names, on the hook's first
/// queue, with `request_id` (the HTTP request's) as its request id.
pub async fn generate_payload(
    store: &Store,
    base_url: &str,
    hook: &Hook,
    request: &SampleRequest,
    request_id: &str,
) -> Result<Map<String, Value>, DispatchError> {
    let queue_id = hook.spec.queues.first().copied();
    let body = EventFields::from_map(&request.body(base_url, queue_id));
    let body = with_sideloads(store, base_url, hook, &body, queue_id).await?;
    let secrets: Vec<(String, String)> = hook
        .secrets_keys
        .iter()
        .map(|key| (key.clone(), REDACTED.to_owned()))
        .collect();
    let timestamp = now_rfc3339();
    let hook_url = object_url(base_url, "hooks", hook.id);
    Ok(assemble_payload(&PayloadParts {
        request_id,
        timestamp: &timestamp,
        hook_url: &hook_url,
        event: &request.event,
        token: hook.spec.token_owner.map(|_| REDACTED),
        base_url,
        settings: &hook.spec.document.settings,
        secrets: &secrets,
        body: &body,
    })?)
}
