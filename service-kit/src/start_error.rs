//! Why a service could not start: one line for the operator, exit code 2.

/// A startup failure of either service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting, or a relation between settings, that does not hold (the service's own
    /// typed error).
    #[error("invalid configuration: {0}")]
    Config(Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

impl StartError {
    /// A configuration error of any typed error.
    pub fn config(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StartError::Config(Box::new(e))
    }
}
