//! `wasmhook-bench`: wasmhook's server against a native handler and `wasmtime serve`, its
//! cold paths, and a noisy neighbour. `bench/run.sh` builds what it needs and runs
//! `compare`; BENCHMARKS.md quotes its output.

#![allow(clippy::print_stdout)] // The report on stdout is what this tool is for.

mod servers;
mod stages;
mod wrk;

use std::collections::BTreeMap;
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

use servers::{Running, Tenant};
use stages::Stages;
use wrk::{Report, Target, Wrk};

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
    /// Rounds of the interleaved runs (a b c a b c ...).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Connections of the throughput runs (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [16, 64])]
    connections: Vec<usize>,
    /// `wasmtime` (wasmtime-cli 48) for `wasmtime serve`; without it (the smoke run in CI)
    /// the peer is left out and the report says so.
    #[arg(long, requires = "http_component")]
    wasmtime: Option<PathBuf>,
    /// The wasi:http invoice-check component `wasmtime serve` runs.
    #[arg(long)]
    http_component: Option<PathBuf>,
    /// Another `wasmhook` binary (an earlier commit's) measured interleaved with this one,
    /// for a before/after ratio of a change.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Modules and hooks in the restart measurement.
    #[arg(long, default_value_t = 1000)]
    modules: usize,
    /// Calls of an endless loop the noisy organization keeps running in the noisy
    /// neighbour, one measurement each (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [2, 8, 64])]
    noisy_calls: Vec<usize>,
    /// The noisy hook's `config.timeout_s`: how long each endless loop runs.
    #[arg(long, default_value_t = 20)]
    noisy_timeout_s: u64,
    /// The databases wasmhook is measured on in the throughput part (comma-separated):
    /// `sqlite` is (c); `postgres` adds (e), the same wasmhook on a fresh schema of the
    /// PostgreSQL at WASMHOOK_TEST_POSTGRES (default the machine's `test` database),
    /// interleaved with the rest, and the database's work per call.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Sqlite])]
    backends: Vec<Backend>,
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

/// A database wasmhook keeps its rows in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// SQLite in the data directory (the default).
    Sqlite,
    /// PostgreSQL (`--database`).
    Postgres,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest (through the workspace's feature unification) is built with rustls but no
    // crypto provider: the process names one, as the server does.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    let wrk = Wrk::find()?;
    let seconds = Duration::from_secs(args.seconds);
    let data = tempfile::tempdir()?;
    let c = servers::wasmhook(&wasmhook_binary, data.path()).await?;
    if args.only.contains(&Part::Throughput) {
        throughput(args, &wrk, &c, data.path()).await?;
    }
    if args.only.contains(&Part::Noisy) {
        noisy_neighbour(&wrk, &c, seconds, &args.noisy_calls, args.noisy_timeout_s).await?;
    }
    if args.only.contains(&Part::Cold) {
        cold_paths(&c, &wasmhook_binary, args.modules).await?;
    }
    c.stop().await?;
    Ok(())
}

/// Seconds a wasmhook has spent compiling modules that loaded (its
/// `wasmhook_module_compile_seconds{result="ok"}` histogram's sum).
async fn compile_seconds(server: &Running) -> anyhow::Result<f64> {
    let base = format!("http://{}", server.address);
    let text = stages::scrape(&base, servers::OPERATOR_TOKEN).await?;
    let sum = text
        .lines()
        .find_map(|line| line.strip_prefix("wasmhook_module_compile_seconds_sum{result=\"ok\"} "))
        .map_or(Ok(0.0), str::parse)?;
    Ok(sum)
}

/// One server of the throughput comparison, with the request it is sent.
struct Contender {
    key: &'static str,
    name: String,
    target: Target,
    /// The process, kept alive while it is measured (None for the wasmhook `compare` started).
    _server: Option<Running>,
    /// The answer it gave before the measurement, compared with the native one.
    answer: Value,
}

