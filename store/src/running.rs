//! The running index: every generation that runs anywhere in the deployment, for the admin API
//! (`GET /admin/generations` answers for all replicas, whichever one is asked).
//!
//! A message's keys live in its session's hash slot, so "every running message" cannot be read
//! from the messages themselves without scanning the whole keyspace (every shard of a Cluster).
//! Instead, each owner writes one entry per generation into one index (Redis: one hash,
//! `g:{running}`, so on a Cluster it is one key in one slot) when the generation starts
//! ([`crate::Store::track`]) and removes it when the generation's task ends
//! ([`crate::Store::untrack`]).
//!
//! The contract:
//! - the index is advisory: the message itself (its state in its own hash) is the truth. An
//!   owner that fails to track a generation only hides it from the listing; nothing else
//!   reads the index;
//! - an entry can outlive its generation (its replica crashed, the store lost the `untrack`):
//!   [`running`] reads each entry's message and drops (and untracks) those that are terminal
//!   or gone, so a stale entry lives until the next listing at most and is never shown;
//! - `track` and `untrack` are single-key, idempotent commands: a retry does no harm.

use serde::{Deserialize, Serialize};
use shared_proto::MessageState;
use uuid::Uuid;

use crate::{MessageRef, Store, StoreError};

/// One generation in the index, as its owner wrote it at the start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningEntry {
    pub session_id: Uuid,
    pub message_id: Uuid,
    /// The JWT `sub` the chat came with (None: anonymous).
    pub user: Option<String>,
    /// The replica that runs it.
    pub owner: String,
    /// When it started (ms since the epoch).
    pub started_at_ms: u64,
}

impl RunningEntry {
    pub fn message(&self) -> MessageRef {
        MessageRef::new(self.session_id, self.message_id)
    }

    /// The field of the entry in the index: `<session_id>:<message_id>`.
    pub fn field(msg: &MessageRef) -> String {
        format!("{}:{}", msg.session_id, msg.message_id)
    }
}

/// A generation that is still running, with what its message says now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub entry: RunningEntry,
    /// `queued` or `streaming`.
    pub state: MessageState,
    /// Completion tokens written so far (the cumulative count of the last text chunk).
    pub completion_tokens: u64,
}

/// How many entries at the end of a log are read to find the last text chunk before the whole
/// log is: the last entries of a running message are almost always text (a listing should not
/// read whole answers).
const TAIL_ENTRIES: u64 = 16;

/// Every running generation of the deployment, oldest first; entries whose message is terminal
/// or gone are dropped from the index on the way (see the contract above).
pub async fn running(store: &dyn Store) -> Result<Vec<Running>, StoreError> {
    let mut out = Vec::new();
    for entry in store.running_index().await? {
        let msg = entry.message();
        let Some(now) = store.read(&msg, u64::MAX).await? else {
            untrack_stale(store, &msg).await;
            continue;
        };
        if now.state.is_terminal() {
            untrack_stale(store, &msg).await;
            continue;
        }
        let completion_tokens = completion_tokens(store, &msg, now.last_seq).await?;
        out.push(Running {
            entry,
            state: now.state,
            completion_tokens,
        });
    }
    out.sort_by_key(|r| {
        (
            r.entry.started_at_ms,
            r.entry.session_id,
            r.entry.message_id,
        )
    });
    Ok(out)
}

/// The cumulative token count of the last text chunk (0 before the first).
async fn completion_tokens(
    store: &dyn Store,
    msg: &MessageRef,
    last_seq: u64,
) -> Result<u64, StoreError> {
    let last_text = |read: Option<crate::LogRead>| {
        read.and_then(|r| {
            r.entries
                .iter()
                .rev()
                .find(|c| c.is_text() && c.tokens.is_some())
                .and_then(|c| c.tokens)
        })
    };
    let from = last_seq.saturating_sub(TAIL_ENTRIES);
    if let Some(tokens) = last_text(store.read(msg, from).await?) {
        return Ok(tokens);
    }
    if from == 0 {
        return Ok(0);
    }
    Ok(last_text(store.read(msg, 0).await?).unwrap_or(0))
}

/// Best effort: the next listing tries again.
async fn untrack_stale(store: &dyn Store, msg: &MessageRef) {
    if let Err(e) = store.untrack(msg).await {
        tracing::debug!(%msg, error = %e, "stale running entry not removed");
    }
}
