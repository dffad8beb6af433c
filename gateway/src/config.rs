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

use crate::security::jwks::url::JwksUrl;
use crate::security::jwt::pem_key::{parse_public_key_file, PublicKeyFile};
use crate::security::origin::OriginPolicy;
use crate::security::proxies::TrustedProxies;

/// WebSocket gateway: browsers in, answers streamed out.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version, about)]
pub struct GatewayCli {
    /// Address to listen on (HTTP and WebSocket).
    #[arg(long, env = "GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Address of the admin port: `/metrics`, `/healthz` and `/readyz`. An internal port:
    /// never expose it publicly (GATEWAY_ADDR keeps `/healthz` and `/readyz`).
    #[arg(long, env = "ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: SocketAddr,

    #[command(flatten)]
    pub health: service_kit::HealthcheckArg,

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

    /// HS256 secret of login tokens, and the key of resume tokens unless RESUME_SECRET is set
    /// (16+ characters). With it (or JWT_JWKS_URL, or JWT_PUBLIC_KEY_FILE), `/ws` requires a
    /// JWT in `?token=` or `Sec-WebSocket-Protocol: bearer.<jwt>`, and sessions belong to the
    /// token's `sub`. With no JWT key at all: anonymous sessions. Same value on every replica.
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub auth_secret: Option<Secret>,

    /// Key of resume tokens (16+ characters), instead of AUTH_SECRET; required when JWTs are
    /// verified with JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE only. Unset with neither: a random key
    /// (sessions resume on this replica only). Same value on every replica.
    #[arg(long, env = "RESUME_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub resume_secret: Option<Secret>,

    /// The identity provider's JWKS (e.g. `https://TENANT.auth0.com/.well-known/jwks.json`,
    /// `https://KEYCLOAK/realms/REALM/protocol/openid-connect/certs`): RS256, ES256 and EdDSA
    /// keys, fetched at start, cached and refreshed. https only (http to loopback allowed).
    #[arg(long, env = "JWT_JWKS_URL", value_parser = JwksUrl::parse)]
    pub jwt_jwks_url: Option<JwksUrl>,

    /// PEM file of one public key that verifies login tokens: RSA (RS256, 2048+ bits), EC
    /// P-256 (ES256) or Ed25519 (EdDSA). Read and checked at start.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", value_parser = parse_public_key_file)]
    pub jwt_public_key_file: Option<PublicKeyFile>,

    /// Required `iss` of login tokens, compared exactly (e.g. `https://TENANT.auth0.com/`,
    /// with its trailing slash). Unset: `iss` is not checked.
    #[arg(long, env = "JWT_ISSUER", value_parser = parse_issuer)]
    pub jwt_issuer: Option<String>,

    /// Accepted `aud` values of login tokens (comma list); a token must name one of them.
    /// Unset: a token that names an audience is refused (RFC 7519).
    #[arg(long, env = "JWT_AUDIENCE", value_parser = parse_audience)]
    pub jwt_audience: Option<Audience>,

    /// Clock skew tolerated on `exp` and `nbf` (at most 5m). An open connection is closed
    /// (4003) at its token's `exp` plus this.
    #[arg(long, env = "JWT_LEEWAY", default_value = "5s", value_parser = parse_leeway)]
    pub jwt_leeway: Duration,

    /// How often the JWKS is refreshed (sooner when its Cache-Control max-age says so): the
    /// longest a key the provider withdrew stays accepted.
    #[arg(long, env = "JWT_JWKS_REFRESH", default_value = "5m", value_parser = parse_positive_duration)]
    pub jwt_jwks_refresh: Duration,

    /// Fetches of the JWKS are at least this far apart: a token naming an unknown `kid`
    /// triggers a refetch at most this often, and a failed fetch is retried after this.
    #[arg(long, env = "JWT_JWKS_MIN_REFRESH", default_value = "10s", value_parser = parse_positive_duration)]
    pub jwt_jwks_min_refresh: Duration,

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

    /// After SIGTERM, close the sockets (1001) spread evenly over this long rather than all at
    /// once, so that this gateway's clients do not reconnect in one burst. At most half of
    /// SHUTDOWN_TIMEOUT is used. 0s: all at once.
    #[arg(long, env = "DRAIN_SPREAD", default_value = "10s", value_parser = parse_duration)]
    pub drain_spread: Duration,

    /// Proxies whose `X-Forwarded-For` names the client (comma list of IPs or CIDRs), for
    /// `MAX_CONNECTIONS_PER_IP`. Empty: the peer address is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", hide_default_value = true, value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
}

/// `JWT_AUDIENCE`: the accepted `aud` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

/// Longest `JWT_LEEWAY`: more would make expiry meaningless.
pub const MAX_JWT_LEEWAY: Duration = Duration::from_secs(300);

