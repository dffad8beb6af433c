//! When the store last came back, as this gateway saw it (its subscriber reconnected, or the
//! gateway started).
//!
//! After a store outage, a message can be missing from the store for a moment although it
//! runs: its owner puts it back (`store::lifecycle::restore`) at its next write or lease
//! renewal. A follower that finds a message missing soon after the store came back waits for
//! that, rather than telling its client the answer is gone; long after, a missing message is
//! simply unknown or expired.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The last time the store came back (none seen yet: a gateway that starts after an outage
/// cannot tell, and treats a missing message as unknown). Shared by the hub (which learns it
/// from the feed) and every connection's streams.
#[derive(Debug, Default)]
pub struct StoreOutages {
    last_back: Mutex<Option<Instant>>,
}

impl StoreOutages {
    /// The store is back (the feed resubscribed and resynced).
    pub fn came_back(&self) {
        *self.last_back.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Whether the store came back less than `within` ago.
    pub fn back_within(&self, within: Duration) -> bool {
        self.last_back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < within)
    }
}
