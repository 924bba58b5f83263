//! Queues: where an organization's documents flow; hooks subscribe to them.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::{Page, StoreError, Window};

/// A queue as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Queue {
    /// Its id.
    pub id: u64,
    /// Its organization.
    pub organization_id: u64,
    /// Its name.
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

fn from_row(connection: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Queue> {
    let id: u64 = row.get(0)?;
    let metadata: String = row.get(3)?;
    Ok(Queue {
        id,
        organization_id: row.get(1)?,
        name: row.get(2)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        hooks: hooks_of(connection, id)?,
        created_at: row.get(4)?,
        modified_at: row.get(5)?,
    })
}

fn hooks_of(connection: &Connection, queue_id: u64) -> rusqlite::Result<Vec<u64>> {
    let mut statement = connection
        .prepare_cached("SELECT hook_id FROM hook_queues WHERE queue_id = ?1 ORDER BY hook_id")?;
    let rows = statement
        .query_map([queue_id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<u64>>>();
    rows
}

const COLUMNS: &str = "id, organization_id, name, metadata, created_at, modified_at";

/// Creates a queue.
pub fn create(
    connection: &Connection,
    organization_id: u64,
    name: &str,
    metadata: &Map<String, Value>,
    now: &str,
) -> Result<Queue, StoreError> {
    connection.execute(
        "INSERT INTO queues (organization_id, name, metadata, created_at, modified_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![
            organization_id,
            name,
            Value::Object(metadata.clone()).to_string(),
            now
        ],
    )?;
    let id = connection.last_insert_rowid() as u64;
    get(connection, id)?.ok_or(StoreError::Database(rusqlite::Error::QueryReturnedNoRows))
}

/// Changes a queue's name and metadata.
pub fn update(
    connection: &Connection,
    id: u64,
    name: &str,
    metadata: &Map<String, Value>,
    now: &str,
) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE queues SET name = ?2, metadata = ?3, modified_at = ?4 WHERE id = ?1",
        params![id, name, Value::Object(metadata.clone()).to_string(), now],
    )?;
    Ok(())
}

/// Makes `hooks` the queue's subscribed hooks.
pub fn set_hooks(connection: &Connection, id: u64, hooks: &[u64]) -> Result<(), StoreError> {
    connection.execute("DELETE FROM hook_queues WHERE queue_id = ?1", [id])?;
    for hook in hooks {
        connection.execute(
            "INSERT OR IGNORE INTO hook_queues (hook_id, queue_id) VALUES (?1, ?2)",
            params![hook, id],
        )?;
    }
    Ok(())
}

/// One queue.
pub fn get(connection: &Connection, id: u64) -> Result<Option<Queue>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM queues WHERE id = ?1"),
            [id],
            |row| from_row(connection, row),
        )
        .optional()?)
}

/// Queues of one organization (or all), by id.
pub fn list(
    connection: &Connection,
    organization: Option<u64>,
    window: Window,
) -> Result<Page<Queue>, StoreError> {
    super::page_where(
        connection,
        "queues",
        COLUMNS,
        "organization_id",
        organization,
        window,
        |row| from_row(connection, row),
    )
}

/// Which of `ids` are queues of `organization_id`.
pub fn owned(
    connection: &Connection,
    organization_id: u64,
    ids: &[u64],
) -> Result<Vec<u64>, StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT 1 FROM queues WHERE id = ?1 AND organization_id = ?2")?;
    let mut found = Vec::new();
    for id in ids {
        if statement.exists(params![id, organization_id])? {
            found.push(*id);
        }
    }
    Ok(found)
}

/// Deletes a queue (its hook subscriptions go with it).
pub fn delete(connection: &Connection, id: u64) -> Result<(), StoreError> {
    connection.execute("DELETE FROM queues WHERE id = ?1", [id])?;
    Ok(())
}
