//! A built store and the way to make feeds of it: what a component (ai-service, gateway) needs
//! to run, whichever implementation is behind it.

use std::sync::Arc;

use crate::redis::RedisEndpoint;
use crate::{
    Feed, FeedHandler, MemoryStore, RedisFeed, RedisStore, RedisStoreConfig, Store, StoreError,
};

/// Makes the component's feed once its handler exists (one feed per component).
pub type FeedFactory =
    Arc<dyn Fn(Arc<dyn FeedHandler>) -> Result<Arc<dyn Feed>, StoreError> + Send + Sync>;

/// A store, a feed factory for it, and a description for logs (secrets redacted). Clone it to
/// give several components of one process the same data (the embedded mode).
#[derive(Clone)]
pub struct StoreBackend {
    pub store: Arc<dyn Store>,
    pub make_feed: FeedFactory,
    /// E.g. `redis redis://user:***@host:6379` or `memory`.
    pub description: String,
}

impl StoreBackend {
    /// Redis (standalone or Cluster): connects in the background; only an invalid URL or
    /// configuration fails here. Each feed is its own subscriber connection.
    pub async fn redis(cfg: &RedisStoreConfig) -> Result<Self, StoreError> {
        let endpoint = RedisEndpoint::parse(&cfg.url, &cfg.tls)?;
        let store = RedisStore::connect_to(cfg, &endpoint).await?;
        let description = endpoint.describe();
        let timeout = cfg.command_timeout;
        Ok(StoreBackend {
            store: Arc::new(store),
            make_feed: Arc::new(move |handler| {
                Ok(Arc::new(RedisFeed::start(&endpoint, timeout, handler)?) as Arc<dyn Feed>)
            }),
            description,
        })
    }

    /// The in-memory store of the embedded mode.
    pub fn memory(store: MemoryStore) -> Self {
        let feeds = store.clone();
        StoreBackend {
            store: Arc::new(store),
            make_feed: Arc::new(move |handler| Ok(Arc::new(feeds.feed(handler)) as Arc<dyn Feed>)),
            description: "memory".into(),
        }
    }
}
