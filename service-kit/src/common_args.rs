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

    /// How long a generation's owner lease lives without renewal; renewed every third of it. A
    /// dead replica's messages end as `worker_lost` once their lease ran out and the owner
    /// stayed silent half a lease more while the store answered (at least 300ms).
    #[arg(long, env = "LEASE_TTL", default_value = "4s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,

    /// How long a producer goes on through a store (Redis) outage, holding its answer in
    /// memory, before it gives the answer up as `failed/redis_unavailable`; a gateway waits
    /// this plus `LEASE_TTL` before it ends a followed message for its client.
    #[arg(long, env = "STORE_OUTAGE_BUDGET", default_value = "30s", value_parser = parse_duration)]
    pub store_outage_budget: Duration,

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

fn parse_lease_ttl(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d < Duration::from_millis(300) => Err("must be at least 300ms".into()),
        d => Ok(d),
    }
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

    /// The store's configuration for the Redis connection, with the lease of these settings
    /// and the store's defaults for retention (the ai-service sets its own).
    pub fn store_config(&self) -> RedisStoreConfig {
        RedisStoreConfig {
            lease_ttl: self.lease_ttl,
            ..self.redis.store_config()
        }
    }

    /// How long a follower waits for a message's owner through a store outage before it ends
    /// the message for its client: the owner's budget, then a lease for it to say so.
    pub fn follower_patience(&self) -> Duration {
        self.store_outage_budget + self.lease_ttl
    }
}
