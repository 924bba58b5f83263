//! Queues: where an organization's documents flow; hooks subscribe to them.

use serde_json::{Map, Value};

use super::db::{params, Db, DbError, Row};
use super::{next_id, retire_ids, Page, SortColumn, Store, StoreError, Window};

impl Store {
    /// The queues, reached by name: what `/queues`, the demo and the dispatcher's
    /// sideloads read and write.
    pub fn queues(&self) -> Queues<'_> {
        Queues { store: self }
    }
}

/// The queue operations callers may ask for; each runs on the store's blocking pool, and
/// one that writes several rows (a queue and its hooks) does so in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Queues<'a> {
    store: &'a Store,
}

/// What the queues list may be ordered by (then by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueOrder {
    /// By id, the default.
    #[default]
    Id,
    /// `ordering=name` (or `-name`, descending).
    Name,
}

impl SortColumn for QueueOrder {
    fn column(&self) -> &'static str {
        match self {
            QueueOrder::Id => "id",
            QueueOrder::Name => "name",
        }
    }
}

/// A queue's fields as a create or an update writes them.
#[derive(Debug, Clone, Default)]
pub struct QueueWrite {
    /// Shown to people; not unique.
    pub name: String,
    /// Client data.
    pub metadata: Map<String, Value>,
    /// The hooks to subscribe, replacing the ones it has; none leaves them as they are.
    /// Each must be a hook of the queue's organization.
    pub hooks: Option<Vec<u64>>,
}

/// Why a queue was not saved.
#[derive(Debug, thiserror::Error)]
pub enum QueueSaveError {
    /// A hook in [`QueueWrite::hooks`] is not one of the organization's (or does not
    /// exist); nothing was written.
    #[error("hook {0} is not a hook of the queue's organization")]
    ForeignHook(u64),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DbError> for QueueSaveError {
    fn from(error: DbError) -> Self {
        QueueSaveError::Store(StoreError::Database(error))
    }
}

impl Queues<'_> {
    /// One queue; none when there is no such queue.
    pub async fn get(&self, id: u64) -> Result<Option<Queue>, StoreError> {
        self.store.run(move |db| get(db, id)).await
    }

    /// The queues of `organization_id` among `ids`, in the order asked (one missing, or
    /// another organization's, is left out).
    pub async fn by_ids(
        &self,
        organization_id: u64,
        ids: &[u64],
    ) -> Result<Vec<Queue>, StoreError> {
        let ids = ids.to_vec();
        self.store
            .run(move |db| {
                let found = ids
                    .iter()
                    .filter_map(|id| get(db, *id).transpose())
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(found
                    .into_iter()
                    .filter(|queue| queue.organization_id == organization_id)
                    .collect())
            })
            .await
    }

    /// A page of the queues of one organization (or of all).
    pub async fn list(
        &self,
        organization: Option<u64>,
        window: Window<QueueOrder>,
    ) -> Result<Page<Queue>, StoreError> {
        self.store
            .run(move |db| list(db, organization, window))
            .await
    }

    /// Which of `ids` are queues of `organization_id`.
    pub async fn owned(&self, organization_id: u64, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
        let ids = ids.to_vec();
        self.store
            .run(move |db| owned(db, organization_id, &ids))
            .await
    }

    /// Creates a queue of `organization_id` with its hooks, after checking that they are
    /// the organization's, in one transaction: a refused hook leaves no queue behind.
    /// Returns the queue as stored.
    ///
    /// An organization with `limit` queues gets none more ([`StoreError::Quota`]), counted
    /// in the transaction under the organization's lock, so that creations at once cannot
    /// all pass.
    pub async fn create(
        &self,
        organization_id: u64,
        queue: QueueWrite,
        now: &str,
        limit: u64,
    ) -> Result<Option<Queue>, QueueSaveError> {
        let now = now.to_owned();
        self.store
            .run(move |db| Ok(create_with_hooks(db, organization_id, &queue, &now, limit)))
            .await?
    }

