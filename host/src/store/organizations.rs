//! Organizations: the tenants.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Page, StoreError, Window};

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Organization> {
    Ok(Organization {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: row.get(2)?,
    })
}

/// Creates an organization.
pub fn create(
    connection: &Connection,
    name: &str,
    created_at: &str,
) -> Result<Organization, StoreError> {
    connection.execute(
        "INSERT INTO organizations (name, created_at) VALUES (?1, ?2)",
        params![name, created_at],
    )?;
    Ok(Organization {
        id: connection.last_insert_rowid() as u64,
        name: name.to_owned(),
        created_at: created_at.to_owned(),
    })
}

/// One organization.
pub fn get(connection: &Connection, id: u64) -> Result<Option<Organization>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, name, created_at FROM organizations WHERE id = ?1",
            [id],
            from_row,
        )
        .optional()?)
}

/// Organizations by id; `only` restricts the list to one.
pub fn list(
    connection: &Connection,
    only: Option<u64>,
    window: Window,
) -> Result<Page<Organization>, StoreError> {
    super::page_where(
        connection,
        "organizations",
        "id, name, created_at",
        "id",
        only,
        window,
        from_row,
    )
}
