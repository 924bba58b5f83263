//! `wasmhook serve --demo`: an organization, an admin, a queue, the hello module and a
//! hook using it, ready to call, and the curl line that calls it. Running it again reuses
//! what is there and prints a fresh token.
//!
//! The demo is found by its admin's username, not by a mark on its organization, so the
//! operator may delete the demo's organization like any other (`DELETE
//! /organizations/{id}`): the next start with `--demo` finds no demo admin and makes it
//! all anew, with a new password shown once.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::accounts;
use crate::api::AppState;
use crate::model::hook::parse_draft;
use crate::model::now_rfc3339;
use crate::store::hooks::SaveContext;
use crate::store::tokens::generate;
use crate::store::users::NewUser;
use crate::tokens::{self, Grant};

/// The demo admin's username.
pub const DEMO_USER: &str = "demo-admin";
const DEMO_HOOK: &str = "Hello (demo)";
/// A demo token lives a week.
const TOKEN_LIFETIME_S: i64 = 7 * 24 * 3600;

/// Creates (or finds) the demo and says how to call it.
pub async fn create(state: &AppState, module_path: &Path) -> anyhow::Result<Announcement> {
    let bytes = std::fs::read(module_path).with_context(|| {
        format!(
            "cannot read the demo module {} (build it with `examples/rust/build.sh hello`, \
             or point --demo-module at a module)",
            module_path.display()
        )
    })?;
    // Refuse a bad module before anything is created: a demo left half-made would keep an
    // admin whose password was never shown.
    let runtime = std::sync::Arc::clone(state.library.runtime());
    let checked = bytes.clone();
    tokio::task::spawn_blocking(move || runtime.load_quick(&checked))
        .await
        .context("the demo module check stopped")?
        .with_context(|| format!("the demo module {} was refused", module_path.display()))?;
    let existing = state.store.users().by_username(DEMO_USER).await?;
    let (organization_id, user_id, password) = match existing {
        Some(user) => (user.organization_id, user.id, None),
        None => {
            let password = generate()?[..20].to_owned();
            let hash = accounts::hash_password(&password)
                .map_err(|error| anyhow::anyhow!("cannot hash the demo password: {error}"))?;
            let admin = NewUser {
                // Not read: the new organization's id is used.
                organization_id: 0,
                username: DEMO_USER,
                password_hash: &hash,
                role: "admin",
                first_name: "Demo",
                last_name: "Admin",
                email: "",
            };
            let user = state
                .store
                .users()
                .create_with_organization("Demo", &admin, &now_rfc3339())
                .await?;
            (user.organization_id, user.id, Some(password))
        }
    };
    let queue_id = state
        .store
        .queues()
        .first_or_create(organization_id, "Invoices", &now_rfc3339())
        .await?;
    let hook_id = match find_hook(state, organization_id).await? {
        Some(id) => id,
        None => {
            let module = state
                .library
                .add(
                    organization_id,
                    "hello.wasm".into(),
                    bytes.into(),
                    state.quotas.of_modules(),
                )
                .await
                .context("the demo module was refused")?;
            let input = json!({
                "name": DEMO_HOOK,
                "events": ["annotation_content", "invocation.manual"],
                "queues": [queue_id],
                "config": {"runtime": "wasm", "module": module.id, "timeout_s": 10},
                "settings": {"greeting": "Hello"},
                "description": "The hello example: answers every event with a greeting.",
            });
            let input = input.as_object().cloned().unwrap_or_default();
            let draft = parse_draft(&input, &state.bounds)?;
            let context = SaveContext {
                organization_id,
                hook_id: None,
                sealed_secrets: None,
                secrets_keys: Vec::new(),
                author: Some(user_id),
                now: now_rfc3339(),
                hook_template: None,
                hooks_limit: state.quotas.hooks,
            };
            state.store.hooks().save(draft, context).await?.id
        }
    };
    let grant = Grant::User {
        user_id,
        lifetime_s: TOKEN_LIFETIME_S,
    };
    let token = tokens::mint(&state.store, grant).await?;
    let mut lines = vec![format!(
        "demo: organization {organization_id}, queue {queue_id}, hook {hook_id}"
    )];
    if let Some(password) = password {
        lines.push(format!(
            "demo: user `{DEMO_USER}`, password `{password}` (shown once)"
        ));
    }
    lines.push("demo: call the hook with".into());
    lines.push(format!(
        "  curl -s -X POST {}/api/v1/hooks/{hook_id}/invoke -H 'Authorization: Bearer {token}' \
         -H 'Content-Type: application/json' -d '{{\"note\": \"hi\"}}'",
        state.base_url
    ));
    Ok(Announcement(lines))
}

/// What the demo has to say (a password shown once among it), printed by the caller once
/// the start can no longer fail.
#[derive(Debug)]
pub struct Announcement(Vec<String>);

impl Announcement {
    /// Prints it to stderr, with the server's other start-up lines.
    pub fn print(&self) {
        for line in &self.0 {
            eprintln!("{line}");
        }
    }
}

async fn find_hook(state: &AppState, organization_id: u64) -> anyhow::Result<Option<u64>> {
    let hooks = state.store.organization_hooks(organization_id).await?;
    Ok(hooks
        .iter()
        .find(|hook| hook.spec.name == DEMO_HOOK)
        .map(|hook| hook.id))
}
