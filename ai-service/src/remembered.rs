//! Cancels that overtook their message's create, waiting to learn that it came.
//!
//! A cancel can reach the store before the message exists: the chat and its cancel were sent
//! back to back and went through two replicas (or the operator's HTTP cancel beat the chat).
//! The store then keeps a tombstone ([`store::Cancelled::Remembered`]), and the create that
//! comes later ends the message at once as `cancelled` and tells the cancelling replica (its
//! replica id is the tombstone's value) with a nudge. Meanwhile that cancel waits here, up to
//! [`REMEMBERED_CANCEL_WAIT`], so that its answer can say `cancelling` (the cancel won) rather
//! than `not_found` (nothing existed yet) when the create follows within moments. A cancel of an
//! id that nobody creates is answered `not_found` after the wait, like a cancel of another
//! session's id: both look exactly like an unknown id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use store::MessageRef;
use tokio_util::sync::CancellationToken;

/// How long a cancel of a message that does not exist yet waits for its create before it
/// answers `not_found`. The race it covers is one HTTP hop and one script call wide.
pub const REMEMBERED_CANCEL_WAIT: Duration = Duration::from_secs(1);

/// The cancels of this replica that wait for their message's create.
#[derive(Debug, Clone, Default)]
pub struct Remembered {
    waiting: Arc<Mutex<HashMap<MessageRef, Waiting>>>,
}

#[derive(Debug)]
struct Waiting {
    created: CancellationToken,
    watchers: usize,
}

impl Remembered {
    fn lock(&self) -> MutexGuard<'_, HashMap<MessageRef, Waiting>> {
        // A poisoned lock only means another thread panicked mid-update; the map is valid.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts watching for the create of `msg`. Call it before the cancel reaches the store,
    /// so that the create's nudge cannot come before the watch exists.
    pub fn watch(&self, msg: MessageRef) -> Watch {
        let mut map = self.lock();
        let entry = map.entry(msg).or_insert_with(|| Waiting {
            created: CancellationToken::new(),
            watchers: 0,
        });
        entry.watchers += 1;
        Watch {
            created: entry.created.clone(),
            msg,
            remembered: self.clone(),
        }
    }

    /// The message was created (as `cancelled`, by a remembered cancel): wakes its watchers.
    pub fn created(&self, msg: &MessageRef) {
        if let Some(w) = self.lock().get(msg) {
            w.created.cancel();
        }
    }

    /// Messages watched now (for tests and leak checks).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One cancel's watch; dropping it stops watching.
#[derive(Debug)]
pub struct Watch {
    created: CancellationToken,
    msg: MessageRef,
    remembered: Remembered,
}

/// What a [`Watch`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The create came (and the tombstone ended it).
    Created,
    /// Nothing came within the wait.
    TimedOut,
}

impl Watch {
    /// Waits up to `wait` for the create.
    pub async fn created_within(&self, wait: Duration) -> Seen {
        match tokio::time::timeout(wait, self.created.cancelled()).await {
            Ok(()) => Seen::Created,
            Err(_) => Seen::TimedOut,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut map = self.remembered.lock();
        if let Some(w) = map.get_mut(&self.msg) {
            w.watchers = w.watchers.saturating_sub(1);
            if w.watchers == 0 {
                map.remove(&self.msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test(start_paused = true)]
    async fn a_watch_sees_the_create_or_times_out_and_leaves_nothing_behind() {
        let r = Remembered::default();
        let m = MessageRef::new(Uuid::new_v4(), Uuid::new_v4());
        let a = r.watch(m);
        let b = r.watch(m);
        assert_eq!(r.len(), 1);
        r.created(&m);
        assert_eq!(
            a.created_within(Duration::from_secs(1)).await,
            Seen::Created
        );
        assert_eq!(
            b.created_within(Duration::from_secs(1)).await,
            Seen::Created
        );
        drop(a);
        assert_eq!(r.len(), 1, "b still watches");
        drop(b);
        assert!(r.is_empty());
        let c = r.watch(m);
        r.created(&MessageRef::new(m.session_id, Uuid::new_v4()));
        assert_eq!(
            c.created_within(Duration::from_secs(1)).await,
            Seen::TimedOut
        );
        drop(c);
        assert!(r.is_empty());
    }
}
