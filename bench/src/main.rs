//! `wasmhook-bench`: wasmhook's server against a native handler and `wasmtime serve`, its
//! cold paths, and a noisy neighbour. `bench/run.sh` builds what it needs and runs
//! `compare`; BENCHMARKS.md quotes its output.

#![allow(clippy::print_stdout)] // The report on stdout is what this tool is for.

mod load;
mod servers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use clap::{Parser, Subcommand};
use serde_json::{json, Map, Value};
use wasmhook_sdk::{Call, Extension};
use wasmhook_tests::conformance::cases;

use load::{Report, Target};
use servers::{Running, Tenant};

/// Benchmarks of the wasmhook server.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every comparison and print the report.
    Compare(CompareArgs),
    /// Serve invoice-check natively (the ceiling of the comparison).
    Native {
        #[arg(long)]
        listen: String,
    },
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds of the interleaved a b c runs.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// `wasmtime` (wasmtime-cli 48) for `wasmtime serve`.
    #[arg(long)]
    wasmtime: PathBuf,
    /// The wasi:http invoice-check component.
    #[arg(long)]
    http_component: PathBuf,
    /// Modules and hooks in the restart measurement.
    #[arg(long, default_value_t = 1000)]
    modules: usize,
    /// Which parts to run (comma-separated); all unless given.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Throughput, Part::Noisy, Part::Cold])]
    only: Vec<Part>,
}

/// A part of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// (a), (b) and (c) under load.
    Throughput,
    /// The noisy neighbour.
    Noisy,
    /// Upload to first call, restart with many modules, idle memory.
    Cold,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Native { listen } => runtime.block_on(native(&listen)),
        Command::Compare(args) => runtime.block_on(compare(&args)),
    }
}

