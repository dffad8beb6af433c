//! Connection limits: `MAX_CONNECTIONS` bounds this gateway's sockets, `MAX_CONNECTIONS_PER_IP`
//! one client address's share. Both answer the handshake with 503 `{"error":{"code":
//! "too_many_connections"}}`. Loopback clients are exempt from the per-IP bound (load tests and
//! same-host sidecars); the client address comes from [`super::proxies::TrustedProxies`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
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
}
