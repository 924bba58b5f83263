//! A schema of its own on the machine's PostgreSQL for each test that needs one, dropped
//! when the test ends, so that tests running at once never see each other's rows.
//!
//! The server is `WASMHOOK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`,
//! the database every machine of this project has). No test skips when it does not
//! answer: creating the schema fails, and so does the test, with the reason.

/// The server the tests use.
pub fn server_url() -> String {
    std::env::var("WASMHOOK_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema, dropped with everything in it when this is dropped.
#[derive(Debug)]
pub struct TestSchema {
    name: String,
    url: String,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

impl TestSchema {
    /// Creates a schema named after `purpose` and a random suffix. Works on any thread:
    /// the client blocks, so it runs on a thread of its own.
    pub fn create(purpose: &str) -> Result<Self, Error> {
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(|error| error.to_string())?;
        let tag: String = purpose
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(24)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!(
            "t_{tag}_{}",
            suffix
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        );
        let base = server_url();
        let statement = format!("CREATE SCHEMA \"{name}\"");
        on_thread(&base, statement).map_err(|error| {
            format!("cannot create a schema on PostgreSQL at {base} (it must answer): {error}")
        })?;
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        Ok(TestSchema { name, url })
    }

    /// The URL whose connections use this schema.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs statements in this schema (a test's own look at the rows).
    pub fn execute(&self, statements: &str) -> Result<(), Error> {
        on_thread(&self.url, statements.to_owned())
    }

    /// The first column of the first row of `query`, as text (NULL as none).
    pub fn query_text(&self, query: &str) -> Result<Option<String>, Error> {
        query_text_at(&self.url, query)
    }
}

/// The first column of the first row of `query` on a connection to `url`, as text (NULL as
/// none).
pub fn query_text_at(url: &str, query: &str) -> Result<Option<String>, Error> {
    let query = query.to_owned();
    with_client(url, move |client| {
        for message in client.simple_query(&query)? {
            if let postgres::SimpleQueryMessage::Row(row) = message {
                return Ok(row.get(0).map(str::to_owned));
            }
        }
        Ok(None)
    })
}

/// Runs `work` with a connection to `url`, on a thread of its own: the synchronous client
/// must not block (or be dropped on) an async test's thread.
pub fn with_client<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(&mut postgres::Client) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let url = url.to_owned();
    std::thread::spawn(move || work(&mut postgres::Client::connect(&url, postgres::NoTls)?))
        .join()
        .map_err(|_| "the PostgreSQL client's thread panicked")?
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        if let Err(error) = on_thread(&server_url(), statement) {
            eprintln!("could not drop the test schema {}: {error}", self.name);
        }
    }
}

/// Runs `statements` on a connection to `url` ([`with_client`]).
fn on_thread(url: &str, statements: String) -> Result<(), Error> {
    with_client(url, move |client| Ok(client.batch_execute(&statements)?))
}

/// Drops every schema whose name starts with `t_{tag}_`: what earlier runs left behind
/// when their schemas were kept for a whole test process (the servers' schemas, which
/// outlive a server so that a restart finds its rows). Call it once, before the first.
/// One schema per transaction: dropping many at once would take more locks than the
/// server allows a transaction.
pub fn drop_leftovers(tag: &str) -> Result<(), Error> {
    let pattern = format!("t\\_{tag}\\_%");
    with_client(&server_url(), move |client| {
        let names: Vec<String> = client
            .query(
                "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1",
                &[&pattern],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for name in names {
            client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))?;
        }
        Ok(())
    })
}
