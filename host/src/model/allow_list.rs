//! The grammar of `config.allowed_hosts`: which hosts a hook's guest may call. A hook is
//! refused when saved if a pattern breaks a rule ([`PatternError`] says which), and
//! [`AllowList::allows`] is asked for every request its guest makes. In the model because
//! it is pure and a hook's config is checked with it; `outbound` enforces it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Why a `config.allowed_hosts` pattern (or `wasmhook run --allow-host`) is refused: one
/// variant per rule broken, each holding the pattern as read (trimmed, in lowercase).
///
/// A type rather than a sentence, so that callers can tell the rules apart; its message is
/// the sentence API answers have always carried, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A scheme or a path (`https://a.example`, `a.example/x`): a pattern names a host only.
    #[error("`{0}`: a host or host:port, without scheme or path")]
    SchemeOrPath(String),
    /// A port that is not a number from 1 to 65535 (`a.example:0`, `a.example:https`).
    #[error("`{0}`: a host or host:port, with a port from 1 to 65535")]
    BadPort(String),
    /// A bracketed IPv6 address not closed, or followed by something other than `:port`
    /// (`[::1`, `[::1]8080`); it reads as a host:port gone wrong, and says so.
    #[error("`{0}`: a host or host:port, with a port from 1 to 65535")]
    BadBrackets(String),
    /// Neither a host name (dot-separated labels of 1 to 63 letters, digits and inner
    /// hyphens, 253 characters at most) nor an IP address.
    #[error("`{0}` is not a host name or an IP address")]
    BadHost(String),
    /// `*.` before an IP address (`*.10.0.0.1`): a wildcard stands for subdomains, and an
    /// address has none.
    #[error("`{0}` is not a host name or an IP address")]
    WildcardAddress(String),
}

/// One `host` or `host:port` pattern of `config.allowed_hosts`; `*.example.com` matches any
/// subdomain of example.com (not example.com itself).
///
/// Parsed once (when a hook is saved, or from `wasmhook run --allow-host`), so that a
/// request is matched without reading text again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses a pattern, saying which rule a bad one breaks.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = text.trim().to_ascii_lowercase();
        // A scheme's `://` holds a slash too.
        if text.contains('/') {
            return Err(PatternError::SchemeOrPath(text));
        }
        let (host, port) = split_host_port(&text)?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        let literal = host.parse::<IpAddr>().is_ok();
        if wildcard && literal {
            return Err(PatternError::WildcardAddress(text));
        }
        if !(literal || is_host_name(host)) {
            return Err(PatternError::BadHost(text));
        }
        Ok(HostPattern {
            host: host.to_owned(),
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_matches = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host || same_address(host, &self.host)
        };
        host_matches && self.port.is_none_or(|wanted| wanted == port)
    }
}

/// Whether `host` is a DNS name: labels of 1 to 63 letters, digits and hyphens, not
/// starting or ending with a hyphen, 253 characters in all at most.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether two texts are the same IP address however each is written: a pattern keeps
/// `::127.0.0.1` as written, while a URL's host is normalized to `::7f00:1`.
fn same_address(one: &str, other: &str) -> bool {
    matches!(
        (one.parse::<IpAddr>(), other.parse::<IpAddr>()),
        (Ok(one), Ok(other)) if one == other
    )
}

/// Prints the pattern so that it parses back to itself (the fuzz target checks it).
impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, or a bare IPv6 address; `text` is the whole
/// pattern, which an error holds.
fn split_host_port(text: &str) -> Result<(&str, Option<u16>), PatternError> {
    let port_of =
        |after: &str| parse_port(after).ok_or_else(|| PatternError::BadPort(text.to_owned()));
    if let Some(rest) = text.strip_prefix('[') {
        let brackets = || PatternError::BadBrackets(text.to_owned());
        let (host, after) = rest.split_once(']').ok_or_else(brackets)?;
        return match after.strip_prefix(':') {
            Some(after) => Ok((host, Some(port_of(after)?))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(brackets()),
        };
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text, None));
    }
    match text.rsplit_once(':') {
        Some((host, after)) => Ok((host, Some(port_of(after)?))),
        None => Ok((text, None)),
    }
}

/// A port from 1 to 65535.
fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// The hosts one hook's guest may call (besides the installation's own API): its
/// `config.allowed_hosts`, parsed. Empty, it allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<HostPattern>);

impl AllowList {
    /// The list from patterns parsed already (`wasmhook run`'s `--allow-host` values).
    pub fn new(patterns: Vec<HostPattern>) -> Self {
        AllowList(patterns)
    }

    /// Parses `config.allowed_hosts`-style strings; the first bad one says why.
    pub fn parse<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, PatternError> {
        patterns
            .into_iter()
            .map(HostPattern::parse)
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    /// Whether a pattern allows `host` (lowercase, an IPv6 address without brackets, as a
    /// URL gives it) on `port`.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        self.0.iter().any(|pattern| pattern.matches(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(host: &str, wildcard: bool, port: Option<u16>) -> HostPattern {
        HostPattern {
            host: host.to_owned(),
            wildcard,
            port,
        }
    }

