//! The login token a connection runs on: whose it is (`sub`, fixed for the connection's life)
//! and until when it holds (`exp`, replaced by each accepted `auth` frame).
//!
//! The read loop watches `exp` and closes the connection with 4003 at `exp` + `JWT_LEEWAY`
//! ([`expiry_deadline`]). `auth` frames are verified in tasks of their own, which may end out
//! of order (one may wait for a JWKS refetch): each takes a [`Ticket`] in frame order, and a
//! verification that ends after a later frame's token was installed does not install its
//! older one ([`Replaced::Superseded`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::security::jwt::Verified;

/// The place of an `auth` frame in the connection's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// What [`ConnToken::replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The new token is in force; it expires at `exp`.
    Installed { exp: u64 },
    /// A later `auth` frame's token is already in force (it expires at `exp`).
    Superseded { exp: u64 },
    /// The new token belongs to another `sub`: refused, the old one stays.
    OtherSubject,
}

#[derive(Debug)]
struct Order {
    issued: u64,
    installed: u64,
}

/// One connection's token.
#[derive(Debug)]
pub struct ConnToken {
    sub: String,
    exp: watch::Sender<u64>,
    order: Mutex<Order>,
}

impl ConnToken {
    /// The token the handshake verified.
    pub fn new(verified: Verified) -> Arc<Self> {
        let (exp, _) = watch::channel(verified.exp);
        Arc::new(ConnToken {
            sub: verified.sub,
            exp,
            order: Mutex::new(Order {
                issued: 0,
                installed: 0,
            }),
        })
    }

    pub fn sub(&self) -> &str {
        &self.sub
    }

    /// When the token in force expires (seconds since the epoch).
    pub fn exp(&self) -> u64 {
        *self.exp.borrow()
    }

    /// Follows `exp` (the read loop's timer).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.exp.subscribe()
    }

    fn order(&self) -> std::sync::MutexGuard<'_, Order> {
        self.order.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `auth` frame's place; take it when the frame is read.
    pub fn ticket(&self) -> Ticket {
        let mut order = self.order();
        order.issued += 1;
        Ticket(order.issued)
    }

    /// Installs the token of the `auth` frame that took `ticket`, if it is for the same `sub`
    /// and no later frame's token is in force.
    pub fn replace(&self, ticket: Ticket, verified: &Verified) -> Replaced {
        if verified.sub != self.sub {
            return Replaced::OtherSubject;
        }
        let mut order = self.order();
        if ticket.0 < order.installed {
            return Replaced::Superseded { exp: self.exp() };
        }
        order.installed = ticket.0;
        self.exp.send_replace(verified.exp);
        Replaced::Installed { exp: verified.exp }
    }
}

/// The longest one expiry timer waits; a token valid for longer is re-checked then (a far
/// `exp` must not overflow the monotonic clock).
const MAX_TIMER: Duration = Duration::from_secs(24 * 3600);

/// When a token expiring at `exp` (seconds since the epoch) stops holding: `exp` + `leeway`,
/// on the monotonic clock (now if that is past; at most [`MAX_TIMER`] ahead).
pub fn expiry_deadline(exp: u64, leeway: Duration) -> tokio::time::Instant {
    let end_ms = exp
        .saturating_mul(1000)
        .saturating_add(leeway.as_millis() as u64);
    let left = Duration::from_millis(end_ms.saturating_sub(shared_proto::now_ms()));
    tokio::time::Instant::now() + left.min(MAX_TIMER)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(sub: &str, exp: u64) -> Verified {
        Verified {
            sub: sub.into(),
            exp,
        }
    }

    #[test]
    fn tokens_are_replaced_in_frame_order_for_the_same_sub_only() {
        let t = ConnToken::new(v("alice", 100));
        let mut seen = t.watch();
        let first = t.ticket();
        let second = t.ticket();
        assert_eq!(
            t.replace(second, &v("alice", 300)),
            Replaced::Installed { exp: 300 }
        );
        assert!(seen.has_changed().unwrap());
        assert_eq!(*seen.borrow_and_update(), 300);
        // The earlier frame's verification ended last: its older token is not installed.
        assert_eq!(
            t.replace(first, &v("alice", 200)),
            Replaced::Superseded { exp: 300 }
        );
        assert_eq!(
            t.replace(t.ticket(), &v("mallory", 900)),
            Replaced::OtherSubject
        );
        assert_eq!(t.exp(), 300);
        assert!(!seen.has_changed().unwrap());
        // A later token may also expire earlier: it replaces, it does not extend.
        assert_eq!(
            t.replace(t.ticket(), &v("alice", 250)),
            Replaced::Installed { exp: 250 }
        );
        assert_eq!(t.sub(), "alice");
    }

    #[test]
    fn deadlines() {
        let now = tokio::time::Instant::now();
        let past = expiry_deadline(0, Duration::from_secs(5));
        assert!(past <= tokio::time::Instant::now() && past >= now);
        let exp = shared_proto::now_ms() / 1000 + 60;
        let d = expiry_deadline(exp, Duration::from_secs(5));
        let left = d.duration_since(now);
        assert!(
            left > Duration::from_secs(63) && left <= Duration::from_secs(65),
            "{left:?}"
        );
        // A token valid for ages (or u64::MAX) waits one day, then is looked at again.
        for exp in [u64::MAX, u64::MAX / 1000, 1 << 62] {
            let d = expiry_deadline(exp, Duration::from_secs(300));
            assert!(d.duration_since(now) <= MAX_TIMER + Duration::from_secs(1));
        }
    }
}
