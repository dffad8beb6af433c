//! Per-user token budgets (`USER_TOKEN_BUDGET` completion tokens per `USER_TOKEN_WINDOW`),
//! enforced mid-stream across replicas: every replica charges the user's one counter as its
//! chunks are written, so two generations of one user on two replicas together stop within a
//! chunk each of the budget.
//!
//! The counter is the user's own key (hash-tagged on the user, so it works on a Cluster, where
//! it cannot share a script with the session's keys): a fixed window that starts at the first
//! charge and expires with it.

use std::time::Duration;

/// A budget: at most `limit` completion tokens per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub window: Duration,
}

/// Result of [`crate::Store::charge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// There is room left: `used` of the limit so far.
    Within { used: u64 },
    /// The budget is spent; the window frees in `retry_after`.
    Exhausted { retry_after: Duration },
}
