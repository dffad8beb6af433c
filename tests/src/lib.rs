//! Harness for the end-to-end suites: real `redis-server` processes on free ports, the real
//! `ai-service` and `gateway` binaries, real WebSocket clients over real sockets.
//!
//! Every process is killed when its handle drops, so a failing test leaves nothing behind.
//! Waiting is always for an event (a port answering, a frame arriving) under a generous
//! deadline, never a fixed sleep.

pub mod client;
pub mod process;
pub mod stack;

pub use client::WsClient;
pub use process::{free_port, RedisServer};
pub use stack::{AiService, Gateway, Stack};

/// A deadline for anything a test waits for; generous, because CI machines are slow and busy.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
