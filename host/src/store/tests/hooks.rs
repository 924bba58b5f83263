//! Hooks: the list filtered, ordered and paged in the database, references checked
//! against the organization in the transaction that writes, ids never given twice, and
//! duplicates with their dependencies.

use serde_json::json;

use super::{names, save, TestResult};
use crate::model::hook::{Change, DuplicateRequest, HookDraft};
use crate::store::hooks::{HookListFilter, HookOrder, SaveContext, SaveError};
use crate::store::Store;
use crate::store::Window;

async fn the_hooks_list_filters_orders_and_pages_in_the_database(store: Store) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let theirs = store.organizations().create("theirs", "now").await?.id;
    save(&store, ours, json!({"name": "b", "active": false})).await?;
    save(
        &store,
        ours,
        json!({"name": "a", "events": ["annotation_content.initialize", "invocation"]}),
    )
    .await?;
    save(&store, ours, json!({"name": "c", "events": ["invocation"]})).await?;
    save(&store, theirs, json!({"name": "a"})).await?;

    let only_ours = HookListFilter {
        organization: Some(ours),
        ..HookListFilter::default()
    };
    let by_name = Window {
        offset: 0,
        limit: 2,
        order_by: HookOrder::Name,
        descending: false,
    };
    let page = store.hooks().list(&only_ours, by_name).await?;
    assert_eq!(
        page.total, 3,
        "the count is of every page, this organization's only"
    );
    assert_eq!(names(&page.rows), ["a", "b"]);
    let second = Window {
        offset: 2,
        ..by_name
    };
    assert_eq!(
        names(&store.hooks().list(&only_ours, second).await?.rows),
        ["c"]
    );
    let reversed = Window {
        descending: true,
        limit: 10,
        ..by_name
    };
    assert_eq!(
        names(&store.hooks().list(&only_ours, reversed).await?.rows),
        ["c", "b", "a"]
    );

    let subscribed = HookListFilter {
        events: vec!["invocation".into(), "annotation_content.initialize".into()],
        ..only_ours.clone()
    };
    let page = store.hooks().list(&subscribed, Window::first(10)).await?;
    assert_eq!(
        names(&page.rows),
        ["a"],
        "every listed event must be subscribed"
    );
    let inactive = HookListFilter {
        active: Some(false),
        ..only_ours.clone()
    };
    let page = store.hooks().list(&inactive, Window::first(10)).await?;
    assert_eq!(names(&page.rows), ["b"]);
    let everyone = store
        .hooks()
        .list(&HookListFilter::default(), Window::first(10))
        .await?;
    assert_eq!(
        everyone.total, 4,
        "no organization filter: the operator's view"
    );
    Ok(())
}

async fn a_reference_to_another_organizations_object_writes_nothing(store: Store) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let theirs = store.organizations().create("theirs", "now").await?.id;
    let foreign = save(&store, theirs, json!({"name": "theirs"})).await?;
    let refused = save(
        &store,
        ours,
        json!({"name": "x", "run_after": [foreign.id]}),
    )
    .await;
    let Err(error) = refused else {
        return Err("a run_after naming another organization's hook was saved".into());
    };
    let invalid = error.downcast_ref::<SaveError>().is_some_and(
        |error| matches!(error, SaveError::Invalid(refusal) if refusal.field == "run_after"),
    );
    assert!(invalid, "{error}");
    let only_ours = HookListFilter {
        organization: Some(ours),
        ..HookListFilter::default()
    };
    let page = store.hooks().list(&only_ours, Window::first(10)).await?;
    assert_eq!(page.total, 0, "nothing half-written");
    Ok(())
}

async fn a_deleted_hooks_id_is_never_given_again(store: Store) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let first = save(&store, ours, json!({"name": "first"})).await?;
    store.hooks().delete(first.id).await?;
    let second = save(&store, ours, json!({"name": "second"})).await?;
    assert!(second.id > first.id, "{} after {}", second.id, first.id);
    assert!(store.hook(first.id).await?.is_none());
    Ok(())
}

async fn a_duplicate_with_its_dependencies_joins_the_originals_chain(store: Store) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let before = save(&store, ours, json!({"name": "before"})).await?;
    let original = save(
        &store,
        ours,
        json!({"name": "original", "run_after": [before.id]}),
    )
    .await?;
    let after = save(
        &store,
        ours,
        json!({"name": "after", "run_after": [original.id]}),
    )
    .await?;
    let copy_of = |copy_dependencies: bool| HookDraft {
        spec: original.spec.duplicated(&DuplicateRequest {
            name: "copy".into(),
            copy_secrets: false,
            copy_dependencies,
        }),
        secrets: Change::Keep,
        config_secret: Change::Keep,
    };
    let context = SaveContext {
        organization_id: ours,
        hook_id: None,
        sealed_secrets: None,
        secrets_keys: Vec::new(),
        author: None,
        now: "2026-12-02T00:00:00.000000Z".into(),
        hook_template: None,
        hooks_limit: u64::MAX,
    };
    let alone = store
        .hooks()
        .duplicate(copy_of(false), context.clone(), original.id, false)
        .await?;
    assert!(alone.spec.run_after.is_empty() && !alone.spec.active);
    let chained = store
        .hooks()
        .duplicate(copy_of(true), context, original.id, true)
        .await?;
    assert_eq!(chained.spec.run_after, vec![before.id]);
    let after = store.hook(after.id).await?.ok_or("the successor is gone")?;
    assert_eq!(after.spec.run_after, vec![original.id, chained.id]);
    Ok(())
}

on_both!(
    the_hooks_list_filters_orders_and_pages_in_the_database,
    a_reference_to_another_organizations_object_writes_nothing,
    a_deleted_hooks_id_is_never_given_again,
    a_duplicate_with_its_dependencies_joins_the_originals_chain,
);
