//! The schema, as numbered migrations applied in order, one list per database, numbered
//! alike: migration N makes the same tables and columns on SQLite and on PostgreSQL. SQLite
//! records how far it has come in `PRAGMA user_version`, PostgreSQL in `schema_migrations`;
//! on PostgreSQL the migrations run under an advisory lock, so that replicas starting
//! together apply each one once.

use super::db::{params, Db, DbError, Dialect};

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
    // 2: modules, queues, hooks and their relations, run logs.
    "CREATE TABLE modules (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
        error TEXT,
        kind TEXT,
        encoding TEXT,
        imports TEXT NOT NULL DEFAULT '[]',
        exports TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE INDEX modules_by_organization ON modules(organization_id);
    CREATE INDEX modules_by_sha256 ON modules(sha256);
    CREATE TABLE queues (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        modified_at TEXT NOT NULL
    );
    CREATE INDEX queues_by_organization ON queues(organization_id);
    -- A hook's searchable fields are columns; the rest of its Rossum fields are one JSON
    -- document. Its secrets (and config.secret) are one AEAD-sealed blob.
    CREATE TABLE hooks (
        id INTEGER PRIMARY KEY,
        organization_id INTEGER NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        active INTEGER NOT NULL,
        module_id INTEGER REFERENCES modules(id),
        token_owner_id INTEGER REFERENCES users(id),
        document TEXT NOT NULL,
        sealed_secrets BLOB,
        secrets_keys TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL,
        created_by_id INTEGER,
        modified_at TEXT NOT NULL,
        modified_by_id INTEGER
    );
    CREATE INDEX hooks_by_organization ON hooks(organization_id);
    CREATE INDEX hooks_by_module ON hooks(module_id);
    CREATE TABLE hook_queues (
        hook_id INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        queue_id INTEGER NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        PRIMARY KEY (hook_id, queue_id)
    );
    CREATE INDEX hook_queues_by_queue ON hook_queues(queue_id);
    CREATE TABLE hook_run_after (
        hook_id INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        predecessor_id INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        PRIMARY KEY (hook_id, predecessor_id)
    );
    -- Run logs outlive their hooks (retention decides), so no foreign keys here.
    CREATE TABLE run_logs (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        organization_id INTEGER NOT NULL,
        hook_id INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        queue_id INTEGER,
        annotation_id INTEGER,
        email_id INTEGER,
        log_level TEXT NOT NULL,
        status TEXT NOT NULL,
        status_code INTEGER,
        timestamp TEXT NOT NULL,
        start TEXT NOT NULL,
        end TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX run_logs_by_organization ON run_logs(organization_id, start);
    CREATE INDEX run_logs_by_request ON run_logs(request_id);
    CREATE INDEX run_logs_by_start ON run_logs(start);",
    // 3: the last tick each scheduled hook ran for, and the expression it was counted under.
    "CREATE TABLE schedule_ticks (
        hook_id INTEGER PRIMARY KEY REFERENCES hooks(id) ON DELETE CASCADE,
        expression TEXT NOT NULL,
        last_tick TEXT NOT NULL
    );",
    // 4: the highest hook id ever given, so that a deleted hook's id (and its run logs) is
    // never given to a new hook; seeded from the hooks and run logs already there.
    "CREATE TABLE id_high_water (
        name TEXT PRIMARY KEY,
        last_id INTEGER NOT NULL
    );
    INSERT INTO id_high_water (name, last_id) VALUES ('hooks', MAX(
        COALESCE((SELECT MAX(id) FROM hooks), 0),
        COALESCE((SELECT MAX(hook_id) FROM run_logs), 0)
    ));",
    // 5: usernames are compared without regard to ASCII case (SQLite's NOCASE), so that
    // `AADMIN` cannot sit beside `aadmin`. A database from before may already hold such
    // case variants, and a plain unique index on them would fail this migration (and the
    // server's start). So every user whose username equals an older user's but for case is
    // marked `case_duplicate` and left out of the index: each keeps logging in by its exact
    // name (see `users::by_username`), and no new variant of any existing name can be
    // created, since the oldest of each group is in the index.
    "ALTER TABLE users ADD COLUMN case_duplicate INTEGER NOT NULL DEFAULT 0;
    UPDATE users SET case_duplicate = 1 WHERE EXISTS (
        SELECT 1 FROM users AS older
        WHERE older.username = users.username COLLATE NOCASE AND older.id < users.id
    );
    CREATE UNIQUE INDEX users_by_username_nocase ON users(username COLLATE NOCASE)
        WHERE case_duplicate = 0;",
    // 6: the hook a token was minted for (NULL for a person's session): such a token is
    // an extension's, with an extension's rights only.
    // Tokens minted for runs before this migration cannot be told apart from sessions by
    // their rows; they are the ones that expire within a day of their creation (a login
    // lasts 162 hours), and they are deleted rather than left with their owner's rights.
    "ALTER TABLE tokens ADD COLUMN hook_id INTEGER;
    DELETE FROM tokens
     WHERE operator = 0
       AND expires_at IS NOT NULL
       AND expires_at < CAST(strftime('%s', created_at) AS INTEGER) + 86400;",
    // 7: when each user last logged in (Rossum's `last_login`). A table of its own rather
    // than a column of `users`: a login writes it, and a write to `users` would make every
    // cached session stale (see `cache.rs`); this table is in no cached domain. A user who
    // has not logged in since has no row, and is answered `last_login: null`.
    "CREATE TABLE user_logins (
        user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        last_login TEXT NOT NULL
    );",
    // 8: hook templates, registered by the operator: their Rossum fields as one JSON
    // document, and the module they run, whose bytes are the installation's (stored by
    // sha256 beside the organizations' modules; an organization that makes a hook of a
    // template gets a module row of its own for them). And the template a hook was made
    // from; no foreign key, since a hook outlives its template.
    "CREATE TABLE hook_templates (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        sort_order INTEGER NOT NULL DEFAULT 0,
        document TEXT NOT NULL,
        module_sha256 TEXT NOT NULL,
        module_size INTEGER NOT NULL,
        module_inspected TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX hook_templates_by_sha256 ON hook_templates(module_sha256);
    ALTER TABLE hooks ADD COLUMN hook_template_id INTEGER;",
    // 9: modules' bytes, by sha256, in the database, written only when replicas share it
    // (PostgreSQL): any replica loads any module from here, the data directory's files
    // being each replica's copy. On SQLite it stays empty: one process, and the files are
    // the only copy. Bytes uploaded before are put here by `ModuleLibrary::resume`.
    "CREATE TABLE module_bytes (
        sha256 TEXT PRIMARY KEY,
        bytes BLOB NOT NULL
    );",
    // 10: the replicas sharing the database, by the id each took at start, and when each
    // last said it was alive (Unix seconds): each takes an equal share of the limits that
    // hold across replicas. SQLite's one process never writes it.
    "CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
    );",
    // 11: non-interactive events and their deliveries, one row per hook the event runs:
    // what happens after an event's first answer (retries, an async webhook's polling,
    // run_after successors, scheduled runs) is a row any replica may claim, so that no
    // request waits for it and no restart loses it (`deliveries.rs`). Times are Unix
    // milliseconds; `state` is `waiting` (for its predecessors), `ready` (claimable from
    // `run_at`), `running` (leased to `lease_owner` until `lease_until`) or `done`.
    // `poll_url` is set while the current attempt's webhook is being polled, with the token
    // minted for the attempt sealed in `poll_token` (it is redacted from the result, and
    // cut once the polling ends). `lease_owner` is the claim, not only the replica: a
    // replica that claims its own expired row again cannot end it twice. No foreign key to
    // hooks: a delivery outlives its hook's deletion, and is then cancelled. AUTOINCREMENT:
    // an event's id (its URL) is never given again.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        organization_id INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        event TEXT NOT NULL,
        action TEXT NOT NULL,
        queue_id INTEGER,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX events_by_organization ON events(organization_id, id);
    CREATE INDEX events_finished ON events(finished_at);
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        organization_id INTEGER NOT NULL,
        hook_id INTEGER NOT NULL,
        layer INTEGER NOT NULL,
        ancestors TEXT NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        run_at INTEGER NOT NULL,
        lease_owner TEXT,
        lease_until INTEGER,
        poll_url TEXT,
        poll_until INTEGER,
        attempt_started_at TEXT,
        poll_token BLOB,
        status TEXT,
        message TEXT,
        response TEXT
    );
    CREATE INDEX deliveries_by_event ON deliveries(event_id);
    CREATE INDEX deliveries_due ON deliveries(state, run_at);
    CREATE INDEX deliveries_by_organization ON deliveries(organization_id, state);",
    // 12: a hook's `config.schedule.cron` as a column the database derives from its
    // document, which the scheduler reads every second through an index of the active
    // hooks that have one (the index holds it), instead of extracting it from every active
    // hook's document (settings of up to megabytes each, every organization's) while every
    // other caller waits for the connection. Derived, so that no writer has to set it: a
    // replica of the version before writes hooks too while replicas are upgraded.
    "ALTER TABLE hooks ADD COLUMN schedule_cron TEXT
        GENERATED ALWAYS AS (json_extract(document, '$.config.schedule.cron')) VIRTUAL;
    CREATE INDEX hooks_scheduled ON hooks(id, schedule_cron, modified_at)
        WHERE active = 1 AND schedule_cron IS NOT NULL;",
    // 13: the bytes each organization's run logs hold, kept by every statement that
    // inserts or deletes run logs (`usage.rs`: a log counts its body's bytes and 256 for
    // its other columns and index entries), so that an organization past its quota can be
    // found without reading its logs, and its oldest deleted. Seeded from the logs already
    // there (one read of them all, once).
    "CREATE TABLE run_log_usage (
        organization_id INTEGER PRIMARY KEY,
        bytes INTEGER NOT NULL
    );
    INSERT INTO run_log_usage (organization_id, bytes)
        SELECT organization_id, SUM(octet_length(body) + 256) FROM run_logs
        GROUP BY organization_id;",
    // 14: the same for finished events: an event, once finished, counts its body, its
    // deliveries' responses and messages, and 256 for itself and each delivery, kept in
    // `stored_bytes` (`usage.rs`). Seeded from the finished events already there.
    "ALTER TABLE events ADD COLUMN stored_bytes INTEGER;
    UPDATE events SET stored_bytes = octet_length(body) + 256 + COALESCE((
        SELECT SUM(COALESCE(octet_length(response), 0) + COALESCE(octet_length(message), 0)
                   + 256)
        FROM deliveries WHERE deliveries.event_id = events.id), 0)
    WHERE finished_at IS NOT NULL;
    CREATE TABLE event_usage (
        organization_id INTEGER PRIMARY KEY,
        bytes INTEGER NOT NULL
    );
    INSERT INTO event_usage (organization_id, bytes)
        SELECT organization_id, SUM(stored_bytes) FROM events WHERE stored_bytes IS NOT NULL
        GROUP BY organization_id;",
];

