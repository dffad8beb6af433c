//! The gateway's settings: every one a flag and an environment variable, validated at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::{parse_duration, LogFormat};

/// WebSocket gateway: browsers in, answers streamed out.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version, about)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Redis URL (`redis://`, `rediss://`, or `redis-cluster://host:port?node=…`).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Base URL of the ai-service.
    #[arg(long, env = "AI_SERVICE_URL", default_value = "http://127.0.0.1:8081")]
    pub ai_service_url: String,

    /// Close a connection that sent nothing (not even a pong) for this long.
    #[arg(long, env = "CLIENT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub client_timeout: Duration,

    /// How often the gateway pings, and the heartbeat interval it asks clients to keep.
    #[arg(long, env = "HEARTBEAT_INTERVAL", default_value = "20s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Most bytes queued for one client before it is closed as a slow consumer.
    #[arg(long, env = "SEND_QUEUE_BYTES", default_value_t = 1024 * 1024)]
    pub send_queue_bytes: usize,

    /// Longest one write to a client may block before it is closed as a slow consumer.
    #[arg(long, env = "SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub send_timeout: Duration,

    /// Secret that signs resume tokens. Without it a random one is used, and a session can
    /// only be resumed on the replica that created it.
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// Largest accepted client frame, in bytes.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest accepted `chat.content`, in bytes.
    #[arg(long, env = "MAX_CONTENT_BYTES", default_value_t = 32 * 1024)]
    pub max_content_bytes: usize,

    /// How long to wait for connections to close after SIGTERM.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Bound on one Redis command, including waiting for a reconnect.
    #[arg(long, env = "REDIS_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub redis_command_timeout: Duration,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    /// Largest accepted `chat.content`, in bytes.
    pub fn max_content_bytes(&self) -> usize {
        self.max_content_bytes
    }

    /// Checks what clap cannot; the error is one line for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval.is_zero() || self.client_timeout <= self.heartbeat_interval {
            return Err(format!(
                "CLIENT_TIMEOUT ({:?}) must be longer than HEARTBEAT_INTERVAL ({:?})",
                self.client_timeout, self.heartbeat_interval
            ));
        }
        if self.send_queue_bytes < 1024 {
            return Err("SEND_QUEUE_BYTES must be at least 1024".into());
        }
        if self.send_timeout.is_zero() {
            return Err("SEND_TIMEOUT must be positive".into());
        }
        if self.max_frame_bytes < 256 {
            return Err("MAX_FRAME_BYTES must be at least 256".into());
        }
        match reqwest::Url::parse(&self.ai_service_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(format!(
                    "AI_SERVICE_URL is not an http(s) URL: {:?}",
                    self.ai_service_url
                ))
            }
        }
        service_kit::check_redis_url(&self.redis_url)?;
        if matches!(&self.auth_secret, Some(s) if s.len() < 16) {
            return Err("AUTH_SECRET must be at least 16 characters".into());
        }
        Ok(())
    }
}
