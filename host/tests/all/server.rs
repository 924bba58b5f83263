//! `wasmhook serve`, the real binary on a free port with a temporary data directory, over
//! real HTTP: accounts, organizations, users, isolation between organizations, bad input,
//! pagination, and a restart.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const OPERATOR_TOKEN: &str = "operator-token-for-tests-0123456789";

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
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmhook"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
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
            let line = lines
                .next()
                .expect("the server printed its address before exiting")
                .expect("readable stderr");
            if let Some(address) = line.strip_prefix("wasmhook listening on ") {
                break format!("{address}/api/v1");
            }
            banner.push_str(&line);
            banner.push('\n');
        };
        // Keep draining stderr so the server never blocks on a full pipe, and keep what it
        // says for the tests that read its log.
        let log = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut kept = kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        Server {
            child,
            base,
            banner,
            log,
            client: http_client(),
            reaped: false,
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
        Server::start_with(
            data_dir,
            Some(OPERATOR_TOKEN),
            &[
                ("WASMHOOK_ALLOW_PRIVATE_ADDRESSES", "true"),
                // The receiver on loopback speaks plain HTTP.
                ("WASMHOOK_ALLOW_HTTP_WEBHOOKS", "true"),
                ("WASMHOOK_RETRY_DELAY_MS", "20"),
                ("WASMHOOK_WEBHOOK_POLL_INTERVAL_MS", "50"),
                ("WASMHOOK_MAX_RESPONSE_BYTES", "65536"),
            ],
            &[],
        )
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

    pub fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.server.post(path, Some(&self.token), body)
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
        assert_eq!(status, StatusCode::CREATED, "{hook}");
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

#[test]
fn an_organization_gets_an_admin_who_logs_in_creates_members_and_logs_out() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (organization, admin) = server.organization_with_admin("acme");

    let (status, member) = server.post(
        "/users",
        Some(&admin),
        json!({"username": "ann", "password": "ann's password", "email": "ann@acme.example"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["organization"], organization);
    assert_eq!(member["role"], "member");
    assert!(member.get("password").is_none());

    // Login also takes a form, as Rossum's does.
    let response = server
        .client
        .post(server.url("/auth/login"))
        .form(&[("username", "ann"), ("password", "ann's password")])
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let ann: Value = response.json().expect("JSON");
    let ann = ann["key"].as_str().expect("a key").to_owned();

    let (status, users) = server.get("/users", &ann);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["pagination"]["total"], 2);
    // `Token` works as a scheme too.
    let response = server
        .client
        .get(server.url("/users"))
        .header("Authorization", format!("Token {ann}"))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);

    let (status, body) = server.post("/auth/logout", Some(&ann), json!({}));
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.get("/users", &ann);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Invalid token."}));
}

