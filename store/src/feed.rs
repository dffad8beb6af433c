//! Live delivery: the subscribe side of the store.

use async_trait::async_trait;
use shared_proto::StreamChunk;
use uuid::Uuid;

use crate::{MessageRef, StoreError};

/// Something that arrived live.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// A log entry of a subscribed session (already in the log when it arrives here).
    Chunk(StreamChunk),
    /// A request to stop generating a message (to the replica that owns it).
    Nudge(MessageRef),
    /// Live messages may have been lost (the connection to the store dropped and came back,
    /// or the reader fell behind): every consumer must re-read the logs it follows.
    Resync,
}

/// Receives feed events. Called from the feed's reader task: it must not block or await
/// (hand slow work to a task of your own), or it would delay every other session.
pub trait FeedHandler: Send + Sync + 'static {
    fn on_event(&self, event: FeedEvent);
}

/// Subscriptions. One feed per process; it survives store reconnects on its own (it
/// resubscribes, then reports [`FeedEvent::Resync`]).
#[async_trait]
pub trait Feed: Send + Sync + 'static {
    /// Starts live delivery of a session's entries. Returns once the subscription is active,
    /// so a log read after it cannot miss an entry published in between.
    async fn subscribe_session(&self, session_id: Uuid) -> Result<(), StoreError>;

    /// Stops live delivery of a session.
    async fn unsubscribe_session(&self, session_id: Uuid) -> Result<(), StoreError>;

    /// Starts delivery of nudges addressed to `replica`.
    async fn subscribe_nudges(&self, replica: &str) -> Result<(), StoreError>;

    /// Whether the subscriber connection is up.
    fn is_connected(&self) -> bool;

    /// Ends every subscription and stops delivery (at shutdown). The default does nothing.
    async fn close(&self) {}
}
