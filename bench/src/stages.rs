//! Where a wasmhook call's time goes under load: the server's own per-stage histogram
//! (`wasmhook_call_stage_duration_seconds{stage}`: queue, handoff, cpu_slot, instantiate,
//! guest, log_commit, total), read from its `/metrics` before and after a run and
//! subtracted, so that a slow tail can be put on a stage rather than guessed at.

use std::collections::BTreeMap;

use anyhow::Context;

/// The histogram's name in the exposition.
const SERIES: &str = "wasmhook_call_stage_duration_seconds";

/// One stage's histogram: cumulative counts by upper bound (seconds), and the sum of the
/// observed durations.
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
        let text = reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(operator_token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        Self::parse(&text)
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
            let Some(rest) = line.strip_prefix(SERIES) else {
                continue;
            };
            let (kind, rest) = rest.split_once('{').context("a labelled series")?;
            let (labels, value) = rest.rsplit_once("} ").context("a value")?;
            let label = |name: &str| {
                labels.split(',').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    (key == name).then(|| value.trim_matches('"').to_owned())
                })
            };
            let stage = label("stage").context("a stage label")?;
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
                    histogram.buckets.push((bound, value));
                }
                "_sum" => histogram.sum = value,
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

    /// Each stage: its observations, mean, and the bucket bounds its p50 and p99 fall
    /// under (seconds), in the order a call goes through them.
    pub fn rows(&self) -> Vec<(String, f64, f64, f64, f64)> {
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
            rows.push((
                stage.to_owned(),
                count,
                histogram.sum / count,
                under(0.5),
                under(0.99),
            ));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (stage, count, mean, p50, p99) = rows[0].clone();
        assert_eq!((stage.as_str(), count), ("guest", 100.0));
        assert!((mean - 0.001).abs() < 1e-9);
        assert_eq!(p50, 0.001);
        assert_eq!(p99, 0.002);
        Ok(())
    }
}
