//! Store errors.

/// A store operation failed. Callers treat every variant as "the store is unavailable right
/// now"; the variants exist for logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("store answered something unexpected: {0}")]
    Protocol(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
}
