//! The wire format of the stack, and the only place it is defined.
//!
//! Three audiences share these types:
//! - browsers talk to the gateway in JSON text frames ([`ClientFrame`], [`ServerFrame`]);
//! - the ai-service writes [`StreamChunk`]s into the store, the gateway reads them back;
//! - operators and the gateway call the ai-service's HTTP API ([`api`]).
//!
//! This crate does no I/O. Every enum that reaches the wire serializes to stable snake_case
//! strings; renaming a variant is a protocol change and bumps [`PROTOCOL_VERSION`].

pub mod api;
mod chunk;
mod client;
mod close_code;
mod error_code;
mod history;
mod server;
mod state;

pub use chunk::{ChunkKind, StreamChunk, STREAM_CHUNK_VERSION};
pub use client::{ClientFrame, FrameError};
pub use close_code::CloseCode;
pub use error_code::{ErrorBody, ErrorCode};
pub use history::{Role, StoredTurn, Turn};
pub use server::{ActiveMessage, ConversationMessage, DeltaKind, ServerFrame, Usage};
pub use state::{CancelStatus, FinalStatus, MessageState};

/// Version of the browser protocol, sent in `welcome.protocol`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, the clock of [`StreamChunk::ts`].
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
