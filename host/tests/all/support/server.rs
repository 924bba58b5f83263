//! The real `wasmhook serve` for the tests: the binary on a free port with a temporary
//! data directory (`Server`), an organization's admin calling it (`Tenant`), and the small
//! helpers of HTTP tests (clients, signatures, ids, metrics series, a process's memory).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::blocking::{multipart, Client};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use wasmhook_tests::postgres::TestSchema;

pub const OPERATOR_TOKEN: &str = "operator-token-for-tests-0123456789";

/// The database the servers of this test binary keep their rows in: SQLite in the data
/// directory (`tests/all`), or PostgreSQL (`tests/postgres`, which runs the suites that
/// make sense on both against it).
// tests/all makes no `Postgres`, tests/postgres no `Sqlite`.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// The embedded default.
    Sqlite,
    /// A schema of the machine's PostgreSQL per data directory.
    Postgres,
}

/// `--database URL` for a server of `data_dir`, when this binary's servers use PostgreSQL:
/// one schema per data directory, kept for the whole test process so that a restarted
/// server (or a second replica given the same directory's schema) finds the rows.
fn database_args(data_dir: &Path) -> Vec<String> {
    match crate::DATABASE {
        Database::Sqlite => Vec::new(),
        Database::Postgres => vec!["--database".to_owned(), schema_url_of(data_dir)],
    }
}

/// The URL of the PostgreSQL schema kept for `data_dir` (made on first use). A replica
/// test starts its second server on another data directory with this URL.
pub fn schema_url_of(data_dir: &Path) -> String {
    if let Some(url) = lock(shared()).get(data_dir) {
        return url.clone();
    }
    static SCHEMAS: OnceLock<Mutex<HashMap<PathBuf, TestSchema>>> = OnceLock::new();
    let schemas = SCHEMAS.get_or_init(|| {
        // Earlier runs' schemas: a static is never dropped, so they stay behind.
        if let Err(error) = wasmhook_tests::postgres::drop_leftovers("server") {
            panic!("PostgreSQL must answer for these tests: {error:?}");
        }
        Mutex::new(HashMap::new())
    });
    let mut schemas = schemas
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(schema) = schemas.get(data_dir) {
        return schema.url().to_owned();
    }
    let schema = TestSchema::create("server")
        .unwrap_or_else(|error| panic!("PostgreSQL must answer for these tests: {error:?}"));
    let url = schema.url().to_owned();
    schemas.insert(data_dir.to_path_buf(), schema);
    url
}

/// Runs `statement` (no parameters) on the database of `data_dir`'s servers, behind the
/// API's back (a test ageing a row); how many rows it changed. SQLite's file, or the
/// directory's PostgreSQL schema.
pub fn execute_in_database(data_dir: &Path, statement: &str) -> u64 {
    match crate::DATABASE {
        Database::Sqlite => {
            let database = rusqlite::Connection::open(data_dir.join("wasmhook.db"))
                .expect("the database opens");
            database.execute(statement, []).expect("the statement runs") as u64
        }
        Database::Postgres => {
            let statement = statement.to_owned();
            wasmhook_tests::postgres::with_client(&schema_url_of(data_dir), move |client| {
                Ok(client.execute(statement.as_str(), &[])?)
            })
            .expect("the statement runs")
        }
    }
}

/// The path under `/api/v1` of one of the API's URLs (which name the server that made
/// them: after a restart, another port).
pub fn api_path(url: &str) -> String {
    url.split_once("/api/v1")
        .map(|(_, path)| path.to_owned())
        .expect("an API URL")
}

/// Data directories whose servers use another directory's schema: replicas.
fn shared() -> &'static Mutex<HashMap<PathBuf, String>> {
    static SHARED: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    SHARED.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes the servers of `data_dir` use the database of `first`'s: a replica of it, with
/// its own data directory (its own compiled artifacts and lock) and the same rows. Used by
/// tests/postgres only.
#[allow(dead_code)]
pub fn share_database(first: &Path, data_dir: &Path) {
    let url = schema_url_of(first);
    lock(shared()).insert(data_dir.to_path_buf(), url);
}

/// A running server; stopped (SIGTERM, then waited for) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    /// What the server printed at start, before "listening".
    pub banner: String,
    /// What it has printed since.
    log: Arc<Mutex<String>>,
    pub client: Client,
    /// Whether the process was already killed and waited for.
    reaped: bool,
    /// The stderr of a server started by [`Server::start_with_stderr_unread`], held open
    /// and never read.
    _unread: Option<std::io::Lines<BufReader<std::process::ChildStderr>>>,
}

