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

use super::drf::Shape;

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

/// A server with one organization, `acme`, and its admin: what the tests of accounts and
/// bad input start from.
struct Acme {
    /// Declared before the directory, so that it stops before the directory is removed.
    server: Server,
    _dir: tempfile::TempDir,
    /// The organization's URL.
    organization: String,
    /// Its admin's token.
    admin: String,
}

fn acme() -> Acme {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (organization, admin) = server.organization_with_admin("acme");
    Acme {
        server,
        _dir: dir,
        organization,
        admin,
    }
}

/// Creates `ann` (password "ann's password") as acme's admin; the new user.
fn create_ann(acme: &Acme) -> Value {
    let (status, member) = acme.server.post(
        "/users",
        Some(&acme.admin),
        json!({"username": "ann", "password": "ann's password", "email": "ann@acme.example"}),
    );
    assert_eq!(status, StatusCode::CREATED, "{member}");
    member
}

#[test]
fn an_admin_creates_a_member_of_its_own_organization() {
    let acme = acme();
    let member = create_ann(&acme);
    assert_eq!(member["organization"], acme.organization);
    assert_eq!(member["role"], "member");
    assert!(member.get("password").is_none());
}

#[test]
fn a_member_logs_in_with_a_form_as_rossums_login_takes_it() {
    let acme = acme();
    create_ann(&acme);
    let response = acme
        .server
        .client
        .post(acme.server.url("/auth/login"))
        .form(&[("username", "ann"), ("password", "ann's password")])
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().expect("JSON");
    let ann = answer["key"].as_str().expect("a key");
    let (status, users) = acme.server.get("/users", ann);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users["pagination"]["total"], 2);
}

#[test]
fn a_token_is_taken_with_the_token_scheme_too() {
    let acme = acme();
    let response = acme
        .server
        .client
        .get(acme.server.url("/users"))
        .header("Authorization", format!("Token {}", acme.admin))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn a_logged_out_token_is_refused() {
    let acme = acme();
    create_ann(&acme);
    let ann = acme.server.login("ann", "ann's password");
    let (status, body) = acme.server.post("/auth/logout", Some(&ann), json!({}));
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = acme.server.get("/users", &ann);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"detail": "Invalid token."}));
}

/// Two organizations on one server, `acme` and `globex`, each with its admin.
struct Two {
    /// Declared before the directory, so that it stops before the directory is removed.
    server: Server,
    _dir: tempfile::TempDir,
    acme: String,
    acme_admin: String,
    globex: String,
    globex_admin: String,
}

fn acme_and_globex() -> Two {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = Server::start(dir.path(), Some(OPERATOR_TOKEN));
    let (acme, acme_admin) = server.organization_with_admin("acme");
    let (globex, globex_admin) = server.organization_with_admin("globex");
    Two {
        server,
        _dir: dir,
        acme,
        acme_admin,
        globex,
        globex_admin,
    }
}

#[test]
fn an_admin_cannot_read_another_organizations_users_or_the_organization() {
    let two = acme_and_globex();
    let server = &two.server;
    let (_, globex_users) = server.get("/users", &two.globex_admin);
    let globex_user = globex_users["results"][0]["id"].as_u64().expect("an id");
    assert_eq!(
        server
            .get(&format!("/users/{globex_user}"), &two.acme_admin)
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(
                &format!("/organizations/{}", id_of(&two.globex)),
                &two.acme_admin
            )
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .get(
                &format!("/organizations/{}", id_of(&two.acme)),
                &two.acme_admin
            )
            .0,
        StatusCode::OK
    );
}

#[test]
fn an_admins_lists_hold_only_its_own_organization() {
    let two = acme_and_globex();
    let server = &two.server;
    let (_, organizations) = server.get("/organizations", &two.acme_admin);
    assert_eq!(organizations["pagination"]["total"], 1);
    assert_eq!(organizations["results"][0]["url"], two.acme);
    let (_, users) = server.get(
        &format!("/users?organization={}", id_of(&two.globex)),
        &two.acme_admin,
    );
    assert_eq!(users["pagination"]["total"], 0, "{users}");
}

