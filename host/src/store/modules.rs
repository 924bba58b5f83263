//! Modules: uploaded WebAssembly files of one organization, stored by sha256. The bytes live
//! in the data directory (see `crate::modules`); a row holds what the runtime learned.

use rusqlite::{params, Connection, OptionalExtension};

use super::{Page, StoreError, Window};

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
    /// Its id.
    pub id: u64,
    /// Its organization.
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

/// What the runtime learned about a module that loaded.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// `component` or `command`.
    pub kind: String,
    /// `component` or `core`.
    pub encoding: String,
    /// Its imports.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
}

const COLUMNS: &str = "id, organization_id, name, sha256, size, status, error, kind, encoding, \
                       imports, exports, created_at";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Module> {
    let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
    Ok(Module {
        id: row.get(0)?,
        organization_id: row.get(1)?,
        name: row.get(2)?,
        sha256: row.get(3)?,
        size: row.get(4)?,
        status: ModuleStatus::parse(&row.get::<_, String>(5)?),
        error: row.get(6)?,
        kind: row.get(7)?,
        encoding: row.get(8)?,
        imports: list(row.get(9)?),
        exports: list(row.get(10)?),
        created_at: row.get(11)?,
    })
}

/// Records an uploaded module.
pub fn create(
    connection: &Connection,
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
    connection.execute(
        "INSERT INTO modules (organization_id, name, sha256, size, status, kind, encoding,
                              imports, exports, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
    )?;
    let id = connection.last_insert_rowid() as u64;
    get(connection, id)?.ok_or(StoreError::Database(rusqlite::Error::QueryReturnedNoRows))
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Marks every module with these bytes ready (compiling is per sha256, not per row).
pub fn mark_ready(
    connection: &Connection,
    sha256: &str,
    inspected: &Inspected,
) -> Result<(), StoreError> {
    connection.execute(
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
pub fn mark_failed(connection: &Connection, sha256: &str, error: &str) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE modules SET status = 'failed', error = ?2 WHERE sha256 = ?1",
        params![sha256, error],
    )?;
    Ok(())
}

/// Marks every module with these bytes pending again (its compiled code must be rebuilt).
pub fn mark_pending(connection: &Connection, sha256: &str) -> Result<(), StoreError> {
    connection.execute(
        "UPDATE modules SET status = 'pending' WHERE sha256 = ?1",
        [sha256],
    )?;
    Ok(())
}

/// One module.
pub fn get(connection: &Connection, id: u64) -> Result<Option<Module>, StoreError> {
    Ok(connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM modules WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// Modules of one organization (or of all), by id.
pub fn list(
    connection: &Connection,
    organization: Option<u64>,
    window: Window,
) -> Result<Page<Module>, StoreError> {
    super::page_where(
        connection,
        "modules",
        COLUMNS,
        "organization_id",
        organization,
        window,
        from_row,
    )
}

/// How many modules an organization has, and their bytes together.
pub fn usage(connection: &Connection, organization_id: u64) -> Result<(u64, u64), StoreError> {
    Ok(connection.query_row(
        "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM modules WHERE organization_id = ?1",
        [organization_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// The distinct sha256 of modules in a status, for start-up work.
pub fn digests_with_status(
    connection: &Connection,
    status: ModuleStatus,
) -> Result<Vec<String>, StoreError> {
    let mut statement =
        connection.prepare("SELECT DISTINCT sha256 FROM modules WHERE status = ?1")?;
    let rows = statement
        .query_map([status.as_str()], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Why a module could not be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; `last_copy` says whether no other row holds the same bytes.
    Deleted {
        /// No other module has these bytes: the file may go.
        last_copy: bool,
    },
    /// Hooks use it (their ids).
    InUse(Vec<u64>),
}

/// Deletes a module unless a hook uses it.
pub fn delete(connection: &mut Connection, module: &Module) -> Result<DeleteOutcome, StoreError> {
    let transaction = connection.transaction()?;
    let users = {
        let mut statement =
            transaction.prepare("SELECT id FROM hooks WHERE module_id = ?1 ORDER BY id")?;
        let rows = statement
            .query_map([module.id], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<u64>>>()?;
        rows
    };
    if !users.is_empty() {
        return Ok(DeleteOutcome::InUse(users));
    }
    transaction.execute("DELETE FROM modules WHERE id = ?1", [module.id])?;
    let others: u64 = transaction.query_row(
        "SELECT COUNT(*) FROM modules WHERE sha256 = ?1",
        [&module.sha256],
        |row| row.get(0),
    )?;
    transaction.commit()?;
    Ok(DeleteOutcome::Deleted {
        last_copy: others == 0,
    })
}

/// The status of every module of an organization (or of all).
pub fn statuses(
    connection: &Connection,
    organization: Option<u64>,
) -> Result<std::collections::HashMap<u64, ModuleStatus>, StoreError> {
    let mut statement = connection
        .prepare("SELECT id, status FROM modules WHERE ?1 IS NULL OR organization_id = ?1")?;
    let rows = statement
        .query_map([organization], |row| {
            Ok((row.get(0)?, ModuleStatus::parse(&row.get::<_, String>(1)?)))
        })?
        .collect::<rusqlite::Result<std::collections::HashMap<u64, ModuleStatus>>>()?;
    Ok(rows)
}
