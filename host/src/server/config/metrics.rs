//! The `[metrics]` section: whether metrics are recorded, where `GET /metrics` is also
//! served, and how its series are labelled. A file of its own, as every section, so that a
//! section's settings, defaults and checks read together.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{with_environment, Section, Variables};
use super::error::ConfigError;

/// `GET /metrics`: where it is served and how its series are labelled; each has a default
/// and an environment variable (`WASMHOOK_METRICS_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Record metrics and serve `GET /metrics`; false records nothing (`/metrics` answers
    /// 404).
    pub enabled: bool,
    /// Also serve `GET /metrics` here, without authentication (bind it to an address only
    /// the scraper reaches). Unset: only on the API's address, with the operator's token.
    pub listen: Option<SocketAddr>,
    /// Label per-organization series with the organization's id; false drops the label
    /// (for installations with very many organizations).
    pub organization_labels: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: true,
            listen: None,
            organization_labels: true,
        }
    }
}

impl Metrics {
    /// Overrides from `WASMHOOK_METRICS_*` variables.
    pub(super) fn with_environment(self, variables: Variables<'_>) -> Result<Self, ConfigError> {
        with_environment(self, Section::Metrics, variables)
    }
}