    /// Changes queue `id` of `organization_id` (its name, metadata and, when given, its
    /// hooks, checked as [`Queues::create`] checks them) in one transaction. Returns the
    /// queue as stored; none when it does not exist.
    pub async fn update(
        &self,
        organization_id: u64,
        id: u64,
        queue: QueueWrite,
        now: &str,
    ) -> Result<Option<Queue>, QueueSaveError> {
        let now = now.to_owned();
        self.store
            .run(move |db| Ok(update_with_hooks(db, organization_id, id, &queue, &now)))
            .await?
    }

    /// The id of the organization's first queue, creating one named `name` when it has
    /// none (the demo's queue).
    pub async fn first_or_create(
        &self,
        organization_id: u64,
        name: &str,
        now: &str,
    ) -> Result<u64, StoreError> {
        let (name, now) = (name.to_owned(), now.to_owned());
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                let page = list(&transaction, Some(organization_id), Window::first(1))?;
                let id = match page.rows.first() {
                    Some(queue) => queue.id,
                    None => create(&transaction, organization_id, &name, &Map::new(), &now)?.id,
                };
                transaction.commit()?;
                Ok(id)
            })
            .await
    }

    /// Deletes a queue (its hook subscriptions go with it).
    pub async fn delete(&self, id: u64) -> Result<(), StoreError> {
        self.store.run(move |db| delete(db, id)).await
    }
}

/// A queue as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    /// Its id: what hooks' `queues` and events' queue name.
    pub id: u64,
    /// The organization that owns it: only its users see it, and only its hooks are on it.
    pub organization_id: u64,
    /// Shown to people; not unique.
    pub name: String,
    /// Client data.
    pub metadata: Map<String, Value>,
    /// The hooks subscribed to it, by id.
    pub hooks: Vec<u64>,
    /// When it was created.
    pub created_at: String,
    /// When it was last changed.
    pub modified_at: String,
}

fn from_row(db: &Db<'_>, row: &Row) -> Result<Queue, DbError> {
    let id: u64 = row.get(0)?;
    let metadata: String = row.get(3)?;
    Ok(Queue {
        id,
        organization_id: row.get(1)?,
        name: row.get(2)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        hooks: hooks_of(db, id)?,
        created_at: row.get(4)?,
        modified_at: row.get(5)?,
    })
}

fn hooks_of(db: &Db<'_>, queue_id: u64) -> Result<Vec<u64>, DbError> {
    db.query_map(
        "SELECT hook_id FROM hook_queues WHERE queue_id = ?1 ORDER BY hook_id",
        params![queue_id],
        |row| row.get::<u64>(0),
    )
}

const COLUMNS: &str = "id, organization_id, name, metadata, created_at, modified_at";

fn create(
    db: &Db<'_>,
    organization_id: u64,
    name: &str,
    metadata: &Map<String, Value>,
    now: &str,
) -> Result<Queue, StoreError> {
    // Past every id a queue ever had: SQLite would give a deleted newest queue's id again,
    // and an event of the deleted one still being delivered would then name another
    // organization's queue.
    let id = next_id(db, "queues", "queues")?;
    db.execute(
        "INSERT INTO queues (id, organization_id, name, metadata, created_at, modified_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            id,
            organization_id,
            name,
            Value::Object(metadata.clone()).to_string(),
            now
        ],
    )?;
    get(db, id)?.ok_or(StoreError::Database(DbError::NoRow))
}

/// Changes a queue's name and metadata.
fn update(
    db: &Db<'_>,
    id: u64,
    name: &str,
    metadata: &Map<String, Value>,
    now: &str,
) -> Result<(), StoreError> {
    db.execute(
        "UPDATE queues SET name = ?2, metadata = ?3, modified_at = ?4 WHERE id = ?1",
        params![id, name, Value::Object(metadata.clone()).to_string(), now],
    )?;
    Ok(())
}

/// Makes `hooks` the queue's subscribed hooks.
fn set_hooks(db: &Db<'_>, id: u64, hooks: &[u64]) -> Result<(), StoreError> {
    db.execute("DELETE FROM hook_queues WHERE queue_id = ?1", params![id])?;
    for hook in hooks {
        db.execute(
            "INSERT INTO hook_queues (hook_id, queue_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            params![hook, id],
        )?;
    }
    Ok(())
}