/// (a): invoice-check as a plain axum handler, the same code as the example's.
async fn native(listen: &str) -> anyhow::Result<()> {
    async fn handle(body: Bytes) -> axum::response::Response {
        let answer = serde_json::from_slice(&body)
            .map_err(|error| error.to_string())
            .and_then(|payload| Call::from_payload(payload).map_err(|error| error.to_string()))
            .and_then(|call| {
                invoice_check::InvoiceCheck::handle(&call)
                    .map(|response| response.to_json())
                    .map_err(|error| error.to_string())
            });
        match answer {
            Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
            Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
        }
    }
    let app = axum::Router::new().route("/", axum::routing::post(handle));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The `invoice-problems` case: the hook's settings and secrets, the event's keys, and the
/// whole payload a hook would receive (what (a) and (b) are sent).
struct Workload {
    settings: Map<String, Value>,
    secrets: Map<String, Value>,
    body: Value,
    payload: Value,
}

fn workload() -> anyhow::Result<Workload> {
    let case = cases()
        .into_iter()
        .find(|case| case.name == "invoice-problems")
        .context("the invoice-problems case")?;
    let mut payload = json!({
        "request_id": "6f2d2ac0-0b4e-4d43-9a8f-2b3c4d5e6f70",
        "timestamp": "2026-11-24T10:00:00.000000Z",
        "hook": "http://127.0.0.1/api/v1/hooks/1",
        "action": "manual",
        "event": "invocation",
        "base_url": "http://127.0.0.1",
        "settings": case.settings,
        "secrets": case.secrets,
    });
    if let Some(payload) = payload.as_object_mut() {
        payload.extend(case.body.clone());
    }
    Ok(Workload {
        settings: case.settings,
        secrets: case.secrets,
        body: Value::Object(case.body),
        payload,
    })
}

/// A module's bytes made unique (a custom section with a fresh name), so that an upload is
/// a first upload and compiles.
fn unique(bytes: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = format!("wasmhook-bench-{tag}");
    let mut content = Vec::new();
    leb(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

async fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    let wasmhook_binary = servers::sibling("wasmhook")?;
    let seconds = Duration::from_secs(args.seconds);
    let data = tempfile::tempdir()?;
    let c = servers::wasmhook(&wasmhook_binary, data.path()).await?;
    if args.only.contains(&Part::Throughput) {
        throughput(args, &c, data.path()).await?;
    }
    if args.only.contains(&Part::Noisy) {
        noisy_neighbour(&c, seconds).await?;
    }
    if args.only.contains(&Part::Cold) {
        cold_paths(&c, &wasmhook_binary, args.modules).await?;
    }
    c.stop().await?;
    Ok(())
}

/// (a), (b) and (c) interleaved at 16 and 64 connections, and the run logs (c) wrote.
async fn throughput(args: &CompareArgs, c: &Running, data: &std::path::Path) -> anyhow::Result<()> {
    let work = workload()?;
    let seconds = Duration::from_secs(args.seconds);
    let a = servers::native().await?;
    let b = servers::wasmtime_serve(&args.wasmtime, &args.http_component).await?;
    let tenant = Tenant::create(&c.address, "bench").await?;
    let module = tenant
        .upload(
            std::fs::read(wasmhook_tests::guests::INVOICE_CHECK)?,
            "invoice-check",
        )
        .await?;
    let hook = tenant
        .hook(
            &module,
            json!({"settings": work.settings, "secrets": work.secrets}),
        )
        .await?;
    let payload = Bytes::from(work.payload.to_string());
    let targets = [
        (
            "a",
            "native axum",
            Target {
                address: a.address.clone(),
                path: "/".into(),
                headers: vec![],
                body: payload.clone(),
            },
        ),
        (
            "b",
            "wasmtime serve",
            Target {
                address: b.address.clone(),
                path: "/".into(),
                headers: vec![],
                body: payload,
            },
        ),
        (
            "c",
            "wasmhook invoke",
            Target {
                address: c.address.clone(),
                path: format!("/api/v1/hooks/{hook}/invoke"),
                headers: vec![("authorization".into(), format!("Bearer {}", tenant.token))],
                body: Bytes::from(work.body.to_string()),
            },
        ),
    ];
    // Every server answers the same thing before anything is measured.
    let mut invoked = 0;
    for (key, name, target) in &targets {
        let check = load::run(target, 1, Duration::from_millis(300)).await?;
        anyhow::ensure!(
            check.errors == 0 && check.requests > 0,
            "{name} does not answer"
        );
        if *key == "c" {
            invoked += check.requests;
        }
    }

    let mut results: Vec<(usize, &str, Report)> = Vec::new();
    for round in 0..args.rounds {
        for connections in [16, 64] {
            for (key, name, target) in &targets {
                eprintln!("round {round}: {name}, {connections} connections");
                let report = load::run(target, connections, seconds).await?;
                results.push((connections, key, report));
            }
        }
    }
    println!("## Throughput: invoice-check on the invoice-problems case\n");
    println!(
        "{} s per run, {} rounds interleaved (a b c a b c), 127.0.0.1, same 2 cores for client and server.\n",
        args.seconds, args.rounds
    );
    println!("| connections | server | req/s | p50 | p99 | errors |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for connections in [16, 64] {
        for (key, name, _) in &targets {
            let runs: Vec<&Report> = results
                .iter()
                .filter(|(c, k, _)| *c == connections && k == key)
                .map(|(_, _, report)| report)
                .collect();
            let (rate, p50, p99, errors) = summarize(&runs);
            println!(
                "| {connections} | ({key}) {name} | {rate:.0} | {} | {} | {errors} |",
                ms(p50),
                ms(p99)
            );
        }
        let rate = |key: &str| {
            let runs: Vec<&Report> = results
                .iter()
                .filter(|(c, k, _)| *c == connections && *k == key)
                .map(|(_, _, report)| report)
                .collect();
            summarize(&runs)
        };
        let (ra, _, pa, _) = rate("a");
        let (rb, _, pb, _) = rate("b");
        let (rc, _, pc, _) = rate("c");
        println!(
            "| {connections} | **ratios** | c/a {:.2}x, c/b {:.2}x | | p99 c/b {:.2}x, c/a {:.2}x | |",
            rc / ra,
            rc / rb,
            pc.as_secs_f64() / pb.as_secs_f64(),
            pc.as_secs_f64() / pa.as_secs_f64()
        );
    }
    invoked += results
        .iter()
        .filter(|(_, key, _)| *key == "c")
        .map(|(_, _, report)| report.requests - report.errors)
        .sum::<usize>();
    let (logs, distinct) = count_logs(data, hook)?;
    println!(
        "\nwasmhook answered {invoked} invocations with 200 (checks included) and its database \
         holds {logs} run logs for the hook, {distinct} distinct request ids."
    );
    Ok(())
}

/// Mean rate, mean p50, worst p99 and total errors of several runs.
fn summarize(runs: &[&Report]) -> (f64, Duration, Duration, usize) {
    let n = runs.len().max(1) as u32;
    let rate = runs.iter().map(|r| r.rate()).sum::<f64>() / f64::from(n);
    let p50 = runs.iter().map(|r| r.p50).sum::<Duration>() / n;
    let p99 = runs.iter().map(|r| r.p99).max().unwrap_or_default();
    let errors = runs.iter().map(|r| r.errors).sum();
    (rate, p50, p99, errors)
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// Run logs of a hook and their distinct request ids, counted in the server's database
/// (read-only, beside the running server: every answered call's log is committed).
fn count_logs(data: &std::path::Path, hook: u64) -> anyhow::Result<(u64, u64)> {
    let connection = rusqlite::Connection::open_with_flags(
        data.join("wasmhook.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    Ok(connection.query_row(
        "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM run_logs WHERE hook_id = ?1",
        [hook],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// One organization saturating its runs with CPU-bound guests while another calls hello.
async fn noisy_neighbour(server: &Running, seconds: Duration) -> anyhow::Result<()> {
    let quiet = Tenant::create(&server.address, "quiet").await?;
    let noisy = Tenant::create(&server.address, "noisy").await?;
    let hello = quiet
        .upload(std::fs::read(wasmhook_tests::guests::HELLO)?, "hello")
        .await?;
    let hello_hook = quiet.hook(&hello, json!({})).await?;
    let hostile = noisy
        .upload(std::fs::read(wasmhook_tests::guests::HOSTILE)?, "hostile")
        .await?;
    let spin_hook = noisy
        .hook(
            &hostile,
            json!({"settings": {"behavior": "spin", "ms": 50}}),
        )
        .await?;
    let target = |tenant: &Tenant, hook: u64| Target {
        address: server.address.clone(),
        path: format!("/api/v1/hooks/{hook}/invoke"),
        headers: vec![("authorization".into(), format!("Bearer {}", tenant.token))],
        body: Bytes::from_static(b"{}"),
    };
    let quiet_target = target(&quiet, hello_hook);
    let noisy_target = target(&noisy, spin_hook);
    let idle = load::run(&quiet_target, 4, seconds).await?;
    let noise = tokio::spawn({
        let noisy_target = noisy_target.clone();
        async move { load::run(&noisy_target, 64, seconds + Duration::from_secs(1)).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = load::run(&quiet_target, 4, seconds).await?;
    let noise = noise.await??;
    println!("\n## Noisy neighbour\n");
    println!(
        "`noisy` keeps 64 calls of a guest spinning 50 ms of CPU in flight (its limit is 64); \
         `quiet` calls hello on 4 connections.\n"
    );
    println!("| quiet's hello | req/s | p50 | p99 | errors |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, report) in [("alone", &idle), ("beside noisy", &busy)] {
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            report.rate(),
            ms(report.p50),
            ms(report.p99),
            report.errors
        );
    }
    println!(
        "\nquiet's p99 beside noisy / alone: **{:.2}x**; noisy completed {:.0} spins/s \
         ({} refused or failed).",
        busy.p99.as_secs_f64() / idle.p99.as_secs_f64(),
        noise.rate(),
        noise.errors
    );
    Ok(())
}

/// Upload to first completed call, and a restart holding many modules and hooks.
async fn cold_paths(
    server: &Running,
    binary: &std::path::Path,
    modules: usize,
) -> anyhow::Result<()> {
    let tenant = Tenant::create(&server.address, "cold").await?;
    println!("\n## Cold paths\n");
    println!("| path | time |");
    println!("| --- | --- |");
    let hello_py = wasmhook_tests::guests::EXAMPLES
        .iter()
        .find(|(name, form, _)| *name == "hello" && form.starts_with("python"))
        .map(|(_, _, path)| *path)
        .context("the Python hello")?;
    for (name, path) in [
        ("Rust hello (component)", wasmhook_tests::guests::HELLO),
        ("Python hello (component, 18 MB)", hello_py),
    ] {
        let bytes = unique(&std::fs::read(path)?, &format!("{}", std::process::id()));
        let started = Instant::now();
        let module = tenant.upload(bytes, "first").await?;
        let hook = tenant.hook(&module, json!({})).await?;
        tenant.invoke_until_ready(hook, &json!({})).await?;
        println!(
            "| upload to first completed call, {name} | {} |",
            ms(started.elapsed())
        );
    }

    // Many modules: each a distinct hello (a unique custom section), each with a hook.
    let data = tempfile::tempdir()?;
    let many = servers::wasmhook(binary, data.path()).await?;
    let pid = many.pid().context("a pid")?;
    let idle_empty = servers::rss_kib(pid)?;
    let owner = Tenant::create(&many.address, "many").await?;
    let hello = std::fs::read(wasmhook_tests::guests::HELLO)?;
    let started = Instant::now();
    let mut last_hook = 0;
    for index in 0..modules {
        let module = owner
            .upload(unique(&hello, &index.to_string()), "hello")
            .await?;
        last_hook = owner.hook(&module, json!({})).await?;
    }
    let uploading = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_loaded = servers::rss_kib(pid)?;
    many.stop().await?;

    let started = Instant::now();
    let restarted = servers::wasmhook(binary, data.path()).await?;
    let listening = started.elapsed();
    let owner = Tenant::login(&restarted.address, "many").await?;
    owner.invoke_until_ready(last_hook, &json!({})).await?;
    let first_call = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_restarted = servers::rss_kib(restarted.pid().context("a pid")?)?;
    restarted.stop().await?;
    println!(
        "| uploading {modules} distinct modules with a hook each (compiled at upload) | {:.1} s |",
        uploading.as_secs_f64()
    );
    println!(
        "| restart with {modules} modules and hooks: listening | {} |",
        ms(listening)
    );
    println!(
        "| restart with {modules} modules and hooks: start to first completed call | {} |",
        ms(first_call)
    );
    println!("\n| idle RSS | KiB |\n| --- | --- |");
    println!("| empty server | {idle_empty} |");
    println!("| after uploading {modules} modules | {idle_loaded} |");
    println!("| restarted with {modules} modules, after one call | {idle_restarted} |");
    Ok(())
}
