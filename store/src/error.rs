//! Store errors.

/// A store operation failed. Callers treat every variant as "the store is unavailable right
/// now"; the variants exist for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(fred::error::Error),
    #[error("store answered something unexpected: {0}")]
    Protocol(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error(transparent)]
    RedisConfig(#[from] crate::redis::RedisConfigError),
    /// The connection to the store is down now (answered at once, without a round trip).
    #[error("the store is not connected")]
    Unavailable,
}

impl From<fred::error::Error> for StoreError {
    /// Every Redis error of the store passes here: counted as `streamline_store_redis_errors_total`.
    fn from(e: fred::error::Error) -> Self {
        metrics::counter!("streamline_store_redis_errors_total").increment(1);
        StoreError::Redis(e)
    }
}