#[test]
fn an_organization_cannot_see_or_touch_another() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (acme, acme_admin) = server.organization_with_admin("acme");
    let (globex, globex_admin) = server.organization_with_admin("globex");

    let (_, globex_users) = server.get("/users", &globex_admin);
    let globex_user = globex_users["results"][0]["id"].as_u64().expect("an id");
    assert_eq!(
        server.get(&format!("/users/{globex_user}"), &acme_admin).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(&format!("/organizations/{}", id_of(&globex)), &acme_admin)
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(&format!("/organizations/{}", id_of(&acme)), &acme_admin)
            .0,
        StatusCode::OK
    );

    let (_, organizations) = server.get("/organizations", &acme_admin);
    assert_eq!(organizations["pagination"]["total"], 1);
    assert_eq!(organizations["results"][0]["url"], acme);
    let (_, users) = server.get(
        &format!("/users?organization={}", id_of(&globex)),
        &acme_admin,
    );
    assert_eq!(users["pagination"]["total"], 0, "{users}");

    let (status, body) = server.post(
        "/users",
        Some(&acme_admin),
        json!({"username": "mole", "password": "long enough", "organization": globex}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.starts_with("organization:")));

    // Only the operator creates organizations; members create no users.
    let (status, _) = server.post("/organizations", Some(&acme_admin), json!({"name": "mine"}));
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.post(
        "/users",
        Some(&acme_admin),
        json!({"username": "max", "password": "long enough"}),
    );
    let max = server.login("max", "long enough");
    let (status, _) = server.post(
        "/users",
        Some(&max),
        json!({"username": "min", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The operator sees everything.
    let (_, organizations) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(organizations["pagination"]["total"], 2);
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (organization, admin) = server.organization_with_admin("acme");
    let user = |body: Value| server.post("/users", Some(&admin), body);
    let cases: Vec<((StatusCode, Value), StatusCode, &str)> = vec![
        (
            user(json!({"username": "x"})),
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            user(json!({"username": "x", "password": "short"})),
            StatusCode::BAD_REQUEST,
            "password: at least 8",
        ),
        (
            user(json!({"username": "has space", "password": "long enough"})),
            StatusCode::BAD_REQUEST,
            "username:",
        ),
        (
            user(json!({"username": "acme-admin", "password": "long enough"})),
            StatusCode::BAD_REQUEST,
            "username: this username cannot be used",
        ),
        (
            user(json!({"username": "y", "password": "long enough", "role": "owner"})),
            StatusCode::BAD_REQUEST,
            "role:",
        ),
        (
            user(json!({"username": "y", "password": "long enough", "shoe_size": 44})),
            StatusCode::BAD_REQUEST,
            "shoe_size",
        ),
        (
            user(json!(["not", "an", "object"])),
            StatusCode::BAD_REQUEST,
            "expected a JSON object",
        ),
        (
            server.post(
                "/users",
                Some(OPERATOR_TOKEN),
                json!({"username": "z", "password": "long enough"}),
            ),
            StatusCode::BAD_REQUEST,
            "organization: required",
        ),
        (
            server.post(
                "/users",
                Some(OPERATOR_TOKEN),
                json!({"username": "z", "password": "long enough", "organization": 999}),
            ),
            StatusCode::BAD_REQUEST,
            "no such organization",
        ),
        (
            server.post(
                "/organizations",
                Some(OPERATOR_TOKEN),
                json!({"name": "  "}),
            ),
            StatusCode::BAD_REQUEST,
            "name:",
        ),
        (
            server.get("/users?page_size=many", &admin),
            StatusCode::BAD_REQUEST,
            "page_size",
        ),
        (
            server.get("/users?page=0", &admin),
            StatusCode::BAD_REQUEST,
            "page",
        ),
        (
            server.get("/users", "not-a-token"),
            StatusCode::UNAUTHORIZED,
            "Invalid token.",
        ),
        (
            server.send(Method::GET, "/users", None, None),
            StatusCode::UNAUTHORIZED,
            "Invalid token.",
        ),
        (
            server.get("/users/banana", &admin),
            StatusCode::NOT_FOUND,
            "Not found.",
        ),
        (
            server.get("/no/such/thing", &admin),
            StatusCode::NOT_FOUND,
            "Not found.",
        ),
        (
            server.post(
                "/auth/login",
                None,
                json!({"username": "acme-admin", "password": "wrong password"}),
            ),
            StatusCode::BAD_REQUEST,
            "Unable to log in",
        ),
        (
            server.post(
                "/auth/login",
                None,
                json!({"username": "nobody", "password": "whatever it is"}),
            ),
            StatusCode::BAD_REQUEST,
            "Unable to log in",
        ),
    ];
    for (index, ((status, body), expected, needle)) in cases.into_iter().enumerate() {
        assert_eq!(status, expected, "case {index}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(needle),
            "case {index}: {needle:?} not in {detail:?}"
        );
    }

    // Malformed JSON, and a body over the limit.
    let response = server
        .client
        .post(server.url("/users"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body("{\"username\": ")
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Its own client: the server closes a connection whose body it refused to read.
    let response = http_client()
        .post(server.url("/organizations"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("Content-Type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20)))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing of the refused requests was written.
    let (_, users) = server.get("/users", &admin);
    assert_eq!(users["pagination"]["total"], 1, "{users}");
    let (_, organizations) = server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(organizations["pagination"]["total"], 1);
    assert_eq!(organizations["results"][0]["url"], organization);
}

#[test]
fn lists_are_paginated_as_rossum_does() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (_, admin) = server.organization_with_admin("acme");
    for name in ["u1", "u2", "u3", "u4"] {
        let (status, _) = server.post(
            "/users",
            Some(&admin),
            json!({"username": name, "password": "long enough"}),
        );
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, page) = server.get("/users?page_size=2&page=2", &admin);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["pagination"]["total"], 5);
    assert_eq!(page["pagination"]["total_pages"], 3);
    assert_eq!(
        page["pagination"]["next"],
        server.url("/users?page=3&page_size=2")
    );
    assert_eq!(
        page["pagination"]["previous"],
        server.url("/users?page=1&page_size=2")
    );
    let names: Vec<&str> = page["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["u2", "u3"]);
}

#[test]
fn a_restart_keeps_accounts_and_a_generated_operator_token_is_shown_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token = {
        let server = Server::start(dir.path(), None);
        let line = server
            .banner
            .lines()
            .find_map(|line| line.strip_prefix("operator token (shown once, keep it): "))
            .unwrap_or_else(|| panic!("no operator token in: {}", server.banner))
            .to_owned();
        let (status, _) = server.post("/organizations", Some(&line), json!({"name": "acme"}));
        assert_eq!(status, StatusCode::CREATED);
        line
    };
    let server = Server::start(dir.path(), None);
    assert!(
        !server.banner.contains("operator token"),
        "shown again: {}",
        server.banner
    );
    let (status, organizations) = server.get("/organizations", &token);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(organizations["results"][0]["name"], "acme");
    // The database holds the token's hash, never the token.
    let database = std::fs::read(dir.path().join("wasmhook.db")).expect("the database file");
    let text = String::from_utf8_lossy(&database);
    assert!(!text.contains(&token));
}
