//! Organizations: the tenants. An organization is renamed by its admins or the operator,
//! and deleted by the operator with everything it owns, in one transaction.
//!
//! Ids are never given twice: a deleted organization's id (and its users') is recorded in
//! `id_high_water` (migration 4), and a new one is numbered past it, so that a URL or a run
//! log of a deleted organization never comes to name another.

use super::db::{params, Db, DbError, Row};

use super::{next_id, retire_ids, Page, SortColumn, Store, StoreError, Window};

impl Store {
    /// The organizations, reached by name: what `/organizations` creates and reads.
    pub fn organizations(&self) -> Organizations<'_> {
        Organizations { store: self }
    }
}

/// The organization operations callers may ask for; each runs on the store's blocking
/// pool.
#[derive(Debug, Clone, Copy)]
pub struct Organizations<'a> {
    store: &'a Store,
}

/// What the organizations list may be ordered by (then by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OrganizationOrder {
    /// By id, the default.
    #[default]
    Id,
    /// `ordering=name` (or `-name`, descending).
    Name,
}

impl SortColumn for OrganizationOrder {
    fn column(&self) -> &'static str {
        match self {
            OrganizationOrder::Id => "id",
            OrganizationOrder::Name => "name",
        }
    }
}

impl Organizations<'_> {
    /// Creates an organization as given: the API checks the name, which need not be unique.
    pub async fn create(&self, name: &str, created_at: &str) -> Result<Organization, StoreError> {
        let (name, created_at) = (name.to_owned(), created_at.to_owned());
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                let organization = create(&transaction, &name, &created_at)?;
                transaction.commit()?;
                Ok(organization)
            })
            .await
    }

    /// One organization; none when there is no such organization.
    pub async fn get(&self, id: u64) -> Result<Option<Organization>, StoreError> {
        self.store.run(move |db| get(db, id)).await
    }

    /// A page of the organizations; `only` restricts the list to one (a user sees its
    /// own).
    pub async fn list(
        &self,
        only: Option<u64>,
        window: Window<OrganizationOrder>,
    ) -> Result<Page<Organization>, StoreError> {
        self.store.run(move |db| list(db, only, window)).await
    }

    /// Renames organization `id`: `PUT`/`PATCH /organizations/{id}`. Returns it as stored;
    /// none when there is no such organization. Who may rename which is the caller's rule
    /// (`api::organizations`), not the store's.
    pub async fn rename(&self, id: u64, name: &str) -> Result<Option<Organization>, StoreError> {
        let name = name.to_owned();
        self.store.run(move |db| rename(db, id, &name)).await
    }

    /// Deletes organization `id` and every row it owns (its hooks with their relations,
    /// schedules and sealed secrets, its modules, queues, users with their tokens and
    /// logins, and its run logs) in one transaction: all of it or, on any failure, none.
    /// Returns the module bytes no module holds any more, whose files the caller deletes
    /// (bytes another organization's module also has are kept); none when there is no such
    /// organization.
    pub async fn delete(&self, id: u64) -> Result<Option<DeletedOrganization>, StoreError> {
        self.store.run(move |db| delete(db, id)).await
    }
}

/// What deleting an organization leaves to its caller: the files outside the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedOrganization {
    /// The sha256 of the organization's module bytes that no remaining module or hook
    /// template holds: their files may go (`ModuleLibrary::forget`). Bytes that another organization also
    /// uploaded are not listed, as a module's deletion keeps them (`DeleteOutcome`).
    pub unused_digests: Vec<String>,
}

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id: what its users', queues', modules' and hooks' `organization_id` name.
    pub id: u64,
    /// Shown to people; not unique, so never a key.
    pub name: String,
    /// When it was created.
    pub created_at: String,
    /// Its users, by id (Rossum's organization lists them).
    pub users: Vec<u64>,
}

fn from_row(db: &Db<'_>, row: &Row) -> Result<Organization, DbError> {
    let id: u64 = row.get(0)?;
    Ok(Organization {
        id,
        name: row.get(1)?,
        created_at: row.get(2)?,
        users: users_of(db, id)?,
    })
}

/// The ids of an organization's users, in order.
fn users_of(db: &Db<'_>, organization_id: u64) -> Result<Vec<u64>, DbError> {
    db.query_map(
        "SELECT id FROM users WHERE organization_id = ?1 ORDER BY id",
        params![organization_id],
        |row| row.get::<u64>(0),
    )
}

/// Creates an organization, numbered past every id given before (a deleted one's too).
pub(super) fn create(
    db: &Db<'_>,
    name: &str,
    created_at: &str,
) -> Result<Organization, StoreError> {
    let id = next_id(db, "organizations", "organizations")?;
    db.execute(
        "INSERT INTO organizations (id, name, created_at) VALUES (?3, ?1, ?2)",
        params![name, created_at, id],
    )?;
    Ok(Organization {
        id,
        name: name.to_owned(),
        created_at: created_at.to_owned(),
        users: Vec::new(),
    })
}

pub(super) fn get(db: &Db<'_>, id: u64) -> Result<Option<Organization>, StoreError> {
    Ok(db.query_opt(
        "SELECT id, name, created_at FROM organizations WHERE id = ?1",
        params![id],
        |row| from_row(db, row),
    )?)
}

