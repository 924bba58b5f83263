//! The hooks list of `GET /hooks`: Rossum's filters, orderings and pages, answered by one
//! query (and a count) rather than by loading an organization's hooks and sifting them.
//! Reached through [`super::hooks::Hooks::list`]; its types are re-exported there.

use rusqlite::types::ToSql;
use rusqlite::Connection;

use super::hooks::{from_row, with_relations, COLUMNS};
use super::{Page, SortColumn, StoreError, Window};
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

impl SortColumn for HookOrder {
    fn column(&self) -> &'static str {
        match self {
            HookOrder::Id => "id",
            HookOrder::Name => "name",
            HookOrder::Type => "type",
            HookOrder::Active => "active",
            // The events array's JSON text (SQLite writes it compact: `["a","b"]`) with its
            // closing bracket made the lowest character. Event names are known names only
            // (letters, `_` and `.`: see `model::hook`), so a name's closing quote sorts
            // before any letter of a longer name, and a list's end before the comma of a
            // longer list it begins: the text's order is the order of the lists of names,
            // as `Vec<String>` compares them. (The plain JSON text would put `["a","b"]`
            // before `["a"]`, since `,` sorts before `]`.) A name outside that alphabet
            // (none is accepted) could sort differently.
            HookOrder::Events => "replace(json_extract(document, '$.events'), ']', char(1))",
        }
    }
}

/// The filter's condition, on parameters 1 to 8 in the order of [`parameters`].
const FILTER: &str = "WHERE (?1 IS NULL OR organization_id = ?1)
    AND (?2 IS NULL OR id = ?2)
    AND (?3 IS NULL OR name = ?3)
    AND (?4 IS NULL OR type = ?4)
    AND (?5 IS NULL OR EXISTS (
        SELECT 1 FROM hook_queues
        WHERE hook_queues.hook_id = hooks.id AND hook_queues.queue_id = ?5))
    AND (?6 IS NULL OR active = ?6)
    AND (?7 IS NULL OR json_extract(document, '$.extension_source') = ?7)
    AND NOT EXISTS (
        SELECT 1 FROM json_each(?8) AS wanted
        WHERE NOT EXISTS (
            SELECT 1 FROM json_each(hooks.document, '$.events') AS subscribed
            WHERE subscribed.value = wanted.value))";

/// The filter's values for [`FILTER`]; `events` is the wanted events as a JSON array.
fn parameters<'a>(filter: &'a HookListFilter, events: &'a dyn ToSql) -> [&'a dyn ToSql; 8] {
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
    connection: &Connection,
    filter: &HookListFilter,
    window: Window<HookOrder>,
) -> Result<Page<Hook>, StoreError> {
    let events = serde_json::to_string(&filter.events)
        .map_err(|error| StoreError::Task(format!("cannot serialize events: {error}")))?;
    let filtered = parameters(filter, &events);
    let total: u64 = connection.query_row(
        &format!("SELECT COUNT(*) FROM hooks {FILTER}"),
        filtered.as_slice(),
        |row| row.get(0),
    )?;
    // A window beyond SQLite's integers is past every row.
    let limit = i64::try_from(window.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(window.offset).unwrap_or(i64::MAX);
    let mut paged: Vec<&dyn ToSql> = filtered.to_vec();
    paged.push(&limit);
    paged.push(&offset);
    let direction = if window.descending { "DESC" } else { "ASC" };
    let mut statement = connection.prepare(&format!(
        "SELECT {COLUMNS} FROM hooks {FILTER}
         ORDER BY {} {direction}, id {direction} LIMIT ?9 OFFSET ?10",
        window.order_by.column()
    ))?;
    let hooks = statement
        .query_map(paged.as_slice(), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let rows = hooks
        .into_iter()
        .map(|hook| with_relations(connection, hook))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page { rows, total })
}
