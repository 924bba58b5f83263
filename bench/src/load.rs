//! The load generator: `connections` keep-alive HTTP/1.1 connections, each sending the same
//! POST back to back for a fixed time, every latency recorded.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request, sent again and again.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port`.
    pub address: String,
    pub path: String,
    /// Extra headers, such as `authorization`.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// What one run of the load measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub requests: usize,
    /// Answers other than 200, and connections that broke.
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Report {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        (self.requests - self.errors) as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the load for `duration` over `connections` connections.
pub async fn run(
    target: &Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.clone();
        workers.push(tokio::spawn(
            async move { connection(&target, deadline).await },
        ));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut measured, failed) = worker.await.context("a load worker panicked")??;
        latencies.append(&mut measured);
        errors += failed;
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Report {
        requests: latencies.len(),
        errors,
        elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
    })
}

/// One connection's loop; returns its latencies and how many failed.
async fn connection(target: &Target, deadline: Instant) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut latencies = Vec::new();
    let mut errors = 0;
    while Instant::now() < deadline {
        let stream = TcpStream::connect(&target.address)
            .await
            .with_context(|| format!("cannot connect to {}", target.address))?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(connection);
        while Instant::now() < deadline {
            let mut request = Request::post(&target.path)
                .header("host", &target.address)
                .header("content-type", "application/json");
            for (name, value) in &target.headers {
                request = request.header(name, value);
            }
            let request = request.body(Full::new(target.body.clone()))?;
            let sent = Instant::now();
            match sender.send_request(request).await {
                Ok(response) => {
                    let ok = response.status().is_success();
                    let drained = response.into_body().collect().await.is_ok();
                    latencies.push(sent.elapsed());
                    if !ok || !drained {
                        errors += 1;
                    }
                }
                Err(_) => {
                    // The server closed the connection: count it and reconnect.
                    latencies.push(sent.elapsed());
                    errors += 1;
                    break;
                }
            }
            if sender.ready().await.is_err() {
                break;
            }
        }
        driver.abort();
    }
    Ok((latencies, errors))
}
