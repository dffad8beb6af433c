//! The WebSocket gateway.
//!
//! - [`sink`]: the one writer per connection (bounded in bytes and time);
//! - [`streams`]: exactly-once, in-order delivery per followed message (live + log backfill);
//! - [`hub`]: connections by session, and the router from the Redis feed;
//! - [`connection`]: handshake, read loop, frame handlers; [`starts`]: chats in flight, which a
//!   cancel behind them waits for; [`frame_guard`]: frame size limits
//!   from the headers;
//! - [`ai_client`]: the ai-service HTTP client; [`resume_token`]: HMAC resume tokens;
//! - [`auth`]: JWTs and the Origin policy; [`limits`]: connection and rate limits;
//! - [`readiness`]: `/readyz` by a pub/sub round trip; [`telemetry`]: the metric series;
//! - [`server`]: wiring and shutdown; [`config`]: settings.

pub mod ai_client;
pub mod auth;
pub mod config;
pub mod connection;
pub mod frame_guard;
pub mod hub;
pub mod limits;
pub mod readiness;
pub mod resume_token;
pub mod server;
pub mod sink;
pub mod starts;
pub mod state;
pub mod streams;
pub mod telemetry;
pub mod web_client;
