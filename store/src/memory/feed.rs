//! The in-memory side of live delivery: a handler registered with a [`super::MemoryStore`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::Inner;
use crate::{Feed, FeedHandler, StoreError};

/// One subscriber of a [`super::MemoryStore`] (like one subscriber connection per process with
/// Redis). Cheap to clone; its subscriptions end with [`Feed::close`] or when the last clone
/// is dropped. It never disconnects, so it never reports [`crate::FeedEvent::Resync`].
#[derive(Clone)]
pub struct MemoryFeed {
    sub: Arc<Subscription>,
}

struct Subscription {
    store: Arc<Inner>,
    id: u64,
    closed: AtomicBool,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.store.unsubscribe_all(self.id);
    }
}

impl MemoryFeed {
    pub(super) fn new(store: Arc<Inner>, handler: Arc<dyn FeedHandler>) -> Self {
        let id = store.subscribe(handler);
        MemoryFeed {
            sub: Arc::new(Subscription {
                store,
                id,
                closed: AtomicBool::new(false),
            }),
        }
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.sub.closed.load(Ordering::Acquire) {
            Err(StoreError::Protocol("the feed is closed".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Feed for MemoryFeed {
    async fn subscribe_session(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.check_open()?;
        self.sub.store.subscribe_session(self.sub.id, session_id);
        Ok(())
    }

    async fn unsubscribe_session(&self, session_id: Uuid) -> Result<(), StoreError> {
        self.sub.store.unsubscribe_session(self.sub.id, session_id);
        Ok(())
    }

    async fn subscribe_nudges(&self, replica: &str) -> Result<(), StoreError> {
        self.check_open()?;
        self.sub.store.subscribe_replica(self.sub.id, replica);
        Ok(())
    }

    fn is_connected(&self) -> bool {
        !self.sub.closed.load(Ordering::Acquire)
    }

    async fn close(&self) {
        self.sub.closed.store(true, Ordering::Release);
        self.sub.store.unsubscribe_all(self.sub.id);
    }
}
