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

    /// Secret for login tokens and resume tokens. When set, `/ws` requires a JWT (HS256,
    /// `exp` checked) in `?token=` or `Sec-WebSocket-Protocol: bearer.<jwt>`, and sessions
    /// belong to the token's `sub`. Unset: anonymous sessions, resume tokens signed with a
    /// random key (resume only on this replica). Set the same value on every replica.
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<String>,

    /// Largest accepted client frame, in bytes.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest accepted `chat.content`, in bytes.
    #[arg(long, env = "MAX_CONTENT_BYTES", default_value_t = 32 * 1024)]
    pub max_content_bytes: usize,

    /// Browser origins allowed to open `/ws` (comma list, e.g. `https://chat.example.com`);
    /// unset or `*`: any. A handshake without `Origin` (a non-browser client) is always allowed.
    #[arg(long, env = "ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,

    /// Bearer token the gateway sends to the ai-service (`Authorization: Bearer …`); set it
    /// to the ai-service's `AI_SERVICE_TOKEN`.
    #[arg(long, env = "AI_SERVICE_TOKEN", hide_env_values = true)]
    pub ai_service_token: Option<String>,

    /// Client frames per second per connection (token bucket; heartbeats are exempt, cancels
    /// have a bucket of their own). 0: no limit.
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 20.0)]
    pub rate_limit_per_sec: f64,

    /// Frames a connection may send at once before `RATE_LIMIT_PER_SEC` applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 40)]
    pub rate_limit_burst: u32,

    /// Most answers one session may have generating at once (`error{too_many_generations}`).
    #[arg(long, env = "MAX_GENERATIONS_PER_SESSION", default_value_t = 4)]
    pub max_generations_per_session: usize,

    /// Most WebSocket connections this gateway holds (503 at the handshake above it).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,

    /// Most WebSocket connections from one client IP (503 above it; loopback is exempt;
    /// 0: no per-IP limit).
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,

    /// Proxies whose `X-Forwarded-For` names the client (comma list of IPs or CIDRs), for
    /// `MAX_CONNECTIONS_PER_IP`. Empty: the peer address is the client.
    #[arg(long, env = "TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// After the gateway has closed a connection (its FIN sent), how long it keeps reading and
    /// dropping what the client still sends (its close reply), so that does not meet a TCP
    /// reset; the close itself is not delayed. 0: drop the socket at once. At most 1h.
    #[arg(long, env = "DISCONNECT_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub disconnect_timeout: Duration,

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
        if self.disconnect_timeout > Duration::from_secs(3600) {
            return Err("DISCONNECT_TIMEOUT must be at most 1h".into());
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
        if matches!(&self.ai_service_token, Some(s) if s.len() < 16) {
            return Err("AI_SERVICE_TOKEN must be at least 16 characters".into());
        }
        crate::auth::OriginPolicy::parse(self.allowed_origins.as_deref())?;
        crate::limits::TrustedProxies::parse(self.trusted_proxies.as_deref())?;
        if !(self.rate_limit_per_sec.is_finite() && self.rate_limit_per_sec >= 0.0) {
            return Err("RATE_LIMIT_PER_SEC must be a number >= 0".into());
        }
        if self.rate_limit_burst == 0 {
            return Err("RATE_LIMIT_BURST must be at least 1".into());
        }
        if self.max_generations_per_session == 0 {
            return Err("MAX_GENERATIONS_PER_SESSION must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("MAX_CONNECTIONS must be at least 1".into());
        }
        Ok(())
    }
}
