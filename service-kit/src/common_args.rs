//! The settings both services share, declared once and flattened into each binary's command
//! line (and once into the root `streamline` binary, which runs both).

use std::time::Duration;

use store::{RedisConfigError, RedisStoreConfig};

use crate::{parse_duration, parse_secret, LogFormat, RedisTlsArgs, Secret, TraceArgs};

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

    #[command(flatten)]
    pub traces: TraceArgs,
}

/// How to reach Redis.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis URL: `redis://host:port[/db]`, `rediss://` (TLS, verified),
    /// `redis-cluster://host:port?node=host:port…`,
    /// `redis-sentinel://host:port?sentinelServiceName=NAME&node=host:port…`
    /// (and `rediss-cluster://`, `rediss-sentinel://`).
    #[arg(
        long = "redis-url",
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub url: String,

    /// Bound on one Redis command, including waiting for a reconnect.
    #[arg(long = "redis-command-timeout", env = "REDIS_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub command_timeout: Duration,

    #[command(flatten)]
    pub tls: RedisTlsArgs,
}

impl RedisArgs {
    /// Checks `REDIS_URL` with the TLS files, with the store's own parser (what passes here is
    /// what the store connects with).
    pub fn validate(&self) -> Result<(), RedisConfigError> {
        self.tls.check(&self.url).map(|_| ())
    }

    /// The store's configuration for this connection, with the store's defaults for the rest.
    pub fn store_config(&self) -> RedisStoreConfig {
        RedisStoreConfig {
            command_timeout: self.command_timeout,
            ..RedisStoreConfig::new(self.url.clone()).with_tls(self.tls.files())
        }
    }
}

impl CommonArgs {
    /// Checks what one setting cannot check alone (exit 2, one line).
    pub fn validate(&self) -> Result<(), RedisConfigError> {
        self.redis.validate()
    }
}
