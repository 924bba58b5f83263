//! The store through its facades, each test twice: on a real SQLite file and on a schema
//! of its own on the machine's PostgreSQL (`on_both!`). What the API relies on without
//! seeing SQL (lists filtered, ordered and paged in the database; references checked
//! against the organization in the transaction that writes; ids never given twice; an
//! organization deleted with everything it owns, the caches stale at once).

use serde_json::{json, Map, Value};

use super::db::postgres::PostgresUrl;
use super::hooks::SaveContext;
use super::tokens::Owner;
use super::users::NewUser;
use super::Store;
use crate::model::hook::{parse_draft, Hook, TEST_BOUNDS};
use wasmhook_tests::postgres::TestSchema;

/// Each named test, an `async fn(Store) -> TestResult`, runs twice: on a SQLite file
/// (`sqlite::name`) and on a PostgreSQL schema of its own (`postgres::name`), so that both
/// backends keep the same promises.
macro_rules! on_both {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() -> super::super::TestResult {
                    let (_dir, store) = super::super::open()?;
                    super::$test(store).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() -> super::super::TestResult {
                    let (_schema, store) = super::super::open_postgres().await?;
                    super::$test(store).await
                }
            )+
        }
    };
}
mod deliveries;
mod hooks;
mod modules;
mod organizations;
mod readers;
pub(crate) mod run_logs;
mod schedules;
mod templates;
mod users;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn open() -> Result<(tempfile::TempDir, Store), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("wasmhook.db"))?;
    Ok((dir, store))
}

/// A store on a fresh PostgreSQL schema, dropped with the returned guard.
async fn open_postgres() -> Result<(TestSchema, Store), Box<dyn std::error::Error>> {
    let schema = TestSchema::create("store").map_err(|error| error.to_string())?;
    let url: PostgresUrl = schema.url().parse()?;
    let store = Store::open_postgres(&url, 4).await?;
    Ok((schema, store))
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
        hooks_limit: u64::MAX,
    };
    Ok(store.hooks().save(draft, context).await?)
}

fn names(hooks: &[Hook]) -> Vec<&str> {
    hooks.iter().map(|hook| hook.spec.name.as_str()).collect()
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

/// A module row of 10 bytes, made "now", its bytes not stored.
/// The bytes every module of these tests is stored with (the store does not hash them).
static MODULE_BYTES: bytes::Bytes = bytes::Bytes::from_static(b"\0asm a module's bytes");

fn new_module<'a>(
    organization_id: u64,
    name: &'a str,
    sha256: &'a str,
    inspected: Option<&'a crate::store::modules::Inspected>,
) -> crate::store::modules::NewModule<'a> {
    crate::store::modules::NewModule {
        organization_id,
        name,
        sha256,
        size: 10,
        inspected,
        created_at: "now",
        bytes: crate::store::modules::ModuleBytes::Stored(&MODULE_BYTES),
        quota: crate::store::modules::ModuleQuota::NONE,
    }
}
