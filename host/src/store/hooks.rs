//! Hooks, with their queue subscriptions and run_after relations. A save checks every
//! reference against the hook's organization, and run_after for cycles
//! (`hook_references.rs`), in the same transaction that writes: a refused hook leaves
//! nothing behind.

use super::db::{params, Db, DbError, Row};
use super::hook_references::check_references;
use super::{equal_or_all, Page, Store, StoreError, Window};
use crate::model::hook::{Hook, HookDraft, HookError, HookSpec};

pub use super::hook_list::{HookListFilter, HookOrder};

impl Store {
    /// The hooks' writes and lists, reached by name. (One hook, and an organization's
    /// hooks, are read through the caches: [`Store::hook`], [`Store::organization_hooks`].)
    pub fn hooks(&self) -> Hooks<'_> {
        Hooks { store: self }
    }
}

/// The hook operations callers may ask for; each runs on the store's blocking pool, and a
/// save checks and writes in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Hooks<'a> {
    store: &'a Store,
}

impl Hooks<'_> {
    /// A page of hooks matching `filter`, in the window's order: filtered, ordered and
    /// paged by the database.
    pub async fn list(
        &self,
        filter: &HookListFilter,
        window: Window<HookOrder>,
    ) -> Result<Page<Hook>, StoreError> {
        let filter = filter.clone();
        self.store
            .run(move |db| super::hook_list::list(db, &filter, window))
            .await
    }

    /// Creates or updates a hook from a validated draft, after checking its references
    /// against its organization and run_after for cycles, in one transaction.
    pub async fn save(&self, draft: HookDraft, context: SaveContext) -> Result<Hook, SaveError> {
        self.store
            .run(move |db| Ok(save(db, &draft, &context)))
            .await?
    }

    /// Creates a copy of hook `original` from its validated draft (Rossum's duplicate),
    /// checked as any new hook is, in one transaction; `with_successors` makes every hook
    /// that runs after the original run after the copy too (Rossum's `copy_dependencies`).
    /// The caller has checked that `original` is of the copy's organization.
    pub async fn duplicate(
        &self,
        draft: HookDraft,
        context: SaveContext,
        original: u64,
        with_successors: bool,
    ) -> Result<Hook, SaveError> {
        self.store
            .run(move |db| Ok(duplicate(db, &draft, &context, original, with_successors)))
            .await?
    }

    /// Deletes a hook (its relations go with it; its run logs stay for their retention).
    pub async fn delete(&self, id: u64) -> Result<(), StoreError> {
        self.store.run(move |db| delete(db, id)).await
    }

    /// The schedules of the active hooks of every organization, as the scheduler reads
    /// them every second.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        self.store.run(schedules).await
    }
}

