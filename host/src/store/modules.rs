//! Modules: uploaded WebAssembly files of one organization, stored by sha256. The bytes live
//! in the data directory (see `crate::modules`); a row holds what the runtime learned.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::db::{params, Db, DbError, Row};
use super::{equal_or_all, Page, SortColumn, Store, StoreError, Window};

impl Store {
    /// The modules' rows, reached by name: what the module library and `/modules` record
    /// and read. (One module, as a call reads it, comes through [`Store::module`]'s cache.)
    pub fn modules(&self) -> Modules<'_> {
        Modules { store: self }
    }
}

/// The module operations callers may ask for; each runs on the store's blocking pool.
#[derive(Debug, Clone, Copy)]
pub struct Modules<'a> {
    store: &'a Store,
}

/// What the modules list may be ordered by (then by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ModuleOrder {
    /// By id, the default.
    #[default]
    Id,
    /// `ordering=name` (or `-name`, descending).
    Name,
    /// By size in bytes.
    Size,
    /// By upload time.
    CreatedAt,
}

impl SortColumn for ModuleOrder {
    fn column(&self) -> &'static str {
        match self {
            ModuleOrder::Id => "id",
            ModuleOrder::Name => "name",
            ModuleOrder::Size => "size",
            ModuleOrder::CreatedAt => "created_at",
        }
    }
}

