//! Users: people and service accounts of one organization.
//!
//! Usernames are global (a login names no organization, as Rossum's does) and compared
//! without regard to ASCII case: `AADMIN` is `aadmin` (the unique index of migration 5).
//! Other letters compare exactly; look-alike characters are a problem no case folding
//! solves. A refused username gets one answer, [`USERNAME_UNAVAILABLE`], whoever holds it.

use rusqlite::{params, Connection, OptionalExtension};

use super::{unique_violation, Page, StoreError, Window};

/// A user as stored (the password only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: u64,
    /// Its organization.
    pub organization_id: u64,
    /// Unique across the installation, without regard to ASCII case.
    pub username: String,
    /// argon2 hash of the password.
    pub password_hash: String,
    /// `admin` or `member`.
    pub role: String,
    /// Presentation fields, as Rossum's user has them.
    pub first_name: String,
    /// See `first_name`.
    pub last_name: String,
    /// See `first_name`.
    pub email: String,
    /// Whether the user may log in.
    pub is_active: bool,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// See [`User`].
    pub organization_id: u64,
    /// See [`User`].
    pub username: &'a str,
    /// See [`User`].
    pub password_hash: &'a str,
    /// See [`User`].
    pub role: &'a str,
    /// See [`User`].
    pub first_name: &'a str,
    /// See [`User`].
    pub last_name: &'a str,
    /// See [`User`].
    pub email: &'a str,
}

const COLUMNS: &str =
    "id, organization_id, username, password_hash, role, first_name, last_name, email, is_active";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        username: row.get(2)?,
        password_hash: row.get(3)?,
        role: row.get(4)?,
        first_name: row.get(5)?,
        last_name: row.get(6)?,
        email: row.get(7)?,
        is_active: row.get(8)?,
    })
}

/// The answer when a username is already used, by this organization or another, in any
/// case. The same words whoever holds it, so that it does not tell an admin that another
/// organization has a user of that name. (That the name is in use somewhere cannot be
/// hidden while usernames are global; scoping them per organization would change Rossum's
/// login, which names no organization.)
pub const USERNAME_UNAVAILABLE: &str = "username: this username cannot be used; choose another";

/// Creates a user; a username already used (in any case) is a conflict answering
/// [`USERNAME_UNAVAILABLE`].
pub fn create(
    connection: &Connection,
    user: &NewUser<'_>,
    created_at: &str,
) -> Result<User, StoreError> {
    connection
        .execute(
            "INSERT INTO users (organization_id, username, password_hash, role, first_name,
                                last_name, email, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                user.organization_id,
                user.username,
                user.password_hash,
                user.role,
                user.first_name,
                user.last_name,
                user.email,
                created_at
            ],
        )
        .map_err(|error| unique_violation(error, USERNAME_UNAVAILABLE))?;
    let id = connection.last_insert_rowid() as u64;
    get(connection, id)?.ok_or(StoreError::Database(rusqlite::Error::QueryReturnedNoRows))
}

/// One user.
pub fn get(connection: &Connection, id: u64) -> Result<Option<User>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// One user by username, without regard to ASCII case: the user of exactly that name if
/// there is one (a case variant from before migration 5 keeps its own login), else the one
/// whose name equals it but for case.
pub fn by_username(connection: &Connection, username: &str) -> Result<Option<User>, StoreError> {
    let exact = connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM users WHERE username = ?1"),
            [username],
            from_row,
        )
        .optional()?;
    if exact.is_some() {
        return Ok(exact);
    }
    Ok(connection
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM users
                 WHERE username = ?1 COLLATE NOCASE AND case_duplicate = 0"
            ),
            [username],
            from_row,
        )
        .optional()?)
}

/// Users by id, of one organization or of all.
pub fn list(
    connection: &Connection,
    organization: Option<u64>,
    window: Window,
) -> Result<Page<User>, StoreError> {
    super::page_where(
        connection,
        "users",
        COLUMNS,
        "organization_id",
        organization,
        window,
        from_row,
    )
}