impl Server {
    pub fn start(data_dir: &Path, operator_token: Option<&str>) -> Server {
        Server::start_with(data_dir, operator_token, &[], &[])
    }

    /// Starts with extra environment variables and arguments.
    pub fn start_with(
        data_dir: &Path,
        operator_token: Option<&str>,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Server {
        Server::start_reading(data_dir, operator_token, env, args, true)
    }

    /// Starts a server whose stderr is read up to its banner and then never again, though
    /// kept open: a log collector that stopped reading. [`Server::log`] stays empty.
    pub fn start_with_stderr_unread(data_dir: &Path, operator_token: Option<&str>) -> Server {
        Server::start_reading(data_dir, operator_token, &[], &[], false)
    }

    fn start_reading(
        data_dir: &Path,
        operator_token: Option<&str>,
        env: &[(&str, &str)],
        args: &[&str],
        read_log: bool,
    ) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmhook"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(database_args(data_dir))
            .args(args)
            .envs(env.iter().copied())
            .env_remove("WASMHOOK_OPERATOR_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(token) = operator_token {
            command.env("WASMHOOK_OPERATOR_TOKEN", token);
        }
        let mut child = command.spawn().expect("the server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut banner = String::new();
        let base = loop {
            let Some(line) = lines.next() else {
                panic!("the server exited before printing its address:\n{banner}");
            };
            let line = line.expect("readable stderr");
            if let Some(address) = line.strip_prefix("wasmhook listening on ") {
                break format!("{address}/api/v1");
            }
            banner.push_str(&line);
            banner.push('\n');
        };
        // Keep draining stderr so the server never blocks on a full pipe, and keep what it
        // says for the tests that read its log.
        let log = Arc::new(Mutex::new(String::new()));
        let unread = if read_log {
            let kept = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let mut kept = kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    kept.push_str(&line);
                    kept.push('\n');
                }
            });
            None
        } else {
            Some(lines)
        };
        Server {
            child,
            base,
            banner,
            log,
            client: http_client(),
            reaped: false,
            _unread: unread,
        }
    }

    /// The server's root, without `/api/v1` (probes, `/metrics`).
    pub fn root(&self) -> String {
        self.base.trim_end_matches("/api/v1").to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().expect("the server answers");
        let status = response.status();
        let text = response.text().expect("a body");
        let value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        (status, value)
    }

    pub fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Some(token), None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, token, Some(body))
    }

    /// Creates an organization with an admin and returns (organization URL, admin token).
    pub fn organization_with_admin(&self, name: &str) -> (String, String) {
        let (status, organization) = self.post(
            "/organizations",
            Some(OPERATOR_TOKEN),
            json!({"name": name}),
        );
        assert_eq!(status, StatusCode::CREATED, "{organization}");
        let url = organization["url"].as_str().expect("a URL").to_owned();
        let username = format!("{name}-admin");
        let (status, user) = self.post(
            "/users",
            Some(OPERATOR_TOKEN),
            json!({"username": username, "password": "long enough", "role": "admin", "organization": url}),
        );
        assert_eq!(status, StatusCode::CREATED, "{user}");
        (url, self.login(&username, "long enough"))
    }

    pub fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self.post(
            "/auth/login",
            None,
            json!({"username": username, "password": password}),
        );
        assert_eq!(status, StatusCode::OK, "{body}");
        body["key"].as_str().expect("a key").to_owned()
    }
}

impl Server {
    /// A server for webhook tests: a receiver on loopback (plain HTTP, a private address)
    /// may be called, retries wait 20 ms, polls 50 ms, and answers are capped at 64 KiB.
    pub fn for_webhooks(data_dir: &Path) -> Server {
        Server::for_webhooks_with(data_dir, &[])
    }

    /// As [`Server::for_webhooks`], with `extra` environment variables (a later one wins
    /// over the default of the same name).
    pub fn for_webhooks_with(data_dir: &Path, extra: &[(&str, &str)]) -> Server {
        let mut env = vec![
            ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
            // The receiver on loopback speaks plain HTTP.
            ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
            ("WASMHOOK_RETRY_DELAY_MS", "20"),
            ("WASMHOOK_WEBHOOK_POLL_INTERVAL_MS", "50"),
            ("WASMHOOK_MAX_RESPONSE_BYTES", "65536"),
        ];
        env.extend_from_slice(extra);
        Server::start_with(data_dir, Some(OPERATOR_TOKEN), &env, &[])
    }
}