/// PostgreSQL's schema, migration by migration as SQLite's above, in PostgreSQL's types:
/// integers as BIGINT (flags as INTEGER, compared with 0 and 1 as on SQLite), text in the
/// "C" collation (ordered byte by byte, as SQLite orders it), blobs as BYTEA, ids given by
/// identity when an insert names none. The tables a cache reads carry a statement trigger
/// that notifies the other replicas (`listen.rs`); a new token notifies nobody, as no cache
/// depends on a row that did not exist.
const POSTGRES_MIGRATIONS: &[&str] = &[
    // 1
    r#"CREATE FUNCTION wasmhook_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- A channel's name has at most 63 characters (listen.rs cuts it the same way).
        PERFORM pg_notify(left('wasmhook:' || TG_TABLE_SCHEMA, 63), TG_TABLE_NAME || ' ' || TG_OP);
        RETURN NULL;
    END $$;
    CREATE TABLE organizations (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE users (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        organization_id BIGINT NOT NULL REFERENCES organizations(id),
        username TEXT COLLATE "C" NOT NULL UNIQUE,
        password_hash TEXT COLLATE "C" NOT NULL,
        role TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'member')),
        first_name TEXT COLLATE "C" NOT NULL DEFAULT '',
        last_name TEXT COLLATE "C" NOT NULL DEFAULT '',
        email TEXT COLLATE "C" NOT NULL DEFAULT '',
        is_active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX users_by_organization ON users(organization_id);
    CREATE TABLE tokens (
        hash TEXT COLLATE "C" PRIMARY KEY,
        user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
        operator INTEGER NOT NULL DEFAULT 0,
        expires_at BIGINT,
        created_at TEXT COLLATE "C" NOT NULL,
        CHECK ((operator = 1) = (user_id IS NULL))
    );
    CREATE TRIGGER users_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
        FOR EACH STATEMENT EXECUTE FUNCTION wasmhook_changed();
    CREATE TRIGGER tokens_changed AFTER UPDATE OR DELETE OR TRUNCATE ON tokens
        FOR EACH STATEMENT EXECUTE FUNCTION wasmhook_changed();"#,
    // 2
    r#"CREATE TABLE modules (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        organization_id BIGINT NOT NULL REFERENCES organizations(id),
        name TEXT COLLATE "C" NOT NULL,
        sha256 TEXT COLLATE "C" NOT NULL,
        size BIGINT NOT NULL,
        status TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'ready', 'failed')),
        error TEXT COLLATE "C",
        kind TEXT COLLATE "C",
        encoding TEXT COLLATE "C",
        imports TEXT COLLATE "C" NOT NULL DEFAULT '[]',
        exports TEXT COLLATE "C" NOT NULL DEFAULT '[]',
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX modules_by_organization ON modules(organization_id);
    CREATE INDEX modules_by_sha256 ON modules(sha256);
    CREATE TABLE queues (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        organization_id BIGINT NOT NULL REFERENCES organizations(id),
        name TEXT COLLATE "C" NOT NULL,
        metadata TEXT COLLATE "C" NOT NULL DEFAULT '{}',
        created_at TEXT COLLATE "C" NOT NULL,
        modified_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX queues_by_organization ON queues(organization_id);
    CREATE TABLE hooks (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        organization_id BIGINT NOT NULL REFERENCES organizations(id),
        name TEXT COLLATE "C" NOT NULL,
        type TEXT COLLATE "C" NOT NULL,
        active INTEGER NOT NULL,
        module_id BIGINT REFERENCES modules(id),
        token_owner_id BIGINT REFERENCES users(id),
        document TEXT COLLATE "C" NOT NULL,
        sealed_secrets BYTEA,
        secrets_keys TEXT COLLATE "C" NOT NULL DEFAULT '[]',
        created_at TEXT COLLATE "C" NOT NULL,
        created_by_id BIGINT,
        modified_at TEXT COLLATE "C" NOT NULL,
        modified_by_id BIGINT
    );
    CREATE INDEX hooks_by_organization ON hooks(organization_id);
    CREATE INDEX hooks_by_module ON hooks(module_id);
    CREATE TABLE hook_queues (
        hook_id BIGINT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        queue_id BIGINT NOT NULL REFERENCES queues(id) ON DELETE CASCADE,
        PRIMARY KEY (hook_id, queue_id)
    );
    CREATE INDEX hook_queues_by_queue ON hook_queues(queue_id);
    CREATE TABLE hook_run_after (
        hook_id BIGINT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        predecessor_id BIGINT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
        PRIMARY KEY (hook_id, predecessor_id)
    );
    CREATE TABLE run_logs (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        uuid TEXT COLLATE "C" NOT NULL UNIQUE,
        organization_id BIGINT NOT NULL,
        hook_id BIGINT NOT NULL,
        request_id TEXT COLLATE "C" NOT NULL,
        queue_id BIGINT,
        annotation_id BIGINT,
        email_id BIGINT,
        log_level TEXT COLLATE "C" NOT NULL,
        status TEXT COLLATE "C" NOT NULL,
        status_code INTEGER,
        timestamp TEXT COLLATE "C" NOT NULL,
        start TEXT COLLATE "C" NOT NULL,
        "end" TEXT COLLATE "C" NOT NULL,
        body TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX run_logs_by_organization ON run_logs(organization_id, start);
    CREATE INDEX run_logs_by_request ON run_logs(request_id);
    CREATE INDEX run_logs_by_start ON run_logs(start);
    CREATE TRIGGER modules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON modules
        FOR EACH STATEMENT EXECUTE FUNCTION wasmhook_changed();
    CREATE TRIGGER hooks_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hooks
        FOR EACH STATEMENT EXECUTE FUNCTION wasmhook_changed();
    CREATE TRIGGER hook_queues_changed
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hook_queues
        FOR EACH STATEMENT EXECUTE FUNCTION wasmhook_changed();
    CREATE TRIGGER hook_run_after_changed
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON hook_run_after
        FOR EACH STATEMENT EXECUTE FUNCTION wasmhook_changed();"#,
    // 3
    r#"CREATE TABLE schedule_ticks (
        hook_id BIGINT PRIMARY KEY REFERENCES hooks(id) ON DELETE CASCADE,
        expression TEXT COLLATE "C" NOT NULL,
        last_tick TEXT COLLATE "C" NOT NULL
    );"#,
    // 4
    r#"CREATE TABLE id_high_water (
        name TEXT COLLATE "C" PRIMARY KEY,
        last_id BIGINT NOT NULL
    );
    INSERT INTO id_high_water (name, last_id) VALUES ('hooks', GREATEST(
        COALESCE((SELECT MAX(id) FROM hooks), 0),
        COALESCE((SELECT MAX(hook_id) FROM run_logs), 0)
    ));"#,
    // 5: in the "C" collation `lower` folds ASCII letters only, as SQLite's NOCASE does.
    r#"ALTER TABLE users ADD COLUMN case_duplicate INTEGER NOT NULL DEFAULT 0;
    UPDATE users SET case_duplicate = 1 WHERE EXISTS (
        SELECT 1 FROM users AS older
        WHERE lower(older.username) = lower(users.username) AND older.id < users.id
    );
    CREATE UNIQUE INDEX users_by_username_nocase ON users(lower(username))
        WHERE case_duplicate = 0;"#,
    // 6
    r#"ALTER TABLE tokens ADD COLUMN hook_id BIGINT;
    DELETE FROM tokens
     WHERE operator = 0
       AND expires_at IS NOT NULL
       AND expires_at < CAST(EXTRACT(EPOCH FROM CAST(created_at AS TIMESTAMPTZ)) AS BIGINT)
           + 86400;"#,
    // 7
    r#"CREATE TABLE user_logins (
        user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
        last_login TEXT COLLATE "C" NOT NULL
    );"#,
    // 8
    r#"CREATE TABLE hook_templates (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL,
        sort_order BIGINT NOT NULL DEFAULT 0,
        document TEXT COLLATE "C" NOT NULL,
        module_sha256 TEXT COLLATE "C" NOT NULL,
        module_size BIGINT NOT NULL,
        module_inspected TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX hook_templates_by_sha256 ON hook_templates(module_sha256);
    ALTER TABLE hooks ADD COLUMN hook_template_id BIGINT;"#,
    // 9
    r#"CREATE TABLE module_bytes (
        sha256 TEXT COLLATE "C" PRIMARY KEY,
        bytes BYTEA NOT NULL
    );"#,
    // 10
    r#"CREATE TABLE replicas (
        id TEXT COLLATE "C" PRIMARY KEY,
        seen_at BIGINT NOT NULL
    );"#,
    // 11
    r#"CREATE TABLE events (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        organization_id BIGINT NOT NULL,
        request_id TEXT COLLATE "C" NOT NULL,
        event TEXT COLLATE "C" NOT NULL,
        action TEXT COLLATE "C" NOT NULL,
        queue_id BIGINT,
        body TEXT COLLATE "C" NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL,
        finished_at TEXT COLLATE "C"
    );
    CREATE INDEX events_by_organization ON events(organization_id, id);
    CREATE INDEX events_finished ON events(finished_at);
    CREATE TABLE deliveries (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        event_id BIGINT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        organization_id BIGINT NOT NULL,
        hook_id BIGINT NOT NULL,
        layer BIGINT NOT NULL,
        ancestors TEXT COLLATE "C" NOT NULL,
        state TEXT COLLATE "C" NOT NULL,
        attempt BIGINT NOT NULL,
        max_attempts BIGINT NOT NULL,
        run_at BIGINT NOT NULL,
        lease_owner TEXT COLLATE "C",
        lease_until BIGINT,
        poll_url TEXT COLLATE "C",
        poll_until BIGINT,
        attempt_started_at TEXT COLLATE "C",
        poll_token BYTEA,
        status TEXT COLLATE "C",
        message TEXT COLLATE "C",
        response TEXT COLLATE "C"
    );
    CREATE INDEX deliveries_by_event ON deliveries(event_id);
    CREATE INDEX deliveries_due ON deliveries(state, run_at);
    CREATE INDEX deliveries_by_organization ON deliveries(organization_id, state);"#,
    // 12
    r#"ALTER TABLE hooks ADD COLUMN schedule_cron TEXT COLLATE "C"
        GENERATED ALWAYS AS ((document)::jsonb #>> '{config,schedule,cron}') STORED;
    CREATE INDEX hooks_scheduled ON hooks(id) WHERE active = 1 AND schedule_cron IS NOT NULL;"#,
    // 13
    r#"CREATE TABLE run_log_usage (
        organization_id BIGINT PRIMARY KEY,
        bytes BIGINT NOT NULL
    );
    INSERT INTO run_log_usage (organization_id, bytes)
        SELECT organization_id, SUM(octet_length(body) + 256) FROM run_logs
        GROUP BY organization_id;"#,
    // 14
    r#"ALTER TABLE events ADD COLUMN stored_bytes BIGINT;
    UPDATE events SET stored_bytes = octet_length(body) + 256 + COALESCE((
        SELECT SUM(COALESCE(octet_length(response), 0) + COALESCE(octet_length(message), 0)
                   + 256)
        FROM deliveries WHERE deliveries.event_id = events.id), 0)
    WHERE finished_at IS NOT NULL;
    CREATE TABLE event_usage (
        organization_id BIGINT PRIMARY KEY,
        bytes BIGINT NOT NULL
    );
    INSERT INTO event_usage (organization_id, bytes)
        SELECT organization_id, SUM(stored_bytes) FROM events WHERE stored_bytes IS NOT NULL
        GROUP BY organization_id;"#,
];

