//! Trusted proxies (`TRUSTED_PROXIES`): whose `X-Forwarded-For` names the client, for the
//! per-IP connection limit. A proxy's address is looked through only when it is listed, in which
//! case the client is the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
//! (the left part of that header is written by the client and proves nothing).

use std::net::IpAddr;

/// A `TRUSTED_PROXIES` entry that is not an address or network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("{0:?} is not an IP address or CIDR network")]
    NotAnAddress(String),
    #[error("{0:?} has an invalid prefix length")]
    BadPrefix(String),
}

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Result<Self, ProxyError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| ProxyError::NotAnAddress(s.to_string()))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| ProxyError::BadPrefix(s.to_string()))?,
        };
        Ok(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `TRUSTED_PROXIES`: whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses the comma list (a clap `value_parser`); empty: nobody is trusted.
    pub fn parse(list: &str) -> Result<Self, ProxyError> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            nets.push(IpNet::parse(item)?);
        }
        Ok(TrustedProxies(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy (the left part of that
    /// header is written by the client and proves nothing).
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // Garbage: stop at the last address we could trust.
                Err(_) => return client,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.1.2.3")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpNet::parse("::1").unwrap().contains(ip("::1")));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("nope").is_err());
    }

    #[test]
    fn client_ip_looks_through_trusted_proxies_only() {
        let none = TrustedProxies::parse("").unwrap();
        assert_eq!(none.client_ip(ip("10.0.0.5"), &["1.2.3.4"]), ip("10.0.0.5"));
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        assert_eq!(t.client_ip(ip("10.0.0.5"), &["1.2.3.4"]), ip("1.2.3.4"));
        // The client's own (spoofed) left part is ignored.
        assert_eq!(
            t.client_ip(ip("10.0.0.5"), &["6.6.6.6, 1.2.3.4, 10.0.0.9"]),
            ip("1.2.3.4")
        );
        assert_eq!(t.client_ip(ip("10.0.0.5"), &[]), ip("10.0.0.5"));
        assert_eq!(t.client_ip(ip("10.0.0.5"), &["garbage"]), ip("10.0.0.5"));
        assert_eq!(t.client_ip(ip("9.9.9.9"), &["1.2.3.4"]), ip("9.9.9.9"));
    }
}
