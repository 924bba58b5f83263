//! Arbitrary text through the allow-list grammar (`config.allowed_hosts`) and the address
//! rules of outbound requests.
//!
//! The input is lines: every line but the last is a pattern (`host`, `host:port`,
//! `*.domain`, `[v6]:port`); the last is what a guest asks for, as `host:port` and, when it
//! parses, as a URL. Never a panic; a pattern prints as text that parses back to it; a
//! listed host is allowed; a URL naming a non-public address is never routed to, whatever
//! the list; and an IPv4 address inside an IPv6 one is judged as the IPv4 address (the first
//! four bytes of the input are that address).

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wasmhook::outbound::{is_public, AllowList, HostPattern, Outbound, OutboundConfig};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.lines().collect();
    let asked = lines.pop().unwrap_or_default();

    let _ = AllowList::parse(lines.iter().copied());
    let mut patterns = Vec::new();
    for line in &lines {
        let Ok(pattern) = HostPattern::parse(line) else {
            continue;
        };
        let printed = pattern.to_string();
        match HostPattern::parse(&printed) {
            Ok(again) => assert_eq!(again, pattern, "`{line}` prints as `{printed}`"),
            Err(reason) => {
                panic!("`{line}` parsed, but prints as `{printed}`, which does not: {reason}")
            }
        }
        patterns.push(pattern);
    }
    let printed: Vec<String> = patterns.iter().map(ToString::to_string).collect();
    let list = AllowList::new(patterns);

    // `host:port` asked directly, as the outbound rules see a URL's host (lowercase, no
    // brackets).
    let (host, port) = match asked.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().unwrap_or(443)),
        None => (asked, 443),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let allowed = list.allows(&host, port);
    // A pattern without a port that prints as this very host allows it on any port.
    let listed = printed.iter().any(|pattern| {
        *pattern == host && (!pattern.contains(':') || pattern.parse::<Ipv6Addr>().is_ok())
    });
    assert!(
        !listed || allowed,
        "`{host}` is listed but not allowed on port {port}"
    );

    // As a URL: a literal non-public address is refused before any connection, for a guest
    // whatever its list, and for a webhook.
    if let Ok(url) = reqwest::Url::parse(asked) {
        let routed = outbound().route(&url, &list);
        let webhook = outbound().webhook_route(&url);
        let literal = url
            .host_str()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<IpAddr>().ok());
        if let Some(address) = literal.filter(|address| !is_public(*address)) {
            assert!(routed.is_err(), "{url}: a guest may reach {address}");
            assert!(webhook.is_err(), "{url}: a webhook may reach {address}");
        }
        // Plain http is refused for webhooks by default, before the address is looked at.
        if url.scheme() == "http" {
            assert!(
                default_outbound().webhook_route(&url).is_err(),
                "{url}: a webhook over plain http"
            );
        }
    }

    // An IPv4 address, and the IPv6 forms that carry it.
    if let Some(octets) = data.first_chunk::<4>() {
        let v4 = Ipv4Addr::from(*octets);
        let public = is_public(IpAddr::V4(v4));
        let high = u16::from_be_bytes([octets[0], octets[1]]);
        let low = u16::from_be_bytes([octets[2], octets[3]]);
        // Forms that stand for the IPv4 address: exactly as public as it.
        for same in [
            v4.to_ipv6_mapped(),
            v4.to_ipv6_compatible(),
            Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, high, low),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, high, low),
        ] {
            assert_eq!(is_public(IpAddr::V6(same)), public, "{v4} as {same}");
        }
        // Tunnels to it (6to4, a Teredo server, ISATAP): never public when it is not.
        if !public {
            for carrier in [
                Ipv6Addr::new(0x2002, high, low, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0x2001, 0, high, low, 0x8000, 0x63bf, 0xfefe, 0xfefe),
                Ipv6Addr::new(0x2001, 0x4860, 0, 0, 0, 0x5efe, high, low),
            ] {
                assert!(!is_public(IpAddr::V6(carrier)), "{v4} inside {carrier}");
            }
        }
    }
});

/// One client under the default address rules (no private addresses) with plain-http
/// webhooks allowed, so that the address rules are what decides; built once: routing
/// decides without connecting.
fn outbound() -> &'static Outbound {
    static OUTBOUND: OnceLock<Outbound> = OnceLock::new();
    OUTBOUND.get_or_init(|| {
        Outbound::new(
            OutboundConfig {
                allow_http_webhooks: true,
                ..OutboundConfig::default()
            },
            None,
        )
        .expect("an outbound client")
    })
}

/// One client under the default rules, plain-http webhooks refused.
fn default_outbound() -> &'static Outbound {
    static OUTBOUND: OnceLock<Outbound> = OnceLock::new();
    OUTBOUND
        .get_or_init(|| Outbound::new(OutboundConfig::default(), None).expect("an outbound client"))
}