impl Modules<'_> {
    /// Records an uploaded module: ready when `inspected` (it was compiled while the
    /// upload waited), else pending.
    pub async fn create(&self, new: NewModule<'_>) -> Result<Module, StoreError> {
        let NewModule {
            organization_id,
            name,
            sha256,
            size,
            inspected,
            created_at,
            bytes,
            quota,
        } = new;
        let (name, sha256, created_at) =
            (name.to_owned(), sha256.to_owned(), created_at.to_owned());
        let inspected = inspected.cloned();
        let (bytes, template) = match bytes {
            ModuleBytes::Stored(bytes) => (Some(bytes.clone()), false),
            ModuleBytes::InFile => (None, false),
            ModuleBytes::Template => (None, true),
        };
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                // Not while its organization is being deleted: the deletion reads which
                // bytes the organization's modules hold once it holds this.
                transaction.serialize(&super::hooks::organization_hooks_lock(organization_id))?;
                let (count, used) = usage(&transaction, organization_id)?;
                if let Some(reason) = quota.refusal(count, used, size) {
                    return Err(StoreError::Quota(reason));
                }
                // After a deletion of the last module with these bytes (which forgets
                // them) or before it (which then finds this row), never between.
                transaction.serialize(&bytes_lock(&sha256))?;
                if let Some(bytes) = &bytes {
                    store_bytes(&transaction, &sha256, bytes)?;
                }
                // A template's module, made as its template may be deleted (through
                // another replica, or by the operator here): only while a row still holds
                // the bytes, which its deletion would otherwise have taken.
                if template && !held(&transaction, &sha256)? {
                    return Err(StoreError::Conflict {
                        field: "hook_template",
                        message: "its module was deleted meanwhile, with its template".into(),
                    });
                }
                let module = create(
                    &transaction,
                    organization_id,
                    &name,
                    &sha256,
                    size,
                    inspected.as_ref(),
                    &created_at,
                )?;
                transaction.commit()?;
                Ok(module)
            })
            .await
    }

    /// One module, read from the database (not the cache).
    pub async fn get(&self, id: u64) -> Result<Option<Module>, StoreError> {
        self.store.run(move |db| get(db, id)).await
    }

    /// The organization's first module with these bytes, if it has one: what a hook made
    /// from a template runs, rather than a second row for the same bytes.
    pub async fn by_digest(
        &self,
        organization_id: u64,
        sha256: &str,
    ) -> Result<Option<Module>, StoreError> {
        let sha256 = sha256.to_owned();
        self.store
            .run(move |db| by_digest(db, organization_id, &sha256))
            .await
    }

    /// A page of the modules of one organization (or of all).
    pub async fn list(
        &self,
        organization: Option<u64>,
        window: Window<ModuleOrder>,
    ) -> Result<Page<Module>, StoreError> {
        self.store
            .run(move |db| list(db, organization, window))
            .await
    }

    /// How many modules an organization has, and their bytes together: what its quotas
    /// are checked against.
    pub async fn usage(&self, organization_id: u64) -> Result<(u64, u64), StoreError> {
        self.store.run(move |db| usage(db, organization_id)).await
    }

    /// The status of every module of an organization (or of all), for hooks' `status`.
    pub async fn statuses(
        &self,
        organization: Option<u64>,
    ) -> Result<HashMap<u64, ModuleStatus>, StoreError> {
        self.store.run(move |db| statuses(db, organization)).await
    }

    /// The distinct sha256 of modules in a status, for start-up work.
    pub async fn digests_with_status(
        &self,
        status: ModuleStatus,
    ) -> Result<Vec<String>, StoreError> {
        self.store
            .run(move |db| digests_with_status(db, status))
            .await
    }

    /// Marks every module with these bytes ready (compiling is per sha256, not per row).
    pub async fn mark_ready(&self, sha256: &str, inspected: &Inspected) -> Result<(), StoreError> {
        let (sha256, inspected) = (sha256.to_owned(), inspected.clone());
        self.store
            .run(move |db| mark_ready(db, &sha256, &inspected))
            .await
    }

    /// Marks every module with these bytes failed, with the reason.
    pub async fn mark_failed(&self, sha256: &str, error: &str) -> Result<(), StoreError> {
        let (sha256, error) = (sha256.to_owned(), error.to_owned());
        self.store
            .run(move |db| mark_failed(db, &sha256, &error))
            .await
    }

    /// Marks every module with these bytes pending again (its compiled code must be
    /// rebuilt).
    pub async fn mark_pending(&self, sha256: &str) -> Result<(), StoreError> {
        let sha256 = sha256.to_owned();
        self.store.run(move |db| mark_pending(db, &sha256)).await
    }

    /// Deletes a module unless a hook uses it, in one transaction; says whether its bytes
    /// are still another module's.
    pub async fn delete(&self, module: &Module) -> Result<DeleteOutcome, StoreError> {
        let (id, sha256) = (module.id, module.sha256.clone());
        self.store.run(move |db| delete(db, id, &sha256)).await
    }

    /// Stores a module's bytes by their sha256 (once: the same bytes again change nothing),
    /// so that every replica can load them: for bytes a row holds but the database lacks
    /// (uploaded before migration 9, found on this replica's disk at start).
    pub async fn put_bytes(&self, sha256: &str, bytes: bytes::Bytes) -> Result<(), StoreError> {
        let sha256 = sha256.to_owned();
        self.store
            .run(move |db| store_bytes(db, &sha256, &bytes))
            .await
    }

    /// The sha256 of every module's or template's bytes that the database does not hold
    /// (uploaded before migration 9).
    pub async fn digests_without_bytes(&self) -> Result<Vec<String>, StoreError> {
        self.store
            .run(|db| {
                Ok(db.query_map(
                    "SELECT sha256 FROM modules
                     WHERE sha256 NOT IN (SELECT sha256 FROM module_bytes)
                     UNION
                     SELECT module_sha256 FROM hook_templates
                     WHERE module_sha256 NOT IN (SELECT sha256 FROM module_bytes)",
                    params![],
                    |row| row.get::<String>(0),
                )?)
            })
            .await
    }

    /// The sha256 of every module's or template's bytes: what a replica's files may hold.
    pub async fn digests_in_use(&self) -> Result<Vec<String>, StoreError> {
        self.store
            .run(|db| {
                Ok(db.query_map(
                    "SELECT sha256 FROM modules UNION SELECT module_sha256 FROM hook_templates",
                    params![],
                    |row| row.get::<String>(0),
                )?)
            })
            .await
    }

    /// Whether a module or hook template holds the bytes `sha256`: asked again before
    /// their file goes by a deletion that found them unheld, since a holder of the same
    /// bytes may have committed its row since.
    pub async fn held(&self, sha256: &str) -> Result<bool, StoreError> {
        let sha256 = sha256.to_owned();
        self.store.run(move |db| held(db, &sha256)).await
    }

    /// A module's bytes, by their sha256; none when the database does not hold them
    /// (uploaded before migration 9 and not read since).
    pub async fn bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let sha256 = sha256.to_owned();
        self.store
            .run(move |db| {
                Ok(db.query_opt(
                    "SELECT bytes FROM module_bytes WHERE sha256 = ?1",
                    params![sha256],
                    |row| row.get::<Vec<u8>>(0),
                )?)
            })
            .await
    }
}

