//! The one test kit of the workspace: what the end-to-end suites, the provider tests, the
//! benchmarks and `loadgen` use to play the two outsiders of the stack.
//!
//! - [`upstream`]: the fake OpenAI-compatible model server (the one stand-in the project's
//!   tests allow). It speaks the real Chat Completions streaming wire format over a bare
//!   `TcpListener`, records every request, follows reply scripts, sees a client go away, and
//!   also hands whole connections to byte-level scripts. The `fake-openai` binary runs it as
//!   its own process with a fast streaming mode for benchmarks.
//! - [`client`]: the protocol v1 WebSocket client. Frames go out as serialised
//!   [`shared_proto::ClientFrame`]s and come back parsed as [`shared_proto::ServerFrame`]s, so
//!   the wire format stays defined in `shared-proto` alone. Tests use its panicking helpers
//!   (`connect`, `chat`, `frame`, …); `loadgen` uses the fallible core (`Dialer`,
//!   `send_frame`, `read`) with small buffers and spread source addresses.
//!
//! Nothing here is a mock of the stack itself: both halves talk real sockets to real binaries.

pub mod client;
pub mod upstream;

pub use client::{Credentials, Dialer, Incoming, NoCredentials, Transcript, WsClient};
pub use upstream::FakeOpenAi;

/// A deadline for anything a test waits for; generous, because CI machines are slow and busy.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
