//! Charging the user's token budget as the answer is written (`USER_TOKEN_BUDGET`).
//!
//! Contract:
//! - A chunk is charged once it is in the log (written, or found already written by a retry),
//!   with the completion tokens it added, in the same write task right after the append: so
//!   the budget counts what the user was sent, never a chunk the store refused.
//! - The counter is the store's, shared by every replica ([`store::budget`]): two answers of
//!   one user on two replicas each see the other's chunks at their next charge, and each stops
//!   within one chunk of the budget.
//! - A charge the store does not answer (an outage) is skipped, not retried: the answer goes
//!   on, and the budget undercounts by that chunk. Failing the user's answer because the
//!   accounting is unreachable would be worse than an undercount bounded by the outage.

use std::sync::Arc;

use store::{Appended, Budget, MessageRef, Spent, Store};

/// Whose budget a generation charges.
#[derive(Debug, Clone)]
pub struct Charge {
    /// The JWT `sub` the gateway passed.
    pub user: String,
    pub budget: Budget,
}

/// What the charge of one written chunk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charged {
    /// Nothing to charge (no budget, no tokens, or the chunk was not written), or room left,
    /// or the store did not answer the charge.
    Fine,
    /// This chunk spent the budget: the answer ends `failed/quota_exceeded`.
    Exhausted,
}

impl Charge {
    /// Charges `tokens` for the chunk of `seq` if `appended` says it is in the log.
    pub async fn after_append(
        &self,
        store: &Arc<dyn Store>,
        msg: &MessageRef,
        seq: u64,
        appended: &Appended,
        tokens: u64,
    ) -> Charged {
        let in_log = match appended {
            Appended::Written => true,
            Appended::OutOfOrder { last_seq } => *last_seq == seq,
            _ => false,
        };
        if !in_log || tokens == 0 {
            return Charged::Fine;
        }
        match store.charge(&self.user, tokens, self.budget).await {
            Ok(Spent::Within { .. }) => Charged::Fine,
            Ok(Spent::Exhausted { .. }) => Charged::Exhausted,
            Err(e) => {
                tracing::warn!(%msg, error = %e, tokens, "could not charge the user's budget; going on");
                crate::telemetry::record_budget_charge_error();
                Charged::Fine
            }
        }
    }
}
