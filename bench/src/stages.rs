//! Where a wasmhook call's time goes under load: the server's own per-stage histogram
//! (`wasmhook_call_stage_duration_seconds{stage}`: queue, handoff, cpu_slot, instantiate,
//! guest, log_commit, total), beside the whole HTTP request of an invocation as the server
//! timed it (`wasmhook_http_request_duration_seconds` of the invoke route: `http_request`)
//! and the waits for a database connection (`wasmhook_db_wait_seconds`: `db_wait`), with
//! the run log writer's commits (`log_batch`: one a batch, so calls over its count is the
//! batch's size) and SQLite's checkpoints (`checkpoint_passive`, `checkpoint_restart`: the
//! writer waits for a restarting one), read
//! from its `/metrics` before and after a run and subtracted, so that a slow tail can be put
//! on a stage, or outside every stage, rather than guessed at.

use std::collections::BTreeMap;

use anyhow::Context;

/// The histograms' names in the exposition.
const SERIES: &str = "wasmhook_call_stage_duration_seconds";
const HTTP_SERIES: &str = "wasmhook_http_request_duration_seconds";
const DB_WAIT_SERIES: &str = "wasmhook_db_wait_seconds";
const BATCH_SERIES: &str = "wasmhook_run_log_batch_commit_seconds";
const CHECKPOINT_SERIES: &str = "wasmhook_sqlite_checkpoint_seconds";
/// The route whose requests are the invocations measured.
const INVOKE_ROUTE: &str = "/api/v1/hooks/{id}/invoke";

/// One row of a stage table: the stage, its observations, mean, and the bucket bounds
/// (seconds) its p50, p99 and p99.9 fall under.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub stage: String,
    pub count: f64,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    /// A stall in one round of two is under 1% of the calls: it shows here, not at p99.
    pub p999: f64,
}

