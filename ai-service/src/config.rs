//! The ai-service's settings: every one a flag and an environment variable, validated at start.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use service_kit::{parse_duration, LogFormat, RedisTlsArgs};

/// Which model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// Built-in deterministic text, no network.
    Demo,
    /// Any OpenAI-compatible Chat Completions server.
    Openai,
}

/// Runs generations and writes them to Redis.
#[derive(Debug, Clone, Parser)]
#[command(name = "ai-service", version, about)]
pub struct Config {
    /// Address of the HTTP API.
    #[arg(long, env = "AI_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: SocketAddr,

    /// Redis URL: `redis://host:port[/db]`, `rediss://` (TLS, verified),
    /// `redis-cluster://host:port?node=host:port…`, `redis-sentinel://host:port?sentinelServiceName=NAME&node=host:port…`
    /// (and `rediss-cluster://`, `rediss-sentinel://`).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,

    /// How long a finished message answers a cancel with `already_*` rather than `not_found`.
    #[arg(long, env = "CANCEL_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub cancel_grace: Duration,

    /// How long a message's log stays readable after its last write (chunk or lease
    /// renewal while it runs): the resume window.
    #[arg(long, env = "STREAM_TTL", default_value = "10m", value_parser = parse_duration)]
    pub stream_ttl: Duration,

    /// Turn pairs (user + assistant) of history kept per session and sent to the model.
    #[arg(long, env = "HISTORY_TURNS", default_value_t = 20)]
    pub history_turns: u32,

    /// How long a session's history lives after its last turn.
    #[arg(long, env = "SESSION_TTL", default_value = "24h", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// How long a generation's owner lease lives without renewal (a dead replica's messages end
    /// as `worker_lost` about this long after it died). Renewed every third of it.
    #[arg(long, env = "LEASE_TTL", default_value = "4s", value_parser = parse_duration)]
    pub lease_ttl: Duration,

    /// Which provider answers.
    #[arg(long, env = "PROVIDER", value_enum, default_value = "demo")]
    pub provider: ProviderKind,

    /// Demo provider: tokens per answer.
    #[arg(long, env = "DEMO_TOKENS", default_value_t = 60)]
    pub demo_tokens: u64,

    /// Demo provider: tokens per second (0: as fast as possible).
    #[arg(long, env = "DEMO_TOKENS_PER_SEC", default_value_t = 30.0)]
    pub demo_tokens_per_sec: f64,

    /// OpenAI-compatible server: base URL (…/v1).
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,

    /// OpenAI-compatible server: API key (optional; sent as a Bearer token).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<String>,

    /// OpenAI-compatible server: model name.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,

    /// System prompt sent before the conversation (optional).
    #[arg(long, env = "SYSTEM_PROMPT")]
    pub system_prompt: Option<String>,

    /// Upper bound on tokens per answer (optional).
    #[arg(long, env = "MAX_TOKENS")]
    pub max_tokens: Option<u32>,

    /// Sampling temperature (optional).
    #[arg(long, env = "TEMPERATURE")]
    pub temperature: Option<f32>,

    /// Fail with `upstream_timeout` when no first token arrives within this.
    #[arg(long, env = "UPSTREAM_FIRST_TOKEN_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub upstream_first_token_timeout: Duration,

    /// Fail with `upstream_timeout` when no token arrives for this long mid-answer.
    #[arg(long, env = "UPSTREAM_IDLE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub upstream_idle_timeout: Duration,

    /// Retries of a failed upstream call (429, 5xx, connect) before the first token.
    #[arg(long, env = "UPSTREAM_MAX_RETRIES", default_value_t = 2)]
    pub upstream_max_retries: u32,

    /// This replica's name, used to route cancels to it (default: random).
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,

    /// When set, every `/v1` route requires `Authorization: Bearer <this>` (401 otherwise);
    /// give the gateways the same value.
    #[arg(long, env = "AI_SERVICE_TOKEN", hide_env_values = true)]
    pub ai_service_token: Option<String>,

    /// How long generations in flight may finish after SIGTERM.
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
    /// Checks what clap cannot; the error is one line for the operator.
    pub fn validate(&self) -> Result<(), String> {
        if self.cancel_grace > self.stream_ttl {
            return Err(format!(
                "CANCEL_GRACE ({:?}) must not exceed STREAM_TTL ({:?})",
                self.cancel_grace, self.stream_ttl
            ));
        }
        if self.lease_ttl < Duration::from_millis(300) {
            return Err("LEASE_TTL must be at least 300ms".into());
        }
        if self.stream_ttl < Duration::from_secs(1) {
            return Err("STREAM_TTL must be at least 1s".into());
        }
        if matches!(&self.ai_service_token, Some(t) if t.len() < 16) {
            return Err("AI_SERVICE_TOKEN must be at least 16 characters".into());
        }
        if !(self.demo_tokens_per_sec.is_finite() && self.demo_tokens_per_sec >= 0.0) {
            return Err("DEMO_TOKENS_PER_SEC must be a number >= 0".into());
        }
        if let Some(id) = &self.replica_id {
            if id.is_empty() || id.len() > 64 || id.contains(['{', '}', ' ']) {
                return Err("REPLICA_ID must be 1-64 characters without braces or spaces".into());
            }
        }
        self.redis_tls.check(&self.redis_url)?;
        Ok(())
    }
}
