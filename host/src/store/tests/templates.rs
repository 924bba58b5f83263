//! Hook templates: the bytes a template runs stay while a template or a module has them,
//! through an organization's deletion.

use serde_json::json;

use super::{new_module, TestResult};
use crate::model::hook::{parse_template, TemplateSpec, TEST_BOUNDS};
use crate::store::modules::{DeleteOutcome, Inspected, ModuleBytes, NewModule};
use crate::store::templates::TemplateModule;
use crate::store::Store;
use crate::store::StoreError;
use crate::store::Window;

/// The `checker` template's spec, and the module of its bytes (`sha256`, 10 bytes, a
/// component exporting `handle`).
fn checker(sha256: &str) -> Result<(TemplateSpec, TemplateModule), Box<dyn std::error::Error>> {
    let fields = json!({"name": "checker", "config": {"runtime": "wasm"}});
    let spec = parse_template(
        &fields.as_object().cloned().unwrap_or_default(),
        &TEST_BOUNDS,
    )?;
    let module = TemplateModule {
        sha256: sha256.to_owned(),
        size: 10,
        inspected: Inspected {
            kind: "component".into(),
            encoding: "component".into(),
            imports: Vec::new(),
            exports: vec!["handle".into()],
        },
    };
    Ok((spec, module))
}

async fn a_templates_bytes_stay_while_a_template_or_a_module_has_them(store: Store) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let (spec, module) = checker(&"ab".repeat(32))?;
    let templates = store.hook_templates();
    let bytes = bytes::Bytes::from_static(b"the template's module");
    let template = templates
        .create(spec, module.clone(), "now", Some(bytes.clone()))
        .await?;
    assert_eq!(templates.get(template.id).await?, Some(template.clone()));
    assert_eq!(
        store.modules().bytes(&module.sha256).await?.as_deref(),
        Some(&bytes[..]),
        "stored with the template"
    );
    assert_eq!(templates.list(Window::first(10)).await?.total, 1);
    let copy = store
        .modules()
        .create(new_module(
            ours,
            "checker",
            &module.sha256,
            Some(&module.inspected),
        ))
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
    assert_eq!(
        store.modules().bytes(&module.sha256).await?,
        None,
        "forgotten with their last holder"
    );
    // A module made from the template as it was deleted (through another replica, or by
    // the operator here) would have no bytes, neither stored nor in a file: refused.
    let adopted = NewModule {
        bytes: ModuleBytes::Template,
        ..new_module(ours, "late", &module.sha256, Some(&module.inspected))
    };
    let made = store.modules().create(adopted).await;
    assert!(matches!(made, Err(StoreError::Conflict { .. })), "{made:?}");
    assert_eq!(templates.delete(template.id).await?, None);
    Ok(())
}

async fn an_organizations_deletion_keeps_the_bytes_a_hook_template_runs(
    store: Store,
) -> TestResult {
    let ours = store.organizations().create("ours", "now").await?.id;
    let (spec, module) = checker(&"cd".repeat(32))?;
    let bytes = bytes::Bytes::from_static(b"the template's module");
    store
        .hook_templates()
        .create(spec, module.clone(), "now", Some(bytes))
        .await?;
    let own = "ef".repeat(32);
    let modules = store.modules();
    // Made from the template: its bytes are the template's, stored with it.
    let adopted = NewModule {
        bytes: ModuleBytes::Template,
        ..new_module(ours, "checker", &module.sha256, Some(&module.inspected))
    };
    modules.create(adopted).await?;
    modules
        .create(new_module(ours, "own", &own, Some(&module.inspected)))
        .await?;
    let deleted = store
        .organizations()
        .delete(ours)
        .await?
        .ok_or("the organization existed")?;
    assert_eq!(deleted.unused_digests, vec![own]);
    Ok(())
}

on_both!(
    a_templates_bytes_stay_while_a_template_or_a_module_has_them,
    an_organizations_deletion_keeps_the_bytes_a_hook_template_runs,
);