/// One stage's histogram: cumulative counts by upper bound (seconds), and the sum of the
/// observed durations.
/// The exposition text of the wasmhook at `base` (`http://host:port`), as the operator.
pub async fn scrape(base: &str, operator_token: &str) -> anyhow::Result<String> {
    Ok(reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(operator_token)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
}

/// Every stage's histogram, by stage.
#[derive(Debug, Clone, Default)]
pub struct Stages(BTreeMap<String, Histogram>);

impl Stages {
    /// Reads the stages from the wasmhook at `base` (`http://host:port`), as the operator.
    pub async fn read(base: &str, operator_token: &str) -> anyhow::Result<Self> {
        Self::parse(&scrape(base, operator_token).await?)
    }

    /// `run`, and what the wasmhook at `base` observed while it ran.
    pub async fn during<T>(
        base: &str,
        operator_token: &str,
        run: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, Self)> {
        let before = Self::read(base, operator_token).await?;
        let value = run.await?;
        let after = Self::read(base, operator_token).await?;
        Ok((value, after.since(&before)))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut stages: BTreeMap<String, Histogram> = BTreeMap::new();
        for line in text.lines() {
            let Some((series, rest)) = [
                SERIES,
                HTTP_SERIES,
                DB_WAIT_SERIES,
                BATCH_SERIES,
                CHECKPOINT_SERIES,
            ]
            .into_iter()
            .find_map(|series| Some((series, line.strip_prefix(series)?))) else {
                continue;
            };
            // `_bucket{le="0.001"} 5`, or an unlabelled `_sum 0.0` (the database waits').
            let (kind, labels, value) = match rest.split_once('{') {
                Some((kind, rest)) => {
                    let (labels, value) = rest.rsplit_once("} ").context("a value")?;
                    (kind, labels, value)
                }
                None => {
                    let (kind, value) = rest.split_once(' ').context("a value")?;
                    (kind, "", value)
                }
            };
            let label = |name: &str| {
                labels.split(',').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    (key == name).then(|| value.trim_matches('"').to_owned())
                })
            };
            let stage = match series {
                SERIES => label("stage").context("a stage label")?,
                HTTP_SERIES if label("route").as_deref() == Some(INVOKE_ROUTE) => {
                    "http_request".to_owned()
                }
                HTTP_SERIES => continue,
                BATCH_SERIES => "log_batch".to_owned(),
                CHECKPOINT_SERIES => format!("checkpoint_{}", label("mode").context("a mode")?),
                _ => "db_wait".to_owned(),
            };
            let value: f64 = value
                .split_whitespace()
                .next()
                .context("a number")?
                .parse()?;
            let histogram = stages.entry(stage).or_default();
            match kind {
                "_bucket" => {
                    let bound = label("le").context("a bound")?;
                    let bound = if bound == "+Inf" {
                        f64::INFINITY
                    } else {
                        bound.parse()?
                    };
                    // Series of several label sets (methods, statuses) add up per bound.
                    match histogram.buckets.iter_mut().find(|(b, _)| *b == bound) {
                        Some((_, count)) => *count += value,
                        None => histogram.buckets.push((bound, value)),
                    }
                }
                "_sum" => histogram.sum += value,
                _ => {}
            }
        }
        for histogram in stages.values_mut() {
            histogram.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Ok(Stages(stages))
    }

    /// What was observed since `before`.
    pub fn since(&self, before: &Stages) -> Stages {
        Stages(
            self.0
                .iter()
                .map(|(stage, after)| {
                    let earlier = before.0.get(stage);
                    let count_before = |bound: f64| {
                        earlier
                            .and_then(|histogram| {
                                histogram.buckets.iter().find(|(b, _)| *b == bound)
                            })
                            .map_or(0.0, |(_, count)| *count)
                    };
                    let histogram = Histogram {
                        buckets: after
                            .buckets
                            .iter()
                            .map(|(bound, count)| (*bound, count - count_before(*bound)))
                            .collect(),
                        sum: after.sum - earlier.map_or(0.0, |histogram| histogram.sum),
                    };
                    (stage.clone(), histogram)
                })
                .collect(),
        )
    }

    /// These observations and `other`'s together.
    pub fn add(&mut self, other: &Stages) {
        for (stage, theirs) in &other.0 {
            let ours = self.0.entry(stage.clone()).or_default();
            if ours.buckets.is_empty() {
                ours.buckets = theirs.buckets.iter().map(|(b, _)| (*b, 0.0)).collect();
            }
            for ((_, count), (_, more)) in ours.buckets.iter_mut().zip(&theirs.buckets) {
                *count += more;
            }
            ours.sum += theirs.sum;
        }
    }

    /// Each stage's row, in the order a call goes through them, then the whole request, the
    /// database waits, the writer's commits and the checkpoints.
    pub fn rows(&self) -> Vec<Row> {
        // Named as text, not through the host's `Stage::ALL`: the bench reads any wasmhook
        // binary, baselines built from older commits included, and takes what it finds.
        let order = [
            "queue",
            "handoff",
            "cpu_slot",
            "instantiate",
            "guest",
            "log_commit",
            "total",
            "http_request",
            "db_wait",
            "log_batch",
            "checkpoint_passive",
            "checkpoint_restart",
        ];
        let mut rows = Vec::new();
        for stage in order {
            let Some(histogram) = self.0.get(stage) else {
                continue;
            };
            let count = histogram.buckets.last().map_or(0.0, |(_, count)| *count);
            if count <= 0.0 {
                continue;
            }
            let under = |quantile: f64| {
                histogram
                    .buckets
                    .iter()
                    .find(|(_, below)| *below >= quantile * count)
                    .map_or(f64::INFINITY, |(bound, _)| *bound)
            };
            rows.push(Row {
                stage: stage.to_owned(),
                count,
                mean: histogram.sum / count,
                p50: under(0.5),
                p99: under(0.99),
                p999: under(0.999),
            });
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row's stage and count, in order.
    fn counts(rows: &[Row]) -> Vec<(&str, f64)> {
        rows.iter()
            .map(|row| (row.stage.as_str(), row.count))
            .collect()
    }

    #[test]
    fn a_run_is_the_difference_of_two_readings() -> anyhow::Result<()> {
        let before = Stages::parse(
            "wasmhook_call_stage_duration_seconds_bucket{le=\"0.001\",stage=\"guest\"} 10\n\
             wasmhook_call_stage_duration_seconds_bucket{le=\"0.002\",stage=\"guest\"} 10\n\
             wasmhook_call_stage_duration_seconds_bucket{le=\"+Inf\",stage=\"guest\"} 10\n\
             wasmhook_call_stage_duration_seconds_sum{stage=\"guest\"} 0.005\n",
        )?;
        let after = Stages::parse(
            "wasmhook_call_stage_duration_seconds_bucket{le=\"0.001\",stage=\"guest\"} 108\n\
             wasmhook_call_stage_duration_seconds_bucket{le=\"0.002\",stage=\"guest\"} 109\n\
             wasmhook_call_stage_duration_seconds_bucket{le=\"+Inf\",stage=\"guest\"} 110\n\
             wasmhook_call_stage_duration_seconds_sum{stage=\"guest\"} 0.105\n",
        )?;
        let rows = after.since(&before).rows();
        assert_eq!(rows.len(), 1);
        let row = rows[0].clone();
        assert_eq!((row.stage.as_str(), row.count), ("guest", 100.0));
        assert!((row.mean - 0.001).abs() < 1e-9);
        assert_eq!((row.p50, row.p99, row.p999), (0.001, 0.002, f64::INFINITY));
        Ok(())
    }

    #[test]
    fn the_invocations_requests_and_the_database_waits_are_read_beside_the_stages(
    ) -> anyhow::Result<()> {
        let read = Stages::parse(
            "wasmhook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/hooks/{id}/invoke\",status=\"200\",le=\"0.001\"} 90\n\
             wasmhook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/hooks/{id}/invoke\",status=\"200\",le=\"+Inf\"} 99\n\
             wasmhook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/hooks/{id}/invoke\",status=\"400\",le=\"0.001\"} 0\n\
             wasmhook_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/hooks/{id}/invoke\",status=\"400\",le=\"+Inf\"} 1\n\
             wasmhook_http_request_duration_seconds_sum{method=\"POST\",route=\"/api/v1/hooks/{id}/invoke\",status=\"200\"} 0.2\n\
             wasmhook_http_request_duration_seconds_bucket{method=\"GET\",route=\"/metrics\",status=\"200\",le=\"+Inf\"} 7\n\
             wasmhook_db_wait_seconds_bucket{le=\"0.001\"} 5\n\
             wasmhook_db_wait_seconds_bucket{le=\"+Inf\"} 5\n\
             wasmhook_db_wait_seconds_sum 0.0\n",
        )?;
        let rows = read.rows();
        assert_eq!(counts(&rows), [("http_request", 100.0), ("db_wait", 5.0)]);
        assert_eq!(rows[0].p50, 0.001);
        assert_eq!(rows[0].p99, f64::INFINITY);
        Ok(())
    }

    #[test]
    fn the_writers_commits_and_the_checkpoints_are_read_by_mode() -> anyhow::Result<()> {
        let read = Stages::parse(
            "wasmhook_run_log_batch_commit_seconds_bucket{le=\"0.001\"} 40\n\
             wasmhook_run_log_batch_commit_seconds_bucket{le=\"+Inf\"} 40\n\
             wasmhook_run_log_batch_commit_seconds_sum 0.02\n\
             wasmhook_sqlite_checkpoint_seconds_bucket{mode=\"passive\",le=\"0.001\"} 3\n\
             wasmhook_sqlite_checkpoint_seconds_bucket{mode=\"passive\",le=\"+Inf\"} 4\n\
             wasmhook_sqlite_checkpoint_seconds_sum{mode=\"passive\"} 0.01\n\
             wasmhook_sqlite_checkpoint_seconds_bucket{mode=\"restart\",le=\"0.001\"} 0\n\
             wasmhook_sqlite_checkpoint_seconds_bucket{mode=\"restart\",le=\"+Inf\"} 2\n\
             wasmhook_sqlite_checkpoint_seconds_sum{mode=\"restart\"} 0.02\n",
        )?;
        let rows = read.rows();
        assert_eq!(
            counts(&rows),
            [
                ("log_batch", 40.0),
                ("checkpoint_passive", 4.0),
                ("checkpoint_restart", 2.0)
            ]
        );
        assert!((rows[2].mean - 0.01).abs() < 1e-9);
        assert_eq!(rows[2].p50, f64::INFINITY);
        Ok(())
    }
}
