//! A built store and the way to make feeds of it: what a component (ai-service, gateway) needs
//! to run, whichever implementation is behind it.

use std::sync::Arc;

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
        let store = RedisStore::connect(cfg).await?;
        let (url, timeout) = (cfg.url.clone(), cfg.command_timeout);
        Ok(StoreBackend {
            store: Arc::new(store),
            make_feed: Arc::new(move |handler| {
                Ok(Arc::new(RedisFeed::start(&url, timeout, handler)?) as Arc<dyn Feed>)
            }),
            description: format!("redis {}", redact(&cfg.url)),
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

/// `redis://user:secret@host` → `redis://user:***@host`, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_the_password() {
        assert_eq!(super::redact("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(super::redact("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(super::redact("redis://h:1"), "redis://h:1");
    }
}