/// A hook on a wasmhook running invoice-check with the case's settings and secrets, and the
/// request that invokes it; with `reuse`, the hook asks for warm instances
/// (`config.reuse_instances`).
async fn invoice_hook(
    wrk: &Wrk,
    server: &Running,
    key: &str,
    work: &Workload,
    reuse: bool,
) -> anyhow::Result<(Target, u64)> {
    let tenant = Tenant::create(&server.address, &format!("bench-{key}")).await?;
    let module = tenant
        .upload(
            std::fs::read(wasmhook_tests::guests::INVOICE_CHECK)?,
            "invoice-check",
        )
        .await?;
    let mut extra = json!({"settings": work.settings, "secrets": work.secrets});
    if reuse {
        extra["config"] = json!({"runtime": "wasm", "module": module, "timeout_s": 30,
                                 "memory_size_mb": 64, "reuse_instances": true});
    }
    let hook = tenant.hook(&module, extra).await?;
    let target = Target {
        url: format!("http://{}/api/v1/hooks/{hook}/invoke", server.address),
        authorization: Some(format!("Bearer {}", tenant.token)),
        body: wrk.body(key, work.body.to_string().as_bytes())?,
    };
    Ok((target, hook))
}

/// One POST of a target's body, answered 200 with JSON: the check made before measuring, so
/// a server that answers errors fast cannot win.
async fn answer_of(target: &Target) -> anyhow::Result<Value> {
    let mut request = reqwest::Client::new()
        .post(&target.url)
        .header("content-type", "application/json")
        .body(std::fs::read(&target.body)?);
    if let Some(authorization) = &target.authorization {
        request = request.header("authorization", authorization);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "{}: {status} {text}", target.url);
    serde_json::from_str(&text).with_context(|| format!("{}: not JSON: {text}", target.url))
}

/// The servers of the throughput comparison, started and checked: (a) native, (b) `wasmtime
/// serve` when given, (c) this wasmhook, (d) the baseline wasmhook when given.
async fn contenders(
    args: &CompareArgs,
    wrk: &Wrk,
    c: &Running,
    postgres: Option<&(Running, String)>,
    work: &Workload,
) -> anyhow::Result<(Vec<Contender>, u64, tempfile::TempDir)> {
    let payload = work.payload.to_string();
    let mut contenders = Vec::new();
    let a = servers::native().await?;
    let target = Target {
        url: format!("http://{}/", a.address),
        authorization: None,
        body: wrk.body("a", payload.as_bytes())?,
    };
    contenders.push(Contender {
        key: "a",
        name: "native axum".into(),
        answer: answer_of(&target).await?,
        target,
        _server: Some(a),
    });
    if let (Some(wasmtime), Some(component)) = (&args.wasmtime, &args.http_component) {
        let b = servers::wasmtime_serve(wasmtime, component).await?;
        let target = Target {
            url: format!("http://{}/", b.address),
            authorization: None,
            body: wrk.body("b", payload.as_bytes())?,
        };
        contenders.push(Contender {
            key: "b",
            name: "wasmtime serve".into(),
            answer: answer_of(&target).await?,
            target,
            _server: Some(b),
        });
    }
    let (target, hook) = invoice_hook(wrk, c, "c", work, false).await?;
    contenders.push(Contender {
        key: "c",
        name: "wasmhook invoke".into(),
        answer: answer_of(&target).await?,
        target,
        _server: None,
    });
    // (w): the same server, a hook of another organization that reuses warm instances.
    let (target, _) = invoice_hook(wrk, c, "w", work, true).await?;
    contenders.push(Contender {
        key: "w",
        name: "wasmhook invoke, warm instances".into(),
        answer: answer_of(&target).await?,
        target,
        _server: None,
    });
    let baseline_data = tempfile::tempdir()?;
    if let Some((e, _)) = postgres {
        let (target, _) = invoice_hook(wrk, e, "e", work, false).await?;
        contenders.push(Contender {
            key: "e",
            name: "wasmhook invoke on PostgreSQL".into(),
            answer: answer_of(&target).await?,
            target,
            _server: None,
        });
    }
    if let Some(baseline) = &args.baseline {
        let d = servers::wasmhook(baseline, baseline_data.path()).await?;
        let (target, _) = invoice_hook(wrk, &d, "d", work, false).await?;
        contenders.push(Contender {
            key: "d",
            name: format!("baseline wasmhook ({})", baseline.display()),
            answer: answer_of(&target).await?,
            target,
            _server: Some(d),
        });
    }
    // Every server answers what the native handler answers before anything is measured.
    for contender in &contenders[1..] {
        anyhow::ensure!(
            contender.answer == contenders[0].answer,
            "{} answers {} where the native handler answers {}",
            contender.name,
            contender.answer,
            contenders[0].answer
        );
    }
    Ok((contenders, hook, baseline_data))
}