/// A relation between settings that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("CLIENT_TIMEOUT ({client_timeout:?}) must be longer than HEARTBEAT_INTERVAL ({heartbeat_interval:?})")]
    ClientTimeoutTooShort {
        client_timeout: Duration,
        heartbeat_interval: Duration,
    },
    #[error("RESUME_SECRET (16+ characters) is required when JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE is set without AUTH_SECRET: it signs the resume tokens")]
    ResumeSecretRequired,
    #[error("{0} is set but no JWT key is (AUTH_SECRET, JWT_JWKS_URL or JWT_PUBLIC_KEY_FILE): its check would never run")]
    ClaimCheckWithoutKey(&'static str),
    #[error(
        "JWT_JWKS_MIN_REFRESH ({min:?}) must not be longer than JWT_JWKS_REFRESH ({refresh:?})"
    )]
    MinRefreshAboveRefresh { min: Duration, refresh: Duration },
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
        let asymmetric = self.jwt_jwks_url.is_some() || self.jwt_public_key_file.is_some();
        if asymmetric && self.auth_secret.is_none() && self.resume_secret.is_none() {
            return Err(ConfigError::ResumeSecretRequired);
        }
        if !self.jwt_enabled() {
            if self.jwt_issuer.is_some() {
                return Err(ConfigError::ClaimCheckWithoutKey("JWT_ISSUER"));
            }
            if self.jwt_audience.is_some() {
                return Err(ConfigError::ClaimCheckWithoutKey("JWT_AUDIENCE"));
            }
        }
        if self.jwt_jwks_min_refresh > self.jwt_jwks_refresh {
            return Err(ConfigError::MinRefreshAboveRefresh {
                min: self.jwt_jwks_min_refresh,
                refresh: self.jwt_jwks_refresh,
            });
        }
        Ok(())
    }

    /// Whether `/ws` requires a JWT (some JWT key is configured).
    pub fn jwt_enabled(&self) -> bool {
        self.auth_secret.is_some()
            || self.jwt_jwks_url.is_some()
            || self.jwt_public_key_file.is_some()
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
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 5m")]
    LeewayTooLong,
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

fn parse_issuer(s: &str) -> Result<String, ValueError> {
    match s.trim() {
        "" => Err(ValueError::Empty),
        iss => Ok(iss.to_string()),
    }
}

fn parse_audience(s: &str) -> Result<Audience, ValueError> {
    let list: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        return Err(ValueError::Empty);
    }
    Ok(Audience(list))
}

fn parse_leeway(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d > MAX_JWT_LEEWAY => Err(ValueError::LeewayTooLong.to_string()),
        d => Ok(d),
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

    fn parse(args: &[&str]) -> Result<GatewayCli, clap::Error> {
        let mut all = vec!["gateway"];
        all.extend_from_slice(args);
        GatewayCli::try_parse_from(all)
    }

    #[test]
    fn identity_settings() {
        let cli = parse(&[
            "--jwt-audience",
            " api, other ,",
            "--jwt-issuer",
            "https://i/",
        ])
        .unwrap();
        assert_eq!(
            cli.config.jwt_audience,
            Some(Audience(vec!["api".into(), "other".into()]))
        );
        assert_eq!(cli.config.jwt_leeway, Duration::from_secs(5));
        assert_eq!(cli.config.jwt_jwks_refresh, Duration::from_secs(300));
        assert_eq!(cli.config.jwt_jwks_min_refresh, Duration::from_secs(10));
        // iss/aud checks without any key would never run.
        assert_eq!(
            cli.config.validate(),
            Err(ConfigError::ClaimCheckWithoutKey("JWT_ISSUER"))
        );
        assert!(parse(&["--jwt-audience", " , "]).is_err());
        assert!(parse(&["--jwt-leeway", "6m"]).is_err());
        assert!(parse(&["--jwt-jwks-url", "http://idp.example.com/jwks"]).is_err());
        assert!(parse(&["--jwt-public-key-file", "/nonexistent.pem"]).is_err());
        // A JWKS alone needs a resume secret.
        let jwks = ["--jwt-jwks-url", "https://idp.example.com/jwks"];
        assert_eq!(
            parse(&jwks).unwrap().config.validate(),
            Err(ConfigError::ResumeSecretRequired)
        );
        let mut with_secret = jwks.to_vec();
        with_secret.extend(["--resume-secret", "0123456789abcdef"]);
        assert_eq!(parse(&with_secret).unwrap().config.validate(), Ok(()));
        let mut with_auth = jwks.to_vec();
        with_auth.extend(["--auth-secret", "0123456789abcdef"]);
        assert_eq!(parse(&with_auth).unwrap().config.validate(), Ok(()));
        let mut bad_refresh = with_secret.clone();
        bad_refresh.extend(["--jwt-jwks-refresh", "5s"]);
        assert!(matches!(
            parse(&bad_refresh).unwrap().config.validate(),
            Err(ConfigError::MinRefreshAboveRefresh { .. })
        ));
    }
}
