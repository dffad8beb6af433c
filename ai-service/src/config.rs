//! The ai-service's settings: every one a flag and an environment variable, each parsed once
//! by a clap `value_parser` into the type the code uses; what one setting cannot check alone
//! (a relation between two) is [`Config::validate`], also run at start (exit 2, one line).
//!
//! The settings both services share (Redis, `AI_SERVICE_TOKEN`, `SHUTDOWN_TIMEOUT`,
//! `LOG_FORMAT`) are [`service_kit::CommonArgs`]; the listen address belongs to the binary
//! ([`AiCli`]), so that the root `streamline` binary can flatten this struct next to the
//! gateway's.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser};
use service_kit::{parse_duration, CommonArgs};

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
pub struct AiCli {
    /// Address of the HTTP API.
    #[arg(long, env = "AI_ADDR", default_value = "127.0.0.1:8081")]
    pub addr: SocketAddr,

    /// Address of the admin port: `/metrics`, `/healthz`, `/readyz` and the admin API
    /// (`/admin/...`, see ADMIN_TOKEN). An internal port: never expose it publicly.
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:9091")]
    pub admin_addr: SocketAddr,

    #[command(flatten)]
    pub health: service_kit::HealthcheckArg,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub config: Config,
}

/// The ai-service's own settings.
#[derive(Debug, Clone, Args)]
#[group(id = "ai_service_settings")]
pub struct Config {
    /// How long a finished message answers a cancel with `already_*` rather than `not_found`,
    /// and how long a cancel that came before its message's create is remembered (it then ends
    /// that message at its create).
    #[arg(long, env = "CANCEL_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub cancel_grace: Duration,

    /// How long a message's log stays readable after its last write (chunk or lease
    /// renewal while it runs): the resume window.
    #[arg(long, env = "STREAM_TTL", default_value = "10m", value_parser = parse_stream_ttl)]
    pub stream_ttl: Duration,

    /// How long a token of a fast model waits for the tokens right behind it, so that they go
    /// out as one chunk: a token that follows the previous one by less than this is held for up
    /// to this long; one after a longer pause (and an answer's first) is written at once. Fewer
    /// chunks cost less in Redis, the gateways and the clients. 0: every token as soon as the
    /// previous write returns. At most 1s.
    #[arg(long, env = "CHUNK_LINGER", default_value = "0ms", value_parser = parse_chunk_linger)]
    pub chunk_linger: Duration,

    /// Turn pairs (user + assistant) of history kept per session and sent to the model.
    #[arg(long, env = "HISTORY_TURNS", default_value_t = 20)]
    pub history_turns: u32,

    /// How long a session's history lives after its last turn.
    #[arg(long, env = "SESSION_TTL", default_value = "24h", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// Which provider answers.
    #[arg(long, env = "PROVIDER", value_enum, default_value = "demo")]
    pub provider: ProviderKind,

    /// Demo provider: tokens per answer.
    #[arg(long, env = "DEMO_TOKENS", default_value_t = 60)]
    pub demo_tokens: u64,

    /// Demo provider: tokens per second (0: as fast as possible).
    #[arg(long, env = "DEMO_TOKENS_PER_SEC", default_value_t = 30.0, value_parser = parse_rate)]
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

    /// Completion tokens one user (the JWT `sub` the gateway passes) may spend per
    /// USER_TOKEN_WINDOW, across all replicas (unset: no limit; anonymous chats are never
    /// charged). Charged as chunks are written; a chat of a user with nothing left gets
    /// `quota_exceeded` with `retry_after_s`, and a running answer that exhausts it ends
    /// `failed/quota_exceeded`.
    #[arg(long, env = "USER_TOKEN_BUDGET", value_parser = clap::value_parser!(u64).range(1..))]
    pub user_token_budget: Option<u64>,

    /// The window of USER_TOKEN_BUDGET: a fixed window from the user's first charged token.
    #[arg(long, env = "USER_TOKEN_WINDOW", default_value = "1h", value_parser = parse_token_window)]
    pub user_token_window: Duration,

    /// Bearer token of the admin API (16+ printable ASCII characters): with it, every
    /// `/admin/...` route of ADMIN_ADDR requires `Authorization: Bearer <this>` (401
    /// otherwise). Unset: the admin API is open to whoever reaches ADMIN_ADDR. `/metrics` and
    /// the probes stay open either way.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, value_parser = service_kit::bearer_token)]
    pub admin_token: Option<service_kit::Secret>,

    /// This replica's name, used to route cancels to it (default: random; 1-64 characters
    /// without braces or spaces).
    #[arg(long, env = "REPLICA_ID", value_parser = parse_replica_id)]
    pub replica_id: Option<String>,
}

/// A relation between settings that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("CANCEL_GRACE ({cancel_grace:?}) must not exceed STREAM_TTL ({stream_ttl:?})")]
    GraceLongerThanTtl {
        cancel_grace: Duration,
        stream_ttl: Duration,
    },
    #[error("ADMIN_TOKEN {0}")]
    AdminToken(service_kit::BadToken),
}

impl Config {
    /// The per-user budget, when USER_TOKEN_BUDGET is set.
    pub fn budget(&self) -> Option<store::Budget> {
        self.user_token_budget.map(|limit| store::Budget {
            limit,
            window: self.user_token_window,
        })
    }

    /// Checks what one setting cannot check alone.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cancel_grace > self.stream_ttl {
            return Err(ConfigError::GraceLongerThanTtl {
                cancel_grace: self.cancel_grace,
                stream_ttl: self.stream_ttl,
            });
        }
        if let Some(token) = &self.admin_token {
            service_kit::check_bearer_token(token).map_err(ConfigError::AdminToken)?;
        }
        Ok(())
    }
}

/// Why a setting's value was refused (clap prints it after the setting's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must be 1-64 characters without braces or spaces")]
    ReplicaId,
    #[error("must be a number >= 0")]
    NotARate,
    #[error("must be at least {0:?}")]
    TooShort(Duration),
    #[error("must be at most {0:?}")]
    TooLong(Duration),
}

fn parse_replica_id(s: &str) -> Result<String, ValueError> {
    if s.is_empty() || s.len() > 64 || s.contains(['{', '}', ' ']) {
        return Err(ValueError::ReplicaId);
    }
    Ok(s.to_string())
}

fn parse_rate(s: &str) -> Result<f64, ValueError> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(ValueError::NotARate),
    }
}

fn at_least(s: &str, min: Duration) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d < min => Err(ValueError::TooShort(min).to_string()),
        d => Ok(d),
    }
}

fn at_most(s: &str, max: Duration) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d > max => Err(ValueError::TooLong(max).to_string()),
        d => Ok(d),
    }
}

fn parse_chunk_linger(s: &str) -> Result<Duration, String> {
    at_most(s, Duration::from_secs(1))
}

fn parse_stream_ttl(s: &str) -> Result<Duration, String> {
    at_least(s, Duration::from_secs(1))
}

fn parse_token_window(s: &str) -> Result<Duration, String> {
    at_least(s, Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_valid() {
        use clap::CommandFactory;
        AiCli::command().debug_assert();
    }
}
