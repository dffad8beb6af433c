//! The message lifecycle as the services use it: each operation is the store's transition plus
//! what must follow it, so that neither service composes store calls itself.
//!
//! - [`create`]: the create, and, when a cancel's tombstone ended the message at once, the
//!   nudge that tells the cancelling replica its cancel won;
//! - [`cancel`]: the cancel, and the nudge that makes the replica running the generation drop
//!   its upstream call at once (it would otherwise stop at its next append or lease renewal);
//! - [`restore`]: the owner puts its running message back after the store lost it, and, when
//!   a cancel's tombstone was waiting, tells the cancelling replica;
//! - [`read_as_follower`]: what a reader that follows a message (a gateway) reads, with the
//!   `worker_lost` takeover done first when the message's owner is lost.
//!
//! A nudge is best effort: a failed one is logged, never an error of the operation, because
//! the store's state already holds the outcome and every producer re-reads it.

use crate::{
    Cancelled, Created, Finished, LogRead, MessageRef, Restored, Snapshot, Store, StoreError,
};

/// Creates the message (see [`Store::create`]); `owner` is this replica.
pub async fn create(
    store: &dyn Store,
    msg: &MessageRef,
    owner: &str,
    content: &str,
) -> Result<Created, StoreError> {
    let created = store.create(msg, owner, content).await?;
    if let Created::CancelledFirst { canceller } = &created {
        // A canceller that is the caller itself learns it from this result.
        if !canceller.is_empty() && canceller != owner {
            nudge(store, canceller, msg).await;
        }
    }
    Ok(created)
}

/// Cancels the message (see [`Store::cancel`]); `canceller` is this replica (empty: a caller
/// that waits for nothing, e.g. a gateway).
pub async fn cancel(
    store: &dyn Store,
    msg: &MessageRef,
    canceller: &str,
) -> Result<Cancelled, StoreError> {
    let cancelled = store.cancel(msg, canceller).await?;
    if let Cancelled::Ended { owner: Some(owner) } = &cancelled {
        // An owner that is the caller itself stops its generation on this result.
        if owner != canceller {
            nudge(store, owner, msg).await;
        }
    }
    Ok(cancelled)
}

/// Restores the message from its owner's copy (see [`Store::restore`]).
pub async fn restore(
    store: &dyn Store,
    msg: &MessageRef,
    snapshot: Snapshot<'_>,
) -> Result<Restored, StoreError> {
    let restored = store.restore(msg, snapshot).await?;
    if let Restored::CancelledMeanwhile { canceller } = &restored {
        if !canceller.is_empty() && canceller != snapshot.owner {
            nudge(store, canceller, msg).await;
        }
    }
    Ok(restored)
}

/// Reads a followed message from log position `from_index` (see [`Store::read`]). When the
/// message still runs but its owner's lease has expired, the owner is lost: the message is
/// ended `failed/worker_lost` first (a compare-and-set, so of several followers one wins), and
/// the read shows that end.
pub async fn read_as_follower(
    store: &dyn Store,
    msg: &MessageRef,
    from_index: u64,
) -> Result<Option<LogRead>, StoreError> {
    let read = store.read(msg, from_index).await?;
    match &read {
        Some(r) if !r.state.is_terminal() && !r.lease_alive => {}
        _ => return Ok(read),
    }
    if let Finished::Done { .. } = store.reap(msg).await? {
        tracing::warn!(%msg, "producer lease expired: message ended as worker_lost");
    }
    store.read(msg, from_index).await
}

async fn nudge(store: &dyn Store, replica: &str, msg: &MessageRef) {
    if let Err(e) = store.nudge(replica, msg).await {
        tracing::debug!(%msg, replica, error = %e, "nudge failed; the replica learns it from the store");
    }
}
