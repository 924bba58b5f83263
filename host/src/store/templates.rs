//! Hook templates: what the operator registers for every organization to make hooks of
//! (Rossum's extension store). A row holds the template's fields as one JSON document and
//! the module it runs: the bytes' sha256 (the file sits with the organizations' modules,
//! see `crate::modules`), size and what the runtime learned of them.

use super::db::{params, Db, DbError, Row};
use super::modules::{bytes_lock, forget_unheld_bytes, store_bytes, Inspected};
use super::{Page, SortColumn, Store, StoreError, Window};
use crate::model::hook::TemplateSpec;

impl Store {
    /// The hook templates, reached by name: what `/hook_templates` registers, lists and
    /// deletes, and `POST /hooks/create` reads.
    pub fn hook_templates(&self) -> HookTemplates<'_> {
        HookTemplates { store: self }
    }
}

/// The template operations callers may ask for; each runs on the store's blocking pool.
#[derive(Debug, Clone, Copy)]
pub struct HookTemplates<'a> {
    store: &'a Store,
}

/// A registered template.
#[derive(Debug, Clone, PartialEq)]
pub struct HookTemplate {
    /// Its id.
    pub id: u64,
    /// Its fields.
    pub spec: TemplateSpec,
    /// The module it runs.
    pub module: TemplateModule,
    /// When it was registered.
    pub created_at: String,
}

/// The module a template runs: bytes of the installation, not of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateModule {
    /// sha256 of the bytes, hex: their file's name.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// What the runtime learned when they were compiled at registration.
    pub inspected: Inspected,
}

/// What the templates list may be ordered by (then by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TemplateOrder {
    /// By id, the default.
    #[default]
    Id,
    /// By name.
    Name,
    /// By the template's `order`.
    Order,
}

impl SortColumn for TemplateOrder {
    fn column(&self) -> &'static str {
        match self {
            TemplateOrder::Id => "id",
            TemplateOrder::Name => "name",
            TemplateOrder::Order => "sort_order",
        }
    }
}

/// A deleted template's module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedTemplate {
    /// The bytes it ran.
    pub sha256: String,
    /// No module and no other template has these bytes: the file may go.
    pub last_copy: bool,
}

impl HookTemplates<'_> {
    /// Records a template whose module's bytes are stored and compiled.
    ///
    /// `bytes` are its module's, stored in the same transaction when replicas share the
    /// database (none on SQLite, whose files are the only copy), as a module's are.
    pub async fn create(
        &self,
        spec: TemplateSpec,
        module: TemplateModule,
        created_at: &str,
        bytes: Option<bytes::Bytes>,
    ) -> Result<HookTemplate, StoreError> {
        let created_at = created_at.to_owned();
        self.store
            .run(move |db| {
                let transaction = db.transaction()?;
                // As a module's creation: never between a deletion of the bytes' last
                // holder and its commit.
                transaction.serialize(&bytes_lock(&module.sha256))?;
                if let Some(bytes) = &bytes {
                    store_bytes(&transaction, &module.sha256, bytes)?;
                }
                let template = create(&transaction, &spec, &module, &created_at)?;
                transaction.commit()?;
                Ok(template)
            })
            .await
    }

    /// One template.
    pub async fn get(&self, id: u64) -> Result<Option<HookTemplate>, StoreError> {
        self.store.run(move |db| get(db, id)).await
    }

    /// A page of the templates, in the window's order.
    pub async fn list(
        &self,
        window: Window<TemplateOrder>,
    ) -> Result<Page<HookTemplate>, StoreError> {
        self.store
            .run(move |db| {
                super::page_where(db, "hook_templates", COLUMNS, "id", None, window, from_row)
            })
            .await
    }

    /// Deletes a template (hooks made from it keep running their organization's module);
    /// none when there is no such template.
    pub async fn delete(&self, id: u64) -> Result<Option<DeletedTemplate>, StoreError> {
        self.store.run(move |db| delete(db, id)).await
    }
}

const COLUMNS: &str = "id, document, module_sha256, module_size, module_inspected, created_at";

fn from_row(row: &Row) -> Result<HookTemplate, DbError> {
    // A document that does not parse is a column of the wrong kind, as a read of another
    // type would be (serde's reason is not kept: the error says what was wanted).
    let unreadable = |expected: &'static str| DbError::Column {
        expected,
        found: "other text",
    };
    let document: String = row.get(1)?;
    let inspected: String = row.get(4)?;
    Ok(HookTemplate {
        id: row.get(0)?,
        spec: serde_json::from_str(&document)
            .map_err(|_| unreadable("the JSON of a hook template's fields"))?,
        module: TemplateModule {
            sha256: row.get(2)?,
            size: row.get(3)?,
            inspected: serde_json::from_str(&inspected)
                .map_err(|_| unreadable("the JSON of what the runtime learned of a module"))?,
        },
        created_at: row.get(5)?,
    })
}

fn create(
    db: &Db<'_>,
    spec: &TemplateSpec,
    module: &TemplateModule,
    created_at: &str,
) -> Result<HookTemplate, StoreError> {
    let serialize = |what: &str, error: serde_json::Error| {
        StoreError::Task(format!("cannot serialize a template's {what}: {error}"))
    };
    let document = serde_json::to_string(spec).map_err(|error| serialize("fields", error))?;
    let inspected =
        serde_json::to_string(&module.inspected).map_err(|error| serialize("module", error))?;
    let id = db.query_row(
        "INSERT INTO hook_templates (name, sort_order, document, module_sha256, module_size,
                                     module_inspected, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         RETURNING id",
        params![
            spec.name,
            spec.order,
            document,
            module.sha256,
            module.size,
            inspected,
            created_at
        ],
        |row| row.get::<u64>(0),
    )?;
    get(db, id)?.ok_or(StoreError::Database(DbError::NoRow))
}

fn get(db: &Db<'_>, id: u64) -> Result<Option<HookTemplate>, StoreError> {
    Ok(db.query_opt(
        &format!("SELECT {COLUMNS} FROM hook_templates WHERE id = ?1"),
        params![id],
        from_row,
    )?)
}

fn delete(db: &Db<'_>, id: u64) -> Result<Option<DeletedTemplate>, StoreError> {
    let transaction = db.transaction()?;
    let sha256 = transaction.query_opt(
        "SELECT module_sha256 FROM hook_templates WHERE id = ?1",
        params![id],
        |row| row.get::<String>(0),
    )?;
    let Some(sha256) = sha256 else {
        return Ok(None);
    };
    transaction.serialize(&bytes_lock(&sha256))?;
    transaction.execute("DELETE FROM hook_templates WHERE id = ?1", params![id])?;
    let last_copy = forget_unheld_bytes(&transaction, &sha256)?;
    transaction.commit()?;
    Ok(Some(DeletedTemplate { sha256, last_copy }))
}
