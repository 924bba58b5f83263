//! `wasmhook run`: one call of one module, on this machine, as a hook call would make it.
//!
//! Other tools depend on this interface: `wasmhook run MODULE [--event EVENT.ACTION]
//! [--payload FILE] [--settings FILE] [--secret NAME=VALUE]... [--timeout-s N]
//! [--memory-mb N] [--allow-host HOST]... [--allow-private-addresses] [--json]`. Exit 0: completed; 1: the run failed or timed out; 2: bad
//! usage or a module that cannot be loaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

use super::{EXIT_COMPLETED, EXIT_RUN_FAILED, EXIT_USAGE};
use crate::dispatch::{HookCall, PreparedCall};
use crate::model::hook::HookType;
use crate::model::{EventAction, EventFields, RunLog};
use crate::outbound::{AllowList, HostPattern, Outbound, OutboundConfig, PatternError};
use crate::runtime::config::{
    DEFAULT_MAX_MEMORY_BYTES, DEFAULT_MAX_TIMEOUT, MIN_MEMORY_BYTES, MIN_TIMEOUT,
};
use crate::runtime::{CallLimits, NetworkGrant, Runtime, RuntimeConfig};

/// Base URL the local runner puts in payloads; the URLs in the conformance cases use it.
const LOCAL_BASE_URL: &str = "http://localhost:8080";
/// Instances a single local run needs; keeps the pool's reservation small.
const LOCAL_INSTANCES: u32 = 4;
const MIB: u64 = 1024 * 1024;

/// The arguments of `wasmhook run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The module: a component of the wasmhook:extension world, or a WASI command.
    module: PathBuf,

    /// The event and action to call it for.
    #[arg(
        long,
        value_name = "EVENT.ACTION",
        default_value = "annotation_content.initialize"
    )]
    event: EventAction,

    /// A JSON object with the event's own keys (annotation, document, ...).
    #[arg(long, value_name = "FILE")]
    payload: Option<PathBuf>,

    /// A JSON object: the hook's settings.
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,

    /// A secret the extension receives; may be repeated.
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = parse_secret)]
    secrets: Vec<(String, String)>,

    /// Wall-time limit in seconds.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(MIN_TIMEOUT.as_secs()..=DEFAULT_MAX_TIMEOUT.as_secs()))]
    timeout_s: u64,

    /// Memory limit in MiB.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(MIN_MEMORY_BYTES / MIB..=DEFAULT_MAX_MEMORY_BYTES / MIB))]
    memory_mb: u64,

    /// A host (or host:port, or *.domain) the module may call through wasi:http, as a
    /// hook's `config.allowed_hosts` allows it; may be repeated. None: no network.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_host)]
    allow_hosts: Vec<HostPattern>,

    /// Also let it reach loopback and private addresses (a service on this machine).
    #[arg(long)]
    allow_private_addresses: bool,

    /// Print the whole run log as one JSON object instead of the response.
    #[arg(long)]
    json: bool,
}

fn parse_host(text: &str) -> Result<HostPattern, PatternError> {
    HostPattern::parse(text)
}

fn parse_secret(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

/// Runs the module once and prints the result; returns the process's exit code.
pub(super) fn run(args: &RunArgs, cache_dir: Option<PathBuf>) -> ExitCode {
    match execute(args, cache_dir) {
        Ok(log) => {
            let completed = log.status == crate::model::RunStatus::Completed;
            if let Err(error) = print(args, &log) {
                eprintln!("error: could not print the result: {error}");
                return ExitCode::from(EXIT_RUN_FAILED);
            }
            ExitCode::from(if completed {
                EXIT_COMPLETED
            } else {
                EXIT_RUN_FAILED
            })
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Loads, calls, and returns the run log; an error here is a usage or loading problem.
fn execute(args: &RunArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<RunLog> {
    let bytes = std::fs::read(&args.module)
        .with_context(|| format!("cannot read the module {}", args.module.display()))?;
    let body = EventFields::from_map(&read_object(args.payload.as_deref(), "payload")?);
    let settings = read_object(args.settings.as_deref(), "settings")?;

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir,
        max_instances: LOCAL_INSTANCES,
        ..RuntimeConfig::default()
    })?;
    let module = runtime
        .load(&bytes)
        .with_context(|| format!("cannot load {}", args.module.display()))?;

    let request_id = uuid::Uuid::new_v4().to_string();
    let call = PreparedCall::new(&HookCall {
        request_id: &request_id,
        queue_id: None,
        event: &args.event,
        hook_id: 0,
        hook_type: HookType::Function,
        organization_id: 0,
        base_url: LOCAL_BASE_URL,
        settings: &settings,
        secrets: &args.secrets,
        token: None,
        body: &body,
        // A local run shows its developer the payload it sent, secrets redacted.
        payload_logging: true,
    })?;
    let network = match args.allow_hosts.is_empty() {
        true => None,
        false => {
            let outbound = Outbound::new(
                OutboundConfig {
                    allow_private_addresses: args.allow_private_addresses,
                    ..OutboundConfig::default()
                },
                None,
            )?;
            Some(NetworkGrant {
                outbound: Arc::new(outbound),
                allowed: AllowList::new(args.allow_hosts.clone()),
                organization: 0,
            })
        }
    };
    let limits = CallLimits {
        timeout: Duration::from_secs(args.timeout_s),
        memory_bytes: args.memory_mb * MIB,
        network,
        ..CallLimits::default()
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = tokio.block_on(runtime.call(&module, &call.invocation, &limits));
    Ok(call.run_log(&report))
}

/// A JSON object from a file, or an empty one when no file is given.
fn read_object(path: Option<&Path>, what: &str) -> anyhow::Result<Map<String, Value>> {
    let Some(path) = path else {
        return Ok(Map::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("the {what} file {} is not valid JSON", path.display()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => bail!("the {what} file {} must hold a JSON object", path.display()),
    }
}

/// Without `--json`: the response (secrets redacted) on stdout, a summary on stderr.
fn print(args: &RunArgs, log: &RunLog) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, log)?;
        writeln!(stdout)?;
        return Ok(());
    }
    if let Some(response) = &log.response {
        serde_json::to_writer_pretty(&mut stdout, response)?;
        writeln!(stdout)?;
    }
    let mut stderr = std::io::stderr().lock();
    let status = serde_json::to_value(log.status).unwrap_or(Value::Null);
    writeln!(
        stderr,
        "status: {} in {:.2} ms",
        status.as_str().unwrap_or("?"),
        log.duration_ms
    )?;
    if !log.message.is_empty() && log.status != crate::model::RunStatus::Completed {
        writeln!(stderr, "message: {}", log.message)?;
    }
    if let Some(output) = log.output.as_deref().filter(|output| !output.is_empty()) {
        writeln!(stderr, "output:\n{}", output.trim_end())?;
    }
    Ok(())
}
