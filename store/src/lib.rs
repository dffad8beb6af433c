//! The message store: one data model for both binaries.
//!
//! The ai-service writes a message's lifecycle and chunks here; the gateway reads them back,
//! live and from the log. Everything either side may do is a method of [`Store`] (state
//! transitions, log append and read) or [`Feed`] (live delivery), so the Redis implementation
//! ([`RedisStore`], [`RedisFeed`]) and the in-memory one of the single-process mode
//! ([`MemoryStore`], [`MemoryFeed`]) are interchangeable without touching either binary's logic.
//!
//! The contract every implementation honours:
//! - each transition is one atomic compare-and-set; terminal states never change;
//! - a cancel before the first token wins, and no chunk is appended after a terminal state;
//! - a cancel even wins over a create that comes after it (within `CANCEL_GRACE`): it leaves a
//!   tombstone, and the create of that id ends at once as `cancelled`;
//! - the terminal entry is written to the log (not only published), so a reader that missed
//!   the live message still finds the end;
//! - an entry is in the log before it is published, so "subscribe, then read the log, then
//!   deduplicate by position" loses nothing.
//!
//! The services call the transitions through [`lifecycle`], which adds what must follow a
//! transition (the nudges); they never compose store calls themselves.

mod backend;
mod budget;
pub mod conversation;
mod error;
mod feed;
pub mod keys;
pub mod lifecycle;
pub mod memory;
mod message;
pub mod redis;
pub mod running;

use async_trait::async_trait;
use shared_proto::{ActiveMessage, ErrorBody, FinalStatus, MessageState, StreamChunk, Turn, Usage};
use uuid::Uuid;

pub use backend::{FeedFactory, StoreBackend};
pub use budget::{Budget, Spent};
pub use error::StoreError;
pub use feed::{Feed, FeedEvent, FeedHandler};
pub use memory::{MemoryFeed, MemoryStore, MemoryStoreConfig};
pub use message::MessageRef;
pub use redis::{
    RedisConfigError, RedisEndpoint, RedisFeed, RedisStore, RedisStoreConfig, RedisTlsFiles,
};
pub use running::{Running, RunningEntry};

/// How long an owner's lease lasts without renewal; the owner renews it every third of that.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(4);

/// Registers the store's own metric series at zero (idempotent), so each shows up in a
/// service's `/metrics` before its first event.
pub fn register_metrics() {
    metrics::counter!("streamline_store_redis_errors_total").increment(0);
    metrics::counter!("streamline_store_redis_reconnects_total").increment(0);
    metrics::counter!("streamline_store_redis_connect_failures_total").increment(0);
    let _ = metrics::histogram!("streamline_store_append_batch_size");
    redis::command_metrics::register();
}

/// The most answer text a finished message adds to its session's history (whole log entries
/// are taken until at least this many bytes). The history only feeds a model's context
/// window, far smaller than this; without a bound, ending one very long answer would read and
/// decode its whole log inside one Redis script, stalling every other stream meanwhile.
pub const HISTORY_ANSWER_MAX_BYTES: usize = 256 * 1024;

/// Result of [`Store::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The message is new, `queued`, and the caller owns it: start producing.
    New,
    /// It existed already (an idempotent retry): start nothing.
    Exists(MessageState),
    /// A cancel reached the store before this create (its tombstone was there): the message was
    /// created directly as `cancelled`, with its terminal entry written. Start nothing.
    /// `canceller` is the replica that sent that cancel (empty: none to tell), which waits to
    /// learn that its cancel took effect.
    CancelledFirst { canceller: String },
}

impl Created {
    /// The message's state after the create.
    pub fn state(&self) -> MessageState {
        match self {
            Created::New => MessageState::Queued,
            Created::Exists(state) => *state,
            Created::CancelledFirst { .. } => MessageState::Cancelled,
        }
    }
}

/// Result of [`Store::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The chunk is in the log and was published.
    Written,
    /// The message reached a terminal state (cancelled, or taken over): stop producing.
    Stopped(MessageState),
    /// The message is gone from the store (expired, or the store lost its data).
    Missing,
    /// The chunk's seq is not the next one: another writer owns the message now.
    OutOfOrder { last_seq: u64 },
}

/// How a message ends, as written by [`Store::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: FinalStatus,
    pub error: Option<ErrorBody>,
    pub usage: Option<Usage>,
}

