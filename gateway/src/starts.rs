//! A session's chats whose start is in flight, so that a cancel behind its chat waits for it
//! (on whichever of the session's sockets on this gateway either was sent).
//!
//! A `chat` is answered by a POST to the ai-service that runs in its own task, and so is a
//! `cancel`: sent back to back (Stop right after Enter, even in the same TCP segment), the
//! cancel's POST could overtake the chat's and reach the store before the message exists. The
//! read loop therefore registers every start here *before* it reads the next frame, and a cancel
//! of a message whose start is registered waits until that start has finished (accepted or
//! refused) before it is sent. So for a chat this connection sent, the cancel always meets the
//! message, and its answer is `cancelling` (or `already_cancelled` for a repeat), never
//! `not_found`. (A cancel that still overtakes a create, through another gateway or over HTTP,
//! is caught by the store's tombstone instead.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

/// The starts in flight of one session (shared by its sockets, see `delivery::hub`).
#[derive(Debug, Clone, Default)]
pub struct Starts {
    in_flight: Arc<Mutex<HashMap<Uuid, CancellationToken>>>,
}

impl Starts {
    fn lock(&self) -> MutexGuard<'_, HashMap<Uuid, CancellationToken>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the start of `message_id`; it counts as finished when the guard drops.
    pub fn begin(&self, message_id: Uuid) -> StartGuard {
        let token = CancellationToken::new();
        self.lock().insert(message_id, token.clone());
        StartGuard {
            starts: self.clone(),
            message_id,
            done: Some(token.drop_guard()),
        }
    }

    /// Resolves once the start of `message_id` registered now (if any) has finished.
    pub fn finished(&self, message_id: Uuid) -> impl std::future::Future<Output = ()> + 'static {
        let pending = self.lock().get(&message_id).cloned();
        async move {
            if let Some(token) = pending {
                token.cancelled().await;
            }
        }
    }

    /// Starts in flight now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A start in flight; dropping it (however the start ended) releases the cancels behind it.
#[derive(Debug)]
pub struct StartGuard {
    starts: Starts,
    message_id: Uuid,
    done: Option<DropGuard>,
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        self.starts.lock().remove(&self.message_id);
        // Dropping the token's guard cancels it: waiting cancels go on.
        drop(self.done.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_cancel_waits_for_the_start_registered_before_it() {
        let starts = Starts::default();
        let id = Uuid::new_v4();
        let guard = starts.begin(id);
        let waiting = tokio::spawn(starts.finished(id));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "released before the start finished");
        drop(guard);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released when the start finished")
            .unwrap();
        assert!(starts.is_empty());
        // Nothing registered: no wait at all.
        tokio::time::timeout(Duration::from_secs(5), starts.finished(Uuid::new_v4()))
            .await
            .expect("no start in flight, no wait");
    }
}
