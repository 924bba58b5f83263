//! The `[network]` section: outgoing requests (guests' `wasi:http`, webhooks), retries and
//! schedules, and its translation into the outbound client's configuration. A file of its
//! own, as every section, so that a section's settings, defaults and checks read together.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::environment::{with_environment, Section, Variables};
use super::error::{at_least, ConfigError};

/// Outgoing requests (guests' `wasi:http`, webhooks), retries and schedules; each has a
/// default and an environment variable (`WASMHOOK_<NAME>` in capitals).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Let hooks reach loopback, private and other non-public addresses (the installation's
    /// own API is always reachable).
    pub allow_private_addresses: bool,
    /// Let webhooks call plain `http://` URLs; otherwise a webhook's `config.url` must be
    /// `https://`, since its payload carries the hook's secrets and a minted token.
    pub allow_http_webhooks: bool,
    /// Milliseconds a connection may take.
    pub connect_timeout_ms: u64,
    /// Milliseconds a guest's request waits for the first byte of its answer.
    pub first_byte_timeout_ms: u64,
    /// The largest response body read.
    pub max_response_bytes: u64,
    /// Outgoing requests one organization may have in flight at once.
    pub requests_per_organization: usize,
    /// Milliseconds before the first retry of a failed non-interactive run; each next
    /// retry waits twice as long, at most 30 s.
    pub retry_delay_ms: u64,
    /// Milliseconds between polls of an async webhook (Rossum polls every 30 s).
    pub webhook_poll_interval_ms: u64,
    /// Milliseconds a replica holds a delivery it claimed (a retry, a poll, a later hook
    /// of an event) without renewing its lease; it renews every third of that while it
    /// lives. A killed replica's deliveries are taken over this long after its last
    /// renewal.
    pub delivery_lease_ms: u64,
    /// For tests: read the scheduler's clock from this file (an RFC 3339 time) instead of
    /// the system clock.
    pub test_clock_file: Option<PathBuf>,
}

impl Default for Network {
    fn default() -> Self {
        let outbound = crate::outbound::OutboundConfig::default();
        Network {
            allow_private_addresses: false,
            allow_http_webhooks: false,
            connect_timeout_ms: millis(outbound.connect_timeout),
            first_byte_timeout_ms: millis(outbound.first_byte_timeout),
            max_response_bytes: outbound.max_response_bytes,
            requests_per_organization: outbound.requests_per_organization,
            retry_delay_ms: 1000,
            webhook_poll_interval_ms: 30_000,
            delivery_lease_ms: 30_000,
            test_clock_file: None,
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Network {
    /// Overrides from `WASMHOOK_*` variables, then the checks.
    pub(super) fn with_environment(self, variables: Variables<'_>) -> Result<Self, ConfigError> {
        let network: Self = with_environment(self, Section::Network, variables)?;
        at_least(
            "requests_per_organization",
            network.requests_per_organization,
            1,
            "",
        )?;
        at_least(
            "webhook_poll_interval_ms",
            network.webhook_poll_interval_ms,
            1,
            "",
        )?;
        at_least(
            "delivery_lease_ms",
            network.delivery_lease_ms,
            300,
            " (it is renewed every third of it)",
        )?;
        Ok(network)
    }

    /// The outbound client's configuration.
    pub fn outbound(&self) -> crate::outbound::OutboundConfig {
        use std::time::Duration;
        crate::outbound::OutboundConfig {
            allow_private_addresses: self.allow_private_addresses,
            allow_http_webhooks: self.allow_http_webhooks,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            first_byte_timeout: Duration::from_millis(self.first_byte_timeout_ms),
            max_response_bytes: self.max_response_bytes,
            requests_per_organization: self.requests_per_organization,
        }
    }
}
