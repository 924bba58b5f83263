//! Users: an update keeps what it does not name, a deactivated or deleted user loses its
//! tokens, and a hook's token owner is not deleted.

use serde_json::json;

use super::{save, user_with_token, TestResult};
use crate::store::tokens::Owner;
use crate::store::users::{NewUser, UserChange, UserDeletion};
use crate::store::Store;

async fn an_update_keeps_what_it_does_not_name_and_a_deactivated_user_loses_its_tokens(
    store: Store,
) -> TestResult {
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

async fn a_token_owner_is_not_deleted_and_a_deleted_user_loses_its_tokens(
    store: Store,
) -> TestResult {
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

on_both!(
    an_update_keeps_what_it_does_not_name_and_a_deactivated_user_loses_its_tokens,
    a_token_owner_is_not_deleted_and_a_deleted_user_loses_its_tokens,
);
