//! Why a client operation failed. The fallible API (what `loadgen` uses) returns these; the
//! test helpers panic with them.

use std::net::Ipv4Addr;

/// A failed connect, send or handshake (tungstenite's errors are boxed: they are large, and
/// every `Result` of the client carries this type).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the gateway URL must look like ws://HOST:PORT/PATH: {0}")]
    BadUrl(String),
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("tcp connect from {source_ip}: {error}")]
    Tcp {
        source_ip: Ipv4Addr,
        #[source]
        error: std::io::Error,
    },
    #[error("handshake: {0}")]
    Handshake(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("first frame was not welcome: {0}")]
    NoWelcome(String),
    #[error("no welcome within {0:?}")]
    WelcomeTimeout(std::time::Duration),
    #[error("encode: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("send: {0}")]
    Send(#[source] Box<tokio_tungstenite::tungstenite::Error>),
}
