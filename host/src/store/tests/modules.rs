//! Modules' stored bytes, on both backends: a module's row and its bytes are written in one
//! transaction, so that the deletion of the last module with the same bytes (through
//! another replica, between an upload's file and its row) cannot leave a row without them.

use super::{new_module, TestResult};
use crate::store::modules::{ModuleBytes, NewModule};
use crate::store::Store;

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

on_both!(a_module_row_is_made_with_its_bytes_whatever_was_deleted_before);
