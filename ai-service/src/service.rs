//! The ai-service as a value: the store, the provider, the running generations, and the
//! operations the HTTP API exposes. Keeping them here (not in handlers) lets the service run
//! embedded in another process with the same code paths.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shared_proto::api::{GenerationView, MessageView};
use shared_proto::{CancelStatus, MessageState};
use store::{
    lifecycle, Budget, Cancelled, Created, FeedEvent, FeedHandler, MessageRef, RunningEntry, Spent,
    Store, StoreError,
};
use uuid::Uuid;

use opentelemetry::trace::FutureExt as _;

use crate::generation::{Charge, Generation};
use crate::origin::Origin;
use crate::provider::{GenerationRequest, Provider};
use crate::registry::{Registry, StopReason};
use crate::remembered::{Remembered, REMEMBERED_CANCEL_WAIT};

/// Result of [`Service::start_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Accepted (new, or an idempotent retry of an existing message) in this state.
    Accepted(MessageState),
    /// The service is shutting down and takes no new messages.
    ShuttingDown,
    /// The user has spent `USER_TOKEN_BUDGET`; the window frees in `retry_after`. Nothing was
    /// created.
    QuotaExceeded { retry_after: Duration },
}

/// Shared state of one ai-service replica.
pub struct Service {
    store: Arc<dyn Store>,
    provider: Arc<dyn Provider>,
    registry: Registry,
    /// Cancels of this replica that overtook their message's create.
    remembered: Remembered,
    replica_id: String,
    draining: AtomicBool,
    tasks: tokio_util::task::TaskTracker,
    /// The runtime generations run on: the one the store client lives on, not the HTTP
    /// worker that took the request. Each token crosses between a generation and the store's
    /// append batcher twice; on one runtime that is a local wake-up, across runtimes it is a
    /// thread wake-up (measured: context switches were the ai-service's largest cost).
    runtime: tokio::runtime::Handle,
    lease_ttl: Duration,
    /// How long a generation goes on through a store outage (`STORE_OUTAGE_BUDGET`).
    outage_budget: Duration,
    /// How long a token of a fast model waits for the ones behind it (`CHUNK_LINGER`).
    chunk_linger: Duration,
    /// `USER_TOKEN_BUDGET` per `USER_TOKEN_WINDOW`, charged to the chat's user.
    budget: Option<Budget>,
}

