//! The settings both services share, declared once and flattened into each binary's command
//! line (and once into the root `streamline` binary, which runs both).

use std::time::Duration;

use crate::{parse_duration, parse_redis_url, parse_secret, LogFormat, Secret};

/// Settings of both services.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Shared secret between gateways and ai-services (16+ characters): the ai-service then
    /// requires `Authorization: Bearer <this>` on every `/v1` route (401 otherwise), and the
    /// gateway sends it. Set the same value on both.
    #[arg(long, env = "AI_SERVICE_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub ai_service_token: Option<Secret>,

    /// After SIGTERM: how long generations in flight may finish (ai-service), and how long to
    /// wait for sockets to close (gateway).
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// How to reach Redis.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL (`redis://`, `rediss://`, or `redis-cluster://host:port?node=host:port…`).
    #[arg(long = "redis-url", env = "REDIS_URL", default_value = "redis://127.0.0.1:6379", value_parser = parse_redis_url)]
    pub url: String,

    /// Bound on one Redis command, including waiting for a reconnect.
    #[arg(long = "redis-command-timeout", env = "REDIS_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub command_timeout: Duration,
}