impl Outcome {
    /// The end a cancel writes.
    pub fn cancelled() -> Self {
        Outcome {
            status: FinalStatus::Cancelled,
            error: None,
            usage: None,
        }
    }

    /// The end a takeover writes when the owner's lease expired ([`Store::reap`]).
    pub fn worker_lost() -> Self {
        Outcome {
            status: FinalStatus::Failed,
            error: Some(ErrorBody::new(
                shared_proto::ErrorCode::WorkerLost,
                "the ai-service replica running this answer stopped responding",
            )),
            usage: None,
        }
    }
}

/// Result of a terminal transition ([`Store::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// This call made the transition; the terminal entry carries `seq`.
    Done { seq: u64 },
    /// The message was already terminal (e.g. cancelled first); nothing was written.
    AlreadyTerminal(MessageState),
    /// The message is gone from the store.
    Missing,
    /// A takeover ([`Store::reap`]) found the owner's lease still alive; nothing was written.
    OwnerAlive,
    /// A takeover found the lease expired, but not for long enough to tell a lost owner from
    /// an outage of the store itself: nothing was written; look again later.
    OwnerSuspected,
}

/// Result of [`Store::renew_lease`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Renewed; the message is still running.
    Renewed,
    /// The message is terminal (e.g. cancelled): stop producing.
    Ended(MessageState),
    /// Another replica owns the message now: stop producing.
    Lost,
    /// The store does not have the message (it lost its data): the owner may restore it.
    Missing,
}

/// What a running message's owner holds of it, to put it back ([`Store::restore`]).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub owner: &'a str,
    pub content: &'a str,
    /// When the message was created (ms since the epoch).
    pub created_ms: u64,
    /// Every delta entry written so far, seq 1 first (the log of a running message).
    pub entries: &'a [StreamChunk],
}

/// Result of [`Store::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The store holds the running message again, its log exactly the snapshot's entries;
    /// `appended` of them were missing and written now.
    Restored { appended: usize },
    /// Restored, and a cancel's tombstone was waiting: the owner must now end the message as
    /// cancelled (and tell `canceller`, see [`Created::CancelledFirst`]).
    CancelledMeanwhile { canceller: String },
    /// It ended elsewhere (a cancel or a takeover reached the store): nothing was written.
    Ended(MessageState),
    /// Another replica owns it, or its log holds entries the snapshot does not: nothing was
    /// written.
    Lost,
}

/// Result of [`Store::cancel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// This call ended the running message (its terminal entry is written). `owner` is the
    /// replica that runs the generation: it gets a nudge so it drops the provider's stream.
    Ended { owner: Option<String> },
    /// It had already ended, within the grace period: `AlreadyCancelled` or `AlreadyCompleted`.
    AlreadyEnded(shared_proto::CancelStatus),
    /// It ended longer ago than the grace period (it may still be readable).
    GraceOver,
    /// No such message (yet): a tombstone now remembers the cancel for `CANCEL_GRACE`, so a
    /// create of this id that comes later ends at once as `cancelled`. `first`: this call wrote
    /// the tombstone (false: an earlier cancel's was already there).
    Remembered { first: bool },
}

impl Cancelled {
    /// The status a client is told now (a remembered cancel is `not_found` until its message
    /// exists: see the ai-service's cancel, which waits a moment for that).
    pub fn status(&self) -> shared_proto::CancelStatus {
        use shared_proto::CancelStatus;
        match self {
            Cancelled::Ended { .. } => CancelStatus::Cancelling,
            Cancelled::AlreadyEnded(status) => *status,
            Cancelled::GraceOver | Cancelled::Remembered { .. } => CancelStatus::NotFound,
        }
    }
}

/// A consistent read of a message: its state and the log entries from some position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRead {
    pub state: MessageState,
    pub last_seq: u64,
    pub owner: String,
    /// Entries at positions `from_index..` (see [`StreamChunk::log_index`]).
    pub entries: Vec<StreamChunk>,
    /// Whether the owner's lease is alive (meaningful while the message runs).
    pub lease_alive: bool,
}

impl LogRead {
    /// The answer text assembled from the entries (all of it when read from position 0).
    pub fn text(&self) -> String {
        self.entries
            .iter()
            .filter(|c| c.is_text())
            .map(|c| c.text.as_str())
            .collect()
    }

    /// The terminal entry, if the read reached it.
    pub fn terminal(&self) -> Option<&StreamChunk> {
        self.entries.iter().rev().find(|c| c.is_terminal())
    }
}