impl Service {
    /// Must be called on the runtime the generations should run on (see `runtime`).
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn Provider>,
        replica_id: String,
        lease_ttl: Duration,
        outage_budget: Duration,
        chunk_linger: Duration,
        budget: Option<Budget>,
    ) -> Arc<Self> {
        Arc::new(Service {
            store,
            provider,
            registry: Registry::default(),
            remembered: Remembered::default(),
            replica_id,
            draining: AtomicBool::new(false),
            tasks: tokio_util::task::TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            lease_ttl,
            outage_budget,
            chunk_linger,
            budget,
        })
    }

    pub fn replica_id(&self) -> &str {
        &self.replica_id
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Generations running on this replica now.
    pub fn running(&self) -> usize {
        self.registry.len()
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Creates the message (idempotent on its id) and, if new, starts its generation for
    /// `user` (the JWT `sub` the gateway passed; None: anonymous), in the trace of `origin`
    /// (the API request).
    ///
    /// A user with a budget that is spent is refused before anything is created (so a retry
    /// of a message that already exists is refused too while the budget is spent: it would
    /// only replay an answer the client can resume instead).
    pub async fn start_message(
        &self,
        msg: MessageRef,
        content: String,
        user: Option<String>,
        origin: Origin,
    ) -> Result<Started, StoreError> {
        if self.is_draining() {
            return Ok(Started::ShuttingDown);
        }
        if !self.store.is_connected() {
            // During an outage: refuse at once (retryable), rather than wait out the timeout.
            return Err(StoreError::Unavailable);
        }
        let charge = match (&user, self.budget) {
            (Some(user), Some(budget)) => match self.store.charge(user, 0, budget).await? {
                Spent::Exhausted { retry_after } => {
                    crate::telemetry::record_quota_refusal();
                    return Ok(Started::QuotaExceeded { retry_after });
                }
                Spent::Within { .. } => Some(Charge {
                    user: user.clone(),
                    budget,
                }),
            },
            _ => None,
        };
        // Register first: a cancel nudge that arrives right after `create` must find it. Only
        // the request that registers may create and start the generation; a concurrent retry
        // on this replica just reports the state.
        let Some(stop) = self.registry.register(msg) else {
            let state = match self.store.read(&msg, u64::MAX).await? {
                Some(read) => read.state,
                None => MessageState::Queued,
            };
            return Ok(Started::Accepted(state));
        };
        let created_ms = shared_proto::now_ms();
        let created =
            match lifecycle::create(self.store.as_ref(), &msg, &self.replica_id, &content).await {
                Ok(c) => c,
                Err(e) => {
                    self.registry.remove(&msg);
                    return Err(e);
                }
            };
        match created {
            Created::New => {}
            Created::Exists(state) => {
                // Created by another replica, or earlier: start nothing.
                self.registry.remove(&msg);
                return Ok(Started::Accepted(state));
            }
            Created::CancelledFirst { canceller } => {
                // A cancel came first and won; its replica waits to hear that it did (another
                // replica was nudged by `lifecycle::create`).
                self.registry.remove(&msg);
                if canceller == self.replica_id {
                    self.remembered.created(&msg);
                }
                return Ok(Started::Accepted(MessageState::Cancelled));
            }
        }
        self.track(msg, user, created_ms).await;
        let generation = Generation {
            store: self.store.clone(),
            provider: self.provider.clone(),
            msg,
            owner: self.replica_id.clone(),
            lease_renewal: self.lease_ttl / 3,
            outage_budget: self.outage_budget,
            chunk_linger: self.chunk_linger,
            created_ms,
            charge,
            request: GenerationRequest {
                session_id: msg.session_id,
                message_id: msg.message_id,
                content,
                history: Vec::new(),
                origin: origin.clone(),
            },
            stop,
        };
        let registry = self.registry.clone();
        let store = self.store.clone();
        // The task runs with the request's trace context attached: the generation's span
        // (opened inside `run`) is then the request span's child, although the task outlives
        // the request and runs on another runtime. A no-op with tracing off.
        self.tasks.spawn_on(
            async move {
                generation.run().await;
                registry.remove(&msg);
                // During an outage, skip it rather than hold the task (and a drain) for a
                // command timeout: the next admin listing drops the stale entry.
                if store.is_connected() {
                    if let Err(e) = store.untrack(&msg).await {
                        tracing::warn!(%msg, error = %e, "generation not removed from the running index");
                    }
                }
            }
            .with_context(origin.trace),
            &self.runtime,
        );
        Ok(Started::Accepted(MessageState::Queued))
    }

    /// Adds a new generation to the store's running index, for the admin listing. Advisory:
    /// a failure only hides the generation from the listing, so the chat goes on.
    async fn track(&self, msg: MessageRef, user: Option<String>, started_at_ms: u64) {
        let entry = RunningEntry {
            session_id: msg.session_id,
            message_id: msg.message_id,
            user,
            owner: self.replica_id.clone(),
            started_at_ms,
        };
        if let Err(e) = self.store.track(&entry).await {
            tracing::warn!(%msg, error = %e, "generation not added to the running index");
        }
    }

    /// Every running generation of the deployment (all replicas), oldest first; only those
    /// of `user` when given.
    pub async fn generations(&self, user: Option<&str>) -> Result<Vec<GenerationView>, StoreError> {
        Ok(store::running::running(self.store.as_ref())
            .await?
            .into_iter()
            .filter(|r| user.is_none() || r.entry.user.as_deref() == user)
            .map(|r| GenerationView {
                session_id: r.entry.session_id,
                message_id: r.entry.message_id,
                user: r.entry.user,
                owner: r.entry.owner,
                state: r.state,
                started_at: r.entry.started_at_ms,
                completion_tokens: r.completion_tokens,
            })
            .collect())
    }

    /// Cancels every running generation of `user`, on every replica (through [`Self::cancel`],
    /// so each client gets its `done{cancelled}`): how many this call cancelled.
    pub async fn cancel_user(&self, user: &str) -> Result<usize, StoreError> {
        let msgs: Vec<MessageRef> = self
            .generations(Some(user))
            .await?
            .iter()
            .map(|g| MessageRef::new(g.session_id, g.message_id))
            .collect();
        self.cancel_all(msgs).await
    }

    /// Cancels every running message of the session: how many this call cancelled.
    pub async fn cancel_session(&self, session_id: Uuid) -> Result<usize, StoreError> {
        let msgs: Vec<MessageRef> = self
            .store
            .active(session_id)
            .await?
            .iter()
            .map(|a| MessageRef::new(session_id, a.message_id))
            .collect();
        self.cancel_all(msgs).await
    }

    /// Cancels each (one after the other: an admin call, not a hot path); the first store
    /// error stops it, as the caller cannot tell what the rest did otherwise.
    async fn cancel_all(&self, msgs: Vec<MessageRef>) -> Result<usize, StoreError> {
        let mut cancelled = 0;
        for msg in msgs {
            if self.cancel(msg).await? == CancelStatus::Cancelling {
                cancelled += 1;
            }
        }
        Ok(cancelled)
    }

    /// Cancels a message, whichever replica runs it, and even before it exists: a cancel that
    /// overtook its message's create is remembered by the store and wins when the create comes
    /// (see [`Remembered`]); this call then waits a moment for that create, so that it can
    /// answer `cancelling` rather than `not_found`.
    pub async fn cancel(&self, msg: MessageRef) -> Result<CancelStatus, StoreError> {
        // Watch before the store call: the create's nudge may come right after it.
        let watch = self.remembered.watch(msg);
        let attempt = if self.store.is_connected() {
            self.cancel_once(&msg).await
        } else {
            Err(StoreError::Unavailable)
        };
        let first = match attempt {
            Ok(c) => c,
            // The store is away. If the generation runs here, stop the model now; it writes the
            // cancelled end once the store is back. Elsewhere: a retryable error, never a
            // silent success.
            Err(_) if self.registry.stop(&msg, StopReason::CancelPending) => {
                tracing::info!(%msg, "cancelled while the store is away; the end follows when it is back");
                return Ok(CancelStatus::Cancelling);
            }
            Err(e) => return Err(e),
        };
        let first = match first {
            Cancelled::Remembered { first } => first,
            other => return Ok(other.status()),
        };
        watch.created_within(REMEMBERED_CANCEL_WAIT).await;
        drop(watch);
        // Whatever the wait saw (the create's nudge, or nothing: a lost nudge, a create that is
        // later still, an id nobody creates), the store says how it stands now.
        Ok(match self.cancel_once(&msg).await? {
            // Created by the tombstone this call wrote: this cancel ended it.
            Cancelled::AlreadyEnded(CancelStatus::AlreadyCancelled) if first => {
                CancelStatus::Cancelling
            }
            other => other.status(),
        })
    }

    /// One cancel transition; when it ended a generation that runs here, stops it (one that
    /// runs elsewhere was nudged by `lifecycle::cancel`).
    async fn cancel_once(&self, msg: &MessageRef) -> Result<Cancelled, StoreError> {
        let cancelled = lifecycle::cancel(self.store.as_ref(), msg, &self.replica_id).await?;
        if let Cancelled::Ended { .. } = &cancelled {
            // The terminal entry is written; now make the producer drop its upstream call.
            self.registry.stop(msg, StopReason::Cancelled);
        }
        Ok(cancelled)
    }

    /// The message's state and text so far.
    pub async fn view(&self, msg: MessageRef) -> Result<Option<MessageView>, StoreError> {
        Ok(self.store.read(&msg, 0).await?.map(|read| {
            let terminal = read.terminal();
            MessageView {
                state: read.state,
                last_seq: read.last_seq,
                text: read.text(),
                error: terminal.and_then(|t| t.error.clone()),
                usage: terminal.and_then(|t| t.usage),
            }
        }))
    }

    /// Stops taking messages, lets running generations finish until `deadline`, then ends
    /// the rest as `failed/shutdown`.
    pub async fn drain(&self, deadline: Duration) {
        self.draining.store(true, Ordering::Release);
        self.tasks.close();
        tracing::info!(running = self.running(), ?deadline, "draining generations");
        if tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.running(),
                "deadline reached; ending the rest as shutdown"
            );
            self.registry.stop_all(StopReason::Shutdown);
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
        }
    }
}

/// Nudges from other replicas: stop a generation that runs here.
pub struct NudgeHandler(pub Arc<Service>);

impl FeedHandler for NudgeHandler {
    fn on_event(&self, event: FeedEvent) {
        if let FeedEvent::Nudge(msg) = event {
            // A nudge means one of two things, never both: stop a generation running here, or
            // (to a cancel waiting here) its message was created and the cancel won.
            if self.0.registry.stop(&msg, StopReason::Cancelled) {
                tracing::info!(%msg, "stopped by a cancel on another replica");
            }
            self.0.remembered.created(&msg);
        }
    }
}

/// A random replica id, readable in logs.
pub fn random_replica_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "ai".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    format!("{host}-{}", &Uuid::new_v4().simple().to_string()[..8])
}