#[test]
fn an_admin_cannot_create_a_user_in_another_organization() {
    let two = acme_and_globex();
    let (status, body) = two.server.post(
        "/users",
        Some(&two.acme_admin),
        json!({"username": "mole", "password": "long enough", "organization": two.globex}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        Shape::Field(
            "organization",
            "admins create users of their own organization only"
        )
        .fits(&body),
        "{body}"
    );
}

#[test]
fn the_operator_sees_every_organization() {
    let two = acme_and_globex();
    let (_, organizations) = two.server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(organizations["pagination"]["total"], 2);
}

#[test]
fn only_the_operator_creates_organizations() {
    let acme = acme();
    let (status, _) =
        acme.server
            .post("/organizations", Some(&acme.admin), json!({"name": "mine"}));
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[test]
fn a_member_creates_no_users() {
    let acme = acme();
    let server = &acme.server;
    server.post(
        "/users",
        Some(&acme.admin),
        json!({"username": "max", "password": "long enough"}),
    );
    let max = server.login("max", "long enough");
    let (status, _) = server.post(
        "/users",
        Some(&max),
        json!({"username": "min", "password": "long enough"}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Checks each answer of a refused request: its status, and a `detail` that holds the
/// needle. Cases are numbered in the messages in the order given.
fn assert_refused(cases: Vec<((StatusCode, Value), StatusCode, Shape)>) {
    for (index, ((status, body), expected, shape)) in cases.into_iter().enumerate() {
        assert_eq!(status, expected, "case {index}: {body}");
        assert!(
            shape.fits(&body),
            "case {index}: {shape:?} does not fit {body}"
        );
    }
}

/// Nothing of the refused requests was written: acme has only its admin, and is the only
/// organization.
fn assert_nothing_written(acme: &Acme) {
    let (_, users) = acme.server.get("/users", &acme.admin);
    assert_eq!(users["pagination"]["total"], 1, "{users}");
    let (_, organizations) = acme.server.get("/organizations", OPERATOR_TOKEN);
    assert_eq!(organizations["pagination"]["total"], 1);
    assert_eq!(organizations["results"][0]["url"], acme.organization);
}

#[test]
fn a_user_with_a_bad_field_is_refused_naming_it() {
    let acme = acme();
    let user = |body: Value| acme.server.post("/users", Some(&acme.admin), body);
    assert_refused(vec![
        (
            user(json!({"password": "long enough"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("username", "This field is required."),
        ),
        (
            user(json!({"username": "x", "password": "short"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("password", "at least 8"),
        ),
        (
            user(json!({"username": "has space", "password": "long enough"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("username", "letters, digits and @.+-_"),
        ),
        (
            user(json!({"username": "acme-admin", "password": "long enough"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("username", "this username cannot be used"),
        ),
        (
            user(json!({"username": "y", "password": "long enough", "role": "owner"})),
            StatusCode::BAD_REQUEST,
            Shape::Field("role", "`owner` is not one of admin, member"),
        ),
        (
            user(json!({"username": "y", "password": "long enough", "shoe_size": 44})),
            StatusCode::BAD_REQUEST,
            Shape::Field("shoe_size", "not a field here"),
        ),
        (
            user(json!(["not", "an", "object"])),
            StatusCode::BAD_REQUEST,
            Shape::NonField("Expected a dictionary, but got list."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn the_operator_must_name_an_existing_organization_for_a_user() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.post(
                "/users",
                Some(OPERATOR_TOKEN),
                json!({"username": "z", "password": "long enough"}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::Field("organization", "required"),
        ),
        (
            acme.server.post(
                "/users",
                Some(OPERATOR_TOKEN),
                json!({"username": "z", "password": "long enough", "organization": 999}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::Field("organization", "no such organization"),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn an_organization_without_a_name_is_refused() {
    let acme = acme();
    assert_refused(vec![(
        acme.server.post(
            "/organizations",
            Some(OPERATOR_TOKEN),
            json!({"name": "  "}),
        ),
        StatusCode::BAD_REQUEST,
        Shape::Field("name", "must be 1 to 200 characters"),
    )]);
    assert_nothing_written(&acme);
}

#[test]
fn a_bad_page_or_page_size_is_refused_naming_it() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.get("/users?page_size=many", &acme.admin),
            StatusCode::BAD_REQUEST,
            Shape::Field("page_size", "must be a positive integer, not `many`"),
        ),
        (
            acme.server.get("/users?page=0", &acme.admin),
            StatusCode::BAD_REQUEST,
            Shape::Field("page", "must be a positive integer, not `0`"),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn a_missing_or_unknown_token_gets_401() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.get("/users", "not-a-token"),
            StatusCode::UNAUTHORIZED,
            Shape::Detail("Invalid token."),
        ),
        (
            acme.server.send(Method::GET, "/users", None, None),
            StatusCode::UNAUTHORIZED,
            Shape::Detail("Authentication credentials were not provided."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn an_unknown_id_or_path_gets_404() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.get("/users/banana", &acme.admin),
            StatusCode::NOT_FOUND,
            Shape::Detail("Not found."),
        ),
        (
            acme.server.get("/no/such/thing", &acme.admin),
            StatusCode::NOT_FOUND,
            Shape::Detail("Not found."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn a_wrong_password_and_an_unknown_username_get_the_same_refusal() {
    let acme = acme();
    assert_refused(vec![
        (
            acme.server.post(
                "/auth/login",
                None,
                json!({"username": "acme-admin", "password": "wrong password"}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::NonField("Unable to log in with provided credentials."),
        ),
        (
            acme.server.post(
                "/auth/login",
                None,
                json!({"username": "nobody", "password": "whatever it is"}),
            ),
            StatusCode::BAD_REQUEST,
            Shape::NonField("Unable to log in with provided credentials."),
        ),
    ]);
    assert_nothing_written(&acme);
}

#[test]
fn malformed_json_gets_400_and_writes_nothing() {
    let acme = acme();
    let response = acme
        .server
        .client
        .post(acme.server.url("/users"))
        .bearer_auth(&acme.admin)
        .header("Content-Type", "application/json")
        .body("{\"username\": ")
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_nothing_written(&acme);
}

#[test]
fn a_body_over_the_limit_gets_413_and_writes_nothing() {
    let acme = acme();
    // Its own client: the server closes a connection whose body it refused to read.
    let response = http_client()
        .post(acme.server.url("/organizations"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("Content-Type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(3 << 20)))
        .send()
        .expect("answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_nothing_written(&acme);
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

/// Starts a server on a fresh data directory without an operator token, creates `acme`
/// with the token it shows, and starts it again: the directory, the second server and the
/// token (in that order, so that the server stops before the directory is removed).
fn restarted_with_a_generated_token() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let token = {
        let server = Server::start(dir.path(), None);
        let token = server
            .banner
            .lines()
            .find_map(|line| line.strip_prefix("operator token (shown once, keep it): "))
            .unwrap_or_else(|| panic!("no operator token in: {}", server.banner))
            .to_owned();
        let (status, _) = server.post("/organizations", Some(&token), json!({"name": "acme"}));
        assert_eq!(status, StatusCode::CREATED);
        token
    };
    let server = Server::start(dir.path(), None);
    (dir, server, token)
}

#[test]
fn a_generated_operator_token_is_shown_at_the_first_start_only() {
    let (_dir, server, _) = restarted_with_a_generated_token();
    assert!(
        !server.banner.contains("operator token"),
        "shown again: {}",
        server.banner
    );
}

#[test]
fn a_restart_keeps_the_organizations_and_the_generated_token() {
    let (_dir, server, token) = restarted_with_a_generated_token();
    let (status, organizations) = server.get("/organizations", &token);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(organizations["results"][0]["name"], "acme");
}

#[test]
fn the_database_holds_the_operator_tokens_hash_never_the_token() {
    let (dir, _server, token) = restarted_with_a_generated_token();
    let database = std::fs::read(dir.path().join("wasmhook.db")).expect("the database file");
    let text = String::from_utf8_lossy(&database);
    assert!(!text.contains(&token));
}
