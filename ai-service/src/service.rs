//! The ai-service as a value: the store, the provider, the running generations, and the
//! operations the HTTP API exposes. Keeping them here (not in handlers) lets the service run
//! embedded in another process with the same code paths.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shared_proto::api::MessageView;
use shared_proto::{CancelStatus, MessageState};
use store::{FeedEvent, FeedHandler, MessageRef, Store, StoreError};
use uuid::Uuid;

use crate::generation::Generation;
use crate::provider::{GenerationRequest, Provider};
use crate::registry::{Registry, StopReason};

/// Result of [`Service::start_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Accepted (new, or an idempotent retry of an existing message) in this state.
    Accepted(MessageState),
    /// The service is shutting down and takes no new messages.
    ShuttingDown,
}

/// Shared state of one ai-service replica.
pub struct Service {
    store: Arc<dyn Store>,
    provider: Arc<dyn Provider>,
    registry: Registry,
    replica_id: String,
    draining: AtomicBool,
    tasks: tokio_util::task::TaskTracker,
    /// The runtime generations run on: the one the store client lives on, not the HTTP
    /// worker that took the request. Each token crosses between a generation and the store's
    /// append batcher twice; on one runtime that is a local wake-up, across runtimes it is a
    /// thread wake-up (measured: context switches were the ai-service's largest cost).
    runtime: tokio::runtime::Handle,
    lease_ttl: Duration,
}

impl Service {
    /// Must be called on the runtime the generations should run on (see `runtime`).
    pub fn new(
        store: Arc<dyn Store>,
        provider: Arc<dyn Provider>,
        replica_id: String,
        lease_ttl: Duration,
    ) -> Arc<Self> {
        Arc::new(Service {
            store,
            provider,
            registry: Registry::default(),
            replica_id,
            draining: AtomicBool::new(false),
            tasks: tokio_util::task::TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
            lease_ttl,
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

    /// Creates the message (idempotent on its id) and, if new, starts its generation.
    pub async fn start_message(
        &self,
        msg: MessageRef,
        content: String,
    ) -> Result<Started, StoreError> {
        if self.is_draining() {
            return Ok(Started::ShuttingDown);
        }
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
        let created = match self.store.create(&msg, &self.replica_id, &content).await {
            Ok(c) => c,
            Err(e) => {
                self.registry.remove(&msg);
                return Err(e);
            }
        };
        if !created.created {
            // It exists already (created by another replica, or earlier): start nothing.
            self.registry.remove(&msg);
            return Ok(Started::Accepted(created.state));
        }
        let generation = Generation {
            store: self.store.clone(),
            provider: self.provider.clone(),
            msg,
            owner: self.replica_id.clone(),
            lease_renewal: self.lease_ttl / 3,
            request: GenerationRequest {
                session_id: msg.session_id,
                message_id: msg.message_id,
                content,
                history: Vec::new(),
            },
            stop,
        };
        let registry = self.registry.clone();
        self.tasks.spawn_on(
            async move {
                generation.run().await;
                registry.remove(&msg);
            },
            &self.runtime,
        );
        Ok(Started::Accepted(created.state))
    }

    /// Cancels a message, whichever replica runs it.
    pub async fn cancel(&self, msg: MessageRef) -> Result<CancelStatus, StoreError> {
        let outcome = self.store.cancel(&msg).await?;
        if outcome.status == CancelStatus::Cancelling {
            // The terminal entry is written; now make the producer drop its upstream call.
            if !self.registry.stop(&msg, StopReason::Cancelled) {
                if let Some(owner) = outcome.owner.as_deref() {
                    if owner != self.replica_id {
                        if let Err(e) = self.store.nudge(owner, &msg).await {
                            // The owner still stops at its next append; only slower.
                            tracing::warn!(%msg, owner, error = %e, "cancel nudge failed");
                        }
                    }
                }
            }
        }
        Ok(outcome.status)
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
            if self.0.registry.stop(&msg, StopReason::Cancelled) {
                tracing::info!(%msg, "stopped by a cancel on another replica");
            }
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
