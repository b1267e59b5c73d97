//! `[rum]`: who may push Cisco RUM reports to the CSLU-style endpoint (SPEC §3b).
//!
//! The endpoint carries no client identity, so the configuration narrows it: the guessable
//! URLs (`/cslu/v1/pi`, `/cslu/v1/pi/<account>-1`) are off unless turned on, and `allow` lists
//! the networks reports may come from. Networks are parsed here (a dozen lines for IPv4 and
//! IPv6 prefixes rather than a dependency), so a typo is refused at load naming the key.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use super::{ConfigError, Validator, quote};

/// `[rum]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RumConfig {
    /// Whether the guessable forms of the ingest URL are accepted besides each account's
    /// unguessable one (`satellite account show` prints it): `/cslu/v1/pi` (while the
    /// satellite holds one account), `/cslu/v1/pi/<account>` and `/cslu/v1/pi/<account>-N`.
    /// Anyone who can reach the device listener and guess an account name can then report
    /// usage for it. Default `false`.
    pub guessable_urls: bool,
    /// Networks RUM reports may come from, as `ADDRESS/PREFIX` (`"10.0.0.0/8"`,
    /// `"2001:db8::/32"`) or a single address; a report from elsewhere is answered like an
    /// unknown URL. Empty: any source. Default `[]`.
    pub allow: Vec<String>,
}

/// Validated `[rum]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RumSettings {
    /// The guessable URL forms are accepted.
    pub guessable_urls: bool,
    /// Empty: every source is allowed.
    pub allow: Vec<Network>,
}

impl RumSettings {
    /// Whether a report from `ip` may be received.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip))
    }
}

/// An IP network: an address and the length of its prefix, with the host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `ADDRESS/PREFIX` or a bare address (a network of one). Host bits must be zero
    /// (`10.1.2.3/8` is refused: it usually means a mistyped prefix).
    pub fn parse(text: &str) -> Result<Network, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would also take `+8`.
            Some(p) => p
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| p.parse::<u8>().ok())
                .flatten()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("the prefix `/{p}` is not a number from 0 to {max}"))?,
        };
        let network = Network { addr, prefix };
        if network.masked(addr) != addr {
            return Err(format!(
                "has host bits set after the /{prefix} prefix; write the network address, \
                 {}/{prefix}",
                network.masked(addr)
            ));
        }
        Ok(network)
    }

    /// Whether `ip` lies in the network. An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`, as
    /// a listener on `[::]` reports IPv4 clients) is compared as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == self.addr
    }

    /// `ip` with the bits after the prefix cleared (`ip` of the network's family).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl RumConfig {
    pub(super) fn validate(&self, v: &Validator) -> Result<RumSettings, ConfigError> {
        let allow = self
            .allow
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                Network::parse(entry.trim()).map_err(|reason| {
                    v.invalid(
                        "rum.allow",
                        &quote(entry),
                        &format!(
                            "entry {i}: {reason}; expected a network such as \"10.0.0.0/8\", \
                             \"2001:db8::/32\" or one address"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RumSettings {
            guessable_urls: self.guessable_urls,
            allow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.255.1.2")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(!n.contains(ip("::1")), "another family is never contained");
        assert!(
            n.contains(ip("::ffff:10.1.2.3")),
            "an IPv4 client seen by an IPv6 listener"
        );
        let one = Network::parse("127.0.0.1").unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all = Network::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("192.0.2.7")));
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(Network::parse("::/0").unwrap().contains(ip("::1")));
        assert!(Network::parse("::1/128").unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_networks_are_refused_with_the_reason() {
        for (text, needle) in [
            ("10.0.0.0/33", "0 to 32"),
            ("::/129", "0 to 128"),
            ("10.0.0.0/+8", "/+8"),
            ("10.0.0.0/", "0 to 32"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("example.com/8", "not an IPv4 or IPv6"),
            ("", "not an IPv4"),
        ] {
            let err = Network::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_allow_list_allows_every_source() {
        let open = RumSettings::default();
        assert!(open.allows(ip("203.0.113.9")));
        let closed = RumSettings {
            guessable_urls: false,
            allow: vec![Network::parse("10.0.0.0/8").unwrap()],
        };
        assert!(!closed.allows(ip("127.0.0.1")));
        assert!(closed.allows(ip("10.0.0.1")));
    }
}
