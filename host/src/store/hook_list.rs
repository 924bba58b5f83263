//! The hooks list of `GET /hooks`: Rossum's filters, orderings and pages, answered by one
//! query (and a count) rather than by loading an organization's hooks and sifting them.
//! Reached through [`super::hooks::Hooks::list`]; its types are re-exported there.

use super::db::{Db, DbError, Dialect, ToValue};
use super::hooks::{from_row, with_relations, COLUMNS};
use super::{equal_or_all, Page, StoreError, Window};
use crate::model::hook::Hook;

/// Rossum's filters of the hooks list; every one given must hold, and none given lists
/// every hook the caller may see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookListFilter {
    /// Only this organization's hooks (none: the operator sees all).
    pub organization: Option<u64>,
    /// Only the hook with this id.
    pub id: Option<u64>,
    /// Only hooks of exactly this name.
    pub name: Option<String>,
    /// Only hooks of this `type`.
    pub hook_type: Option<String>,
    /// Only hooks subscribed to this queue.
    pub queue: Option<u64>,
    /// Only active, or only inactive, hooks.
    pub active: Option<bool>,
    /// Only hooks with this `extension_source`.
    pub extension_source: Option<String>,
    /// Only hooks subscribed to every one of these events (as written in `events`, e.g.
    /// `annotation_content.initialize`); empty for no such filter.
    pub events: Vec<String>,
}

/// What the hooks list may be ordered by. Ties are broken by id in the same direction (a
/// reversed list is the whole list reversed, ties too), unlike the other lists, whose ties
/// go by ascending id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HookOrder {
    /// By id, the default.
    #[default]
    Id,
    /// `ordering=name` (or `-name`, descending).
    Name,
    /// `ordering=type` (or `-type`, descending).
    Type,
    /// Inactive first.
    Active,
    /// By the list of events, compared as lists: name by name, a list before a longer one
    /// it begins.
    Events,
}

impl HookOrder {
    /// The expression this order sorts by, in `dialect`'s SQL. (Not the store's
    /// `SortColumn`: the events key is spelled per database.)
    fn key(self, dialect: Dialect) -> String {
        match self {
            HookOrder::Id => "id".to_owned(),
            HookOrder::Name => "name".to_owned(),
            HookOrder::Type => "type".to_owned(),
            HookOrder::Active => "active".to_owned(),
            // The events array's JSON text with its closing bracket made the lowest
            // character (`char(1)` in SQLite; PostgreSQL has no `char()` and spells it
            // `chr(1)`). Event names are known names only (letters, `_` and `.`: see
            // `model::hook`), so a name's closing quote sorts before any letter of a
            // longer name, and a list's end before the comma of a longer list it begins:
            // the text's order is the order of the lists of names, as `Vec<String>`
            // compares them. (The plain JSON text would put `["a","b"]`
            // before `["a"]`, since `,` sorts before `]`.) A name outside that alphabet
            // (none is accepted) could sort differently.
            //
            // SQLite writes the array compact (`["a","b"]`), PostgreSQL's jsonb with a
            // space after each comma (`["a", "b"]`). The separator is the same between
            // every two names of a text, so two texts first differ inside the first name
            // the lists differ in, or where one list ends (the lowest character against
            // the separator's comma, in both spellings): the two databases order the
            // same lists the same way. Compared byte by byte, as SQLite compares text.
            HookOrder::Events => {
                let lowest = match dialect {
                    Dialect::Sqlite => "char(1)",
                    Dialect::Postgres => "chr(1)",
                };
                dialect.bytewise(&format!(
                    "replace({}, ']', {lowest})",
                    dialect.json_text("document", &["events"])
                ))
            }
        }
    }
}

