//! The store through its facades, on a real SQLite file: what the API relies on without
//! seeing SQL (lists filtered, ordered and paged in the database; references checked
//! against the organization in the transaction that writes; ids never given twice; an
//! organization deleted with everything it owns, the caches stale at once).

use serde_json::{json, Map, Value};

use super::hooks::{HookListFilter, HookOrder, SaveContext, SaveError};
use super::modules::{DeleteOutcome, Inspected};
use super::queues::QueueWrite;
use super::templates::TemplateModule;
use super::tokens::Owner;
use super::users::{NewUser, UserChange, UserDeletion};
use super::{Store, Window};
use crate::model::hook::{
    parse_draft, parse_template, Change, DuplicateRequest, Hook, HookDraft, TEST_BOUNDS,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn open() -> Result<(tempfile::TempDir, Store), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("wasmhook.db"))?;
    Ok((dir, store))
}

/// Saves a webhook hook (no module needed) of `organization` from `fields`.
async fn save(
    store: &Store,
    organization: u64,
    fields: Value,
) -> Result<Hook, Box<dyn std::error::Error>> {
    let mut input: Map<String, Value> = json!({
        "type": "webhook",
        "events": ["annotation_content.initialize"],
        "config": {"url": "https://receiver.example/hook"},
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    input.extend(fields.as_object().cloned().unwrap_or_default());
    let draft = parse_draft(&input, &TEST_BOUNDS)?;
    let context = SaveContext {
        organization_id: organization,
        hook_id: None,
        sealed_secrets: None,
        secrets_keys: Vec::new(),
        author: None,
        now: "2026-12-02T00:00:00.000000Z".into(),
        hook_template: None,
    };
    Ok(store.hooks().save(draft, context).await?)
}

fn names(hooks: &[Hook]) -> Vec<&str> {
    hooks.iter().map(|hook| hook.spec.name.as_str()).collect()
}

#[tokio::test]
async fn the_hooks_list_filters_orders_and_pages_in_the_database() -> TestResult {
    let (_dir, store) = open()?;
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

#[tokio::test]
async fn a_reference_to_another_organizations_object_writes_nothing() -> TestResult {
    let (_dir, store) = open()?;
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

#[tokio::test]
async fn a_deleted_hooks_id_is_never_given_again() -> TestResult {
    let (_dir, store) = open()?;
    let ours = store.organizations().create("ours", "now").await?.id;
    let first = save(&store, ours, json!({"name": "first"})).await?;
    store.hooks().delete(first.id).await?;
    let second = save(&store, ours, json!({"name": "second"})).await?;
    assert!(second.id > first.id, "{} after {}", second.id, first.id);
    assert!(store.hook(first.id).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn an_update_keeps_what_it_does_not_name_and_a_deactivated_user_loses_its_tokens(
) -> TestResult {
    let (_dir, store) = open()?;
    let organization = store.organizations().create("ours", "now").await?.id;
    let new_user = NewUser {
        organization_id: organization,
        username: "ann",
        password_hash: "hash",
        role: "member",
        first_name: "Ann",
        last_name: "Lee",
        email: "ann@ours.example",
    };
    let ann = store
        .users()
        .create(&new_user, "2026-01-01T00:00:00.000000Z")
        .await?
        .ok_or("the organization exists")?;
    store
        .tokens()
        .insert("ann-token", Owner::User(ann.id), None, "now")
        .await?;
    assert!(store.session("ann-token").await?.is_some());

    let rename = UserChange {
        first_name: Some("Anna".into()),
        ..UserChange::default()
    };
    let renamed = store.users().update(ann.id, rename).await?.ok_or("ann")?;
    assert_eq!(
        (
            renamed.first_name.as_str(),
            renamed.last_name.as_str(),
            renamed.role.as_str(),
            renamed.is_active
        ),
        ("Anna", "Lee", "member", true)
    );
    assert!(store.session("ann-token").await?.is_some());

    let deactivate = UserChange {
        is_active: Some(false),
        ..UserChange::default()
    };
    let deactivated = store
        .users()
        .update(ann.id, deactivate)
        .await?
        .ok_or("ann")?;
    assert!(!deactivated.is_active);
    assert_eq!(deactivated.date_joined, "2026-01-01T00:00:00.000000Z");
    assert!(store.session("ann-token").await?.is_none());
    assert!(store
        .users()
        .update(999, UserChange::default())
        .await?
        .is_none());

    let ours = store
        .organizations()
        .get(organization)
        .await?
        .ok_or("the organization exists")?;
    assert_eq!(ours.users, vec![ann.id]);
    Ok(())
}

/// Creates a user of `organization` with a token named `{username}-token`; its id.
async fn user_with_token(
    store: &Store,
    organization: u64,
    username: &str,
    role: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    let new_user = NewUser {
        organization_id: organization,
        username,
        password_hash: "hash",
        role,
        first_name: "",
        last_name: "",
        email: "",
    };
    let user = store
        .users()
        .create(&new_user, "2026-01-01T00:00:00.000000Z")
        .await?
        .ok_or("the organization exists")?;
    store
        .tokens()
        .insert(
            &format!("{username}-token"),
            Owner::User(user.id),
            None,
            "now",
        )
        .await?;
    Ok(user.id)
}

#[tokio::test]
async fn an_organization_goes_with_everything_it_owns_and_nothing_of_another() -> TestResult {
    let (_dir, store) = open()?;
    let ours = store.organizations().create("ours", "now").await?.id;
    let theirs = store.organizations().create("theirs", "now").await?.id;
    let ann = user_with_token(&store, ours, "ann", "admin").await?;
    user_with_token(&store, theirs, "bob", "admin").await?;
    let (shared, own) = ("a".repeat(64), "b".repeat(64));
    let modules = store.modules();
    let module = modules
        .create(ours, "shared.wasm", &shared, 10, None, "now")
        .await?;
    modules
        .create(ours, "own.wasm", &own, 10, None, "now")
        .await?;
    let their_module = modules
        .create(theirs, "shared.wasm", &shared, 10, None, "now")
        .await?;
    let write = QueueWrite {
        name: "Invoices".into(),
        ..QueueWrite::default()
    };
    let queue = store
        .queues()
        .create(ours, write, "now")
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

#[tokio::test]
async fn a_deleted_organizations_or_users_id_is_never_given_again() -> TestResult {
    let (_dir, store) = open()?;
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

#[tokio::test]
async fn a_token_owner_is_not_deleted_and_a_deleted_user_loses_its_tokens() -> TestResult {
    let (_dir, store) = open()?;
    let ours = store.organizations().create("ours", "now").await?.id;
    let ann = user_with_token(&store, ours, "ann", "member").await?;
    let hook = save(&store, ours, json!({"name": "as ann", "token_owner": ann})).await?;
    assert_eq!(
        store.users().delete(ann).await?,
        Some(UserDeletion::TokenOwner(vec![hook.id]))
    );
    assert!(
        store.session("ann-token").await?.is_some(),
        "nothing was written"
    );
    store.hooks().delete(hook.id).await?;
    assert_eq!(
        store.users().delete(ann).await?,
        Some(UserDeletion::Deleted)
    );
    assert!(store.session("ann-token").await?.is_none());
    assert!(store.users().get(ann).await?.is_none());
    assert_eq!(store.users().delete(ann).await?, None);
    Ok(())
}

#[tokio::test]
async fn a_duplicate_with_its_dependencies_joins_the_originals_chain() -> TestResult {
    let (_dir, store) = open()?;
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

#[tokio::test]
async fn a_templates_bytes_stay_while_a_template_or_a_module_has_them() -> TestResult {
    let (_dir, store) = open()?;
    let ours = store.organizations().create("ours", "now").await?.id;
    let fields = json!({"name": "checker", "config": {"runtime": "wasm"}});
    let spec = parse_template(
        &fields.as_object().cloned().unwrap_or_default(),
        &TEST_BOUNDS,
    )?;
    let inspected = Inspected {
        kind: "component".into(),
        encoding: "component".into(),
        imports: Vec::new(),
        exports: vec!["handle".into()],
    };
    let module = TemplateModule {
        sha256: "ab".repeat(32),
        size: 10,
        inspected: inspected.clone(),
    };
    let templates = store.hook_templates();
    let template = templates.create(spec, module.clone(), "now").await?;
    assert_eq!(templates.get(template.id).await?, Some(template.clone()));
    assert_eq!(templates.list(Window::first(10)).await?.total, 1);
    let copy = store
        .modules()
        .create(ours, "checker", &module.sha256, 10, Some(&inspected), "now")
        .await?;
    let found = store.modules().by_digest(ours, &module.sha256).await?;
    assert_eq!(found.map(|module| module.id), Some(copy.id));
    // The organization's copy goes; the template still runs the bytes, so they stay.
    assert_eq!(
        store.modules().delete(&copy).await?,
        DeleteOutcome::Deleted { last_copy: false }
    );
    let deleted = templates.delete(template.id).await?;
    assert_eq!(deleted.map(|deleted| deleted.last_copy), Some(true));
    assert_eq!(templates.delete(template.id).await?, None);
    Ok(())
}

#[tokio::test]
async fn an_organizations_deletion_keeps_the_bytes_a_hook_template_runs() -> TestResult {
    let (_dir, store) = open()?;
    let ours = store.organizations().create("ours", "now").await?.id;
    let fields = json!({"name": "checker", "config": {"runtime": "wasm"}});
    let spec = parse_template(
        &fields.as_object().cloned().unwrap_or_default(),
        &TEST_BOUNDS,
    )?;
    let inspected = Inspected {
        kind: "component".into(),
        encoding: "component".into(),
        imports: Vec::new(),
        exports: vec!["handle".into()],
    };
    let module = TemplateModule {
        sha256: "cd".repeat(32),
        size: 10,
        inspected: inspected.clone(),
    };
    store
        .hook_templates()
        .create(spec, module.clone(), "now")
        .await?;
    let own = "ef".repeat(32);
    let modules = store.modules();
    modules
        .create(ours, "checker", &module.sha256, 10, Some(&inspected), "now")
        .await?;
    modules
        .create(ours, "own", &own, 10, Some(&inspected), "now")
        .await?;
    let deleted = store
        .organizations()
        .delete(ours)
        .await?
        .ok_or("the organization existed")?;
    assert_eq!(deleted.unused_digests, vec![own]);
    Ok(())
}