    #[test]
    fn patterns_match_host_and_port() -> Result<(), PatternError> {
        let list = AllowList::parse(["api.example.com", "*.partner.io:8443", "10.1.2.3:80"])?;
        assert!(list.allows("api.example.com", 443));
        assert!(list.allows("api.example.com", 8080));
        assert!(!list.allows("example.com", 443));
        assert!(!list.allows("evil-api.example.com", 443));
        assert!(list.allows("eu.partner.io", 8443));
        assert!(!list.allows("eu.partner.io", 443));
        assert!(!list.allows("partner.io", 8443));
        assert!(!list.allows("xpartner.io", 8443));
        assert!(list.allows("10.1.2.3", 80));
        assert!(!list.allows("10.1.2.3", 81));
        // An address matches however either side writes it.
        let list = AllowList::parse(["[::127.0.0.1]"])?;
        assert!(list.allows("::7f00:1", 80));
        assert!(!AllowList::default().allows("api.example.com", 443));
        Ok(())
    }

    /// Every valid form: host, host:port, *.domain, an IPv4 address (with or without a
    /// port), an IPv6 address bare or in brackets (with or without a port); read trimmed
    /// and in lowercase, and printed back to text that parses to the same pattern.
    #[test]
    fn valid_forms_parse() -> Result<(), PatternError> {
        let cases = [
            ("api.example.com", pattern("api.example.com", false, None)),
            (" API.Example.COM ", pattern("api.example.com", false, None)),
            (
                "api.example.com:8443",
                pattern("api.example.com", false, Some(8443)),
            ),
            ("localhost", pattern("localhost", false, None)),
            ("*.partner.io", pattern("partner.io", true, None)),
            ("*.partner.io:443", pattern("partner.io", true, Some(443))),
            ("10.1.2.3", pattern("10.1.2.3", false, None)),
            ("10.1.2.3:80", pattern("10.1.2.3", false, Some(80))),
            ("::1", pattern("::1", false, None)),
            ("[::1]", pattern("::1", false, None)),
            ("[::1]:8080", pattern("::1", false, Some(8080))),
            (
                "[2001:db8::1]:65535",
                pattern("2001:db8::1", false, Some(65535)),
            ),
        ];
        for (text, expected) in cases {
            let parsed = HostPattern::parse(text)?;
            assert_eq!(parsed, expected, "{text}");
            let printed = format!("{parsed}");
            assert_eq!(
                HostPattern::parse(&printed)?,
                parsed,
                "{text} printed as {printed}"
            );
        }
        Ok(())
    }

    /// Each rule, broken, with the variant that names it; the pattern is held as read.
    #[test]
    fn each_broken_rule_has_its_variant() {
        let long_label = format!("{}.example.com", "a".repeat(64));
        let long_name = ["abcdefghi"; 26].join(".");
        let cases = [
            (
                "https://a.com",
                PatternError::SchemeOrPath("https://a.com".into()),
            ),
            (
                "a.com/path",
                PatternError::SchemeOrPath("a.com/path".into()),
            ),
            (
                "A.com/Path",
                PatternError::SchemeOrPath("a.com/path".into()),
            ),
            ("a.com:0", PatternError::BadPort("a.com:0".into())),
            ("a.com:99999", PatternError::BadPort("a.com:99999".into())),
            ("a.com:https", PatternError::BadPort("a.com:https".into())),
            ("a.com:", PatternError::BadPort("a.com:".into())),
            ("[::1]:0", PatternError::BadPort("[::1]:0".into())),
            ("[::1", PatternError::BadBrackets("[::1".into())),
            ("[::1]8080", PatternError::BadBrackets("[::1]8080".into())),
            ("", PatternError::BadHost(String::new())),
            ("a..com", PatternError::BadHost("a..com".into())),
            ("bad host", PatternError::BadHost("bad host".into())),
            ("-a.com", PatternError::BadHost("-a.com".into())),
            ("a-.com", PatternError::BadHost("a-.com".into())),
            ("a_b.com", PatternError::BadHost("a_b.com".into())),
            ("*.", PatternError::BadHost("*.".into())),
            (
                long_label.as_str(),
                PatternError::BadHost(long_label.clone()),
            ),
            (long_name.as_str(), PatternError::BadHost(long_name.clone())),
            (
                "*.1.2.3.4",
                PatternError::WildcardAddress("*.1.2.3.4".into()),
            ),
            (
                "*.10.0.0.1:80",
                PatternError::WildcardAddress("*.10.0.0.1:80".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(HostPattern::parse(text), Err(expected), "{text}");
        }
        // A list stops at its first bad pattern.
        assert_eq!(
            AllowList::parse(["a.com", "a.com:0", "a..com"]),
            Err(PatternError::BadPort("a.com:0".into()))
        );
    }

    /// The messages are the ones API answers carried when they were plain strings.
    #[test]
    fn messages_are_unchanged() {
        let message = |text: &str| match HostPattern::parse(text) {
            Ok(pattern) => panic!("{text} parsed as {pattern}"),
            Err(error) => format!("{error}"),
        };
        assert_eq!(
            message("https://a.example/path"),
            "`https://a.example/path`: a host or host:port, without scheme or path"
        );
        assert_eq!(
            message("a.example:0"),
            "`a.example:0`: a host or host:port, with a port from 1 to 65535"
        );
        assert_eq!(
            message("[::1"),
            "`[::1`: a host or host:port, with a port from 1 to 65535"
        );
        assert_eq!(
            message("a..example"),
            "`a..example` is not a host name or an IP address"
        );
        assert_eq!(
            message("*.1.2.3.4"),
            "`*.1.2.3.4` is not a host name or an IP address"
        );
    }
}
