//! Organizations: deleted with everything they own and nothing of another, their ids
//! (and their users') never given again.

use serde_json::json;

use super::{new_module, save, user_with_token, TestResult};
use crate::store::queues::{QueueSaveError, QueueWrite};
use crate::store::users::UserDeletion;
use crate::store::Window;
use crate::store::{Store, StoreError};

async fn an_organization_goes_with_everything_it_owns_and_nothing_of_another(
    store: Store,
) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let theirs = store.organizations().create("theirs", "now").await?.id;
    let ann = user_with_token(&store, ours, "ann", "admin").await?;
    user_with_token(&store, theirs, "bob", "admin").await?;
    let (shared, own) = ("a".repeat(64), "b".repeat(64));
    let modules = store.modules();
    let module = modules
        .create(new_module(ours, "shared.wasm", &shared, None))
        .await?;
    modules
        .create(new_module(ours, "own.wasm", &own, None))
        .await?;
    let their_module = modules
        .create(new_module(theirs, "shared.wasm", &shared, None))
        .await?;
    let write = QueueWrite {
        name: "Invoices".into(),
        ..QueueWrite::default()
    };
    let queue = store
        .queues()
        .create(ours, write, "now", u64::MAX)
        .await?
        .ok_or("the organization exists")?;
    let first = save(
        &store,
        ours,
        json!({"name": "first", "queues": [queue.id], "token_owner": ann}),
    )
    .await?;
    save(
        &store,
        ours,
        json!({"name": "second", "type": "function", "run_after": [first.id],
               "config": {"runtime": "wasm", "module": module.id}}),
    )
    .await?;
    let their_hook = save(
        &store,
        theirs,
        json!({"name": "theirs", "type": "function",
               "config": {"runtime": "wasm", "module": their_module.id}}),
    )
    .await?;
    // Read once, so that the caches hold what the deletion must make stale.
    assert!(store.session("ann-token").await?.is_some());
    assert!(store.hook(first.id).await?.is_some());
    assert_eq!(store.organization_hooks(ours).await?.len(), 2);
    assert!(store.module(module.id).await?.is_some());

    let deleted = store
        .organizations()
        .delete(ours)
        .await?
        .ok_or("the organization exists")?;
    assert_eq!(
        deleted.unused_digests,
        vec![own],
        "the shared bytes are still another organization's"
    );
    assert!(store.organizations().get(ours).await?.is_none());
    assert!(store.session("ann-token").await?.is_none());
    assert!(store.users().get(ann).await?.is_none());
    assert!(store.hook(first.id).await?.is_none());
    assert!(store.organization_hooks(ours).await?.is_empty());
    assert!(store.module(module.id).await?.is_none());
    assert!(store.queues().get(queue.id).await?.is_none());

    assert!(store.session("bob-token").await?.is_some());
    assert!(store.hook(their_hook.id).await?.is_some());
    assert!(store.module(their_module.id).await?.is_some());
    let left = store.organizations().list(None, Window::first(10)).await?;
    assert_eq!(left.total, 1);
    assert!(store.organizations().delete(ours).await?.is_none());
    Ok(())
}

async fn a_deleted_organizations_or_users_id_is_never_given_again(store: Store) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let ann = user_with_token(&store, ours, "ann", "admin").await?;
    let bob = user_with_token(&store, ours, "bob", "member").await?;
    assert_eq!(
        store.users().delete(bob).await?,
        Some(UserDeletion::Deleted)
    );
    let carl = user_with_token(&store, ours, "carl", "member").await?;
    assert!(carl > bob, "{carl} after {bob}");
    store
        .organizations()
        .delete(ours)
        .await?
        .ok_or("the organization exists")?;
    let next = store.organizations().create("next", "now").await?.id;
    assert!(next > ours, "{next} after {ours}");
    let dora = user_with_token(&store, next, "dora", "admin").await?;
    assert!(dora > carl && carl > ann, "{dora} after {carl}");
    Ok(())
}

/// A deleted queue's id is never another's, whether the queue or its organization went:
/// an event of it still being delivered names it, and its payload's sideloaded queue would
/// otherwise be another organization's.
async fn a_deleted_queues_id_is_never_given_again_nor_sideloaded_to_another(
    store: Store,
) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let theirs = store.organizations().create("theirs", "now").await?.id;
    let queues = store.queues();
    let write = || QueueWrite {
        name: "Invoices".into(),
        ..QueueWrite::default()
    };
    let first = queues
        .create(ours, write(), "now", u64::MAX)
        .await?
        .ok_or("created")?
        .id;
    queues.delete(first).await?;
    let second = queues
        .create(theirs, write(), "now", u64::MAX)
        .await?
        .ok_or("created")?
        .id;
    assert!(second > first, "{second} after {first}");
    let third = queues
        .create(ours, write(), "now", u64::MAX)
        .await?
        .ok_or("created")?
        .id;
    store
        .organizations()
        .delete(ours)
        .await?
        .ok_or("the organization exists")?;
    let fourth = queues
        .create(theirs, write(), "now", u64::MAX)
        .await?
        .ok_or("created")?
        .id;
    assert!(fourth > third, "{fourth} after {third}");
    // At its quota, an organization gets no queue more, and nothing is written.
    let refused = queues.create(theirs, write(), "now", 2).await;
    assert!(
        matches!(&refused, Err(QueueSaveError::Store(StoreError::Quota(_)))),
        "{refused:?}"
    );
    assert_eq!(queues.by_ids(theirs, &[fourth + 1]).await?.len(), 0);
    // Asked for another organization's queue, a sideload finds nothing.
    assert!(queues.by_ids(ours, &[second, fourth]).await?.is_empty());
    assert_eq!(queues.by_ids(theirs, &[second]).await?.len(), 1);
    Ok(())
}

on_both!(
    an_organization_goes_with_everything_it_owns_and_nothing_of_another,
    a_deleted_organizations_or_users_id_is_never_given_again,
    a_deleted_queues_id_is_never_given_again_nor_sideloaded_to_another,
);
