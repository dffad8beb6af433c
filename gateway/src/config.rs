//! The gateway's settings: every one a flag and an environment variable, each parsed once (by a
//! clap `value_parser`) into the type the code uses, so that nothing is parsed twice and a
//! value that is accepted at start cannot fail later. What one setting cannot check alone
//! (a relation between two) is [`Config::validate`], also run at start: exit 2, one line.
//!
//! The settings both services share (Redis, `AI_SERVICE_TOKEN`, `SHUTDOWN_TIMEOUT`,
//! `LOG_FORMAT`) are [`service_kit::CommonArgs`]; the listen address belongs to the binary
//! ([`GatewayCli`]), so that the root `streamline` binary can flatten this struct next to the
//! ai-service's.

use std::net::SocketAddr;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser};
use service_kit::{parse_duration, parse_secret, CommonArgs, Secret};

use crate::security::origin::OriginPolicy;
use crate::security::proxies::TrustedProxies;

/// WebSocket gateway: browsers in, answers streamed out.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version, about)]
pub struct GatewayCli {
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub config: Config,
}

/// The gateway's own settings.
#[derive(Debug, Clone, Args)]
#[group(id = "gateway_settings")]
pub struct Config {
    /// Base URL of the ai-service.
    #[arg(long, env = "AI_SERVICE_URL", default_value = "http://127.0.0.1:8081", value_parser = parse_http_url)]
    pub ai_service_url: String,

    /// Close a connection that sent nothing (not even a pong) for this long.
    #[arg(long, env = "CLIENT_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub client_timeout: Duration,

    /// How often the gateway pings, and the heartbeat interval it asks clients to keep.
    #[arg(long, env = "HEARTBEAT_INTERVAL", default_value = "20s", value_parser = parse_positive_duration)]
    pub heartbeat_interval: Duration,

    /// Most bytes queued for one client before it is closed as a slow consumer.
    #[arg(long, env = "SEND_QUEUE_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..).map(|n| n as usize))]
    pub send_queue_bytes: usize,

    /// Longest one write to a client may block before it is closed as a slow consumer.
    #[arg(long, env = "SEND_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub send_timeout: Duration,

    /// Secret for login tokens and resume tokens (16+ characters). When set, `/ws` requires a
    /// JWT (HS256, `exp` checked) in `?token=` or `Sec-WebSocket-Protocol: bearer.<jwt>`, and
    /// sessions belong to the token's `sub`. Unset: anonymous sessions, resume tokens signed
    /// with a random key (resume only on this replica). Set the same value on every replica.
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub auth_secret: Option<Secret>,

    /// Largest accepted client frame, in bytes.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u64).range(256..).map(|n| n as usize))]
    pub max_frame_bytes: usize,

    /// Largest accepted `chat.content`, in bytes.
    #[arg(long, env = "MAX_CONTENT_BYTES", default_value_t = 32 * 1024)]
    pub max_content_bytes: usize,

    /// Browser origins allowed to open `/ws` (comma list, e.g. `https://chat.example.com`);
    /// empty or `*`: any. A handshake without `Origin` (a non-browser client) is always allowed.
    #[arg(long, env = "ALLOWED_ORIGINS", default_value = "", hide_default_value = true, value_parser = OriginPolicy::parse)]
    pub allowed_origins: OriginPolicy,

    /// Client frames per second per connection (token bucket; heartbeats are exempt, cancels
    /// have a bucket of their own). 0: no limit.
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 20.0, value_parser = parse_rate)]
    pub rate_limit_per_sec: f64,

    /// Frames a connection may send at once before `RATE_LIMIT_PER_SEC` applies.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,

    /// Most answers one session may have generating at once (`error{too_many_generations}`).
    #[arg(long, env = "MAX_GENERATIONS_PER_SESSION", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub max_generations_per_session: usize,

    /// Most sockets one session may have open on this gateway (tabs, devices); beyond it, the
    /// oldest is closed with 4001 "session replaced".
    #[arg(long, env = "MAX_SOCKETS_PER_SESSION", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub max_sockets_per_session: usize,

    /// Most WebSocket connections this gateway holds (503 at the handshake above it).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..).map(|n| n as usize))]
    pub max_connections: usize,

    /// Most WebSocket connections from one client IP (503 above it; loopback is exempt;
    /// 0: no per-IP limit).
    #[arg(long, env = "MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,

    /// After the gateway has closed a connection (its FIN sent), how long it keeps reading and
    /// dropping what the client still sends (its close reply), so that does not meet a TCP
    /// reset; the close itself is not delayed. 0: drop the socket at once. At most 1h.
    #[arg(long, env = "DISCONNECT_TIMEOUT", default_value = "1s", value_parser = parse_disconnect_timeout)]
    pub disconnect_timeout: Duration,

    /// Proxies whose `X-Forwarded-For` names the client (comma list of IPs or CIDRs), for
    /// `MAX_CONNECTIONS_PER_IP`. Empty: the peer address is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", hide_default_value = true, value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
}

/// A relation between settings that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("CLIENT_TIMEOUT ({client_timeout:?}) must be longer than HEARTBEAT_INTERVAL ({heartbeat_interval:?})")]
    ClientTimeoutTooShort {
        client_timeout: Duration,
        heartbeat_interval: Duration,
    },
}

impl Config {
    /// Checks what one setting cannot check alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client_timeout <= self.heartbeat_interval {
            return Err(ConfigError::ClientTimeoutTooShort {
                client_timeout: self.client_timeout,
                heartbeat_interval: self.heartbeat_interval,
            });
        }
        Ok(())
    }
}

/// Why a setting's value was refused (clap prints it after the setting's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("not an http(s) URL")]
    NotHttpUrl,
    #[error("must be a number >= 0")]
    NotARate,
    #[error("must be longer than zero")]
    Zero,
    #[error("must be at most 1h")]
    OverAnHour,
}

fn parse_http_url(s: &str) -> Result<String, ValueError> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(s.to_string()),
        _ => Err(ValueError::NotHttpUrl),
    }
}

fn parse_rate(s: &str) -> Result<f64, ValueError> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(ValueError::NotARate),
    }
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(ValueError::Zero.to_string()),
        d => Ok(d),
    }
}

fn parse_disconnect_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d > Duration::from_secs(3600) => Err(ValueError::OverAnHour.to_string()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_valid() {
        use clap::CommandFactory;
        GatewayCli::command().debug_assert();
    }
}
