//! The load generator: `wrk`, an external process written for the job. An in-process
//! generator shares the servers' two cores and its own costs compress every difference (the
//! hyper one this tool had topped out near 11k req/s where `wrk` drives the native handler
//! past 28k), so every figure under load comes from `wrk` with `bench/wrk/post.lua`, which
//! prints one JSON line of results.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::process::Command;

/// The Lua script, written next to the bodies when the bench starts, so the binary does not
/// depend on where it runs from.
const SCRIPT: &str = include_str!("../wrk/post.lua");

/// `wrk` and the directory its script and request bodies live in.
#[derive(Debug)]
pub struct Wrk {
    binary: PathBuf,
    files: tempfile::TempDir,
    script: PathBuf,
}

/// One request, sent again and again by every connection.
#[derive(Debug, Clone)]
pub struct Target {
    /// The whole URL, `http://host:port/path`.
    pub url: String,
    /// The `Authorization` header's value, when the server wants one.
    pub authorization: Option<String>,
    /// The file holding the body (written by [`Wrk::body`]).
    pub body: PathBuf,
}

/// What one run measured. Latencies are wrk's, from the request's write to its answer.
#[derive(Debug, Clone)]
pub struct Report {
    pub requests: u64,
    /// Answers other than 2xx or 3xx, broken connections and timeouts.
    pub errors: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Report {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.requests.saturating_sub(self.errors) as f64 / self.elapsed.as_secs_f64()
    }
}

/// The line the script prints.
#[derive(Debug, Deserialize)]
struct Line {
    requests: u64,
    duration_us: u64,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
    p50_us: u64,
    p99_us: u64,
}

impl Wrk {
    /// Finds `wrk` on the `PATH` (bench/run.sh installs Debian's package when missing).
    pub fn find() -> anyhow::Result<Wrk> {
        let binary = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|directory| directory.join("wrk"))
            .find(|candidate| candidate.is_file())
            .context("wrk is not on the PATH: install it (Debian: apt-get install wrk)")?;
        let files = tempfile::tempdir()?;
        let script = files.path().join("post.lua");
        std::fs::write(&script, SCRIPT)?;
        Ok(Wrk {
            binary,
            files,
            script,
        })
    }

    /// Writes a request body to a file of its own and returns its path.
    pub fn body(&self, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.files.path().join(format!("{name}.json"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Runs `wrk` with two threads (one per core of this machine) and `connections`
    /// keep-alive connections for `duration`.
    pub async fn run(
        &self,
        target: &Target,
        connections: usize,
        duration: Duration,
    ) -> anyhow::Result<Report> {
        let threads = connections.min(2);
        let output = Command::new(&self.binary)
            .arg(format!("-t{threads}"))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .args(["--timeout", "10s", "-s"])
            .arg(&self.script)
            .arg(&target.url)
            .env("WASMHOOK_BENCH_BODY", &target.body)
            .env(
                "WASMHOOK_BENCH_AUTHORIZATION",
                target.authorization.as_deref().unwrap_or(""),
            )
            .stdin(Stdio::null())
            .output()
            .await
            .context("cannot run wrk")?;
        if !output.status.success() {
            bail!(
                "wrk failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        parse(&output.stdout)
    }
}

/// The report of the last JSON line of wrk's output.
fn parse(stdout: &[u8]) -> anyhow::Result<Report> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .with_context(|| format!("wrk printed no result line: {text}"))?;
    let line: Line = serde_json::from_str(line).context("wrk's result line")?;
    Ok(Report {
        requests: line.requests,
        errors: line.connect + line.read + line.write + line.status + line.timeout,
        elapsed: Duration::from_micros(line.duration_us.max(1)),
        p50: Duration::from_micros(line.p50_us),
        p99: Duration::from_micros(line.p99_us),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_read_after_wrk_s_own_report() {
        let stdout = b"Running 1s test @ http://127.0.0.1:1/\n  2 threads and 2 connections\n\
            {\"requests\":1000,\"duration_us\":2000000,\"connect\":0,\"read\":1,\"write\":0,\
            \"status\":2,\"timeout\":0,\"p50_us\":150,\"p90_us\":300,\"p99_us\":900,\
            \"p999_us\":2000,\"max_us\":4000}\n";
        let report = parse(stdout).expect("a report");
        assert_eq!(report.requests, 1000);
        assert_eq!(report.errors, 3);
        assert_eq!(report.p99, Duration::from_micros(900));
        assert!((report.rate() - 498.5).abs() < 1e-9);
    }

    #[test]
    fn no_result_line_is_an_error() {
        assert!(parse(b"unable to connect to 127.0.0.1:1 Connection refused\n").is_err());
    }
}