/// Where a module is on its way to being callable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleStatus {
    /// Compiling in the background.
    Pending,
    /// Compiled and callable.
    Ready,
    /// Refused by the runtime; `error` says why.
    Failed,
}

impl ModuleStatus {
    /// Its stored and shown name (Rossum's hook `status` words).
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleStatus::Pending => "pending",
            ModuleStatus::Ready => "ready",
            ModuleStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "ready" => ModuleStatus::Ready,
            "failed" => ModuleStatus::Failed,
            _ => ModuleStatus::Pending,
        }
    }
}

/// A module as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Its id: what a hook's `config.module` URL names.
    pub id: u64,
    /// The organization that uploaded it, whose quotas it counts against.
    pub organization_id: u64,
    /// A name for people (the uploaded file's name, or given).
    pub name: String,
    /// sha256 of the bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it can be called.
    pub status: ModuleStatus,
    /// Why it was refused, when it failed.
    pub error: Option<String>,
    /// `component` or `command`, once known.
    pub kind: Option<String>,
    /// `component` or `core`, once known.
    pub encoding: Option<String>,
    /// Its imports, once known.
    pub imports: Vec<String>,
    /// Its exports, once known.
    pub exports: Vec<String>,
    /// When it was uploaded.
    pub created_at: String,
}

/// What the runtime learned about a module that loaded (kept as JSON for a hook template's
/// module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspected {
    /// `component` or `command`.
    pub kind: String,
    /// `component` or `core`.
    pub encoding: String,
    /// What it imports, as the runtime found it at upload; shown to its author.
    pub imports: Vec<String>,
    /// What it exports, as the runtime found it at upload; shown to its author.
    pub exports: Vec<String>,
}

const COLUMNS: &str = "id, organization_id, name, sha256, size, status, error, kind, encoding, \
                       imports, exports, created_at";

fn from_row(row: &Row) -> Result<Module, DbError> {
    let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    Ok(Module {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        name: row.get(2)?,
        sha256: row.get(3)?,
        size: row.get(4)?,
        status: ModuleStatus::parse(&row.get::<String>(5)?),
        error: row.get(6)?,
        kind: row.get(7)?,
        encoding: row.get(8)?,
        imports: list(row.get(9)?),
        exports: list(row.get(10)?),
        created_at: row.get(11)?,
    })
}

/// Records an uploaded module.
fn create(
    db: &Db<'_>,
    organization_id: u64,
    name: &str,
    sha256: &str,
    size: u64,
    inspected: Option<&Inspected>,
    created_at: &str,
) -> Result<Module, StoreError> {
    let status = if inspected.is_some() {
        ModuleStatus::Ready
    } else {
        ModuleStatus::Pending
    };
    let id = db.query_row(
        "INSERT INTO modules (organization_id, name, sha256, size, status, kind, encoding,
                              imports, exports, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         RETURNING id",
        params![
            organization_id,
            name,
            sha256,
            size,
            status.as_str(),
            inspected.map(|i| i.kind.clone()),
            inspected.map(|i| i.encoding.clone()),
            inspected.map_or_else(|| "[]".to_owned(), |i| json_list(&i.imports)),
            inspected.map_or_else(|| "[]".to_owned(), |i| json_list(&i.exports)),
            created_at
        ],
        |row| row.get::<u64>(0),
    )?;
    get(db, id)?.ok_or(StoreError::Database(DbError::NoRow))
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Marks every module with these bytes ready (compiling is per sha256, not per row).
fn mark_ready(db: &Db<'_>, sha256: &str, inspected: &Inspected) -> Result<(), StoreError> {
    db.execute(
        "UPDATE modules SET status = 'ready', error = NULL, kind = ?2, encoding = ?3,
                imports = ?4, exports = ?5
         WHERE sha256 = ?1",
        params![
            sha256,
            inspected.kind,
            inspected.encoding,
            json_list(&inspected.imports),
            json_list(&inspected.exports)
        ],
    )?;
    Ok(())
}

/// Marks every module with these bytes failed, with the reason.
fn mark_failed(db: &Db<'_>, sha256: &str, error: &str) -> Result<(), StoreError> {
    db.execute(
        "UPDATE modules SET status = 'failed', error = ?2 WHERE sha256 = ?1",
        params![sha256, error],
    )?;
    Ok(())
}

/// Marks every module with these bytes pending again (its compiled code must be rebuilt).
fn mark_pending(db: &Db<'_>, sha256: &str) -> Result<(), StoreError> {
    db.execute(
        "UPDATE modules SET status = 'pending' WHERE sha256 = ?1",
        params![sha256],
    )?;
    Ok(())
}

pub(super) fn get(db: &Db<'_>, id: u64) -> Result<Option<Module>, StoreError> {
    Ok(db.query_opt(
        &format!("SELECT {COLUMNS} FROM modules WHERE id = ?1"),
        params![id],
        from_row,
    )?)
}

/// The organization's first module with these bytes.
fn by_digest(
    db: &Db<'_>,
    organization_id: u64,
    sha256: &str,
) -> Result<Option<Module>, StoreError> {
    Ok(db.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM modules WHERE organization_id = ?1 AND sha256 = ?2
             ORDER BY id LIMIT 1"
        ),
        params![organization_id, sha256],
        from_row,
    )?)
}

