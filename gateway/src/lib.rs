//! The WebSocket gateway.
//!
//! - [`sink`]: the one writer per connection (bounded in bytes and time);
//! - [`streams`]: exactly-once, in-order delivery per followed message (live + log backfill);
//! - [`hub`]: connections by session, and the router from the Redis feed;
//! - [`connection`]: handshake, read loop, frame handlers;
//! - [`ai_client`]: the ai-service HTTP client; [`resume_token`]: HMAC resume tokens;
//! - [`server`]: wiring and shutdown; [`config`]: settings.

pub mod ai_client;
pub mod config;
pub mod connection;
pub mod hub;
pub mod resume_token;
pub mod server;
pub mod sink;
pub mod state;
pub mod streams;
pub mod web_client;