/// Why a save did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// The hook breaks a rule that needs the database to see.
    #[error(transparent)]
    Invalid(#[from] HookError),
    /// A new hook would take its organization past its hook quota.
    #[error("the organization has {count} hooks, its limit; delete one first")]
    Quota {
        /// The organization's hooks.
        count: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DbError> for SaveError {
    fn from(error: DbError) -> Self {
        SaveError::Store(StoreError::Database(error))
    }
}

/// What a save writes besides the draft.
#[derive(Debug, Clone)]
pub struct SaveContext {
    /// The organization the hook belongs to.
    pub organization_id: u64,
    /// The hook to update, or none to create one.
    pub hook_id: Option<u64>,
    /// The sealed secrets to store (already merged with what was stored).
    pub sealed_secrets: Option<Vec<u8>>,
    /// Names of the stored secrets.
    pub secrets_keys: Vec<String>,
    /// The user saving it (none for the operator).
    pub author: Option<u64>,
    /// The time of the save (RFC 3339): the hook's `modified_at`, and its `created_at`
    /// when the save creates it.
    pub now: String,
    /// The template a new hook is made from (`POST /hooks/create`); an update keeps the
    /// hook's own.
    pub hook_template: Option<u64>,
    /// Hooks the organization may hold (`hooks_per_organization`): a new one beyond is
    /// refused. Checked in the save's transaction, under the organization's lock, so that
    /// saves at once cannot each pass it; the bound also keeps what an event fans out to,
    /// and the run_after chains a save walks, a size the operator chose.
    pub hooks_limit: u64,
}

/// The columns `from_row` reads, in its order.
pub(super) const COLUMNS: &str =
    "id, organization_id, name, type, active, module_id, token_owner_id, document, \
     sealed_secrets, secrets_keys, created_at, created_by_id, modified_at, modified_by_id, \
     hook_template_id";

pub(super) fn from_row(row: &Row) -> Result<Hook, DbError> {
    let hook_type: String = row.get(3)?;
    let document: String = row.get(7)?;
    let module_id: Option<u64> = row.get(5)?;
    let (kind, document) =
        HookSpec::read_stored(&hook_type, &document, module_id).map_err(|error| {
            // The error names kinds only: why this hook cannot be read goes to the log.
            tracing::warn!(
                "hook {} cannot be read: {error}",
                row.get::<u64>(0).unwrap_or_default()
            );
            DbError::Column {
                expected: "a stored hook",
                found: "a hook type, document or config this build does not read",
            }
        })?;
    let keys: String = row.get(9)?;
    Ok(Hook {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        spec: HookSpec {
            name: row.get(2)?,
            kind,
            active: row.get(4)?,
            queues: Vec::new(),
            run_after: Vec::new(),
            token_owner: row.get(6)?,
            document,
        },
        sealed_secrets: row.get(8)?,
        secrets_keys: serde_json::from_str(&keys).unwrap_or_default(),
        created_at: row.get(10)?,
        created_by: row.get(11)?,
        modified_at: row.get(12)?,
        modified_by: row.get(13)?,
        hook_template: row.get(14)?,
    })
}

fn ids(db: &Db<'_>, sql: &str, id: u64) -> Result<Vec<u64>, DbError> {
    db.query_map(sql, params![id], |row| row.get::<u64>(0))
}

pub(super) fn with_relations(db: &Db<'_>, mut hook: Hook) -> Result<Hook, DbError> {
    hook.spec.queues = ids(
        db,
        "SELECT queue_id FROM hook_queues WHERE hook_id = ?1 ORDER BY queue_id",
        hook.id,
    )?;
    hook.spec.run_after = ids(
        db,
        "SELECT predecessor_id FROM hook_run_after WHERE hook_id = ?1 ORDER BY predecessor_id",
        hook.id,
    )?;
    Ok(hook)
}

pub(super) fn get(db: &Db<'_>, id: u64) -> Result<Option<Hook>, StoreError> {
    let hook = db.query_opt(
        &format!("SELECT {COLUMNS} FROM hooks WHERE id = ?1"),
        params![id],
        from_row,
    )?;
    Ok(match hook {
        Some(hook) => Some(with_relations(db, hook)?),
        None => None,
    })
}

/// Every hook of an organization (or of all), by id: what an event is matched against
/// (through [`Store::organization_hooks`]'s cache).
pub(super) fn all(db: &Db<'_>, organization: Option<u64>) -> Result<Vec<Hook>, StoreError> {
    let filter = equal_or_all("organization_id", organization.is_some());
    let hooks = db.query_map(
        &format!("SELECT {COLUMNS} FROM hooks WHERE {filter} ORDER BY id"),
        params![organization],
        from_row,
    )?;
    Ok(hooks
        .into_iter()
        .map(|hook| with_relations(db, hook))
        .collect::<Result<Vec<_>, DbError>>()?)
}

/// One active hook's schedule, as the scheduler reads it every second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// The hook to run at each tick: its ticks are claimed by this id
    /// (`Schedules::claim`), so that each runs once.
    pub hook_id: u64,
    /// Its `config.schedule.cron`.
    pub expression: String,
    /// When it was last saved (ticks before that are not its to run).
    pub modified_at: String,
}

/// The schedules of the active hooks of every organization: one row each, no relations.
/// Read off the `schedule_cron` column, derived from the document, through its partial
/// index (migration 12): the documents of the hooks without a schedule are not read.
pub(super) fn schedules(db: &Db<'_>) -> Result<Vec<ScheduleRow>, StoreError> {
    let rows = db.query_map(
        "SELECT id, schedule_cron, modified_at FROM hooks
         WHERE active = 1 AND schedule_cron IS NOT NULL
         ORDER BY id",
        params![],
        |row| {
            Ok(ScheduleRow {
                hook_id: row.get(0)?,
                expression: row.get(1)?,
                modified_at: row.get(2)?,
            })
        },
    )?;
    Ok(rows)
}

/// Creates or updates a hook from a validated draft, after checking its references.
fn save(db: &Db<'_>, draft: &HookDraft, context: &SaveContext) -> Result<Hook, SaveError> {
    let transaction = db.transaction()?;
    let id = write(&transaction, draft, context)?;
    let hook = get(&transaction, id)?.ok_or(StoreError::Database(DbError::NoRow))?;
    transaction.commit()?;
    Ok(hook)
}

/// Creates a copy of `original` from its draft; with `with_successors`, the hooks that run
/// after `original` run after the copy too.
fn duplicate(
    db: &Db<'_>,
    draft: &HookDraft,
    context: &SaveContext,
    original: u64,
    with_successors: bool,
) -> Result<Hook, SaveError> {
    let transaction = db.transaction()?;
    let id = write(&transaction, draft, context)?;
    if with_successors {
        // They were checked to be of the original's organization when they were saved.
        transaction.execute(
            "INSERT INTO hook_run_after (hook_id, predecessor_id)
             SELECT hook_id, ?2 FROM hook_run_after WHERE predecessor_id = ?1",
            params![original, id],
        )?;
    }
    let hook = get(&transaction, id)?.ok_or(StoreError::Database(DbError::NoRow))?;
    transaction.commit()?;
    Ok(hook)
}

/// The name under which one organization's hook saves are serialized across replicas,
/// and its deletion with them (which would otherwise take the same rows' locks in
/// another order than a save, and wait for it in a cycle).
pub(super) fn organization_hooks_lock(organization_id: u64) -> String {
    format!("wasmhook hooks of organization {organization_id}")
}

/// Writes a hook (a new one when `context.hook_id` is none) and its relations on `db`,
/// inside the caller's transaction, after checking its references; its id.
fn write(db: &Db<'_>, draft: &HookDraft, context: &SaveContext) -> Result<u64, SaveError> {
    // Two saves of one organization's hooks at once (on two replicas) could each pass the
    // run_after cycle check against the other's uncommitted edge: one at a time.
    db.serialize(&organization_hooks_lock(context.organization_id))?;
    check_references(db, draft, context)?;
    let spec = &draft.spec;
    let document = spec
        .stored_document()
        .map_err(|error| StoreError::Task(format!("cannot serialize a hook: {error}")))?;
    let keys = serde_json::to_string(&context.secrets_keys)
        .map_err(|error| StoreError::Task(format!("cannot serialize secret names: {error}")))?;
    let id = match context.hook_id {
        Some(id) => {
            db.execute(
                "UPDATE hooks SET name = ?2, type = ?3, active = ?4, module_id = ?5,
                        token_owner_id = ?6, document = ?7, sealed_secrets = ?8,
                        secrets_keys = ?9, modified_at = ?10, modified_by_id = ?11
                 WHERE id = ?1",
                params![
                    id,
                    spec.name,
                    spec.kind.hook_type().as_str(),
                    spec.active,
                    spec.kind.module_id(),
                    spec.token_owner,
                    document,
                    context.sealed_secrets,
                    keys,
                    context.now,
                    context.author
                ],
            )?;
            db.execute("DELETE FROM hook_queues WHERE hook_id = ?1", params![id])?;
            db.execute("DELETE FROM hook_run_after WHERE hook_id = ?1", params![id])?;
            id
        }
        None => {
            let count = db.query_row(
                "SELECT COUNT(*) FROM hooks WHERE organization_id = ?1",
                params![context.organization_id],
                |row| row.get::<u64>(0),
            )?;
            if count >= context.hooks_limit {
                return Err(SaveError::Quota { count });
            }
            // Never an id given before: a deleted hook's run logs must not become a new
            // hook's.
            let highest = db
                .dialect()
                .greatest("last_id", "COALESCE((SELECT MAX(id) FROM hooks), 0)");
            let id = db.query_row(
                &format!(
                    "UPDATE id_high_water
                 SET last_id = {highest} + 1
                 WHERE name = 'hooks' RETURNING last_id"
                ),
                params![],
                |row| row.get::<u64>(0),
            )?;
            db.execute(
                "INSERT INTO hooks (id, organization_id, name, type, active, module_id,
                                    token_owner_id, document, sealed_secrets, secrets_keys,
                                    created_at, created_by_id, modified_at, modified_by_id,
                                    hook_template_id)
                 VALUES (?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10, ?11, ?13)",
                params![
                    context.organization_id,
                    spec.name,
                    spec.kind.hook_type().as_str(),
                    spec.active,
                    spec.kind.module_id(),
                    spec.token_owner,
                    document,
                    context.sealed_secrets,
                    keys,
                    context.now,
                    context.author,
                    id,
                    context.hook_template
                ],
            )?;
            id
        }
    };
    for queue in &spec.queues {
        db.execute(
            "INSERT INTO hook_queues (hook_id, queue_id) VALUES (?1, ?2)",
            params![id, queue],
        )?;
    }
    for predecessor in &spec.run_after {
        db.execute(
            "INSERT INTO hook_run_after (hook_id, predecessor_id) VALUES (?1, ?2)",
            params![id, predecessor],
        )?;
    }
    Ok(id)
}

/// Deletes a hook (its relations go with it; its run logs stay for their retention).
fn delete(db: &Db<'_>, id: u64) -> Result<(), StoreError> {
    db.execute("DELETE FROM hooks WHERE id = ?1", params![id])?;
    Ok(())
}