/// Modules of one organization (or of all), in the window's order.
fn list(
    db: &Db<'_>,
    organization: Option<u64>,
    window: Window<ModuleOrder>,
) -> Result<Page<Module>, StoreError> {
    super::page_where(
        db,
        "modules",
        COLUMNS,
        "organization_id",
        organization,
        window,
        from_row,
    )
}

/// How many modules an organization has, and their bytes together.
fn usage(db: &Db<'_>, organization_id: u64) -> Result<(u64, u64), StoreError> {
    // PostgreSQL's SUM of integers is NUMERIC, which no column reads: cast back.
    Ok(db.query_row(
        "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM modules
         WHERE organization_id = ?1",
        params![organization_id],
        |row| Ok((row.get::<u64>(0)?, row.get::<u64>(1)?)),
    )?)
}

/// The distinct sha256 of modules in a status, for start-up work.
fn digests_with_status(db: &Db<'_>, status: ModuleStatus) -> Result<Vec<String>, StoreError> {
    Ok(db.query_map(
        "SELECT DISTINCT sha256 FROM modules WHERE status = ?1",
        params![status.as_str()],
        |row| row.get::<String>(0),
    )?)
}

/// Why a module could not be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; `last_copy` says whether no other row holds the same bytes.
    Deleted {
        /// No other module, and no hook template, has these bytes: the file may go.
        last_copy: bool,
    },
    /// Hooks use it (their ids).
    InUse(Vec<u64>),
}

/// Deletes module `id` (whose bytes are `sha256`) unless a hook uses it.
fn delete(db: &Db<'_>, id: u64, sha256: &str) -> Result<DeleteOutcome, StoreError> {
    let transaction = db.transaction()?;
    // A replica creating a module of these bytes at the same moment either commits first
    // (and is counted below) or waits, and then writes the bytes again.
    transaction.serialize(&bytes_lock(sha256))?;
    let users = transaction.query_map(
        "SELECT id FROM hooks WHERE module_id = ?1 ORDER BY id",
        params![id],
        |row| row.get::<u64>(0),
    )?;
    if !users.is_empty() {
        return Ok(DeleteOutcome::InUse(users));
    }
    transaction.execute("DELETE FROM modules WHERE id = ?1", params![id])?;
    let last_copy = forget_unheld_bytes(&transaction, sha256)?;
    transaction.commit()?;
    Ok(DeleteOutcome::Deleted { last_copy })
}

/// A module row to make: what [`Modules::create`] is given.
#[derive(Debug, Clone, Copy)]
pub struct NewModule<'a> {
    /// Its organization.
    pub organization_id: u64,
    /// Its name.
    pub name: &'a str,
    /// Its bytes' sha256.
    pub sha256: &'a str,
    /// Its size in bytes.
    pub size: u64,
    /// What its compile found: ready when given, else pending.
    pub inspected: Option<&'a Inspected>,
    /// When (RFC 3339).
    pub created_at: &'a str,
    /// Where its bytes are kept, which says what the row's transaction must do with them.
    pub bytes: ModuleBytes<'a>,
    /// What the organization's modules may hold together, this one with them: checked in
    /// the row's transaction, under the organization's lock, so that uploads at once cannot
    /// all pass a check each made before the others committed.
    pub quota: ModuleQuota,
}