/// (a), (b), (c) and (d) interleaved at each number of connections, the ratios of every
/// round, and the run logs (c) wrote.
async fn throughput(
    args: &CompareArgs,
    wrk: &Wrk,
    c: &Running,
    data: &std::path::Path,
) -> anyhow::Result<()> {
    let work = workload()?;
    let seconds = Duration::from_secs(args.seconds);
    // (e): the same wasmhook with its rows on PostgreSQL, in a schema of its own.
    let schema = if args.backends.contains(&Backend::Postgres) {
        Some(
            wasmhook_tests::postgres::TestSchema::create("bench")
                .map_err(|error| anyhow::anyhow!("{error}"))?,
        )
    } else {
        None
    };
    let postgres_data = tempfile::tempdir()?;
    let postgres = match &schema {
        Some(schema) => Some((
            servers::wasmhook_on(
                &servers::sibling("wasmhook")?,
                postgres_data.path(),
                Some(schema.url()),
            )
            .await?,
            schema.url().to_owned(),
        )),
        None => None,
    };
    let (contenders, hook, _baseline_data) =
        contenders(args, wrk, c, postgres.as_ref(), &work).await?;
    let mut results: Vec<(usize, usize, &str, Report)> = Vec::new();
    let mut database_work: Vec<(usize, DatabaseWork)> = Vec::new();
    // wasmhook's own per-stage timings of each run, summed over the rounds.
    let mut stages: BTreeMap<(usize, &str), Stages> = BTreeMap::new();
    for round in 0..args.rounds {
        for &connections in &args.connections {
            for contender in &contenders {
                eprintln!(
                    "round {}: {}, {connections} connections",
                    round + 1,
                    contender.name
                );
                let before = match (&postgres, contender.key) {
                    (Some((_, url)), "e") => Some(DatabaseWork::read(url)?),
                    _ => None,
                };
                let metrics_base = matches!(contender.key, "c" | "d" | "e" | "w")
                    .then(|| contender.target.url.split("/api/v1").next())
                    .flatten();
                let run = wrk.run(&contender.target, connections, seconds);
                let report = match metrics_base {
                    Some(base) => {
                        let (report, observed) =
                            Stages::during(base, servers::OPERATOR_TOKEN, run).await?;
                        stages
                            .entry((connections, contender.key))
                            .or_default()
                            .add(&observed);
                        report
                    }
                    None => run.await?,
                };
                if let (Some(before), Some((_, url))) = (before, &postgres) {
                    // PostgreSQL's statistics reach the shared counters within a second of a
                    // backend going idle.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let after = DatabaseWork::read(url)?;
                    let calls = report.requests.saturating_sub(report.errors).max(1);
                    database_work.push((connections, after.since(&before, calls)));
                }
                results.push((round, connections, contender.key, report));
            }
        }
    }
    println!("## Throughput: invoice-check on the invoice-problems case\n");
    println!(
        "wrk, 2 threads, keep-alive; {} s per run, {} rounds interleaved ({}), 127.0.0.1, the \
         same 2 cores for client and servers. Every server's answer was checked equal to the \
         native handler's first.\n",
        args.seconds,
        args.rounds,
        contenders
            .iter()
            .map(|contender| contender.key)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if args.wasmtime.is_none() {
        println!("(b) `wasmtime serve` left out: no --wasmtime given.\n");
    }
    println!("| connections | server | req/s (each round) | p50 | p99 (each round) | errors |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let runs = |connections: usize, key: &str| -> Vec<&Report> {
        results
            .iter()
            .filter(|(_, c, k, _)| *c == connections && *k == key)
            .map(|(_, _, _, report)| report)
            .collect()
    };
    for &connections in &args.connections {
        for contender in &contenders {
            let reports = runs(connections, contender.key);
            let (rate, p50, errors) = summarize(&reports);
            println!(
                "| {connections} | ({}) {} | {rate:.0} ({}) | {} | {} | {errors} |",
                contender.key,
                contender.name,
                each(&reports, |r| format!("{:.0}", r.rate())),
                ms(p50),
                each(&reports, |r| ms(r.p99)),
            );
        }
        for (over, under) in [
            ("c", "a"),
            ("c", "b"),
            ("c", "d"),
            ("e", "c"),
            ("w", "a"),
            ("w", "c"),
        ] {
            let (top, bottom) = (runs(connections, over), runs(connections, under));
            if top.is_empty() || bottom.is_empty() {
                continue;
            }
            let pairs: Vec<(&Report, &Report)> = top.into_iter().zip(bottom).collect();
            println!(
                "| {connections} | **{over}/{under}** | {} | | {} | |",
                each_pair(&pairs, |t, b| t.rate() / b.rate()),
                each_pair(&pairs, |t, b| t.p99.as_secs_f64() / b.p99.as_secs_f64()),
            );
        }
    }
    let invoked: u64 = results
        .iter()
        .filter(|(_, _, key, _)| *key == "c")
        .map(|(_, _, _, report)| report.requests - report.errors)
        .sum();
    let (logs, distinct) = count_logs(data, hook)?;
    println!(
        "\nwasmhook answered {invoked} measured invocations with 2xx; its database holds {logs} \
         run logs for the hook ({distinct} distinct request ids), the check's call included."
    );
    println!(
        "\n### Where wasmhook's calls spent their time\n\nFrom each server's own \
         `wasmhook_call_stage_duration_seconds{{stage}}`, read before and after each run, \
         all rounds together. p50 and p99 are the histogram's bucket bounds they fall under \
         (buckets double from 0.1 ms).\n"
    );
    println!(
        "| connections | server | stage | calls | mean | p50 under | p99 under | p99.9 under |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for ((connections, key), observed) in &stages {
        for row in observed.rows() {
            println!("| {connections} | ({key}) | {} |", stage_cells(&row));
        }
    }
    if !database_work.is_empty() {
        println!(
            "\n### (e) PostgreSQL's work per answered call\n\nFrom `pg_stat_database` and the \
             WAL position, read before and 2 s after each run of (e), divided by its 2xx \
             answers.\n"
        );
        println!("| connections | transactions | rows written | rows read | WAL bytes |");
        println!("| --- | --- | --- | --- | --- |");
        for (connections, work) in &database_work {
            println!(
                "| {connections} | {:.3} | {:.2} | {:.1} | {:.0} |",
                work.transactions, work.rows_written, work.rows_read, work.wal_bytes
            );
        }
    }
    Ok(())
}

/// What PostgreSQL did, from its cumulative counters: the database's committed
/// transactions, rows written and read, and the WAL position.
#[derive(Debug, Clone, Copy)]
struct DatabaseWork {
    transactions: f64,
    rows_written: f64,
    rows_read: f64,
    wal_bytes: f64,
}

impl DatabaseWork {
    fn read(url: &str) -> anyhow::Result<Self> {
        let text = wasmhook_tests::postgres::query_text_at(
            url,
            "SELECT xact_commit::text || ' ' || (tup_inserted + tup_updated + tup_deleted)::text
                    || ' ' || (tup_returned + tup_fetched)::text
                    || ' ' || pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text
             FROM pg_stat_database WHERE datname = current_database()",
        )
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .context("no statistics row")?;
        let figures: Vec<f64> = text
            .split(' ')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("statistics: {text}"))?;
        let [transactions, rows_written, rows_read, wal_bytes] = figures[..] else {
            anyhow::bail!("statistics: {text}");
        };
        Ok(DatabaseWork {
            transactions,
            rows_written,
            rows_read,
            wal_bytes,
        })
    }

    /// The work since `before`, per call of `calls`.
    fn since(&self, before: &DatabaseWork, calls: u64) -> DatabaseWork {
        let calls = calls as f64;
        DatabaseWork {
            transactions: (self.transactions - before.transactions) / calls,
            rows_written: (self.rows_written - before.rows_written) / calls,
            rows_read: (self.rows_read - before.rows_read) / calls,
            wal_bytes: (self.wal_bytes - before.wal_bytes) / calls,
        }
    }
}

