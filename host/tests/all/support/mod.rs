//! What the tests share, and the one place they import from: one runtime (as a server has
//! one), modules loaded once, a helper to call a guest the way a hook call would; the small
//! helpers of the server tests (a data directory, a payload, the compiled artifacts,
//! waiting for an event); the real server and an organization calling it (`server.rs`),
//! DRF's error shapes (`drf.rs`) and a scripted loopback HTTP server (`upstream.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};
use wasmhook::dispatch::{HookCall, PreparedCall};
use wasmhook::model::{EventAction, EventFields};
use wasmhook::runtime::{CallLimits, LoadedModule, RunReport, Runtime, RuntimeConfig};

mod drf;
mod server;
mod upstream;

pub use drf::{detail_of, field_error, field_message, message_at, Shape};
// Each test binary (tests/all, tests/postgres) uses part of these.
#[allow(unused_imports)]
pub use server::{
    api_path, execute_in_database, http_client, http_client_builder, id_of, register_template,
    rss_kib_of, schema_url_of, series, share_database, sign, Database, Server, Tenant,
    OPERATOR_TOKEN,
};
pub use upstream::{Reply, TlsUpstream, Upstream};

/// The base URL put into test payloads, as the conformance cases' URLs use.
pub const BASE_URL: &str = "http://localhost:8080";

/// The process-wide runtime, built once.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new(RuntimeConfig::default()).expect("the runtime starts"))
}

/// A module from its path, loaded (compiled once, then cached by the runtime).
pub fn module(path: &str) -> Arc<LoadedModule> {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    runtime()
        .load(&bytes)
        .unwrap_or_else(|error| panic!("cannot load {path}: {error}"))
}

/// Settings as a JSON object.
pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("expected an object, got {other}"),
    }
}

/// One call of a module as a hook would make it.
pub struct Call {
    pub event: EventAction,
    pub settings: Map<String, Value>,
    pub secrets: Vec<(String, String)>,
    pub body: Map<String, Value>,
    pub limits: CallLimits,
}

impl Call {
    /// An `annotation_content.initialize` call with these settings and default limits.
    pub fn with_settings(settings: Value) -> Self {
        Call {
            event: EventAction::new("annotation_content", "initialize").expect("a known event"),
            settings: object(settings),
            secrets: Vec::new(),
            body: Map::new(),
            limits: CallLimits::default(),
        }
    }

    /// Prepares the call (payload and invocation) as dispatch does.
    pub fn prepare(&self) -> PreparedCall {
        PreparedCall::new(&HookCall {
            request_id: "test-request",
            queue_id: None,
            event: &self.event,
            hook_id: 7,
            hook_type: wasmhook::model::hook::HookType::Function,
            organization_id: 3,
            base_url: BASE_URL,
            settings: &self.settings,
            secrets: &self.secrets,
            token: None,
            body: &EventFields::from_map(&self.body),
            payload_logging: true,
        })
        .expect("the payload assembles")
    }

    /// Runs it on the shared runtime.
    pub async fn run(&self, module: &LoadedModule) -> RunReport {
        self.run_on(runtime(), module).await
    }

    /// Runs it on a given runtime.
    pub async fn run_on(&self, runtime: &Runtime, module: &LoadedModule) -> RunReport {
        let prepared = self.prepare();
        runtime
            .call(module, &prepared.invocation, &self.limits)
            .await
    }
}

/// A hostile guest call doing `behavior`.
pub fn hostile(behavior: &str) -> Call {
    Call::with_settings(serde_json::json!({ "behavior": behavior }))
}

/// Runs the `wasmhook` binary with `args` to its end, its compiled-code cache in a
/// directory of its own for `suite` (`cli`, `scaffold`) and this test process.
pub fn run_wasmhook(suite: &str, args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("wasmhook-{suite}-tests-{}", std::process::id()));
    Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(args)
        .env("WASMHOOK_CACHE_DIR", cache)
        .output()
        .expect("the binary runs")
}

/// A temporary directory (a server's data directory), removed when dropped.
pub fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// The payload of `annotation_content.initialize` for an empty annotation with this id.
pub fn initialize_annotation(id: u64) -> Value {
    serde_json::json!({"event": "annotation_content", "action": "initialize", "annotation": {"id": id, "content": []}})
}

/// The payload of `annotation_content.initialize` for an empty annotation 1.
pub fn initialize() -> Value {
    initialize_annotation(1)
}

/// Every compiled artifact in a server's data directory with its modification time,
/// sorted by name.
pub fn artifacts(data_dir: &Path) -> Vec<(String, SystemTime)> {
    let mut found: Vec<_> = std::fs::read_dir(data_dir.join("artifacts"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| {
                    let modified = entry.metadata().ok()?.modified().ok()?;
                    Some((entry.file_name().to_string_lossy().into_owned(), modified))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The names of [`artifacts`], sorted.
pub fn artifact_names(data_dir: &Path) -> Vec<String> {
    artifacts(data_dir)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// How often [`wait_until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Waits for an event rather than sleeping for a guess of how long it takes: looks at
/// `condition` until it holds or `deadline` has passed; whether it held. The caller
/// asserts on the answer, naming the event that did not come.
pub fn wait_until(deadline: Instant, mut condition: impl FnMut() -> bool) -> bool {
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// The `bin` folder of a virtual environment under `target/toolchains/NAME/` holding the
/// Python packages `requirements` pins (Rossum's client, schemathesis), installed from PyPI
/// by `host/tests/python/venv.sh` the first time a test run asks, and not again while the
/// requirements are unchanged (the script holds a lock, so test processes running together
/// install once).
pub fn python_venv(name: &str, requirements: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/venv.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(name)
        .arg(requirements)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed (its output is above): {name} is installed from PyPI with python3",
        script.display()
    );
    let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        bin.join("python").is_file(),
        "{} printed {bin:?}, not a virtual environment's bin folder",
        script.display()
    );
    bin
}
