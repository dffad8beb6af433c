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

/// `redis://user:secret@host` → `redis://user:***@host`, and a Sentinel URL's
/// `sentinelPassword=secret` → `sentinelPassword=***`, for logs.
pub fn redact(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    };
    const PARAM: &str = "sentinelPassword=";
    match url.find(PARAM) {
        Some(at) => {
            let value_start = at + PARAM.len();
            let value_end = url[value_start..]
                .find('&')
                .map_or(url.len(), |i| value_start + i);
            format!("{}***{}", &url[..value_start], &url[value_end..])
        }
        None => url,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_the_password() {
        assert_eq!(super::redact("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(super::redact("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(super::redact("redis://h:1"), "redis://h:1");
        assert_eq!(
            super::redact(
                "redis-sentinel://h:1?sentinelServiceName=m&sentinelPassword=pw&node=x:2"
            ),
            "redis-sentinel://h:1?sentinelServiceName=m&sentinelPassword=***&node=x:2"
        );
    }
}
