//! The three servers compared, each started as its own process on a free port of
//! 127.0.0.1 and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// The operator token every benchmarked wasmhook starts with.
pub const OPERATOR_TOKEN: &str = "operator-token-for-benchmarks-0123456789";

/// A server process; killed when dropped.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pub address: String,
}

impl Running {
    /// The process id, to read its memory.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops it with SIGTERM and waits.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await?;
        }
        self.child.wait().await?;
        Ok(())
    }
}

/// A free port on 127.0.0.1.
pub fn free_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

/// Starts `command` and waits until its address accepts connections.
pub async fn spawn(mut command: Command, address: String) -> anyhow::Result<Running> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let child = command.spawn().context("cannot start a server")?;
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&address).await.is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the server at {address} did not start within a minute");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Running { child, address })
}

/// (a) The native axum handler: this binary's `native` subcommand.
pub async fn native() -> anyhow::Result<Running> {
    let address = free_address()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["native", "--listen", &address]);
    spawn(command, address).await
}

/// (b) `wasmtime serve` running the wasi:http invoice-check component.
pub async fn wasmtime_serve(wasmtime: &Path, component: &Path) -> anyhow::Result<Running> {
    let address = free_address()?;
    let mut command = Command::new(wasmtime);
    command
        .args(["serve", "-Scli", "--addr", &address])
        .arg(component);
    spawn(command, address).await
}

/// (c) `wasmhook serve` on a data directory.
pub async fn wasmhook(binary: &Path, data_dir: &Path) -> anyhow::Result<Running> {
    wasmhook_on(binary, data_dir, None).await
}

/// `wasmhook serve` on a data directory, its rows in the PostgreSQL database at `database`
/// when one is given (else SQLite in the data directory).
///
/// Without tiered compilation: these servers are measured in their steady state, every
/// call on the optimized code, which with tiers (the default) is what every call runs
/// once the background compile has swapped it in, a second or so after an upload; a run
/// must not measure a module's first calls on Winch's code by chance. What tiers change,
/// an upload's first call, is measured on [`wasmhook_tiered`].
pub async fn wasmhook_on(
    binary: &Path,
    data_dir: &Path,
    database: Option<&str>,
) -> anyhow::Result<Running> {
    spawn_wasmhook(binary, data_dir, database, false).await
}

/// `wasmhook serve` as configured by default: uploads compiled by Winch first, their
/// optimized code in the background.
pub async fn wasmhook_tiered(binary: &Path, data_dir: &Path) -> anyhow::Result<Running> {
    spawn_wasmhook(binary, data_dir, None, true).await
}

async fn spawn_wasmhook(
    binary: &Path,
    data_dir: &Path,
    database: Option<&str>,
    tiered: bool,
) -> anyhow::Result<Running> {
    let address = free_address()?;
    let mut command = Command::new(binary);
    command
        .args(["serve", "--listen", &address, "--data-dir"])
        .arg(data_dir);
    if let Some(database) = database {
        command.args(["--database", database]);
    }
    command
        .env(
            "WASMHOOK_TIERED_COMPILE",
            if tiered { "true" } else { "false" },
        )
        .env("WASMHOOK_OPERATOR_TOKEN", OPERATOR_TOKEN)
        // The cold-path measurement keeps 1,000 modules in one organization (default limit 100).
        .env("WASMHOOK_MODULES_PER_ORGANIZATION", "100000")
        // Room for a warm instance per connection of the warm-instance runs (w): at the
        // defaults (4 per organization, 1 GiB) most of 64 concurrent calls would find none.
        .env("WASMHOOK_WARM_INSTANCES", "64")
        .env("WASMHOOK_WARM_INSTANCES_PER_ORGANIZATION", "64")
        .env("WASMHOOK_WARM_MEMORY_MB", "4096");
    spawn(command, address).await
}

/// An organization of a running wasmhook, with its admin's token.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub base: String,
    pub token: String,
    client: reqwest::Client,
}

impl Tenant {
    /// Creates an organization and its admin, and logs in.
    pub async fn create(address: &str, name: &str) -> anyhow::Result<Tenant> {
        let base = format!("http://{address}/api/v1");
        let client = reqwest::Client::new();
        let operator = Tenant {
            base: base.clone(),
            token: OPERATOR_TOKEN.into(),
            client: client.clone(),
        };
        let organization = operator
            .post("/organizations", json!({"name": name}))
            .await?;
        let username = format!("{name}-admin");
        operator
            .post(
                "/users",
                json!({"username": username, "password": "benchmark password",
                       "role": "admin", "organization": organization["url"]}),
            )
            .await?;
        let login = operator
            .post(
                "/auth/login",
                json!({"username": username, "password": "benchmark password"}),
            )
            .await?;
        let token = login["key"].as_str().context("no key")?.to_owned();
        Ok(Tenant {
            base,
            token,
            client,
        })
    }

    /// Logs in again (after a restart, on a new address).
    pub async fn login(address: &str, name: &str) -> anyhow::Result<Tenant> {
        let base = format!("http://{address}/api/v1");
        let client = reqwest::Client::new();
        let response = client
            .post(format!("{base}/auth/login"))
            .json(&json!({"username": format!("{name}-admin"), "password": "benchmark password"}))
            .send()
            .await?
            .error_for_status()?;
        let login: Value = response.json().await?;
        let token = login["key"].as_str().context("no key")?.to_owned();
        Ok(Tenant {
            base,
            token,
            client,
        })
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {body}");
        }
        Ok(body)
    }

    /// Uploads module bytes; returns the module's URL.
    pub async fn upload(&self, bytes: Vec<u8>, name: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .post(format!("{}/modules?name={name}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("upload: {status} {body}");
        }
        Ok(body["url"].as_str().context("no url")?.to_owned())
    }

    /// Creates a function hook; returns its id. Its 64 MiB (hello and invoice-check need a
    /// few) keep 64 connections' calls within one organization's memory share: at the
    /// default 256 MiB a share of half of 3/4 of 24 GiB admits about 36 at once, and the
    /// rest of a 64-connection run would measure 429s.
    pub async fn hook(&self, module: &str, extra: Value) -> anyhow::Result<u64> {
        let mut body = json!({
            "name": "benchmarked",
            "events": ["invocation.manual", "annotation_content"],
            "config": {"runtime": "wasm", "module": module, "timeout_s": 30, "memory_size_mb": 64},
        });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let hook = self.post("/hooks", body).await?;
        hook["id"].as_u64().context("no id")
    }

    /// Invokes a hook once; its answer's status (the body is read and dropped).
    pub async fn invoke_status(
        &self,
        hook: u64,
        body: &Value,
    ) -> anyhow::Result<reqwest::StatusCode> {
        let response = self
            .client
            .post(format!("{}/hooks/{hook}/invoke", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let _ = response.bytes().await?;
        Ok(status)
    }

    /// Invokes a hook until it answers 200 (a pending module answers 400 meanwhile).
    pub async fn invoke_until_ready(&self, hook: u64, body: &Value) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let response = self
                .client
                .post(format!("{}/hooks/{hook}/invoke", self.base))
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await?;
            if response.status().is_success() {
                return Ok(response.json().await?);
            }
            if started.elapsed() > Duration::from_secs(300) {
                bail!("hook {hook} never answered: {}", response.text().await?);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Resident set size of a process, in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// Where the release build puts a sibling binary of this one.
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p wasmhook`",
            path.display()
        );
    }
    Ok(path)
}