/// Organizations in the window's order; `only` restricts the list to one.
fn list(
    db: &Db<'_>,
    only: Option<u64>,
    window: Window<OrganizationOrder>,
) -> Result<Page<Organization>, StoreError> {
    super::page_where(
        db,
        "organizations",
        "id, name, created_at",
        "id",
        only,
        window,
        |row| from_row(db, row),
    )
}

/// Renames an organization; none when there is no such organization.
fn rename(db: &Db<'_>, id: u64, name: &str) -> Result<Option<Organization>, StoreError> {
    let changed = db.execute(
        "UPDATE organizations SET name = ?2 WHERE id = ?1",
        params![id, name],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    get(db, id)
}

/// The rows an organization owns, each statement deleting one table's with the
/// organization's id as `?1`, in an order that deletes what refers to a row before the row
/// (foreign keys are on): a hook's relations and schedule, then hooks (which name modules
/// and users), modules, queues, the users' tokens and logins, users, run logs (which have
/// no foreign keys), and last the organization. Every statement has a `WHERE`, so SQLite
/// reports each deleted row to the caches' update hook (`cache.rs`), and on PostgreSQL
/// each statement reports the table it names: sessions, hooks, organization hook lists
/// and modules read before are stale at once.
const OWNED_ROWS: &[&str] = &[
    "DELETE FROM schedule_ticks
     WHERE hook_id IN (SELECT id FROM hooks WHERE organization_id = ?1)",
    "DELETE FROM hook_run_after
     WHERE hook_id IN (SELECT id FROM hooks WHERE organization_id = ?1)
        OR predecessor_id IN (SELECT id FROM hooks WHERE organization_id = ?1)",
    "DELETE FROM hook_queues
     WHERE hook_id IN (SELECT id FROM hooks WHERE organization_id = ?1)
        OR queue_id IN (SELECT id FROM queues WHERE organization_id = ?1)",
    "DELETE FROM hooks WHERE organization_id = ?1",
    "DELETE FROM modules WHERE organization_id = ?1",
    "DELETE FROM queues WHERE organization_id = ?1",
    "DELETE FROM tokens
     WHERE user_id IN (SELECT id FROM users WHERE organization_id = ?1)",
    "DELETE FROM user_logins
     WHERE user_id IN (SELECT id FROM users WHERE organization_id = ?1)",
    "DELETE FROM users WHERE organization_id = ?1",
    "DELETE FROM run_logs WHERE organization_id = ?1",
    "DELETE FROM deliveries WHERE organization_id = ?1",
    "DELETE FROM events WHERE organization_id = ?1",
    // After the deliveries: a delivery's end locks its row, then its organization's
    // usage row (its run log's insert); taking them in the other order could deadlock.
    "DELETE FROM run_log_usage WHERE organization_id = ?1",
    "DELETE FROM event_usage WHERE organization_id = ?1",
    "DELETE FROM organizations WHERE id = ?1",
];

/// Deletes an organization and every row it owns in one transaction; the module bytes no
/// module holds any more. None when there is no such organization.
fn delete(db: &Db<'_>, id: u64) -> Result<Option<DeletedOrganization>, StoreError> {
    let transaction = db.transaction()?;
    // First, before any row: a hook save or a module upload of the organization on another
    // replica finishes before (and its module's bytes are read below), or waits and then
    // finds it gone.
    transaction.serialize(&super::hooks::organization_hooks_lock(id))?;
    if get(&transaction, id)?.is_none() {
        return Ok(None);
    }
    let digests = transaction.query_map(
        "SELECT DISTINCT sha256 FROM modules WHERE organization_id = ?1 ORDER BY sha256",
        params![id],
        |row| row.get::<String>(0),
    )?;
    // In sha256 order, as every holder of several takes them: no two deletions wait on
    // each other.
    for sha256 in &digests {
        transaction.serialize(&super::modules::bytes_lock(sha256))?;
    }
    // Alone among the deletes of rows a usage counts (`usage.rs`): a trim or the retention
    // deletes an event before its deliveries (the cascade), this deletion the other way.
    transaction.serialize(super::usage::DELETES)?;
    for table in RETIRED_WITH_IT {
        retire_owned(&transaction, table, id)?;
    }
    retire_ids(&transaction, "organizations", id)?;
    for statement in OWNED_ROWS {
        transaction.execute(statement, params![id])?;
    }
    let mut unused_digests = Vec::new();
    for sha256 in digests {
        if super::modules::forget_unheld_bytes(&transaction, &sha256)? {
            unused_digests.push(sha256);
        }
    }
    transaction.commit()?;
    Ok(Some(DeletedOrganization { unused_digests }))
}

/// The tables whose ids an organization's deletion retires with its own, so that none of
/// them names a row of another organization later (each counter in `id_high_water` is
/// named as its table).
const RETIRED_WITH_IT: [&str; 2] = ["users", "queues"];

/// Retires the ids of `table`'s rows of `organization`, about to be deleted with it.
fn retire_owned(db: &Db<'_>, table: &'static str, organization: u64) -> Result<(), DbError> {
    let last = db.query_row(
        &format!("SELECT COALESCE(MAX(id), 0) FROM {table} WHERE organization_id = ?1"),
        params![organization],
        |row| row.get::<u64>(0),
    )?;
    retire_ids(db, table, last)
}