/// The migrations of `dialect`'s database.
fn migrations(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Sqlite => MIGRATIONS,
        Dialect::Postgres => POSTGRES_MIGRATIONS,
    }
}

/// How many migrations the database has had.
fn applied(db: &Db<'_>) -> Result<usize, DbError> {
    match db.dialect() {
        Dialect::Sqlite => db.query_row("PRAGMA user_version", params![], |row| row.get(0)),
        Dialect::Postgres => {
            let exists: bool = db.query_row(
                "SELECT to_regclass('schema_migrations') IS NOT NULL",
                params![],
                |row| row.get(0),
            )?;
            if !exists {
                return Ok(0);
            }
            db.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                params![],
                |row| row.get(0),
            )
        }
    }
}

/// Whether every migration this build knows has been applied (a database migrated by a
/// newer build counts as current too: its extra migrations only add).
pub(super) fn is_current(db: &Db<'_>) -> Result<bool, DbError> {
    Ok(applied(db)? >= migrations(db.dialect()).len())
}

/// Applies the migrations this database has not seen. On SQLite each runs in its own
/// transaction (one process holds the data directory). On PostgreSQL all run in one
/// transaction holding an advisory lock of this schema, so that a second replica starting
/// meanwhile waits, then finds them applied; a failure leaves the schema as it was.
pub(super) fn migrate(db: &Db<'_>) -> Result<(), DbError> {
    match db.dialect() {
        Dialect::Sqlite => {
            let applied = applied(db)?;
            for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
                let transaction = db.transaction()?;
                transaction.execute_batch(migration)?;
                transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
                transaction.commit()?;
            }
        }
        Dialect::Postgres => {
            let transaction = db.transaction()?;
            transaction.execute_batch(
                "SELECT pg_advisory_xact_lock(hashtext('wasmhook migrations ' || current_schema()));
                 CREATE TABLE IF NOT EXISTS schema_migrations (
                     version INTEGER PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 );",
            )?;
            let applied = applied(&transaction)?;
            for (index, migration) in POSTGRES_MIGRATIONS.iter().enumerate().skip(applied) {
                transaction.execute_batch(migration)?;
                transaction.execute(
                    "INSERT INTO schema_migrations (version) VALUES (?1)",
                    params![index + 1],
                )?;
            }
            transaction.commit()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::users::{self, NewUser};
    use crate::store::StoreError;

    /// A SQLite database as migration `through` left it.
    fn migrated_through(through: usize) -> Result<rusqlite::Connection, DbError> {
        let connection = rusqlite::Connection::open_in_memory()?;
        let db = Db::sqlite(&connection);
        for migration in &MIGRATIONS[..through] {
            db.execute_batch(migration)?;
        }
        db.execute_batch(&format!("PRAGMA user_version = {through}"))?;
        db.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES (1, 'acme', 't')",
            params![],
        )?;
        Ok(connection)
    }

    /// A database as migration 4 left it, holding users named `names`.
    fn before_case_folding(names: &[&str]) -> Result<rusqlite::Connection, DbError> {
        let connection = migrated_through(4)?;
        for name in names {
            Db::sqlite(&connection).execute(
                "INSERT INTO users (organization_id, username, password_hash, role, created_at)
                 VALUES (1, ?1, 'hash', 'member', 't')",
                params![name],
            )?;
        }
        Ok(connection)
    }

    fn create(connection: &Db<'_>, username: &str) -> Result<users::User, StoreError> {
        let user = NewUser {
            organization_id: 1,
            username,
            password_hash: "hash",
            role: "member",
            first_name: "",
            last_name: "",
            email: "",
        };
        users::create(connection, &user, "t")
    }

    #[test]
    fn case_variants_from_before_survive_the_migration_and_keep_their_logins(
    ) -> Result<(), StoreError> {
        let connection = before_case_folding(&["aadmin", "AADMIN", "Aadmin"])?;
        let connection = Db::sqlite(&connection);
        migrate(&connection)?;
        let login = |name: &str| -> Result<Option<String>, StoreError> {
            Ok(users::by_username(&connection, name)?.map(|user| user.username))
        };
        assert_eq!(login("aadmin")?.as_deref(), Some("aadmin"));
        assert_eq!(login("AADMIN")?.as_deref(), Some("AADMIN"));
        assert_eq!(login("Aadmin")?.as_deref(), Some("Aadmin"));
        // A variant nobody has: the oldest of the group.
        assert_eq!(login("aADMIN")?.as_deref(), Some("aadmin"));
        assert_eq!(login("nobody")?, None);
        Ok(())
    }

    #[test]
    fn a_database_from_before_last_login_upgrades_and_records_logins() -> Result<(), StoreError> {
        let connection = migrated_through(6)?;
        let connection = Db::sqlite(&connection);
        connection.execute(
            "INSERT INTO users (id, organization_id, username, password_hash, role, created_at)
             VALUES (7, 1, 'ann', 'hash', 'member', '2024-01-01T00:00:00.000000Z')",
            params![],
        )?;
        migrate(&connection)?;
        let ann = users::get(&connection, 7)?;
        assert_eq!(
            ann.as_ref().map(|user| user.date_joined.as_str()),
            Some("2024-01-01T00:00:00.000000Z")
        );
        assert_eq!(ann.and_then(|user| user.last_login), None);
        users::record_login(&connection, 7, "2025-02-02T00:00:00.000000Z")?;
        users::record_login(&connection, 7, "2025-03-03T00:00:00.000000Z")?;
        assert_eq!(
            users::get(&connection, 7)?.and_then(|user| user.last_login),
            Some("2025-03-03T00:00:00.000000Z".to_owned())
        );
        Ok(())
    }

    #[test]
    fn hooks_scheduled_before_their_column_are_still_the_schedulers() -> Result<(), StoreError> {
        let connection = migrated_through(11)?;
        let connection = Db::sqlite(&connection);
        for (id, active, document) in [
            (1, 1, r#"{"config": {"schedule": {"cron": "*/5 * * * *"}}}"#),
            (2, 0, r#"{"config": {"schedule": {"cron": "0 * * * *"}}}"#),
            (3, 1, r#"{"config": {}}"#),
        ] {
            connection.execute(
                "INSERT INTO hooks (id, organization_id, name, type, active, document,
                                    created_at, modified_at)
                 VALUES (?1, 1, 'h', 'job', ?2, ?3, 't', 'm')",
                params![id, active, document],
            )?;
        }
        migrate(&connection)?;
        let scheduled: Vec<(u64, String)> = crate::store::hooks::schedules(&connection)?
            .into_iter()
            .map(|row| (row.hook_id, row.expression))
            .collect();
        // The active one with a schedule only.
        assert_eq!(scheduled, vec![(1, "*/5 * * * *".to_owned())]);
        Ok(())
    }

    #[test]
    fn run_logs_from_before_their_usage_was_kept_count_toward_it() -> Result<(), StoreError> {
        let connection = migrated_through(12)?;
        let connection = Db::sqlite(&connection);
        // Bodies of multi-byte characters: usage counts bytes, as `String::len` does.
        let bodies = [
            (1u64, "é".repeat(100)),
            (1, "x".repeat(7)),
            (2, "ü".repeat(3)),
        ];
        for (index, (organization, body)) in bodies.iter().enumerate() {
            connection.execute(
                "INSERT INTO run_logs (uuid, organization_id, hook_id, request_id, log_level,
                                       status, timestamp, start, \"end\", body)
                 VALUES (?1, ?2, 1, 'r', 'INFO', 'completed', 't', 's', 'e', ?3)",
                params![format!("u{index}"), organization, body],
            )?;
        }
        migrate(&connection)?;
        let usage = |organization: u64| -> Result<u64, StoreError> {
            Ok(connection.query_row(
                "SELECT bytes FROM run_log_usage WHERE organization_id = ?1",
                params![organization],
                |row| row.get(0),
            )?)
        };
        let row = crate::store::usage::ROW_BYTES;
        assert_eq!(usage(1)?, 200 + row + 7 + row);
        assert_eq!(usage(2)?, 6 + row);
        Ok(())
    }

    #[test]
    fn finished_events_from_before_their_usage_was_kept_count_toward_it() -> Result<(), StoreError>
    {
        let connection = migrated_through(12)?;
        let connection = Db::sqlite(&connection);
        for (id, finished) in [(1, Some("f")), (2, None)] {
            connection.execute(
                "INSERT INTO events (id, organization_id, request_id, event, action, body,
                                     created_at, finished_at)
                 VALUES (?1, 1, 'r', 'e', 'a', 'ébody', 't', ?2)",
                params![id, finished],
            )?;
            connection.execute(
                "INSERT INTO deliveries (event_id, organization_id, hook_id, layer, ancestors,
                                         state, attempt, max_attempts, run_at, message, response)
                 VALUES (?1, 1, 1, 0, '[]', 'done', 1, 1, 0, 'mm', '{\"a\": 1}')",
                params![id],
            )?;
        }
        migrate(&connection)?;
        let row = crate::store::usage::ROW_BYTES;
        let usage: u64 = connection.query_row(
            "SELECT bytes FROM event_usage WHERE organization_id = 1",
            params![],
            |row| row.get(0),
        )?;
        // The finished one only: its body (6 bytes), its delivery's message and response
        // (2 and 8), a row's share each.
        assert_eq!(usage, 6 + row + 2 + 8 + row);
        Ok(())
    }

    #[test]
    fn no_new_case_variant_of_a_username_can_be_created() -> Result<(), StoreError> {
        let connection = before_case_folding(&["aadmin", "AADMIN"])?;
        let connection = Db::sqlite(&connection);
        migrate(&connection)?;
        assert!(matches!(
            create(&connection, "AaDmIn"),
            Err(StoreError::Conflict { field: "username", message })
                if message == users::USERNAME_UNAVAILABLE
        ));
        create(&connection, "bob")?;
        assert!(matches!(
            create(&connection, "BOB"),
            Err(StoreError::Conflict { .. })
        ));
        assert_eq!(
            users::by_username(&connection, "BoB")?.map(|user| user.username),
            Some("bob".to_owned())
        );
        Ok(())
    }
}
