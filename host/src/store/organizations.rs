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
    /// Its id: what its users', queues', modules' and hooks' `organization_id` name.
    pub id: u64,
    /// Shown to people; not unique, so never a key.
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
    })
}

pub(super) fn get(connection: &Connection, id: u64) -> Result<Option<Organization>, StoreError> {
    Ok(connection
        .query_row(
            "SELECT id, name, created_at FROM organizations WHERE id = ?1",
            [id],
            from_row,
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
        from_row,
    )
}