fn get(db: &Db<'_>, id: u64) -> Result<Option<Queue>, StoreError> {
    Ok(db.query_opt(
        &format!("SELECT {COLUMNS} FROM queues WHERE id = ?1"),
        params![id],
        |row| from_row(db, row),
    )?)
}

/// Queues of one organization (or all), in the window's order.
fn list(
    db: &Db<'_>,
    organization: Option<u64>,
    window: Window<QueueOrder>,
) -> Result<Page<Queue>, StoreError> {
    super::page_where(
        db,
        "queues",
        COLUMNS,
        "organization_id",
        organization,
        window,
        |row| from_row(db, row),
    )
}

/// Which of `ids` are queues of `organization_id`.
fn owned(db: &Db<'_>, organization_id: u64, ids: &[u64]) -> Result<Vec<u64>, StoreError> {
    let mut found = Vec::new();
    for id in ids {
        let exists = db
            .query_opt(
                "SELECT 1 FROM queues WHERE id = ?1 AND organization_id = ?2",
                params![id, organization_id],
                |_| Ok(()),
            )?
            .is_some();
        if exists {
            found.push(*id);
        }
    }
    Ok(found)
}

/// Deletes a queue (its hook subscriptions go with it).
fn delete(db: &Db<'_>, id: u64) -> Result<(), StoreError> {
    let transaction = db.transaction()?;
    retire_ids(&transaction, "queues", id)?;
    transaction.execute("DELETE FROM queues WHERE id = ?1", params![id])?;
    transaction.commit()?;
    Ok(())
}

/// Creates a queue and subscribes its hooks in one transaction.
fn create_with_hooks(
    db: &Db<'_>,
    organization_id: u64,
    queue: &QueueWrite,
    now: &str,
    limit: u64,
) -> Result<Option<Queue>, QueueSaveError> {
    let transaction = db.transaction()?;
    transaction.serialize(&super::hooks::organization_hooks_lock(organization_id))?;
    let count = transaction.query_row(
        "SELECT COUNT(*) FROM queues WHERE organization_id = ?1",
        params![organization_id],
        |row| row.get::<u64>(0),
    )?;
    if count >= limit {
        return Err(QueueSaveError::Store(StoreError::Quota(format!(
            "the organization has {count} queues, its limit; delete one first"
        ))));
    }
    let created = create(
        &transaction,
        organization_id,
        &queue.name,
        &queue.metadata,
        now,
    )?;
    if let Some(hooks) = &queue.hooks {
        set_owned_hooks(&transaction, organization_id, created.id, hooks)?;
    }
    let created = get(&transaction, created.id)?;
    transaction.commit()?;
    Ok(created)
}

/// Updates a queue and, when given, its hooks in one transaction.
fn update_with_hooks(
    db: &Db<'_>,
    organization_id: u64,
    id: u64,
    queue: &QueueWrite,
    now: &str,
) -> Result<Option<Queue>, QueueSaveError> {
    let transaction = db.transaction()?;
    update(&transaction, id, &queue.name, &queue.metadata, now)?;
    if let Some(hooks) = &queue.hooks {
        set_owned_hooks(&transaction, organization_id, id, hooks)?;
    }
    let updated = get(&transaction, id)?;
    transaction.commit()?;
    Ok(updated)
}

/// Sets a queue's hooks after checking they are the organization's; the first that is
/// not refuses the whole write (the caller's transaction is then dropped, not committed).
fn set_owned_hooks(
    db: &Db<'_>,
    organization_id: u64,
    queue_id: u64,
    hooks: &[u64],
) -> Result<(), QueueSaveError> {
    for hook in hooks {
        let owned = db
            .query_opt(
                "SELECT 1 FROM hooks WHERE id = ?1 AND organization_id = ?2",
                params![hook, organization_id],
                |_| Ok(()),
            )?
            .is_some();
        if !owned {
            return Err(QueueSaveError::ForeignHook(*hook));
        }
    }
    set_hooks(db, queue_id, hooks)?;
    Ok(())
}