/// The filter's condition in `dialect`'s SQL, on parameters 1 to 8 in the order of
/// [`parameters`]. Each parameter is first met compared with a column, then tested for
/// NULL: PostgreSQL takes a parameter's type from its first use, and refuses a statement
/// whose first use of it (`?1 IS NULL`) gives none.
/// The organization, the one filter an index serves (`hooks_by_organization`), is its
/// own text when one is given ([`equal_or_all`]).
fn condition(dialect: Dialect, one_organization: bool) -> String {
    // Every wanted event (parameter 8, a JSON array of names) among the hook's events:
    // SQLite's `json_each` has no PostgreSQL spelling; `jsonb_array_elements_text` yields
    // the same elements as text, and yields nothing for a document without `events`, as
    // `json_each` does.
    let events = match dialect {
        Dialect::Sqlite => {
            "NOT EXISTS (
        SELECT 1 FROM json_each(?8) AS wanted
        WHERE NOT EXISTS (
            SELECT 1 FROM json_each(hooks.document, '$.events') AS subscribed
            WHERE subscribed.value = wanted.value))"
        }
        Dialect::Postgres => {
            "NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements_text((?8)::jsonb) AS wanted(value)
        WHERE NOT EXISTS (
            SELECT 1
            FROM jsonb_array_elements_text((hooks.document)::jsonb -> 'events')
                AS subscribed(value)
            WHERE subscribed.value = wanted.value))"
        }
    };
    let organization = equal_or_all("organization_id", one_organization);
    format!(
        "WHERE {organization}
    AND (id = ?2 OR ?2 IS NULL)
    AND (name = ?3 OR ?3 IS NULL)
    AND (type = ?4 OR ?4 IS NULL)
    AND (EXISTS (
        SELECT 1 FROM hook_queues
        WHERE hook_queues.hook_id = hooks.id AND hook_queues.queue_id = ?5) OR ?5 IS NULL)
    AND (active = ?6 OR ?6 IS NULL)
    AND ({} = ?7 OR ?7 IS NULL)
    AND {events}",
        dialect.json_text("document", &["extension_source"])
    )
}

/// The filter's values for [`condition`]; `events` is the wanted events as a JSON array.
fn parameters<'a>(filter: &'a HookListFilter, events: &'a dyn ToValue) -> [&'a dyn ToValue; 8] {
    [
        &filter.organization,
        &filter.id,
        &filter.name,
        &filter.hook_type,
        &filter.queue,
        &filter.active,
        &filter.extension_source,
        events,
    ]
}

/// One page of the hooks matching `filter`, with their relations, and how many match.
pub(super) fn list(
    db: &Db<'_>,
    filter: &HookListFilter,
    window: Window<HookOrder>,
) -> Result<Page<Hook>, StoreError> {
    let events = serde_json::to_string(&filter.events)
        .map_err(|error| StoreError::Task(format!("cannot serialize events: {error}")))?;
    let condition = condition(db.dialect(), filter.organization.is_some());
    let filtered = parameters(filter, &events);
    let total = db.query_row(
        &format!("SELECT COUNT(*) FROM hooks {condition}"),
        filtered.as_slice(),
        |row| row.get::<u64>(0),
    )?;
    // A window beyond the database's signed 64-bit integers is past every row.
    let limit = i64::try_from(window.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(window.offset).unwrap_or(i64::MAX);
    let mut paged: Vec<&dyn ToValue> = filtered.to_vec();
    paged.push(&limit);
    paged.push(&offset);
    let direction = if window.descending { "DESC" } else { "ASC" };
    // SQLite sorts NULL lowest, PostgreSQL highest: said outright for the one key that
    // can be NULL (a document without `events`), so that PostgreSQL puts such a hook where
    // SQLite does (to SQLite it is its default: the same order and plan). The other keys
    // are NOT NULL columns, left bare so that PostgreSQL may read them off an index.
    let nulls = match (window.order_by, window.descending) {
        (HookOrder::Events, false) => " NULLS FIRST",
        (HookOrder::Events, true) => " NULLS LAST",
        _ => "",
    };
    let hooks = db.query_map(
        &format!(
            "SELECT {COLUMNS} FROM hooks {condition}
         ORDER BY {} {direction}{nulls}, id {direction} LIMIT ?9 OFFSET ?10",
            window.order_by.key(db.dialect())
        ),
        paged.as_slice(),
        from_row,
    )?;
    let rows = hooks
        .into_iter()
        .map(|hook| with_relations(db, hook))
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(Page { rows, total })
}
