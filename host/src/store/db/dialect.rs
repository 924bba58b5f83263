//! The few fragments of SQL that SQLite and PostgreSQL spell differently. Everything else
//! the store writes is SQL both accept; a query that needs one of these asks its
//! connection's [`Dialect`] rather than testing the backend itself.

/// Which database a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.45 or later (bundled with rusqlite).
    Sqlite,
    /// PostgreSQL 13 or later.
    Postgres,
}

impl Dialect {
    /// The larger of two values (`MAX(a, b)` in SQLite, `GREATEST(a, b)` in PostgreSQL;
    /// SQLite's `MAX` of one argument is still the aggregate).
    pub fn greatest(self, left: &str, right: &str) -> String {
        match self {
            Dialect::Sqlite => format!("MAX({left}, {right})"),
            Dialect::Postgres => format!("GREATEST({left}, {right})"),
        }
    }

    /// The value at `path` (object keys) inside the JSON text of `column`, as text (a
    /// nested object or array as its JSON), NULL when absent.
    pub fn json_text(self, column: &str, path: &[&str]) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.{}')", path.join(".")),
            Dialect::Postgres => format!("(({column})::jsonb #>> '{{{}}}')", path.join(",")),
        }
    }

    /// `left = right` ignoring the case of ASCII letters only (SQLite's NOCASE; in
    /// PostgreSQL `lower` under the "C" collation every text column has here).
    pub fn nocase_eq(self, left: &str, right: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{left} = {right} COLLATE NOCASE"),
            Dialect::Postgres => {
                format!("lower(({left}) COLLATE \"C\") = lower(({right}) COLLATE \"C\")")
            }
        }
    }

    /// An expression to order by as SQLite orders text, byte by byte (PostgreSQL's text
    /// columns here are declared `COLLATE "C"`; an expression built from them is not).
    pub fn bytewise(self, expression: &str) -> String {
        match self {
            Dialect::Sqlite => expression.to_owned(),
            Dialect::Postgres => format!("({expression}) COLLATE \"C\""),
        }
    }

    /// What a `SELECT` of rows to claim ends with, so that two replicas claiming at once
    /// each take other rows rather than wait for one another's (`FOR UPDATE SKIP LOCKED`;
    /// nothing on SQLite, whose one connection claims one transaction at a time).
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A subquery of the integers in the JSON array bound at `placeholder` (`?3`): one
    /// statement text for a list of any length, where `IN (?3, ?4, ..)` would make one per
    /// length, each a prepared statement to keep.
    pub fn json_integers(self, placeholder: &str) -> String {
        match self {
            Dialect::Sqlite => format!("SELECT value FROM json_each({placeholder})"),
            Dialect::Postgres => format!(
                "SELECT jsonb_array_elements_text(CAST({placeholder} AS TEXT)::jsonb)::bigint"
            ),
        }
    }

    /// The pattern match that ignores ASCII case (SQLite's `LIKE` does; PostgreSQL's
    /// needs `ILIKE`).
    pub fn like(self) -> &'static str {
        match self {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fragment_is_spelled_for_its_database() {
        assert_eq!(
            Dialect::Sqlite.json_text("document", &["config", "schedule", "cron"]),
            "json_extract(document, '$.config.schedule.cron')"
        );
        assert_eq!(
            Dialect::Postgres.json_text("document", &["config", "schedule", "cron"]),
            "((document)::jsonb #>> '{config,schedule,cron}')"
        );
        assert_eq!(Dialect::Postgres.greatest("a", "b"), "GREATEST(a, b)");
        assert_eq!(
            Dialect::Sqlite.nocase_eq("username", "?1"),
            "username = ?1 COLLATE NOCASE"
        );
    }
}