/// What an organization's modules may hold together (`modules_per_organization`,
/// `module_bytes_per_organization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleQuota {
    /// Modules.
    pub count: u64,
    /// Their bytes, all together.
    pub bytes: u64,
}

impl ModuleQuota {
    /// No bound: for the rows the operator's tools and the tests make.
    pub const NONE: ModuleQuota = ModuleQuota {
        count: u64::MAX,
        bytes: u64::MAX,
    };

    /// Why a new module of `size` bytes is refused beside `count` modules of `used` bytes,
    /// if it is, worded for the organization's admin.
    pub fn refusal(&self, count: u64, used: u64, size: u64) -> Option<String> {
        if count >= self.count {
            return Some(format!(
                "the organization has {count} modules, its limit; delete one first"
            ));
        }
        let total = used.saturating_add(size);
        (total > self.bytes).then(|| {
            format!(
                "the organization's modules would take {total} bytes, over its limit of {}",
                self.bytes
            )
        })
    }
}

/// Where a new module's bytes are kept: what its creation stores or checks.
#[derive(Debug, Clone, Copy)]
pub enum ModuleBytes<'a> {
    /// Uploaded, and stored with the row in its transaction, for the other replicas that
    /// share the database to load.
    Stored(&'a bytes::Bytes),
    /// Uploaded, and kept only in this data directory's file (SQLite, one process).
    InFile,
    /// A hook template's, which holds them: the row is refused unless a template or module
    /// still does when it commits, as the template may be deleted meanwhile and its last
    /// holder's deletion takes the bytes (the file, and the stored copy).
    Template,
}

/// The name under which the writes of one module's stored bytes are serialized across
/// replicas: a module's or a template's creation (which writes them) and the deletion of
/// their last holder (which forgets them).
pub(super) fn bytes_lock(sha256: &str) -> String {
    format!("wasmhook module bytes {sha256}")
}

/// Stores the bytes `sha256` in the caller's transaction (once: the same bytes again
/// change nothing), for the other replicas to load.
pub(super) fn store_bytes(db: &Db<'_>, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO module_bytes (sha256, bytes) VALUES (?1, ?2)
         ON CONFLICT (sha256) DO NOTHING",
        params![sha256, bytes],
    )?;
    Ok(())
}

/// Whether a module or a hook template holds the bytes `sha256`.
fn held(db: &Db<'_>, sha256: &str) -> Result<bool, StoreError> {
    Ok(db.query_row(
        "SELECT EXISTS (SELECT 1 FROM modules WHERE sha256 = ?1)
             OR EXISTS (SELECT 1 FROM hook_templates WHERE module_sha256 = ?1)",
        params![sha256],
        |row| row.get::<bool>(0),
    )?)
}

/// Deletes the stored bytes `sha256` if no module or hook template holds them any more (a
/// template's module is the same bytes: they stay while a template runs them); whether it
/// did. Inside the caller's transaction, which holds their [`bytes_lock`].
pub(super) fn forget_unheld_bytes(db: &Db<'_>, sha256: &str) -> Result<bool, StoreError> {
    let held = held(db, sha256)?;
    if !held {
        db.execute(
            "DELETE FROM module_bytes WHERE sha256 = ?1",
            params![sha256],
        )?;
    }
    Ok(!held)
}

/// The status of every module of an organization (or of all).
fn statuses(
    db: &Db<'_>,
    organization: Option<u64>,
) -> Result<HashMap<u64, ModuleStatus>, StoreError> {
    let sql = format!(
        "SELECT id, status FROM modules WHERE {}",
        equal_or_all("organization_id", organization.is_some())
    );
    let rows = db.query_map(&sql, params![organization], |row| {
        Ok((
            row.get::<u64>(0)?,
            ModuleStatus::parse(&row.get::<String>(1)?),
        ))
    })?;
    Ok(rows.into_iter().collect())
}
