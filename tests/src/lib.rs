//! Harness for the end-to-end suites: real `redis-server` processes on free ports, the real
//! `ai-service` and `gateway` binaries (or the root `streamline` binary in embedded mode, see
//! [`Backend`]), real WebSocket clients over real sockets. The client and the fake OpenAI server are the test
//! kit's (`test-support`), re-exported here as [`client`] and [`upstream`].
//!
//! Every process is killed when its handle drops, so a failing test leaves nothing behind.
//! Waiting is always for an event (a port answering, a frame arriving) under a generous
//! deadline, never a fixed sleep.

pub mod args;
pub mod auth;
pub mod backend;
pub mod client;
pub mod handshake;
pub mod identity;
pub mod jwks;
pub mod metrics;
pub mod otlp;
pub mod process;
pub mod raw_ws;
pub mod stack;
pub mod stats;
pub mod upstream;

pub use backend::{Backend, Deployment, GatewayApi, RedisDeployment};
pub use client::WsClient;
pub use process::{
    free_port, ClientCerts, Proc, RedisCluster, RedisSentinels, RedisServer, ServerCert, TestPki,
};
pub use stack::{AiApi, AiService, Gateway, Stack};
pub use test_support::PATIENCE;
