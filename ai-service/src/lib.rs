//! The ai-service: runs generations and writes them, chunk by chunk, into the store.
//!
//! - [`service`]: the operations (start, cancel, view, drain), independent of HTTP;
//! - [`generation`]: one generation's loop (provider → coalesced chunks → store);
//! - [`registry`]: the generations this replica runs and how to stop each;
//! - [`remembered`]: cancels that overtook their message's create, waiting for it;
//! - [`provider`]: where tokens come from (demo, OpenAI-compatible);
//! - [`api`]: the HTTP API; [`admin`]: the admin port; [`auth`]: their bearer tokens;
//!   [`config`]: settings;
//! - [`telemetry`]: the metric series and what records them; [`origin`]: when a generation's
//!   request arrived and the trace it belongs to.

pub mod admin;
pub mod api;
pub mod auth;
pub mod config;
pub mod generation;
pub mod origin;
pub mod provider;
pub mod registry;
pub mod remembered;
pub mod server;
pub mod service;
pub mod telemetry;
