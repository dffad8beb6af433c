//! Drain in waves: after SIGTERM the gateway closes its sockets (1001 "going away") spread
//! evenly over `DRAIN_SPREAD` instead of all at once, so that a pod's clients do not all
//! reconnect in the same instant (a thundering herd on the other gateways, on the balancer and
//! on Redis resubscriptions).
//!
//! The connections open when the drain starts are closed one after another at evenly spaced
//! instants: with `n` of them, the `i`-th at `spread × i / n` (the first at once, the last just
//! before the spread ends). New handshakes are refused (503) all along. When the last wave is
//! out, the shutdown token is cancelled: whatever is left (a connection that was completing its
//! handshake when the drain began) closes then, and the gateway's background tasks stop.
//! `SHUTDOWN_TIMEOUT` still bounds the whole: the spread used is at most half of it
//! ([`effective_spread`]), so every client has time to get its close frame.

use std::sync::Arc;
use std::time::Duration;

use shared_proto::CloseCode;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::delivery::hub::Hub;

/// The spread actually used: `DRAIN_SPREAD`, or half of `SHUTDOWN_TIMEOUT` when that is shorter
/// (the rest of the timeout is for the last clients' close handshakes and the other tasks).
pub fn effective_spread(drain_spread: Duration, shutdown_timeout: Duration) -> Duration {
    drain_spread.min(shutdown_timeout / 2)
}

/// When the `i`-th of `n` connections closes, from the start of the drain.
pub fn offset(i: usize, n: usize, spread: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    spread.mul_f64(i as f64 / n as f64)
}

/// Closes every connection of `hub` in waves over `spread`, then cancels `done`.
pub async fn run(hub: Arc<Hub>, spread: Duration, done: CancellationToken) {
    let start = Instant::now();
    let mut conns = hub.connections();
    // A stable order (oldest connection first), so the schedule does not depend on hashing.
    conns.sort_by_key(|c| c.conn_id);
    let n = conns.len();
    tracing::info!(
        connections = n,
        ?spread,
        "closing sockets with 1001 in waves"
    );
    for (i, conn) in conns.into_iter().enumerate() {
        tokio::time::sleep_until(start + offset(i, n, spread)).await;
        conn.sink.close(CloseCode::GoingAway);
    }
    done.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_spread_evenly_from_the_start() {
        let spread = Duration::from_secs(10);
        let offsets: Vec<_> = (0..4).map(|i| offset(i, 4, spread)).collect();
        assert_eq!(
            offsets,
            [0, 2500, 5000, 7500].map(Duration::from_millis).to_vec()
        );
        assert_eq!(offset(0, 1, spread), Duration::ZERO);
        assert_eq!(offset(0, 0, spread), Duration::ZERO);
        // No spread: all at once.
        assert!((0..100).all(|i| offset(i, 100, Duration::ZERO).is_zero()));
    }

    #[test]
    fn shutdown_timeout_bounds_the_spread() {
        let s = Duration::from_secs;
        assert_eq!(effective_spread(s(10), s(30)), s(10));
        assert_eq!(effective_spread(s(10), s(5)), Duration::from_millis(2500));
        assert_eq!(effective_spread(s(0), s(30)), s(0));
    }
}
