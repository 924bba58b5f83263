//! Sideloads: the related objects a hook asks to find in its payload (`sideload`), added to
//! the event's keys before the payload is assembled, apart from the run so that the run
//! does not know the store's queue shapes. Only those this installation holds are added:
//! `queues`.

use std::borrow::Cow;

use serde_json::Value;

use crate::model::hook::Hook;
use crate::model::EventFields;
use crate::store::{Store, StoreError};

/// The event's keys followed by the sideloads `hook` asks for that this installation
/// holds: `queues` (the event's queue, or the hook's queues when the call names none), in
/// Rossum's shape, with URLs under `base_url`. A key the event already carries is left as
/// sent. The keys are borrowed as they are when there is nothing to add (most calls): the
/// payload copies them once anyway.
pub(super) async fn with_sideloads<'b>(
    store: &Store,
    base_url: &str,
    hook: &Hook,
    body: &'b EventFields,
    queue_id: Option<u64>,
) -> Result<Cow<'b, EventFields>, StoreError> {
    if !hook
        .spec
        .document
        .sideload
        .iter()
        .any(|name| name == "queues")
        || body.contains_key("queues")
    {
        return Ok(Cow::Borrowed(body));
    }
    let wanted: Vec<u64> = match queue_id {
        Some(queue) => vec![queue],
        None => hook.spec.queues.clone(),
    };
    // Only the hook's own organization's: an event's queue may have been deleted since, and
    // its id is never another's, but a payload names no other organization's queue anyway.
    let found = store.queues().by_ids(hook.organization_id, &wanted).await?;
    let url = |collection: &str, id: u64| crate::model::object_url(base_url, collection, id);
    let rendered: Vec<Value> = found
        .iter()
        .map(|queue| {
            serde_json::json!({
                "id": queue.id,
                "url": url("queues", queue.id),
                "name": queue.name,
                "organization": url("organizations", queue.organization_id),
                "hooks": queue.hooks.iter().map(|id| url("hooks", *id)).collect::<Vec<_>>(),
                "metadata": queue.metadata,
            })
        })
        .collect();
    let mut body = body.clone();
    body.insert("queues".into(), &Value::Array(rendered));
    Ok(Cow::Owned(body))
}