/// A stage table's cells after the columns naming the run: stage, calls, mean, and the
/// bounds p50, p99 and p99.9 fall under.
fn stage_cells(row: &stages::Row) -> String {
    format!(
        "{} | {:.0} | {} | {} | {} | {}",
        row.stage,
        row.count,
        ms(Duration::from_secs_f64(row.mean)),
        bound(row.p50),
        bound(row.p99),
        bound(row.p999)
    )
}

/// A histogram bound in milliseconds (the last bucket has none).
fn bound(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{:.1} ms", seconds * 1000.0)
    } else {
        "beyond the last bucket".into()
    }
}

/// Mean rate, mean p50 and total errors of several runs.
fn summarize(runs: &[&Report]) -> (f64, Duration, u64) {
    let n = runs.len().max(1) as u32;
    let rate = runs.iter().map(|r| r.rate()).sum::<f64>() / f64::from(n);
    let p50 = runs.iter().map(|r| r.p50).sum::<Duration>() / n;
    let errors = runs.iter().map(|r| r.errors).sum();
    (rate, p50, errors)
}

/// One figure per round, comma-separated.
fn each(runs: &[&Report], figure: impl Fn(&Report) -> String) -> String {
    runs.iter()
        .map(|run| figure(run))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One ratio per round, with the range when there are several.
fn each_pair(pairs: &[(&Report, &Report)], ratio: impl Fn(&Report, &Report) -> f64) -> String {
    pairs
        .iter()
        .map(|(top, bottom)| format!("{:.2}x", ratio(top, bottom)))
        .collect::<Vec<_>>()
        .join(", ")
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

/// One organization keeping N calls of an endless loop running while another calls hello,
/// for each N: the quiet organization's latency alone and beside the noisy one.
async fn noisy_neighbour(
    wrk: &Wrk,
    server: &Running,
    seconds: Duration,
    noisy_calls: &[usize],
    timeout_s: u64,
) -> anyhow::Result<()> {
    let quiet = Tenant::create(&server.address, "quiet").await?;
    let noisy = Tenant::create(&server.address, "noisy").await?;
    let hello = quiet
        .upload(std::fs::read(wasmhook_tests::guests::HELLO)?, "hello")
        .await?;
    let hello_hook = quiet.hook(&hello, json!({})).await?;
    let hostile = noisy
        .upload(std::fs::read(wasmhook_tests::guests::HOSTILE)?, "hostile")
        .await?;
    let loop_hook = noisy
        .hook(
            &hostile,
            json!({
                "settings": {"behavior": "loop"},
                "config": {"runtime": "wasm", "module": hostile, "timeout_s": timeout_s,
                           "memory_size_mb": 32},
            }),
        )
        .await?;
    let body = wrk.body("empty", b"{}")?;
    let quiet_target = Target {
        url: format!("http://{}/api/v1/hooks/{hello_hook}/invoke", server.address),
        authorization: Some(format!("Bearer {}", quiet.token)),
        body: body.clone(),
    };
    quiet.invoke_until_ready(hello_hook, &json!({})).await?;
    let base = format!("http://{}", server.address);
    // The server's per-stage timings of each run: nearly all of them quiet's calls (a loop
    // is observed only when it ends at its timeout).
    let (idle, observed) = Stages::during(
        &base,
        servers::OPERATOR_TOKEN,
        wrk.run(&quiet_target, 4, seconds),
    )
    .await?;
    let mut stages = vec![("alone".to_owned(), observed)];
    let mut rows = Vec::new();
    for &calls in noisy_calls {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loops: Vec<_> = (0..calls)
            .map(|_| {
                let (noisy, stop) = (noisy.clone(), std::sync::Arc::clone(&stop));
                tokio::spawn(async move {
                    // (calls that timed out as they should, others)
                    let mut ended = (0_u64, 0_u64);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        match noisy.invoke_status(loop_hook, &json!({})).await {
                            Ok(status) if status == StatusCode::BAD_REQUEST => ended.0 += 1,
                            _ => ended.1 += 1,
                        }
                    }
                    ended
                })
            })
            .collect();
        // Let the loops take their slots before quiet is measured.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (busy, observed) = Stages::during(
            &base,
            servers::OPERATOR_TOKEN,
            wrk.run(&quiet_target, 4, seconds),
        )
        .await?;
        stages.push((format!("N = {calls}"), observed));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Each loop ends at its timeout: the next N starts with none left running.
        let mut ended = (0, 0);
        for task in loops {
            let (timed_out, other) = task.await?;
            ended = (ended.0 + timed_out, ended.1 + other);
        }
        rows.push((calls, busy, ended));
    }
    println!("\n## Noisy neighbour\n");
    println!(
        "`noisy` keeps N calls of an endless loop running (each ends at its {timeout_s} s \
         timeout, and is called again); `quiet` calls hello on 4 connections. Alone: {:.0} \
         req/s, p50 {}, p99 {}, {} errors.\n",
        idle.rate(),
        ms(idle.p50),
        ms(idle.p99),
        idle.errors
    );
    println!("| N | quiet's req/s | p50 | p50 / alone | p99 | p99 / alone | errors | noisy's calls ended (other answers) |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let ratio = |beside: Duration, alone: Duration| beside.as_secs_f64() / alone.as_secs_f64();
    for (calls, busy, (timed_out, other)) in &rows {
        println!(
            "| {calls} | {:.0} | {} | **{:.2}x** | {} | **{:.2}x** | {} | {timed_out} ({other}) |",
            busy.rate(),
            ms(busy.p50),
            ratio(busy.p50, idle.p50),
            ms(busy.p99),
            ratio(busy.p99, idle.p99),
            busy.errors
        );
    }
    println!(
        "\nWhere quiet's calls spent their time (the server's \
         `wasmhook_call_stage_duration_seconds{{stage}}` over each run):\n"
    );
    println!("| quiet | stage | calls | mean | p50 under | p99 under | p99.9 under |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (run, observed) in &stages {
        for row in observed.rows() {
            println!("| {run} | {} |", stage_cells(&row));
        }
    }
    Ok(())
}

/// Upload to first completed call, and a restart holding many modules and hooks.
async fn cold_paths(
    server: &Running,
    binary: &std::path::Path,
    modules: usize,
) -> anyhow::Result<()> {
    println!("\n## Cold paths\n");
    println!("| path | time |");
    println!("| --- | --- |");
    let hello_py = wasmhook_tests::guests::EXAMPLES
        .iter()
        .find(|(name, form, _)| *name == "hello" && form.starts_with("python"))
        .map(|(_, _, path)| *path)
        .context("the Python hello")?;
    // The same uploads on (c), which compiles with Cranelift before the first call, and on
    // a server as configured by default, whose first calls run Winch's code (tiers).
    let tiered_data = tempfile::tempdir()?;
    let tiered = servers::wasmhook_tiered(binary, tiered_data.path()).await?;
    for (server, compiler) in [(server, "Cranelift"), (&tiered, "Winch first (tiers)")] {
        let tenant = Tenant::create(&server.address, "cold").await?;
        // The Rust hello three times (distinct bytes): the server's first compile, and two
        // later ones, as a server that has run a while compiles an upload. A second's pause
        // before each lets the last upload's background compile (tiers) end first.
        for (upload, (name, path)) in [
            (
                "Rust hello (component), 1st upload",
                wasmhook_tests::guests::HELLO,
            ),
            (
                "Rust hello (component), 2nd upload",
                wasmhook_tests::guests::HELLO,
            ),
            (
                "Rust hello (component), 3rd upload",
                wasmhook_tests::guests::HELLO,
            ),
            ("Python hello (component, 18 MB)", hello_py),
        ]
        .into_iter()
        .enumerate()
        {
            let bytes = unique(
                &std::fs::read(path)?,
                &format!("{}-{upload}", std::process::id()),
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            let compiled_before = compile_seconds(server).await?;
            let started = Instant::now();
            let module = tenant.upload(bytes, "first").await?;
            let hook = tenant.hook(&module, json!({})).await?;
            tenant.invoke_until_ready(hook, &json!({})).await?;
            let elapsed = started.elapsed();
            // The compile on the upload's path (the quick one with tiers). Background
            // compiles are not counted.
            let compiling = compile_seconds(server).await? - compiled_before;
            println!(
                "| upload to first completed call, {name}, {compiler} (of which compiling {}) | {} |",
                ms(Duration::from_secs_f64(compiling.max(0.0))),
                ms(elapsed)
            );
        }
    }
    tiered.stop().await?;

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