/// The store's operations. Every method is one round trip and atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a message in `queued`, owned by `owner`, unless it exists (idempotent), or
    /// directly as `cancelled` when a cancel's tombstone is waiting for it.
    async fn create(
        &self,
        msg: &MessageRef,
        owner: &str,
        content: &str,
    ) -> Result<Created, StoreError>;

    /// Appends one delta (its `seq` must be the next) and publishes it, if the message is
    /// still queued or streaming. The first append moves `queued` to `streaming`.
    async fn append(&self, msg: &MessageRef, chunk: &StreamChunk) -> Result<Appended, StoreError>;

    /// Moves a non-terminal message to a terminal state and writes its terminal entry.
    async fn finish(&self, msg: &MessageRef, outcome: &Outcome) -> Result<Finished, StoreError>;

    /// Cancels a message: ends it if it was running (the terminal entry is written by this very
    /// call, so the cancel holds even if the producer is gone), otherwise reports what it
    /// already was. For an unknown id it leaves a tombstone naming `canceller` (a replica id, or
    /// empty), so the cancel still wins over a create that comes after it.
    async fn cancel(&self, msg: &MessageRef, canceller: &str) -> Result<Cancelled, StoreError>;

    /// Reads the state and the log from position `from_index`; `None` if the message is
    /// unknown or expired.
    async fn read(&self, msg: &MessageRef, from_index: u64) -> Result<Option<LogRead>, StoreError>;

    /// The owner renews its lease on a running message (see `LEASE_TTL` in the store config).
    async fn renew_lease(&self, msg: &MessageRef, owner: &str) -> Result<Lease, StoreError>;

    /// Ends a running message as `failed/worker_lost` if (and only if) its owner is lost: its
    /// lease has expired and it stayed silent for half a lease more while the store answered
    /// (a lease that ran out while the store was away is not a lost owner). Any replica or
    /// gateway may call it; the first call after the lease expired only notes the time.
    async fn reap(&self, msg: &MessageRef) -> Result<Finished, StoreError>;

    /// The session's finished turns (user, assistant, …), oldest first, at most the configured
    /// number of pairs.
    async fn history(&self, session_id: Uuid) -> Result<Vec<Turn>, StoreError>;

    /// The session's messages that have not finished.
    async fn active(&self, session_id: Uuid) -> Result<Vec<ActiveMessage>, StoreError>;

    /// The session's conversation as a client redraws it (see [`conversation`]): the finished
    /// messages of its history (bounded like the history), then the running ones with their
    /// text so far (at most [`HISTORY_ANSWER_MAX_BYTES`] each).
    async fn conversation(
        &self,
        session_id: Uuid,
    ) -> Result<Vec<shared_proto::ConversationMessage>, StoreError>;

    /// Tells replica `owner` to stop generating `msg` now (best effort: the producer also
    /// learns it from its next append).
    async fn nudge(&self, owner: &str, msg: &MessageRef) -> Result<(), StoreError>;

    /// Puts a running message back after the store lost it, from its owner's copy: never
    /// over a message that ended elsewhere or that another replica owns (see [`Restored`]).
    /// Only a store that can lose data (Redis: a restart without persistence, a failover, an
    /// AOF tail) ever needs it; the in-memory store never loses a message while it runs.
    async fn restore(
        &self,
        msg: &MessageRef,
        snapshot: Snapshot<'_>,
    ) -> Result<Restored, StoreError>;

    /// Charges `tokens` to `user`'s budget (0: only looks), see [`budget`]: whether room is
    /// left after the charge.
    async fn charge(&self, user: &str, tokens: u64, budget: Budget) -> Result<Spent, StoreError>;

    /// Adds a generation to the running index (see [`running`]): its owner calls it right
    /// after the create, so that an admin listing on any replica sees it.
    async fn track(&self, entry: &RunningEntry) -> Result<(), StoreError>;

    /// Removes a generation from the running index (its task ended); idempotent.
    async fn untrack(&self, msg: &MessageRef) -> Result<(), StoreError>;

    /// The running index as written, stale entries included: [`running::running`] is the
    /// listing that checks each against its message.
    async fn running_index(&self) -> Result<Vec<RunningEntry>, StoreError>;

    /// A round trip to the store, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Whether the connection to the store is up now (no round trip): a caller that would
    /// only wait out an outage fails fast instead.
    fn is_connected(&self) -> bool {
        true
    }
}
