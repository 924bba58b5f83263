//! Which rules a URL is sent under, decided before anything is sent: a guest's request
//! goes to its own API or to an allowed host, a hook-named URL (a webhook) over https
//! unless the operator allows plain http; either way a literal address must be public
//! unless the operator allows the others. A name is judged later, by the resolver.

use std::net::IpAddr;

use super::address::is_public;
use super::{AllowList, Outbound, OutboundError};

/// An absolute URL's parts that the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    /// The parts of an http or https URL with a host.
    pub(super) fn of(url: &reqwest::Url) -> Result<Self, OutboundError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(OutboundError::BadUrl(url.to_string())),
        };
        let host = url
            .host_str()
            .ok_or_else(|| OutboundError::BadUrl(url.to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| OutboundError::BadUrl(url.to_string()))?;
        Ok(Origin { https, host, port })
    }

    /// `host:port`, an IPv6 address in brackets: how a refusal names where it was going.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Whose rules a request is sent under: decided by [`Outbound::route`] or
/// [`Outbound::webhook_route`], then handed to [`Outbound::send`], which picks the client
/// that applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The installation's own API: its base URL, whatever its address.
    OwnApi,
    /// Anywhere else: public addresses only, unless the operator allows the others.
    Public,
}

/// Counts a route's refusal, by reason.
fn refusal_counted(route: Result<Route, OutboundError>) -> Result<Route, OutboundError> {
    if let Err(error) = &route {
        error.count_refusal();
    }
    route
}

impl Outbound {
    /// Which rules `url` falls under for a guest with `allowed`, or why it may not be called.
    pub fn route(&self, url: &reqwest::Url, allowed: &AllowList) -> Result<Route, OutboundError> {
        refusal_counted(self.guest_route(url, allowed))
    }

    fn guest_route(&self, url: &reqwest::Url, allowed: &AllowList) -> Result<Route, OutboundError> {
        let origin = Origin::of(url)?;
        if self.own_api.as_ref() == Some(&origin) {
            return Ok(Route::OwnApi);
        }
        if !allowed.allows(&origin.host, origin.port) {
            return Err(OutboundError::NotAllowed(origin.authority()));
        }
        self.public_route(&origin)
    }

    /// The rules for a URL a hook names itself (a webhook's `url`, or the `Location` its
    /// asynchronous answer points to): https and public addresses only, unless the operator
    /// allows the others. Checked at every call, not only when the hook is saved, so a hook
    /// saved before the operator's setting changed follows the setting too.
    pub fn webhook_route(&self, url: &reqwest::Url) -> Result<Route, OutboundError> {
        refusal_counted(self.hook_named_route(url))
    }

    fn hook_named_route(&self, url: &reqwest::Url) -> Result<Route, OutboundError> {
        let origin = Origin::of(url)?;
        if !origin.https && !self.config.allow_http_webhooks {
            return Err(OutboundError::PlainHttp(origin.authority()));
        }
        self.public_route(&origin)
    }

    fn public_route(&self, origin: &Origin) -> Result<Route, OutboundError> {
        if let Ok(address) = origin.host.parse::<IpAddr>() {
            if !self.config.allow_private_addresses && !is_public(address) {
                return Err(OutboundError::PrivateAddress(origin.authority()));
            }
        }
        Ok(Route::Public)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::outbound::OutboundConfig;

    fn url(text: &str) -> Result<reqwest::Url, OutboundError> {
        reqwest::Url::parse(text).map_err(|_| OutboundError::BadUrl(text.into()))
    }

    #[test]
    fn an_ipv6_literal_carrying_a_private_ipv4_is_refused_before_connecting(
    ) -> Result<(), Box<dyn Error>> {
        // Plain HTTP allowed, so that the address rule is what refuses.
        let outbound = Outbound::new(
            OutboundConfig {
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )?;
        assert!(matches!(
            Outbound::new(OutboundConfig::default(), None)?
                .webhook_route(&url("http://hooks.example.com/")?),
            Err(OutboundError::PlainHttp(_))
        ));
        // The URL parser normalizes the literal (`[::127.0.0.1]` becomes `[::7f00:1]`); the
        // rules see the address either way.
        for text in [
            "http://[::127.0.0.1]/",
            "https://[2002:7f00:1::]/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://[64:ff9b::169.254.169.254]/latest/meta-data/",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        ] {
            assert!(
                matches!(
                    outbound.webhook_route(&url(text)?),
                    Err(OutboundError::PrivateAddress(_))
                ),
                "{text}"
            );
        }
        // Listing the literal in allowed_hosts matches it however it is written, and the
        // address rule still refuses it.
        let allowed =
            AllowList::parse(["[::127.0.0.1]", "[2002:7f00:1::]:80", "[64:ff9b::1.1.1.1]"])?;
        assert!(matches!(
            outbound.route(&url("http://[::127.0.0.1]/")?, &allowed),
            Err(OutboundError::PrivateAddress(_))
        ));
        assert!(matches!(
            outbound.route(&url("http://[2002:7f00:1::]/x")?, &allowed),
            Err(OutboundError::PrivateAddress(_))
        ));
        assert_eq!(
            outbound.route(&url("http://[64:ff9b::101:101]/")?, &allowed)?,
            Route::Public
        );
        let allowing = Outbound::new(
            OutboundConfig {
                allow_private_addresses: true,
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )?;
        assert_eq!(
            allowing.webhook_route(&url("http://[::127.0.0.1]/")?)?,
            Route::Public
        );
        Ok(())
    }

    #[test]
    fn guests_reach_their_hosts_and_the_own_api_only() -> Result<(), Box<dyn Error>> {
        let outbound = Outbound::new(OutboundConfig::default(), Some("http://127.0.0.1:8080"))?;
        let allowed = AllowList::parse(["api.example.com", "127.0.0.1:9000"])?;
        assert_eq!(
            outbound.route(&url("http://127.0.0.1:8080/api/v1/hooks/1")?, &allowed)?,
            Route::OwnApi
        );
        assert_eq!(
            outbound.route(&url("https://api.example.com/x")?, &allowed)?,
            Route::Public
        );
        assert!(matches!(
            outbound.route(&url("https://other.example.com/")?, &allowed),
            Err(OutboundError::NotAllowed(_))
        ));
        assert!(matches!(
            outbound.route(&url("http://127.0.0.1:9000/")?, &allowed),
            Err(OutboundError::PrivateAddress(_))
        ));
        assert!(matches!(
            outbound.route(&url("ftp://api.example.com/")?, &allowed),
            Err(OutboundError::BadUrl(_))
        ));
        Ok(())
    }
}
