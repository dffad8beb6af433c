//! The generations this replica runs, and the handle that stops each one.
//!
//! A generation is registered *before* its message is created in the store, so a cancel nudge
//! can never arrive for a generation this replica does not know yet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use store::MessageRef;
use tokio_util::sync::CancellationToken;

/// Why a generation must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The message was cancelled (the store already holds its terminal entry).
    Cancelled,
    /// A cancel reached this owner while the store was away: the generation stops now and
    /// writes the cancelled end itself once the store is back.
    CancelPending,
    /// The service is shutting down: the generation ends as `failed/shutdown`.
    Shutdown,
}

/// Stops one generation; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl StopHandle {
    /// Requests a stop; the first reason wins.
    pub fn stop(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Resolves once a stop was requested.
    pub async fn stopped(&self) -> StopReason {
        self.token.cancelled().await;
        self.reason.get().copied().unwrap_or(StopReason::Cancelled)
    }
}

/// The running generations of this replica.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<HashMap<MessageRef, StopHandle>>>,
}

impl Registry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<MessageRef, StopHandle>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a generation; `None` if one is already registered for this message.
    pub fn register(&self, msg: MessageRef) -> Option<StopHandle> {
        let mut map = self.map();
        if map.contains_key(&msg) {
            return None;
        }
        let handle = StopHandle::default();
        map.insert(msg, handle.clone());
        Some(handle)
    }

    pub fn remove(&self, msg: &MessageRef) {
        self.map().remove(msg);
    }

    /// Stops one generation if it runs here.
    pub fn stop(&self, msg: &MessageRef, reason: StopReason) -> bool {
        match self.map().get(msg) {
            Some(h) => {
                h.stop(reason);
                true
            }
            None => false,
        }
    }

    /// Stops every generation.
    pub fn stop_all(&self, reason: StopReason) {
        for h in self.map().values() {
            h.stop(reason);
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
