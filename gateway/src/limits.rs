//! Resource limits: connections (in total and per client IP), and a per-connection token bucket
//! for the client's frames.
//!
//! - `MAX_CONNECTIONS` bounds this gateway's sockets; `MAX_CONNECTIONS_PER_IP` bounds one
//!   client address's share. Both answer the handshake with 503 `{"error":{"code":
//!   "too_many_connections"}}`. Loopback clients are exempt from the per-IP bound (load tests
//!   and same-host sidecars); a proxy's address is looked through only when it is listed in
//!   `TRUSTED_PROXIES`, in which case the client is the right-most `X-Forwarded-For` entry that
//!   is not itself a trusted proxy.
//! - [`TokenBucket`]: `RATE_LIMIT_PER_SEC` tokens per second, at most `RATE_LIMIT_BURST` saved.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
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
    pub fn parse(list: Option<&str>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            nets.push(IpNet::parse(item).map_err(|e| format!("TRUSTED_PROXIES: {e}"))?);
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

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerIp,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerIp => "max_connections_per_ip",
        }
    }
}

/// Counts this gateway's connections.
#[derive(Debug)]
pub struct ConnLimiter {
    max_total: usize,
    /// 0: no per-IP bound.
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: Option<IpAddr>,
}

impl ConnLimiter {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(ConnLimiter {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for a connection from `ip` (the resolved client address).
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refusal> {
        let ip = ip.to_canonical();
        let prev = self.total.fetch_add(1, Ordering::AcqRel);
        if prev >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        let counted_ip = if self.max_per_ip > 0 && !ip.is_loopback() {
            let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerIp);
            }
            *n += 1;
            Some(ip)
        } else {
            None
        };
        Ok(ConnGuard {
            limiter: self.clone(),
            ip: counted_ip,
        })
    }

    /// Connections counted now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut map = self
                .limiter
                .per_ip
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A token bucket: `rate` tokens per second, at most `burst` saved. A rate of 0 never limits.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let none = TrustedProxies::parse(None).unwrap();
        assert_eq!(none.client_ip(ip("10.0.0.5"), &["1.2.3.4"]), ip("10.0.0.5"));
        let t = TrustedProxies::parse(Some("10.0.0.0/8, 127.0.0.1")).unwrap();
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

    #[test]
    fn connection_limits() {
        let l = ConnLimiter::new(3, 1);
        let a = l.acquire(ip("1.1.1.1")).unwrap();
        assert_eq!(l.acquire(ip("1.1.1.1")).unwrap_err(), Refusal::PerIp);
        // Loopback is exempt from the per-IP bound.
        let b = l.acquire(ip("127.0.0.1")).unwrap();
        let c = l.acquire(ip("127.0.0.2")).unwrap();
        assert_eq!(l.acquire(ip("2.2.2.2")).unwrap_err(), Refusal::Total);
        drop(a);
        assert_eq!(l.total(), 2);
        let _d = l.acquire(ip("1.1.1.1")).unwrap();
        drop((b, c));
        assert_eq!(l.total(), 1);
    }

    #[test]
    fn token_bucket() {
        let mut b = TokenBucket::new(10.0, 3);
        let t0 = b.last;
        assert!(b.try_take_at(t0));
        assert!(b.try_take_at(t0));
        assert!(b.try_take_at(t0));
        assert!(!b.try_take_at(t0));
        assert!(b.try_take_at(t0 + Duration::from_millis(100)));
        assert!(!b.try_take_at(t0 + Duration::from_millis(100)));
        // Never more than the burst saved.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.try_take_at(later)));
        assert!(!b.try_take_at(later));
        let mut off = TokenBucket::new(0.0, 1);
        assert!((0..1000).all(|_| off.try_take()));
    }
}
