//! Who may open `/ws`, and how much of the gateway one client may take.
//!
//! - [`jwt`]: JWT verification; [`bearer`]: where the client puts its JWT;
//! - [`origin`]: the Origin policy; [`resume_token`]: HMAC resume tokens bound to `sub`;
//! - [`conn_limits`]: connections in total and per client IP; [`proxies`]: whose
//!   `X-Forwarded-For` is believed; [`rate`]: the per-connection token bucket.
//!
//! Every policy is parsed once, by the configuration (clap `value_parser`s), into these types;
//! [`Security`] only gathers them for the handshake.

pub mod bearer;
pub mod conn_limits;
pub mod jwt;
pub mod origin;
pub mod proxies;
pub mod rate;
pub mod resume_token;

use std::sync::Arc;

use crate::config::Config;
use conn_limits::ConnLimiter;
use jwt::JwtVerifier;
use origin::OriginPolicy;
use proxies::TrustedProxies;

/// Everything the `/ws` handshake checks.
pub struct Security {
    /// `None`: no `AUTH_SECRET`, anonymous sessions.
    pub jwt: Option<JwtVerifier>,
    pub origins: OriginPolicy,
    pub proxies: TrustedProxies,
    pub connections: Arc<ConnLimiter>,
}

impl Security {
    pub fn new(config: &Config) -> Self {
        Security {
            jwt: config
                .auth_secret
                .as_ref()
                .map(|s| JwtVerifier::new(s.expose().as_bytes())),
            origins: config.allowed_origins.clone(),
            proxies: config.trusted_proxies.clone(),
            connections: ConnLimiter::new(config.max_connections, config.max_connections_per_ip),
        }
    }
}