impl Server {
    /// Waits for the process to end (after [`Server::terminate`]).
    pub fn wait_for_exit(&mut self) {
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Sends SIGTERM (a graceful stop) without waiting.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }
}

impl Server {
    /// Kills the server with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// What the server has printed to stderr since it started listening.
    pub fn log(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The server's process id (to sample its memory from another thread).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident set size, from /proc.
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(self.child.id()).expect("the server is running, and /proc shows its VmRSS")
    }

    /// `/metrics` on the API's listener, read with the operator's token, as series.
    pub fn metrics(&self) -> HashMap<String, f64> {
        let response = self
            .client
            .get(format!("{}/metrics", self.root()))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .expect("the server answers");
        let status = response.status();
        let text = response.text().expect("a body");
        assert_eq!(status, StatusCode::OK, "{text}");
        series(&text)
    }

    /// The runs of organization `organization` in flight, as `/metrics` counts them: the
    /// event a test waits for before it expects a run to be under way.
    pub fn runs_in_flight(&self, organization: u64) -> f64 {
        self.metrics()
            .get(&format!(
                "wasmhook_runs_in_flight{{organization=\"{organization}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    }
}

/// The series of a metrics exposition: `name{labels}` to value.
pub fn series(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// One organization ready to work: its admin's token.
pub struct Tenant<'a> {
    pub server: &'a Server,
    pub token: String,
}

impl<'a> Tenant<'a> {
    pub fn new(server: &'a Server, name: &str) -> Self {
        let (_, token) = server.organization_with_admin(name);
        Tenant { server, token }
    }

    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        self.server.get(path, &self.token)
    }

    /// The run logs of a hook, newest first, as `/hooks/logs` lists them.
    pub fn run_logs(&self, hook: &Value) -> Vec<Value> {
        let (status, logs) = self.get(&format!("/hooks/logs?hook={}", hook["id"]));
        assert_eq!(status, StatusCode::OK, "{logs}");
        logs["results"].as_array().cloned().unwrap_or_default()
    }

    /// The id of the tenant's organization.
    pub fn organization_id(&self) -> u64 {
        let (status, organizations) = self.get("/organizations");
        assert_eq!(status, StatusCode::OK, "{organizations}");
        organizations["results"][0]["id"]
            .as_u64()
            .expect("an organization")
    }

    /// The URL of the tenant's organization, as objects name it in `organization`.
    pub fn organization_url(&self) -> String {
        let (status, organizations) = self.get("/organizations");
        assert_eq!(status, StatusCode::OK, "{organizations}");
        organizations["results"][0]["url"]
            .as_str()
            .expect("an organization")
            .to_owned()
    }

    pub fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.server.post(path, Some(&self.token), body)
    }

    /// POSTs `body` with the client's own `X-Request-Id` (which the server keeps and
    /// echoes); the status and the answer.
    pub fn post_with_request_id(
        &self,
        path: &str,
        request_id: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .server
            .client
            .post(self.server.url(path))
            .bearer_auth(&self.token)
            .header("x-request-id", request_id)
            .json(body)
            .send()
            .expect("the server answers");
        let status = response.status();
        let echoed = response
            .headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        assert_eq!(
            echoed.as_deref(),
            Some(request_id),
            "the server kept the request id"
        );
        (status, response.json().expect("a JSON answer"))
    }

    /// The finished event of `answer` (what `POST /events` answered with `status`): read
    /// again at its URL until every delivery is finished, when it was answered 202.
    pub fn settle(&self, status: StatusCode, answer: Value) -> Value {
        if status != StatusCode::ACCEPTED {
            return answer;
        }
        let path = api_path(answer["url"].as_str().expect("a 202 names the event's URL"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let (read, progress) = self.get(&path);
            assert_eq!(read, StatusCode::OK, "{progress}");
            if progress["state"] == "finished" {
                return progress;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the event did not finish in 120 s: {progress}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends `event`.`action` with `payload` through `/events`, on the queue with URL
    /// `queue` when one is given; the status and the answer.
    pub fn event(
        &self,
        event: &str,
        action: &str,
        queue: Option<&Value>,
        payload: Value,
    ) -> (StatusCode, Value) {
        let mut body = json!({"event": event, "action": action});
        body["payload"] = payload;
        if let Some(queue) = queue {
            body["queue"] = queue.clone();
        }
        self.post("/events", body)
    }

    pub fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.server
            .send(Method::PATCH, path, Some(&self.token), Some(body))
    }

    pub fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.server
            .send(Method::PUT, path, Some(&self.token), Some(body))
    }

    pub fn delete(&self, path: &str) -> StatusCode {
        self.server
            .client
            .delete(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .expect("the server answers")
            .status()
    }

    /// Uploads a module's bytes raw; returns the status and the answer.
    pub fn upload_bytes(&self, bytes: Vec<u8>, name: &str) -> (StatusCode, Value) {
        let response = self
            .server
            .client
            .post(self.server.url(&format!("/modules?name={name}")))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .expect("the server answers");
        let status = response.status();
        (status, response.json().expect("a JSON answer"))
    }

    /// Uploads a built guest and returns its module URL (it may still be compiling).
    pub fn upload(&self, path: &str) -> String {
        let bytes = std::fs::read(path).expect("the guest was built");
        let (status, module) = self.upload_bytes(bytes, "guest.wasm");
        // 202: a large module compiling in the background.
        assert!(
            status == StatusCode::CREATED || status == StatusCode::ACCEPTED,
            "{status}: {module}"
        );
        module["url"].as_str().expect("a URL").to_owned()
    }

    /// Creates a function hook running `module` with these extra fields.
    pub fn hook(&self, module: &str, extra: Value) -> Value {
        let mut body = json!({
            "name": "a hook",
            "events": ["annotation_content", "invocation.manual"],
            "config": {"runtime": "wasm", "module": module, "timeout_s": 5},
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let (status, hook) = self.post("/hooks", body);
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{hook}\nthe server's log:\n{}",
            self.server.log()
        );
        hook
    }

    /// Creates a webhook hook calling `url`, with these extra config keys, subscribed to
    /// `annotation_content`, `upload.created` and `invocation.manual`, with settings
    /// `{"region": "eu"}`.
    pub fn webhook(&self, url: &str, config: Value) -> Value {
        let mut full = json!({"url": url});
        if let (Some(full), Value::Object(extra)) = (full.as_object_mut(), config) {
            full.extend(extra);
        }
        let (status, hook) = self.post(
            "/hooks",
            json!({
                "name": "a webhook",
                "type": "webhook",
                "events": ["annotation_content", "upload.created", "invocation.manual"],
                "config": full,
                "settings": {"region": "eu"},
            }),
        );
        assert_eq!(status, StatusCode::CREATED, "{hook}");
        hook
    }

    pub fn test_call(&self, hook: &Value, payload: Value) -> (StatusCode, Value) {
        let mut body = serde_json::Map::new();
        body.insert("payload".into(), payload);
        self.post(&format!("/hooks/{}/test", hook["id"]), Value::Object(body))
    }

    /// Deletes a hook; the status.
    pub fn delete_hook(&self, hook: &Value) -> StatusCode {
        self.delete(&format!("/hooks/{}", hook["id"]))
    }

    pub fn invoke(&self, hook: &Value, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/hooks/{}/invoke", hook["id"]), body)
    }
}

/// A blocking HTTP client for the tests (reqwest, with the TLS provider wasmhook installs).
pub fn http_client() -> Client {
    http_client_builder().build().expect("an HTTP client")
}

/// See [`http_client`].
pub fn http_client_builder() -> reqwest::blocking::ClientBuilder {
    wasmhook::outbound::install_crypto_provider();
    Client::builder()
}

/// The resident set size of process `pid` in KiB, from `/proc/PID/status` (none once it
/// has ended).
pub fn rss_kib_of(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `sha256=<hex HMAC-SHA256 of body keyed by secret>`: how a platform signs an invocation
/// and how wasmhook signs a webhook call.
pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn id_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// Registers a hook template with `token`: its fields and, unless `module` is none, the
/// module at that path; the status and the answer.
pub fn register_template(
    server: &Server,
    token: &str,
    template: &Value,
    module: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = multipart::Form::new().text("template", template.to_string());
    if let Some(path) = module {
        let bytes = std::fs::read(path).expect("the guest was built");
        form = form.part(
            "file",
            multipart::Part::bytes(bytes).file_name("extension.wasm"),
        );
    }
    let response = server
        .client
        .post(server.url("/hook_templates"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .expect("the server answers");
    let status = response.status();
    (status, response.json().expect("a JSON answer"))
}
