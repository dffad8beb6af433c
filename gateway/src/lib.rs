//! The WebSocket gateway: browsers in, answers streamed out.
//!
//! - [`socket`]: one WebSocket connection — the handshake, the read loop, one file per client
//!   command, the frame size guard;
//! - [`delivery`]: from the store's feed to each connection, exactly once and in order — the
//!   hub, the per-message cursors, the watchdog;
//! - [`sink`]: the one writer per connection (bounded in bytes and time), generic over what it
//!   writes to;
//! - [`security`]: JWTs, origins, resume tokens, connection and rate limits;
//! - [`ai_client`]: the ai-service HTTP client; [`readiness`]: `/readyz` by a pub/sub round
//!   trip; [`telemetry`]: the metric series; [`web_client`]: the reference page;
//! - [`starts`]: a session's chats in flight, which a cancel behind them waits for;
//! - [`config`]: settings; [`state`]: what every handler shares; [`tasks`]: every task the
//!   gateway starts; [`server`]: wiring and shutdown.

pub mod ai_client;
pub mod config;
pub mod delivery;
pub mod readiness;
pub mod security;
pub mod server;
pub mod sink;
pub mod socket;
pub mod starts;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod web_client;
