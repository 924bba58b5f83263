//! The schema, as numbered migrations applied in order; `PRAGMA user_version` records how
//! far a database has come.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: organizations, users and their API tokens.
    "CREATE TABLE organizations (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL REFERENCES organizations(id),
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        first_name TEXT NOT NULL DEFAULT '',
        last_name TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL DEFAULT '',
        is_active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE INDEX users_by_organization ON users(organization_id);
    -- A token belongs to a user, or to the operator (user_id NULL, operator 1). Only the
    -- sha256 of a token is stored.
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY,
        user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        operator INTEGER NOT NULL DEFAULT 0,
        expires_at INTEGER,
        created_at TEXT NOT NULL,
        CHECK ((operator = 1) = (user_id IS NULL))
    );",
];

/// Applies the migrations this database has not seen, each in its own transaction.
pub(super) fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index + 1)?;
        transaction.commit()?;
    }
    Ok(())
}
