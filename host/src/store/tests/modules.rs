//! Modules' stored bytes, on both backends: a module's row and its bytes are written in one
//! transaction, so that the deletion of the last module with the same bytes (through
//! another replica, between an upload's file and its row) cannot leave a row without them.

use super::{new_module, TestResult};
use crate::store::modules::{ModuleBytes, ModuleQuota, NewModule};
use crate::store::{Store, StoreError};

async fn a_module_row_is_made_with_its_bytes_whatever_was_deleted_before(
    store: Store,
) -> TestResult {
    let organization = store.organizations().create("bytes", "now").await?.id;
    let sha256 = "ab".repeat(32);
    let bytes = bytes::Bytes::from_static(b"\0asm\x01\0\0\0");
    let with_bytes = NewModule {
        bytes: ModuleBytes::Stored(&bytes),
        ..new_module(organization, "first", &sha256, None)
    };
    let first = store.modules().create(with_bytes).await?;
    assert_eq!(
        store.modules().bytes(&sha256).await?.as_deref(),
        Some(&bytes[..])
    );
    // The last module with them goes: so do the bytes.
    store.modules().delete(&first).await?;
    assert_eq!(store.modules().bytes(&sha256).await?, None);
    // An upload of the same bytes whose early write was undone by that deletion still
    // gets them with its row.
    let second = NewModule {
        bytes: ModuleBytes::Stored(&bytes),
        ..new_module(organization, "second", &sha256, None)
    };
    store.modules().create(second).await?;
    assert_eq!(
        store.modules().bytes(&sha256).await?.as_deref(),
        Some(&bytes[..])
    );
    assert!(store.modules().digests_without_bytes().await?.is_empty());
    Ok(())
}

/// Uploads at once each pass the API's early look at the quota; the rows' transactions,
/// under the organization's lock, let only as many through as it holds.
async fn modules_made_at_once_stop_at_their_organizations_quota(store: Store) -> TestResult {
    let organization = store.organizations().create("quota", "now").await?.id;
    let other = store.organizations().create("other", "now").await?.id;
    let quota = ModuleQuota {
        count: 2,
        bytes: u64::MAX,
    };
    let mut made = Vec::new();
    for index in 0..6 {
        let store = store.clone();
        made.push(tokio::spawn(async move {
            let sha256 = format!("{index:064x}");
            let name = format!("m{index}");
            let new = NewModule {
                quota,
                ..new_module(organization, &name, &sha256, None)
            };
            store.modules().create(new).await
        }));
    }
    let mut created = 0;
    for one in made {
        match one.await? {
            Ok(_) => created += 1,
            Err(StoreError::Quota(reason)) => {
                assert!(reason.contains("2 modules, its limit"), "{reason}");
            }
            Err(other) => return Err(other.into()),
        }
    }
    assert_eq!(created, 2);
    assert_eq!(store.modules().usage(organization).await?.0, 2);
    // Bytes count too; another organization is not counted.
    let by_bytes = ModuleQuota {
        count: u64::MAX,
        bytes: 1,
    };
    let sha256 = "cd".repeat(32);
    let new = NewModule {
        quota: by_bytes,
        ..new_module(other, "big", &sha256, None)
    };
    let refused = store.modules().create(new).await;
    assert!(
        matches!(&refused, Err(StoreError::Quota(reason)) if reason.contains("over its limit of 1")),
        "{refused:?}"
    );
    assert_eq!(store.modules().usage(other).await?.0, 0, "nothing written");
    Ok(())
}

on_both!(
    a_module_row_is_made_with_its_bytes_whatever_was_deleted_before,
    modules_made_at_once_stop_at_their_organizations_quota,
);
