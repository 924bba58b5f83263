//! Organizations: the tenants.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Page, SortColumn, Store, StoreError, Window};

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
    /// By name.
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
    /// Creates an organization.
    pub async fn create(&self, name: &str, created_at: &str) -> Result<Organization, StoreError> {
        let (name, created_at) = (name.to_owned(), created_at.to_owned());
        self.store
            .run(move |connection| create(connection, &name, &created_at))
            .await
    }

    /// One organization; none when there is no such organization.
    pub async fn get(&self, id: u64) -> Result<Option<Organization>, StoreError> {
        self.store.run(move |connection| get(connection, id)).await
    }

    /// A page of the organizations; `only` restricts the list to one (a user sees its
    /// own).
    pub async fn list(
        &self,
        only: Option<u64>,
        window: Window<OrganizationOrder>,
    ) -> Result<Page<Organization>, StoreError> {
        self.store
            .run(move |connection| list(connection, only, window))
            .await
    }
}

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
    /// Its users, by id (Rossum's organization lists them).
    pub users: Vec<u64>,
}

fn from_row(connection: &Connection, row: &rusqlite::Row<'_>) -> rusqlite::Result<Organization> {
    let id: u64 = row.get(0)?;
    Ok(Organization {
        id,
        name: row.get(1)?,
        created_at: row.get(2)?,
        users: users_of(connection, id)?,
    })
}

/// The ids of an organization's users, in order.
fn users_of(connection: &Connection, organization_id: u64) -> rusqlite::Result<Vec<u64>> {
    let mut statement =
        connection.prepare_cached("SELECT id FROM users WHERE organization_id = ?1 ORDER BY id")?;
    let rows = statement
        .query_map([organization_id], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<u64>>>();
    rows
}

/// Creates an organization.
pub(super) fn create(
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
        users: Vec::new(),
    })
}

/// One organization.
pub(super) fn get(connection: &Connection, id: u64) -> Result<Option<Organization>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, name, created_at FROM organizations WHERE id = ?1",
            [id],
            |row| from_row(connection, row),
        )
        .optional()?)
}

/// Organizations in the window's order; `only` restricts the list to one.
fn list(
    connection: &Connection,
    only: Option<u64>,
    window: Window<OrganizationOrder>,
) -> Result<Page<Organization>, StoreError> {
    super::page_where(
        connection,
        "organizations",
        "id, name, created_at",
        "id",
        only,
        window,
        |row| from_row(connection, row),
    )
}
